"""The three dimuon classifiers of Nabat et al. (App. B) and the variants of its App. A and C; explained in
``book/symmetry/symmetry.ipynb``.

Every model maps the two muons' 4-vectors ``p4`` (B, 2, 4) = (px, py, pz, E) in GeV to one logit, and every
non-output ``Linear`` is followed by ``BatchNorm1d`` and a ReLU (App. B). To keep the comparison fair, each has 1,152
hidden neurons in all (``hidden`` lists them; the 16-wide latent layers and the weight network's 2 outputs are not
counted, as the paper counts them):

* :class:`PFN`, the general network: a per-muon map 4 -> 128 -> 128 -> 16, summed over the muons (so it does not
  care which muon is which), then 512 -> 256 -> 128 -> 1;
* :class:`InvariantNet`, the Lorentz-invariant network: the pair's invariants (:func:`invariants`: both squared
  masses and the Minkowski product), then 512 -> 256 -> 256 -> 128 -> 1;
* :class:`HybridNet`: a PFN map (hidden 64 -> 16) and an invariant map (hidden 64 -> 16) mixed by a learned weight
  ``w(pT)`` of the leading muon's pT (an MLP 1 -> 64 -> 64 -> 2 with a softmax), ``latent = w g + (1 - w) s``, then
  512 -> 256 -> 128 -> 1. ``general_hidden=(128, 128)`` is App. A's enlarged hybrid; ``pooling`` selects App. C's
  alternatives.

Inputs are scaled inside the models by fixed constants, never learned from data: 4-vectors and pT are divided by
:data:`GEV_SCALE` (100 GeV: O(1) numbers, and a 4-vector stays a 4-vector), the invariants go through
``sign(x) log(1 + |x|)`` of their value in GeV^2 (as in the paper's code), computed in float64 so that boosting the
muons changes them only at rounding level.

Give the models float64 4-vectors where exact invariance matters: every model casts its inputs to its own weights'
dtype only after the invariants are computed. A muon's ``m^2 = E^2 - |p|^2`` (0.011 GeV^2) cancels catastrophically:
float32 components of a 600 GeV muon carry a rounding error of ~0.04 GeV^2 in it, so from float32 input the two
squared masses are mostly rounding noise, and noise growing with the energy, which no boost leaves unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepnb.physics.kinematics import minkowski_dot, pt

__all__ = ["GEV_SCALE", "POOLINGS", "mlp", "signed_log", "invariants", "leading_pt", "PFN", "InvariantNet", "HybridNet"]

GEV_SCALE = 100.0  # GeV: the fixed unit of the models' 4-vector and pT inputs
POOLINGS: dict[str, str] = {
    "sum": "weighted sum w g + (1 - w) s (the paper's model)",
    "concat_weighted": "concatenation of the weighted latents [w g, (1 - w) s]",
    "concat_weight": "concatenation of the unweighted latents and the learned weight [g, s, w]",
    "concat_pt": "concatenation of the unweighted latents and the leading-muon pT [g, s, pT]",
}


def mlp(sizes: Sequence[int], out: int | None = None) -> nn.Sequential:
    """``Linear -> BatchNorm1d -> ReLU`` for each step of ``sizes`` (input first), then a bare ``Linear(.., out)``
    if ``out`` is given (an output layer: no normalisation, no activation)."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"an MLP needs an input and at least one layer of positive width, got {sizes}")
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    if out is not None:
        layers.append(nn.Linear(sizes[-1], int(out)))
    return nn.Sequential(*layers)


