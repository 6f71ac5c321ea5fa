"""Kinematics of 4-vectors ``(px, py, pz, E)`` in GeV: the one place for pT, eta, phi, rapidity, mass, ΔR and
azimuth wrapping, on NumPy arrays, torch tensors (differentiable, any device) and, where noted, awkward arrays.

Explained in ``book/data/resimulation.ipynb``. Conventions: pseudorapidity is ``asinh(pz / pT)`` (not rapidity; the
jet clustering of FastJet uses rapidity, :func:`rapidity`); azimuth differences are wrapped to ``(-pi, pi]``;
logarithms, square roots and divisions are guarded with the "double ``where``" pattern, so zero vectors (padding)
give exactly 0 and finite gradients instead of ``nan``. NumPy inputs are computed in float64.

The ``*_ops`` functions take an array namespace from :func:`ops_for` and are the building blocks of the feature code
(:mod:`hepnb.data.features`); the plain functions below them are what everything else calls.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

__all__ = ["ops_for", "is_torch", "safe_sqrt", "safe_log", "pt_eta_phi_ops", "pt", "eta", "phi",
           "pt_eta_phi", "p4_from_pt_eta_phi", "rapidity", "mass", "minkowski_dot", "boost", "random_velocities",
           "wrap_phi", "delta_r"]


class _NumpyOps:
    """The few array operations the features need, for numpy (computed in float64, returned as float32)."""

    name = "numpy"

    def __init__(self, like: np.ndarray):
        self.like = like

    def asarray(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def floats(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    def out(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    sqrt = staticmethod(np.sqrt)
    log = staticmethod(np.log)
    atan2 = staticmethod(np.arctan2)
    asinh = staticmethod(np.arcsinh)
    tanh = staticmethod(np.tanh)
    ceil = staticmethod(np.ceil)
    abs = staticmethod(np.abs)

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, a, b)

    @staticmethod
    def clip_min(x: np.ndarray, low: float) -> np.ndarray:
        return np.maximum(x, low)

    @staticmethod
    def sum(x: np.ndarray, axis: int) -> np.ndarray:
        return x.sum(axis=axis)

    @staticmethod
    def stack(xs: list, axis: int) -> np.ndarray:
        return np.stack(xs, axis=axis)

    @staticmethod
    def concat(xs: list, axis: int) -> np.ndarray:
        return np.concatenate(xs, axis=axis)


class _TorchOps:
    """The same operations for torch: stays on the tensor's device, keeps float64 input as float64 internally."""

    name = "torch"

    def __init__(self, like: Any):
        import torch

        self.torch = torch
        self.device = like.device
        self.dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
        self.sqrt, self.log, self.atan2, self.asinh = torch.sqrt, torch.log, torch.atan2, torch.asinh
        self.tanh, self.ceil, self.abs = torch.tanh, torch.ceil, torch.abs

    def asarray(self, x: Any) -> Any:
        return self.torch.as_tensor(x, device=self.device)

    def floats(self, x: Any) -> Any:
        return self.torch.as_tensor(x, device=self.device).to(self.dtype)

    def out(self, x: Any) -> Any:
        return x.to(self.torch.float32)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        a = a if self.torch.is_tensor(a) else self.torch.tensor(a, dtype=self.dtype, device=self.device)
        b = b if self.torch.is_tensor(b) else self.torch.tensor(b, dtype=self.dtype, device=self.device)
        return self.torch.where(cond, a, b)

    def clip_min(self, x: Any, low: float) -> Any:
        return self.torch.clamp(x, min=low)

    @staticmethod
    def sum(x: Any, axis: int) -> Any:
        return x.sum(dim=axis)

    def stack(self, xs: list, axis: int) -> Any:
        return self.torch.stack(xs, dim=axis)

    def concat(self, xs: list, axis: int) -> Any:
        return self.torch.cat(xs, dim=axis)


def is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")  # never import torch just to find out that x is a numpy array
    return torch is not None and torch.is_tensor(x)


def ops_for(p4: Any) -> _NumpyOps | _TorchOps:
    return _TorchOps(p4) if is_torch(p4) else _NumpyOps(p4)


# ---------------------------------------------------------------------------------------------------------------
# guarded elementary functions (finite values and finite gradients everywhere)


def safe_sqrt(ops: Any, x2: Any) -> Any:
    """sqrt(x2) for x2 > 0, else 0 (no inf gradient at 0)."""
    positive = x2 > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, x2, 1.0)), 0.0)


def safe_log(ops: Any, x: Any) -> Any:
    """log(x) for x > 0, else 0."""
    positive = x > 0
    return ops.where(positive, ops.log(ops.where(positive, x, 1.0)), 0.0)


def pt_eta_phi_ops(ops: Any, p4: Any) -> tuple[Any, Any, Any]:
    """pT, pseudorapidity asinh(pz/pT) and azimuth of ``(..., 4)`` vectors; eta = phi = 0 where pT = 0."""
    px, py, pz = p4[..., 0], p4[..., 1], p4[..., 2]
    pt2 = px * px + py * py
    moving = pt2 > 0
    pt = safe_sqrt(ops, pt2)
    eta = ops.where(moving, ops.asinh(pz / ops.where(moving, pt, 1.0)), 0.0)
    phi = ops.atan2(ops.where(moving, py, 0.0), ops.where(moving, px, 1.0))
    return pt, eta, phi


# ---------------------------------------------------------------------------------------------------------------
# plain functions: numpy arrays or torch tensors with any leading shape (..., 4)


def pt_eta_phi(p4: Any) -> tuple[Any, Any, Any]:
    """``(pT, eta, phi)`` of 4-vectors ``(..., 4)``; eta = phi = 0 where pT = 0 (NumPy: float64)."""
    ops = ops_for(p4)
    return pt_eta_phi_ops(ops, ops.floats(p4))


