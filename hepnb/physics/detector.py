"""The detector model of Nabat et al.: Gaussian smearing of each muon's transverse momentum; explained in
``book/symmetry/symmetry.ipynb``.

``pT_meas = pT_true + N(0, sigma * pT_true)`` for each muon on its own (the paper's text, Sec. II, sigma = 0.10), with
eta, phi and the muon's mass kept and the energy recomputed from them. It is applied when a study loads the true
muons, from its own seed, so ``sigma`` is a knob and one generated file serves every strength.

The paper's code differs: it draws *one* Gaussian per event, of width ``sigma * pT`` of muon 0, and adds that same
shift to both muons (``shared=True`` reproduces it). The book follows the text.

The same per-particle smearing of every jet constituent, :func:`smear_pt`, is Glowacki's robustness test (eq. 7,
``book/simplicity/simplicity.ipynb``).
"""

from __future__ import annotations

import numpy as np

from hepnb.physics.kinematics import mass, p4_from_pt_eta_phi, pt_eta_phi
from hepnb.validation import check_int

__all__ = ["PT_FLOOR", "smear_muons", "smear_pt"]

PT_FLOOR = 1e-3  # a smeared pT is kept above this fraction of the true pT (reached with probability < 1e-6 at 0.2)


def smear_muons(muons: np.ndarray, sigma: float, seed: int, shared: bool = False) -> np.ndarray:
    """Smeared copies of muon 4-vectors ``(N, M, 4)`` (px, py, pz, E [GeV]).

    Each muon's pT is multiplied by ``1 + N(0, sigma)`` (independent draws, from ``numpy.random.default_rng(seed)``;
    floored at :data:`PT_FLOOR` of the true pT); eta, phi and the mass of every muon are kept. ``sigma = 0`` returns
    an exact copy. ``shared=True``: the paper's code instead, one shift ``N(0, sigma * pT of muon 0)`` per event added
    to every muon's pT.
    """
    muons = np.asarray(muons, dtype=np.float64)
    if muons.ndim != 3 or muons.shape[-1] != 4 or muons.shape[0] == 0:
        raise ValueError(f"muons must be a non-empty (N, M, 4) array of 4-vectors, got shape {muons.shape}")
    if isinstance(sigma, bool) or not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"the smearing width sigma must be a finite number >= 0, got {sigma!r}")
    seed = check_int("seed", seed, minimum=0)
    if sigma == 0:
        return muons.copy()
    rng = np.random.default_rng(seed)
    pt = pt_eta_phi(muons)[0]
    if shared:
        shift = rng.normal(0.0, 1.0, size=(len(muons), 1)) * sigma * pt[:, :1]
        return _with_pt(muons, pt + shift)
    return _with_pt(muons, pt * (1.0 + rng.normal(0.0, sigma, size=pt.shape)))


def smear_pt(p4: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Every particle's pT multiplied by ``1 + sigma * N(0, 1)``, independently (Glowacki, eq. 7), eta, phi and mass
    kept: jet constituents ``(N, C, 4)`` [GeV], whose zero-padded entries stay zero. Floored at :data:`PT_FLOOR` of
    the true pT; ``sigma = 0`` is an exact copy; seeded with ``seed``. Explained in
    ``book/simplicity/simplicity.ipynb``."""
    return smear_muons(p4, sigma, seed)


def _with_pt(p4: np.ndarray, smeared: np.ndarray) -> np.ndarray:
    """``p4`` with its pT replaced by ``smeared`` (floored at :data:`PT_FLOOR` of the old pT), eta, phi, mass kept."""
    pt, eta, phi = pt_eta_phi(p4)
    m = mass(p4)
    smeared = np.maximum(smeared, PT_FLOOR * pt)
    p = smeared * np.cosh(eta)
    return p4_from_pt_eta_phi(smeared, eta, phi, np.sqrt(p * p + m * m))