def signed_log(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) log(1 + |x|)``: how the invariants [GeV^2] enter the networks (as in Nabat et al.'s code); odd,
    monotonic, finite at 0, and of order 10 for the largest products at LHC energies."""
    return torch.sign(x) * torch.log1p(x.abs())


def _check(p4: torch.Tensor) -> torch.Tensor:
    if p4.ndim != 3 or p4.shape[1:] != (2, 4):
        raise ValueError(f"expected the two muons' 4-vectors shaped (B, 2, 4), got {tuple(p4.shape)}")
    return p4


def invariants(p4: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``(B, 3)``: ``m1^2``, ``m2^2`` and ``p1 . p2`` [GeV^2] of the muon pair, each as ``sign(x) log(1 + |x|)``.

    Lorentz invariant by construction; computed in float64 and returned in ``dtype`` (default: ``p4``'s). For muons
    of fixed mass only ``p1 . p2 = (m_mumu^2 - m1^2 - m2^2) / 2`` varies: the invariant network sees the pair mass
    and nothing else (exactly only from float64 ``p4``: module docstring)."""
    p = _check(p4).double()
    a, b = p[:, 0], p[:, 1]
    x = torch.stack([minkowski_dot(a, a), minkowski_dot(b, b), minkowski_dot(a, b)], dim=-1)
    return signed_log(x).to(p4.dtype if dtype is None else dtype)


def _dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's weights: what its inputs are cast to once the invariants are computed."""
    return next(module.parameters()).dtype


def leading_pt(p4: torch.Tensor) -> torch.Tensor:
    """``(B,)`` the larger of the two muons' pT [GeV] (whatever their order): what the hybrid's weight sees."""
    return pt(_check(p4)).amax(dim=1)


class _MuonMap(nn.Module):
    """The per-muon map of a PFN, ``Phi``: each muon's scaled 4-vector through ``4 -> hidden... -> latent`` (the
    same weights for both muons; BatchNorm statistics over muons and events alike), summed over the two muons."""

    def __init__(self, hidden: Sequence[int], latent: int):
        super().__init__()
        self.net = mlp([4, *hidden, latent])

    def forward(self, p4: torch.Tensor) -> torch.Tensor:
        b = p4.shape[0]
        return self.net((p4 / GEV_SCALE).to(_dtype(self)).reshape(2 * b, 4)).reshape(b, 2, -1).sum(dim=1)


class PFN(nn.Module):
    """The general network (a Particle Flow Network, Komiske et al.): ``F(sum_i Phi(p_i))``; ``forward(p4)``
    (B, 2, 4) in GeV -> logit (B,)."""

    def __init__(self, hidden: Sequence[int] = (128, 128), latent: int = 16,
                 classifier: Sequence[int] = (512, 256, 128)):
        super().__init__()
        self.phi = _MuonMap(hidden, latent)
        self.classifier = mlp([latent, *classifier], out=1)
        self.hidden = (*hidden, *classifier)

    def forward(self, p4: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.phi(_check(p4))).squeeze(-1)


class InvariantNet(nn.Module):
    """The Lorentz-invariant network: an MLP on :func:`invariants`; ``forward(p4)`` (B, 2, 4) in GeV -> logit (B,).
    Its output is unchanged by any Lorentz transformation of both muons."""

    def __init__(self, hidden: Sequence[int] = (512, 256, 256, 128)):
        super().__init__()
        self.net = mlp([3, *hidden], out=1)
        self.hidden = tuple(hidden)

    def forward(self, p4: torch.Tensor) -> torch.Tensor:
        return self.net(invariants(p4, _dtype(self))).squeeze(-1)


class HybridNet(nn.Module):
    """The hybrid of Nabat et al.: a general (PFN) and an invariant subnet mixed by a learned weight of the leading
    muon's pT; ``forward(p4)`` (B, 2, 4) in GeV -> logit (B,).

    ``general_hidden``: hidden widths of the PFN map (paper: 64; App. A's enlarged hybrid: 128, 128).
    ``pooling``: how the two latents meet the classifier (:data:`POOLINGS`; paper: ``"sum"``).
    :meth:`general_weight` is the learned weight ``w`` on the general subnet (Fig. 5).
    """

    def __init__(self, general_hidden: Sequence[int] = (64,), invariant_hidden: Sequence[int] = (64,),
                 weight_hidden: Sequence[int] = (64, 64), latent: int = 16,
                 classifier: Sequence[int] = (512, 256, 128), pooling: str = "sum"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.general = _MuonMap(general_hidden, latent)
        self.invariant = mlp([3, *invariant_hidden, latent])
        self.weight_net = mlp([1, *weight_hidden], out=2)
        width = {"sum": latent, "concat_weighted": 2 * latent}.get(pooling, 2 * latent + 1)
        self.classifier = mlp([width, *classifier], out=1)
        self.hidden = (*general_hidden, *invariant_hidden, *weight_hidden, *classifier)

    def general_weight(self, lead_pt: torch.Tensor) -> torch.Tensor:
        """``w`` (B,) in [0, 1], the weight on the general subnet, for leading-muon pT values ``lead_pt`` [GeV];
        ``1 - w`` goes to the invariant subnet (the softmax of two outputs)."""
        x = (lead_pt / GEV_SCALE).to(_dtype(self)).reshape(-1, 1)
        return torch.softmax(self.weight_net(x), dim=-1)[:, 0]

    def forward(self, p4: torch.Tensor) -> torch.Tensor:
        p4 = _check(p4)
        g, s = self.general(p4), self.invariant(invariants(p4, _dtype(self)))
        lead = leading_pt(p4).to(_dtype(self))
        w = self.general_weight(lead)[:, None]
        if self.pooling == "sum":
            z = w * g + (1 - w) * s
        elif self.pooling == "concat_weighted":
            z = torch.cat([w * g, (1 - w) * s], dim=1)
        elif self.pooling == "concat_weight":
            z = torch.cat([g, s, w], dim=1)
        else:
            z = torch.cat([g, s, (lead / GEV_SCALE)[:, None]], dim=1)
        return self.classifier(z).squeeze(-1)
