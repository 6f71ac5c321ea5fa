"""Pairwise Lorentz invariants of jet constituents, and the jet hybrid of the cross-shower benchmark: Nabat et al.'s
idea (a general and a Lorentz-invariant subnet mixed by a learned weight of pT) carried from dimuons to jets.
Explained in ``book/benchmark/benchmark.ipynb``.

**Why pairwise invariants.** By the first fundamental theorem of invariant theory for the Lorentz group, every
Lorentz-invariant function of the constituents' 4-vectors is a function of their Minkowski products
``p_i . p_j`` alone (the basis of LorentzNet and PELICAN). Hadrons and photons are close to massless, so the diagonal
``p_i . p_i = m_i^2`` carries rounding noise rather than physics (:mod:`hepnb.models.dimuon` explains the
cancellation), and the off-diagonal products ``s_ij = 2 p_i . p_j`` (the pair's squared mass for massless
constituents) hold what is left. :class:`PairInvariantNet` is a deep set over the pairs: ``rho(sum_{i<j} phi(s_ij),
m_J^2)``, which is also invariant under relabelling the constituents. It sees no angle, no energy and no pT: exactly
what a boost leaves alone.

**Where the symmetry breaks.** A jet is *not* a Lorentz-invariant object: the anti-kT cone of R = 0.8 in (y, phi),
the leading-pT choice of constituents and the detector's pT-dependent resolution are tied to the lab frame. As the
dimuon chapter's detector breaks its symmetry more at high pT, so :class:`JetHybrid` lets a learned weight
``w(pT_jet)`` decide, per jet, how much to trust the general subnet (the dense tagger of Rothen et al. on all 15
features) over the invariant one: ``z = w g + (1 - w) s``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepnb.models.dense import DenseTagger
from hepnb.models.dimuon import mlp, signed_log
from hepnb.physics.kinematics import minkowski_dot

__all__ = ["PAIR_CONSTITUENTS", "pair_invariants", "PairInvariantNet", "JetHybrid"]

PAIR_CONSTITUENTS = 20  # leading constituents whose pairs the invariant subnet sees: 190 pairs
PAIR_NORM = 100.0  # the pair sum is divided by this fixed number: O(1) inputs for rho whatever the multiplicity


def pair_invariants(p4: torch.Tensor, mask: torch.Tensor, n: int = PAIR_CONSTITUENTS
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, pair_mask)``: ``s`` (B, n(n-1)/2) float64 the products ``2 p_i . p_j`` [GeV^2] of every pair i < j of the
    first ``n`` constituents (p4 (B, C, 4) in GeV, pT-ordered), and which pairs are two real constituents (mask
    (B, C)). Computed in float64: a boost changes them only at rounding level."""
    if p4.ndim != 3 or p4.shape[-1] != 4 or tuple(mask.shape) != tuple(p4.shape[:2]):
        raise ValueError(f"expected p4 (B, C, 4) and mask (B, C), got {tuple(p4.shape)} and {tuple(mask.shape)}")
    n = min(int(n), p4.shape[1])
    if n < 2:
        raise ValueError(f"pairs need at least 2 constituents, got n = {n}")
    p, m = p4[:, :n].double(), mask[:, :n].bool()
    i, j = torch.triu_indices(n, n, 1, device=p4.device)
    return 2.0 * minkowski_dot(p[:, i], p[:, j]), m[:, i] & m[:, j]


class PairInvariantNet(nn.Module):
    """The Lorentz-invariant subnet: ``rho([sum_{i<j} phi(signed_log s_ij) / 100, signed_log m_J^2])``, a latent of
    ``latent`` numbers per jet (``forward(p4, mask)``). ``phi`` is a per-pair MLP without normalisation (padded pairs
    are zeroed after it, so they add nothing); ``m_J^2`` is the squared mass of the same ``n`` constituents (an
    invariant: it is the sum of their ``s_ij`` for massless ones). Invariant under every Lorentz transformation of the
    constituents as long as the same ``n`` constituents are kept."""

    def __init__(self, n: int = PAIR_CONSTITUENTS, hidden: Sequence[int] = (64, 64), latent: int = 32):
        super().__init__()
        self.n = int(n)
        sizes = [1, *[int(h) for h in hidden]]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.phi = nn.Sequential(*layers)
        self.rho = mlp([sizes[-1] + 1, 64, int(latent)])

    def forward(self, p4: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        dtype = next(self.parameters()).dtype
        s, real = pair_invariants(p4, mask, self.n)
        h = self.phi(signed_log(s).to(dtype)[..., None]) * real[..., None].to(dtype)
        total = p4[:, : self.n].double().mul(mask[:, : self.n, None]).sum(1)
        m2 = signed_log(minkowski_dot(total, total)).to(dtype)
        return self.rho(torch.cat([h.sum(1) / PAIR_NORM, m2[:, None]], dim=1))


class JetHybrid(nn.Module):
    """The jet hybrid: ``forward(x, jet, mask, p4) -> logit``. ``g``: the last hidden layer (32) of a
    :class:`~hepnb.models.dense.DenseTagger` on the 15 constituent and 2 jet features (the shared backbone, as
    general subnet); ``s``: a :class:`PairInvariantNet` latent of the same width; ``w = softmax(MLP(log pT_jet))_0``
    (1 -> 64 -> 64 -> 2, as Nabat et al.'s weight network); the head ``Linear(32 -> 1)`` reads ``w g + (1 - w) s``.
    ``jet[:, 0]`` is log pT_jet [GeV] (:data:`hepnb.data.features.JET_FEATURE_NAMES`)."""

    def __init__(self, n_pairs_of: int = PAIR_CONSTITUENTS, hidden: Sequence[int] = (128, 64, 32),
                 weight_hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.general = DenseTagger(hidden=hidden)
        self.general.head = nn.Identity()  # its last hidden layer is the latent g
        self.invariant = PairInvariantNet(n_pairs_of, latent=int(hidden[-1]))
        self.weight_net = mlp([1, *weight_hidden], out=2)
        self.head = nn.Linear(int(hidden[-1]), 1)

    def general_weight(self, log_pt: torch.Tensor) -> torch.Tensor:
        """``w`` (B,) in [0, 1], the weight on the general subnet, for jets of log pT ``log_pt`` [log GeV]."""
        return torch.softmax(self.weight_net(log_pt.reshape(-1, 1)), dim=-1)[:, 0]

    def forward(self, x: torch.Tensor, jet: torch.Tensor, mask: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
        g = self.general.latent(x, jet)
        s = self.invariant(p4, mask)
        w = self.general_weight(jet[:, 0])[:, None]
        return self.head(w * g + (1 - w) * s).squeeze(-1)
