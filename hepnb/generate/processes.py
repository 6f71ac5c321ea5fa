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
    # The five 1 TeV jet classes of the hls4ml jets (Glowacki's SEAL; ``book/simplicity/simplicity.ipynb``,
    # hepnb.generate.highpt). Each is a 2 -> 2 whose two outgoing objects both belong to the class, with pTHat in
    # 950-1150 GeV around the 900-1100 GeV jet window (a jet carries a few % less pT than its parton).
    # Gluon jets: g g -> g g and q qbar -> g g (q g -> q g is left out: it would mix a quark into every event).
    "hl_g": (
        "HardQCD:gg2gg = on",
        "HardQCD:qqbar2gg = on",
        "PhaseSpace:pTHatMin = 950",
        "PhaseSpace:pTHatMax = 1150",
    ),
    # Light-quark jets: q q' -> q q' (all flavours the PDFs hold; the generator keeps only u, d, s jets) and
    # q qbar -> q' qbar' (new flavours u, d, s: HardQCD:nQuarkNew = 3, Pythia's default).
    "hl_q": (
        "HardQCD:qq2qq = on",
        "HardQCD:qqbar2qqbarNew = on",
        "PhaseSpace:pTHatMin = 950",
        "PhaseSpace:pTHatMax = 1150",
    ),
    # W -> q qbar' jets: f fbar -> W+ W-, both W hadronic (quarks d u s c b).
    "hl_w": (
        "WeakDoubleBoson:ffbar2WW = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
        "PhaseSpace:pTHatMin = 950",
        "PhaseSpace:pTHatMax = 1150",
    ),
    # Z -> q qbar jets: f fbar -> Z Z (gmZmode = 2: the Z alone, no gamma*), both Z hadronic (b bbar included).
    "hl_z": (
        "WeakDoubleBoson:ffbar2gmZgmZ = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 1 2 3 4 5",
        "PhaseSpace:pTHatMin = 950",
        "PhaseSpace:pTHatMax = 1150",
    ),
    # Top jets: g g, q qbar -> t tbar, t -> W b only (the CKM-suppressed W d, W s switched off, so every top jet holds
    # a b), W hadronic.
    "hl_t": (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "6:onMode = off",
        "6:onIfMatch = 24 5",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
        "PhaseSpace:pTHatMin = 950",
        "PhaseSpace:pTHatMax = 1150",
    ),
}


def process_settings(name: str) -> list[str]:
    """The full settings list (common + process) for a named process; unknown names raise ``KeyError``."""
    if name not in PROCESSES:
        raise KeyError(f"unknown process {name!r}; known: {', '.join(PROCESSES)}")
    return [*COMMON_SETTINGS, *PROCESSES[name]]