def pt(p4: Any) -> Any:
    """Transverse momentum [GeV] of 4-vectors ``(..., 4)``."""
    return pt_eta_phi(p4)[0]


def eta(p4: Any) -> Any:
    """Pseudorapidity ``asinh(pz / pT)`` of 4-vectors ``(..., 4)`` (0 where pT = 0)."""
    return pt_eta_phi(p4)[1]


def phi(p4: Any) -> Any:
    """Azimuth in ``(-pi, pi]`` of 4-vectors ``(..., 4)`` (0 where pT = 0)."""
    return pt_eta_phi(p4)[2]


def p4_from_pt_eta_phi(pt: Any, eta: Any, phi: Any, energy: Any) -> np.ndarray:
    """4-vectors ``(..., 4)`` = ``(pT cos phi, pT sin phi, pT sinh eta, E)`` from arrays of equal shape (NumPy,
    float64): the inverse of :func:`pt_eta_phi`, for files that store pT, eta, phi and energy (the RS3L layout)."""
    pt, eta, phi = (np.asarray(x, dtype=np.float64) for x in (pt, eta, phi))
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), np.asarray(energy, np.float64)], axis=-1)


def rapidity(p4: Any) -> Any:
    """Rapidity ``y = log((E + pz) / (E - pz)) / 2`` of 4-vectors ``(..., 4)`` (``E - pz`` floored at 1e-12 GeV)."""
    ops = ops_for(p4)
    p4 = ops.floats(p4)
    e, pz = p4[..., 3], p4[..., 2]
    return 0.5 * ops.log((e + pz) / ops.clip_min(e - pz, 1e-12))


def mass(p4: Any) -> Any:
    """Invariant mass [GeV] of 4-vectors ``(..., 4)``; a negative ``m^2`` from rounding gives 0."""
    ops = ops_for(p4)
    p4 = ops.floats(p4)
    m2 = p4[..., 3] ** 2 - (p4[..., 0] ** 2 + p4[..., 1] ** 2 + p4[..., 2] ** 2)
    return safe_sqrt(ops, m2)


def minkowski_dot(a: Any, b: Any) -> Any:
    """The Minkowski product ``E_a E_b - p_a . p_b`` [GeV^2] of 4-vectors ``(..., 4)`` (metric +,-,-,-; broadcasts).

    ``minkowski_dot(p, p)`` is the squared mass. Explained in ``book/symmetry/symmetry.ipynb`` (the inputs of the
    Lorentz-invariant network)."""
    return a[..., 3] * b[..., 3] - (a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2])


def boost(p4: Any, beta: Any) -> Any:
    """4-vectors ``(..., 4)`` seen from a frame moving with velocity ``-beta``: the pure Lorentz boost by the
    velocity ``beta`` ``(..., 3)`` (|beta| < 1; broadcasts against ``p4``'s leading axes), the active convention in
    which a particle at rest acquires velocity ``beta``.

    ``E' = gamma (E + beta . p)``, ``p' = p + [(gamma - 1) (beta . p) / beta^2 + gamma E] beta``. ``beta = 0`` is the
    identity. Masses and Minkowski products are unchanged (``tests/test_kinematics_boost.py``). NumPy (float64)
    and torch. Explained in ``book/symmetry/symmetry.ipynb``.
    """
    ops = ops_for(p4)
    p4, beta = ops.floats(p4), ops.floats(beta)
    b2 = (beta * beta).sum(-1)
    if (b2 >= 1).any():
        raise ValueError("boost needs |beta| < 1")
    gamma = 1.0 / ops.sqrt(1.0 - b2)
    bp = (beta * p4[..., :3]).sum(-1)
    e = p4[..., 3]
    # (gamma - 1) / beta^2 = gamma^2 / (gamma + 1): finite at beta = 0
    coeff = (gamma * gamma / (gamma + 1.0)) * bp + gamma * e
    space = p4[..., :3] + coeff[..., None] * beta
    energy = gamma * (e + bp)
    return ops.concat([space, energy[..., None]], axis=-1)


def random_velocities(n: int, beta2_max: float = 0.95, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``n`` boost velocities ``(n, 3)``: directions uniform on the sphere, ``|beta|^2`` uniform in
    ``[0, beta2_max)`` -- the law of the SEAL authors' code (``|beta| = sqrt(U(0, 0.95))``), used by Glowacki's soft
    Lorentz-symmetry loss. ``rng`` is a NumPy generator or a seed. Explained in ``book/simplicity/simplicity.ipynb``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if not 0 <= beta2_max < 1:
        raise ValueError(f"beta2_max must lie in [0, 1), got {beta2_max!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    direction = rng.normal(size=(int(n), 3))
    norm = np.linalg.norm(direction, axis=-1, keepdims=True)
    direction = direction / np.where(norm > 0, norm, 1.0)
    return direction * np.sqrt(rng.uniform(0.0, beta2_max, size=(int(n), 1)))


def wrap_phi(dphi: Any) -> Any:
    """An azimuth difference mapped into ``(-pi, pi]`` (NumPy, torch or awkward arrays)."""
    ceil = sys.modules["torch"].ceil if is_torch(dphi) else np.ceil
    return dphi - (2 * math.pi) * ceil((dphi - math.pi) / (2 * math.pi))


def delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> Any:
    """``ΔR = sqrt(Δeta^2 + Δphi^2)`` with Δphi wrapped (NumPy, torch or awkward arrays; broadcasts)."""
    deta, dphi = eta1 - eta2, wrap_phi(phi1 - phi2)
    if is_torch(deta):
        return safe_sqrt(ops_for(deta), deta * deta + dphi * dphi)
    return np.hypot(deta, dphi)
