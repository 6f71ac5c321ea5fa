"""Named Pythia 8 processes used across the book; explained in ``book/getting_started.ipynb``.

Each entry is a list of Pythia setting strings. Settings common to every process of the book (beam energy, ISR on,
MPI off, K0S/Lambda stable) are in :data:`COMMON_SETTINGS`; ``../shared/DESIGN.md`` section 4 says why ISR stays on
and MPI off for every shower variation.
"""

from __future__ import annotations

COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:eCM = 13000",
    "PartonLevel:ISR = on",
    "PartonLevel:MPI = off",
    "ParticleDecays:limitTau0 = on",  # particles with c*tau0 > 10 mm (K0S, Lambda, ...) are left undecayed
)

PROCESSES: dict[str, tuple[str, ...]] = {
    # Boosted H -> bb recoiling against Z -> nu nu: the signal jets of Rothen et al. and Harris et al.
    "hz_bb": (
        "HiggsSM:ffbar2HZ = on",
        "25:m0 = 125.0",
        "25:onMode = off",
        "25:onIfAny = 5",
        "23:onMode = off",
        "23:onIfAny = 12 14 16",
        "PhaseSpace:pTHatMin = 400",
        "PhaseSpace:pTHatMax = 600",
    ),
    # Z(-> nu nu) + jet: the QCD background jets of Rothen et al. and Harris et al.
    # (quark and gluon jets).
    "zj_qcd": (
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 12 14 16",
        "PhaseSpace:pTHatMin = 400",
        "PhaseSpace:pTHatMax = 600",
    ),
    # W(-> q qbar') recoiling against Z -> nu nu: the out-of-distribution signal jets of
    # Harris et al. (Sec. III B 2).
    "wz_qq": (
        "WeakDoubleBoson:ffbar2ZW = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
        "23:onMode = off",
        "23:onIfAny = 12 14 16",
        "PhaseSpace:pTHatMin = 400",
        "PhaseSpace:pTHatMax = 600",
    ),
    # Drell-Yan dimuons of Nabat et al. from Pythia's 2 -> 1 process q qbar -> gamma*/Z -> mu mu, ISR giving the pair
    # a real pT: the Z alone (signal) and the photon alone (background); ``book/symmetry/symmetry.ipynb``.
    "dy_z_mumu": (
        "WeakSingleBoson:ffbar2gmZ = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 13",
    ),
    "dy_gamma_mumu": (
        "WeakSingleBoson:ffbar2gmZ = on",
        "WeakZ0:gmZmode = 1",
        "23:onMode = off",
        "23:onIfAny = 13",
    ),
}


def process_settings(name: str) -> list[str]:
    """The full settings list (common + process) for a named process; unknown names raise ``KeyError``."""
    if name not in PROCESSES:
        raise KeyError(f"unknown process {name!r}; known: {', '.join(PROCESSES)}")
    return [*COMMON_SETTINGS, *PROCESSES[name]]
