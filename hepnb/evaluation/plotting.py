"""Figures used across the book; explained in ``book/getting_started.ipynb``."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from hepnb.generate.catalogue import CLASS_COLOURS, CLASS_LABELS, VARIATION_LABELS, VARIATION_STYLES
from hepnb.physics import kinematics
from hepnb.physics.kinematics import wrap_phi

JET_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown")


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.5, 5.5))
    return ax


def event_display(particles: ak.Record | ak.Array, jets: ak.Array, constituents: ak.Array, R: float = 0.8,
                  max_jets: int = 4, eta_range: float = 5.0, ax: Any = None, title: str | None = None) -> Any:
    """One event in the eta-phi plane: particles as dots with area proportional to pT, coloured by jet.

    ``particles``, ``jets`` and ``constituents`` are one event's entries of the outputs of
    :func:`hepnb.generate.visible_final_state` and :func:`hepnb.physics.jets.cluster`. The ``max_jets`` hardest jets get
    a colour, a cross at their axis and a circle of radius ``R`` (drawn again across the phi = +-pi seam).
    """
    import matplotlib.patches as mpatches

    ax = _axes(ax)
    eta = ak.to_numpy(particles.eta)
    phi = wrap_phi(ak.to_numpy(particles.phi))
    pt = ak.to_numpy(particles.pt)
    owner = np.full(len(pt), -1)
    n_jets = min(max_jets, len(jets))
    for j in range(n_jets):
        owner[ak.to_numpy(constituents[j])] = j
    size = 400.0 * pt / max(pt.max(), 1e-9) + 2.0
    rest = owner < 0
    ax.scatter(eta[rest], phi[rest], s=size[rest], c="0.6", alpha=0.6, lw=0, label="not in a shown jet")
    for j in range(n_jets):
        mine = owner == j
        colour = JET_COLOURS[j % len(JET_COLOURS)]
        jet = jets[j]
        label = f"jet {j + 1}: $p_T$ = {jet.pt:.0f} GeV, $m$ = {jet.mass:.0f} GeV, {mine.sum()} particles"
        ax.scatter(eta[mine], phi[mine], s=size[mine], c=colour, alpha=0.75, lw=0, label=label)
        jeta, jphi = float(jet.eta), float(wrap_phi(jet.phi))
        ax.plot([jeta], [jphi], marker="x", color=colour, ms=10, mew=2)
        for shift in (-2 * np.pi, 0.0, 2 * np.pi):
            ax.add_patch(mpatches.Circle((jeta, jphi + shift), R, fill=False, color=colour, ls="--", lw=1.2))
    ax.set_xlim(-eta_range, eta_range)
    ax.set_ylim(-np.pi, np.pi)
    ax.set_aspect("equal")
    ax.set_xlabel(r"pseudorapidity $\eta$")
    ax.set_ylabel(r"azimuth $\phi$ [rad]")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False,
              markerscale=0.6)
    return ax


def histogram(values: np.ndarray, bins: np.ndarray, ax: Any = None, label: str | None = None,
              density: bool = False, **kwargs: Any) -> Any:
    """A step histogram with Poisson error bars (via mplhep), the way HEP plots are drawn."""
    import mplhep

    ax = _axes(ax)
    counts, edges = np.histogram(np.asarray(values), bins=bins)
    mplhep.histplot(counts, edges, yerr=True, ax=ax, label=label, density=density, histtype="step", **kwargs)
    return ax


def jet_display(particles: ak.Record | ak.Array, jet: ak.Record, members: ak.Array, R: float = 0.8,
                ax: Any = None, colour: str = "tab:red", title: str | None = None) -> Any:
    """One jet's constituents in the (delta eta, delta phi) plane around its axis, dot area proportional to pT.

    ``members`` are the jet's particle indices from :func:`hepnb.physics.jets.cluster`. Charged particles are filled
    dots, neutral ones open circles, so the substructure (two prongs for H -> bb) is visible at a glance.
    """
    import matplotlib.patches as mpatches

    ax = _axes(ax)
    parts = particles[members]
    deta = ak.to_numpy(parts.eta) - float(jet.eta)
    dphi = wrap_phi(ak.to_numpy(parts.phi) - float(jet.phi))
    pt = ak.to_numpy(parts.pt)
    size = 600.0 * pt / max(pt.max(), 1e-9) + 4.0
    charged = ak.to_numpy(parts.charge) != 0
    ax.scatter(deta[charged], dphi[charged], s=size[charged], c=colour, alpha=0.7, lw=0, label="charged")
    ax.scatter(deta[~charged], dphi[~charged], s=size[~charged], facecolors="none", edgecolors=colour, lw=1.2,
               label="neutral")
    ax.add_patch(mpatches.Circle((0.0, 0.0), R, fill=False, color="0.4", ls="--", lw=1.0))
    ax.plot([0], [0], marker="x", color="0.2", ms=9, mew=2)
    ax.set_xlim(-1.1 * R, 1.1 * R)
    ax.set_ylim(-1.1 * R, 1.1 * R)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$\Delta\eta$ to the jet axis")
    ax.set_ylabel(r"$\Delta\phi$ to the jet axis")
    ax.set_title(title or f"$p_T$ = {jet.pt:.0f} GeV, $m$ = {jet.mass:.0f} GeV, {len(parts)} particles")
    ax.legend(loc="lower right", fontsize="small", markerscale=0.5)
    return ax


def variation_display(p4: np.ndarray, mask: np.ndarray, charge: np.ndarray, variations: Any, R: float = 0.8,
                      axes: Any = None, title: str | None = None) -> Any:
    """One hard event's jet in every variation, side by side: constituents in (Δη, Δφ) around the *nominal* jet
    axis, dot area ∝ pT, charged filled and neutral open, each variation's own axis as a cross.

    ``p4`` (V, C, 4), ``mask`` and ``charge`` (V, C) are one row of a :class:`hepnb.data.sample.JetSample`. Explained in
    ``book/data/resimulation.ipynb``.
    """
    import matplotlib.patches as mpatches
    import matplotlib.pyplot as plt

    V = len(variations)
    if axes is None:
        _, axes = plt.subplots(1, V, figsize=(3.3 * V, 3.6), sharex=True, sharey=True)
    p4 = np.asarray(p4, dtype=np.float64)
    jets = (p4 * mask[..., None]).sum(1)

    def eta_phi(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pt, eta, phi = kinematics.pt_eta_phi(x)
        return eta, phi, pt

    ref_eta, ref_phi, _ = eta_phi(jets[0])
    scale = max(eta_phi(p4[v][mask[v]])[2].max() for v in range(V))
    for v, (ax, name) in enumerate(zip(axes, variations)):
        eta, phi, pt = eta_phi(p4[v][mask[v]])
        deta, dphi = eta - ref_eta, wrap_phi(phi - ref_phi)
        size = 500.0 * pt / scale + 3.0
        colour = VARIATION_STYLES.get(name, ("tab:purple", "-"))[0]
        charged = charge[v][mask[v]] != 0
        ax.scatter(deta[charged], dphi[charged], s=size[charged], c=colour, alpha=0.7, lw=0, label="charged")
        ax.scatter(deta[~charged], dphi[~charged], s=size[~charged], facecolors="none", edgecolors=colour,
                   lw=1.0, label="neutral")
        jet_eta, jet_phi, jet_pt = eta_phi(jets[v])
        ax.plot([jet_eta - ref_eta], [wrap_phi(jet_phi - ref_phi)], marker="x", color="0.2", ms=9, mew=2)
        ax.add_patch(mpatches.Circle((0.0, 0.0), R, fill=False, color="0.5", ls="--", lw=1.0))
        mass = float(kinematics.mass(jets[v]))
        ax.set_title(f"{VARIATION_LABELS.get(name, name)}\n{mask[v].sum()} constituents, m = {mass:.0f} GeV",
                     fontsize="small")
        ax.set_xlim(-1.05 * R, 1.05 * R)
        ax.set_ylim(-1.05 * R, 1.05 * R)
        ax.set_aspect("equal")
        ax.set_xlabel(r"$\Delta\eta$")
    axes[0].set_ylabel(r"$\Delta\phi$ to the nominal jet axis")
    axes[0].legend(loc="lower left", fontsize="x-small", markerscale=0.4)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def variation_ratio_plot(values: dict[str, np.ndarray], bins: np.ndarray, xlabel: str, reference: str = "nominal",
                         axes: Any = None, title: str | None = None, ratio_range: tuple[float, float] = (0.5, 1.5)
                         ) -> Any:
    """Normalised step histograms of one observable per variation, with a ratio-to-``reference`` panel below
    (the layout of Harris et al., Fig. 3). NaNs are dropped. Explained in ``book/data/resimulation.ipynb``."""
    import matplotlib.pyplot as plt
    import mplhep

    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(5.5, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    main, ratio = axes
    edges = np.asarray(bins, dtype=float)
    width = np.diff(edges)
    ref = np.asarray(values[reference], float)
    ref_counts, _ = np.histogram(ref[np.isfinite(ref)], bins=edges)
    ref_density = ref_counts / max(ref_counts.sum(), 1) / width
    for name, array in values.items():
        array = np.asarray(array, float)
        counts, _ = np.histogram(array[np.isfinite(array)], bins=edges)
        total = max(counts.sum(), 1)
        density, error = counts / total / width, np.sqrt(counts) / total / width
        colour, style = VARIATION_STYLES.get(name, ("tab:purple", "-"))
        mplhep.histplot(density, edges, yerr=error, ax=main, histtype="step", color=colour, ls=style,
                        label=VARIATION_LABELS.get(name, name))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(ref_density > 0, density / ref_density, np.nan)
        if name != reference:
            mplhep.histplot(r, edges, ax=ratio, histtype="step", color=colour, ls=style)
    ratio.axhline(1.0, color="black", lw=0.8)
    ratio.set_ylim(*ratio_range)
    ratio.set_ylabel(f"ratio to\n{reference}")
    ratio.set_xlabel(xlabel)
    main.set_ylabel("normalised")
    main.legend(fontsize="x-small", frameon=False)
    if title:
        main.set_title(title)
    return axes


def observable_panels(values: Any, key: str, bins: np.ndarray, xlabel: str | None = None, logy: bool = False
                      ) -> Any:
    """One observable for every class side by side: :func:`variation_ratio_plot` of ``values[class][variation][key]``
    per class (columns), titled with the class label. Explained in ``book/data/resimulation.ipynb``."""
    import matplotlib.pyplot as plt

    from hepnb.physics.observables import OBSERVABLES

    classes = list(values)
    fig, axes = plt.subplots(2, len(classes), figsize=(5 * len(classes), 5), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]})
    for column, name in enumerate(classes):
        variation_ratio_plot({v: obs[key] for v, obs in values[name].items()}, bins,
                             xlabel or OBSERVABLES.get(key, key), axes=axes[:, column],
                             title=CLASS_LABELS.get(name, name))
        if logy:
            axes[0, column].set_yscale("log")
    fig.tight_layout()
    return axes


def feature_histograms(features: Any, variations: Any, bins: int = 40) -> Any:
    """Every constituent feature's distribution, real constituents only: one panel per feature, one colour per class
    (:data:`hepnb.generate.catalogue.CLASS_COLOURS`), one line style per variation.

    ``features[class] = (x, mask)`` with ``x`` (N, V, C, F) in :data:`hepnb.data.features.FEATURE_NAMES` order and
    ``variations`` the names of axis 1. Explained in ``book/data/resimulation.ipynb``."""
    import matplotlib.pyplot as plt

    from hepnb.data.features import FEATURE_LABELS, FEATURE_NAMES

    fig, axes = plt.subplots(3, 5, figsize=(19, 10))
    styles = ("-", "--", ":", "-.")
    for k, (ax, feature) in enumerate(zip(axes.flat, FEATURE_NAMES)):
        for name, (x, mask) in features.items():
            for v, variation in enumerate(variations):
                ax.hist(x[:, v][mask[:, v]][:, k], bins=bins, histtype="step", density=True,
                        color=CLASS_COLOURS.get(name), ls=styles[v % len(styles)],
                        label=f"{CLASS_LABELS.get(name, name)}, {VARIATION_LABELS.get(variation, variation)}")
        ax.set_xlabel(FEATURE_LABELS[feature])
        ax.set_yscale("log")
    axes.flat[0].legend(fontsize="x-small")
    fig.tight_layout()
    return axes
