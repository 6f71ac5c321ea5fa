"""The jet classes and shower variations of the book, each defined once; explained in ``book/data/resimulation.ipynb``.

:data:`VARIATIONS` is axis 1 of every re-simulated array, in the order of the public RS3L files (Harris et al.,
Sec. II B; Rothen et al., Table I): name, what changes, the Pythia settings added to the common ones, and how plots
draw it. :data:`JET_CLASSES` lists every class a :class:`~hepnb.data.sample.JetSample` label can name, in label order:
the generated ones carry the Pythia process that makes them, the public-only one (``zqq``, present in the RS3L
files) carries ``None``.

Everything else is derived from these two tables (:data:`CLASS_NAMES`, :data:`VARIATION_NAMES`, labels, colours), so
a class or a variation is added in one place. This module imports nothing heavy: reading a file never loads Pythia.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Variation", "VARIATIONS", "VARIATION_NAMES", "VARIATION_LABELS", "VARIATION_STYLES", "JetClass",
           "JET_CLASSES", "CLASS_NAMES", "CLASS_LABELS", "CLASS_COLOURS", "GENERATED_CLASSES", "jet_class"]


@dataclass(frozen=True)
class Variation:
    """One shower configuration applied to the same hard events.

    ``description`` and ``settings`` (added to the common ones) are written into every generated file and hashed
    into its cache name: changing them changes the data. ``label``, ``colour`` and ``linestyle`` are only for plots.
    """

    name: str
    description: str
    settings: tuple[str, ...]
    label: str
    colour: str
    linestyle: str = "-"


# TimeShower:renormMultFac multiplies mu_R^2, so 0.5 and 2.0 are the papers' 1/sqrt(2) and sqrt(2) on the FSR
# renormalisation scale. Herwig 7 is not installable here: variation 4 is Pythia's Vincia antenna shower (global, not
# sector) with a different Lund fragmentation function, a stand-in that gives a visible, Herwig-like domain shift
# (more constituents) -- see the data chapter.
VARIATIONS: tuple[Variation, ...] = (
    Variation("nominal", "Pythia 8 simple shower, default tune", (), "nominal (Pythia)", "black"),
    Variation("seed", "nominal settings, new random seed", (), "new seed", "tab:grey", "--"),
    Variation("fsr_down", "FSR renormalisation scale x 1/sqrt(2) (mu_R^2 x 0.5)", ("TimeShower:renormMultFac = 0.5",),
              r"FSR $\mu_R\times1/\sqrt{2}$", "tab:blue"),
    Variation("fsr_up", "FSR renormalisation scale x sqrt(2) (mu_R^2 x 2)", ("TimeShower:renormMultFac = 2.0",),
              r"FSR $\mu_R\times\sqrt{2}$", "tab:red"),
    Variation("alt_shower", "stand-in for Herwig 7: Vincia antenna shower + Lund a=1.5, b=0.6",
              ("PartonShowers:model = 2", "Vincia:sectorShower = off", "StringZ:aLund = 1.5", "StringZ:bLund = 0.6"),
              "alt. shower (Vincia; Herwig stand-in)", "tab:green"),
)
VARIATION_NAMES: tuple[str, ...] = tuple(v.name for v in VARIATIONS)
VARIATION_LABELS: dict[str, str] = {v.name: v.label for v in VARIATIONS}
VARIATION_STYLES: dict[str, tuple[str, str]] = {v.name: (v.colour, v.linestyle) for v in VARIATIONS}


@dataclass(frozen=True)
class JetClass:
    """A class of jets: what initiates it, how it is made, and how the book shows it.

    ``process`` names the Pythia process of :mod:`hepnb.generate.processes` that generates it, or ``None`` for a
    class found only in the public RS3L files. ``target_id`` is the PDG id of the decaying resonance (25 H, 24 W,
    23 Z: the jet must contain it and both its decay quarks), or ``None`` for QCD jets (matched to the hard parton
    that is not the Z). ``description`` is written into generated files.
    """

    name: str
    process: str | None
    target_id: int | None
    description: str
    label: str
    colour: str


# In label order: a JetSample's ``label`` is the index into this table (stored in files: never reorder it).
JET_CLASSES: tuple[JetClass, ...] = (
    JetClass("qcd", "zj_qcd", None, "quark or gluon jet recoiling against Z -> nu nu", "QCD (q/g)", "tab:blue"),
    JetClass("hbb", "hz_bb", 25, "H -> b bbar recoiling against Z -> nu nu", r"H$\to b\bar b$", "tab:red"),
    JetClass("wqq", "wz_qq", 24, "W -> q qbar' recoiling against Z -> nu nu", r"W$\to q\bar q'$", "tab:green"),
    JetClass("zqq", None, 23, "Z -> q qbar (public RS3L files only)", r"Z$\to q\bar q$", "tab:purple"),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in JET_CLASSES)
CLASS_LABELS: dict[str, str] = {c.name: c.label for c in JET_CLASSES}
CLASS_COLOURS: dict[str, str] = {c.name: c.colour for c in JET_CLASSES}
GENERATED_CLASSES: dict[str, JetClass] = {c.name: c for c in JET_CLASSES if c.process is not None}


def jet_class(name: str) -> JetClass:
    """The generated :class:`JetClass` called ``name`` (``qcd``, ``hbb`` or ``wqq``); other names raise ``KeyError``."""
    if name in CLASS_NAMES and name not in GENERATED_CLASSES:
        raise KeyError(f"jet class {name!r} is not generated here, only the public RS3L files hold it; "
                       f"generated classes: {', '.join(GENERATED_CLASSES)}")
    if name not in GENERATED_CLASSES:
        raise KeyError(f"unknown jet class {name!r}; generated classes: {', '.join(GENERATED_CLASSES)}")
    return GENERATED_CLASSES[name]
