"""Jet substructure observables from constituents; explained in ``book/data/resimulation.ipynb``.

N2 (Moult, Necib, Thaler 2016) comes from FastJet-contrib's ``EnergyCorrelator`` shipped in the ``fastjet`` wheel,
not from a hand-written triplet sum (``tests/test_substructure.py`` checks the two agree).
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepnb.physics.jets import quiet_banner


def n2(p4: np.ndarray, mask: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """N2 = e3^(beta) / (e2^(beta))^2 (generalised energy correlators, pT fractions, rapidity-azimuth distances).

    ``p4`` (N, C, 4) constituent px, py, pz, E [GeV]; ``mask`` (N, C) real constituents. Each jet's constituents
    are reclustered into exactly one Cambridge/Aachen jet (R = 10, so nothing is lost) and N2 evaluated on it.
    Jets with fewer than 3 constituents have no three-prong correlator: they get NaN.
    """
    import fastjet
    import vector

    vector.register_awkward()
    p4 = np.asarray(p4, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if p4.ndim != 3 or p4.shape[-1] != 4 or mask.shape != p4.shape[:2]:
        raise ValueError(f"n2 needs p4 (N, C, 4) and mask (N, C), got {p4.shape} and {mask.shape}")
    counts = mask.sum(axis=1)
    out = np.full(len(p4), np.nan)
    ok = counts >= 3
    if not ok.any():
        return out
    flat = p4[ok][mask[ok]]
    jets = ak.unflatten(ak.zip({k: flat[:, i] for i, k in enumerate(("px", "py", "pz", "E"))},
                               with_name="Momentum4D"), counts[ok])
    with quiet_banner():
        sequence = fastjet.ClusterSequence(jets, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))
        values = sequence.exclusive_jets_energy_correlator(njets=1, func="n2", beta=float(beta))
    out[ok] = ak.to_numpy(values)
    return out
