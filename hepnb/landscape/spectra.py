"""Spectra of a loss Hessian from Hessian-vector products: power iteration, Lanczos, Hutchinson's trace and
stochastic Lanczos quadrature; explained in ``book/landscape/sharpness.ipynb``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from hepnb.landscape.spaces import LossSpace, _generator, _orthogonalise
from hepnb.validation import check_int, check_positive


@dataclass
class EigenResult:
    """Top eigenvalues (descending) and unit eigenvectors ``(k, dim)`` of a Hessian, with the HVP count.

    Explained in ``book/landscape/sharpness.ipynb``; :meth:`as_params` gives an eigenvector in the space's shape
    (a ``{name: tensor}`` dict for a :class:`ParameterSpace`) to walk along it.
    """

    eigenvalues: np.ndarray
    eigenvectors: Tensor
    n_hvp: int
    converged: bool

    def as_params(self, space: LossSpace, i: int = 0):
        """Eigenvector ``i`` shaped like the space's variables (see :meth:`ParameterSpace.unflatten`)."""
        if not 0 <= i < len(self.eigenvalues):
            raise ValueError(f"eigenvector index {i} out of range for {len(self.eigenvalues)} eigenvectors")
        if self.eigenvectors.shape[1] != space.dim:
            raise ValueError(f"eigenvectors have dimension {self.eigenvectors.shape[1]}; the space has {space.dim}")
        return space.unflatten(self.eigenvectors[i])


def _random_unit(space: LossSpace, gen: torch.Generator, basis: Sequence[Tensor] | Tensor = ()) -> Tensor:
    v = torch.randn(space.dim, generator=gen, dtype=torch.float64).to(space.device, space.dtype)
    v = _orthogonalise(v, basis)
    return v / v.norm()


def power_iteration(space: LossSpace, k: int = 1, tol: float = 1e-4, max_iter: int = 1000,
                    seed: int = 0) -> EigenResult:
    """The ``k`` eigenvalues of largest magnitude by power iteration with deflation (as PyHessian, one HVP per step).

    Explained in ``book/landscape/sharpness.ipynb``. Each vector is kept orthogonal to those already found; an
    eigenvalue has converged when its Rayleigh quotient changes by less than ``tol`` relative between two steps
    (a slow, near-degenerate pair can stop early: prefer :func:`lanczos` for accuracy). Power iteration finds the
    largest ``|lambda|``; the result is sorted by value, descending.
    """
    check_int("k", k)
    check_int("max_iter", max_iter)
    check_positive("tol", tol)
    if k > space.dim:
        raise ValueError(f"k={k} exceeds the dimension {space.dim}")
    gen = _generator(seed)
    vecs: list[Tensor] = []
    vals: list[float] = []
    n_hvp, all_converged = 0, True
    for _ in range(k):
        v = _random_unit(space, gen, vecs)
        lam, converged = None, False
        for _ in range(max_iter):
            hv = space.hvp(v)
            n_hvp += 1
            lam_new = float(torch.dot(v, hv))
            hv = _orthogonalise(hv, vecs)
            norm = hv.norm()
            if lam is not None and abs(lam_new - lam) <= tol * max(abs(lam_new), 1e-300):
                lam, converged = lam_new, True
                break
            lam = lam_new
            if norm == 0:  # v spans a null direction of the deflated operator
                converged = True
                break
            v = hv / norm
        all_converged &= converged
        vecs.append(v)
        vals.append(float(lam))
    order = np.argsort(vals)[::-1]
    return EigenResult(np.asarray(vals)[order], torch.stack([vecs[i] for i in order]), n_hvp, all_converged)


def _ritz(alphas: Sequence[float], betas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric tridiagonal matrix (alphas, betas)."""
    m = len(alphas)
    t = np.diag(np.asarray(alphas, dtype=float))
    if m > 1:
        off = np.asarray(betas[: m - 1], dtype=float)
        t += np.diag(off, 1) + np.diag(off, -1)
    return np.linalg.eigh(t)


def _pick(theta: np.ndarray, k: int, which: str) -> np.ndarray:
    """Indices of the ``k`` wanted Ritz values, best first."""
    key = theta if which == "LA" else np.abs(theta)
    return np.argsort(key, kind="stable")[::-1][:k]


def _lanczos_steps(space: LossSpace, v0: Tensor, n_steps: int, restart: torch.Generator | None,
                   stop: Callable[[list[float], list[float], float], bool] | None = None
                   ) -> tuple[list[float], list[float], Tensor, int, bool]:
    """Lanczos with full reorthogonalisation: ``(alphas, betas, V (m, dim), n_hvp, stopped_by_stop)``.

    ``stop(alphas, betas, beta_next)`` is asked after every step. On breakdown (an invariant subspace) the run goes
    on from a fresh random vector orthogonal to ``V`` when ``restart`` is given (a zero coupling in ``T``), else ends.
    """
    n_steps = min(n_steps, space.dim)
    # the basis grows as needed (doubling): max_iter x dim up front would be ~1 GB for a 1.26 M-parameter model
    basis = torch.zeros(min(n_steps, 16), space.dim, dtype=space.dtype, device=space.device)
    basis[0] = v0 / v0.norm()
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    tiny = torch.finfo(space.dtype).eps
    for j in range(n_steps):
        w = space.hvp(basis[j])
        alpha = float(torch.dot(w, basis[j]))
        alphas.append(alpha)
        w = _orthogonalise(w, basis[: j + 1])
        beta = float(w.norm())
        scale = max(scale, abs(alpha) + beta)
        broke = beta <= 100 * tiny * max(scale, 1e-300)
        # a breakdown with space left means the start vector missed part of the spectrum (e.g. a repeated
        # eigenvalue): go on from a fresh vector rather than trusting the (exact but incomplete) Ritz values
        if stop is not None and not (broke and restart is not None and j + 1 < n_steps) and stop(alphas, betas, beta):
            return alphas, betas, basis[: j + 1], j + 1, True
        if j + 1 == n_steps:
            break
        if broke:
            if restart is None:
                return alphas, betas, basis[: j + 1], j + 1, False
            w = _random_unit(space, restart, basis[: j + 1])
            beta_used = 0.0
        else:
            beta_used, w = beta, w / beta
        betas.append(beta_used)
        if j + 1 == len(basis):
            grown = torch.zeros(min(n_steps, 2 * len(basis)), space.dim, dtype=space.dtype, device=space.device)
            grown[: len(basis)] = basis
            basis = grown
        basis[j + 1] = w
    return alphas, betas, basis[: len(alphas)], len(alphas), False


def lanczos(space: LossSpace, k: int = 1, tol: float = 1e-4, max_iter: int = 200, seed: int = 0,
            which: str = "LA") -> EigenResult:
    """The top ``k`` eigenpairs by Lanczos with full reorthogonalisation (Ritz values of the tridiagonal ``T``).

    Explained in ``book/landscape/sharpness.ipynb``. ``which="LA"`` wants the largest algebraic eigenvalues,
    ``"LM"`` the largest magnitudes. Stops when every wanted Ritz pair has residual
    ``|beta_m * s_m| < tol * |theta|`` (eigenvalue errors are then of order ``tol**2``), after ``max_iter`` steps or
    on exhausting the space. On a breakdown (the Krylov space of the start vector is invariant, as happens for a
    repeated eigenvalue) Lanczos restarts from a random vector orthogonal to all previous ones, so multiplicities
    are recovered. Keeps all ``m`` Lanczos vectors (memory ``m * dim``). Eigenvalues come back descending,
    eigenvectors as unit rows mapped back from the Krylov basis.
    """
    check_int("k", k)
    check_int("max_iter", max_iter)
    check_positive("tol", tol)
    if which not in ("LA", "LM"):
        raise ValueError(f"which must be 'LA' (largest algebraic) or 'LM' (largest magnitude); got {which!r}")
    if k > space.dim:
        raise ValueError(f"k={k} exceeds the dimension {space.dim}")
    gen = _generator(seed)

    def stop(alphas: list[float], betas: list[float], beta: float) -> bool:
        if len(alphas) < k:
            return False
        theta, s = _ritz(alphas, betas)
        sel = _pick(theta, k, which)
        resid = np.abs(beta * s[-1, sel])
        return bool(np.all(resid <= tol * np.maximum(np.abs(theta[sel]), 1e-300)))

    v0 = _random_unit(space, gen)
    alphas, betas, basis, n_hvp, converged = _lanczos_steps(space, v0, max_iter, gen, stop)
    converged = converged or len(alphas) == space.dim  # the whole space spanned: Ritz pairs are exact
    theta, s = _ritz(alphas, betas)
    sel = _pick(theta, min(k, len(theta)), which)
    vecs = torch.as_tensor(s[:, sel].T, dtype=space.dtype, device=space.device) @ basis
    vecs = vecs / vecs.norm(dim=1, keepdim=True)
    vals = theta[sel]
    order = np.argsort(vals, kind="stable")[::-1]
    return EigenResult(vals[order], vecs[torch.as_tensor(order.copy())], n_hvp, bool(converged and len(sel) == k))


@dataclass
class TraceResult:
    """Hutchinson estimate of the Hessian trace with its standard error and the per-probe samples.

    Explained in ``book/landscape/sharpness.ipynb``.
    """

    trace: float
    stderr: float
    n_probes: int
    samples: np.ndarray = field(repr=False)
    converged: bool = True
    n_hvp: int = 0  # Hessian-vector products in all, deflation included
    deflated: float = 0.0  # the exactly computed part: sum of v^T H v over the deflated eigenvectors


def hutchinson_trace(space: LossSpace, rel_error: float = 0.02, min_probes: int = 10, max_probes: int = 10_000,
                     batch_probes: int = 1, seed: int = 0, deflate: int = 0) -> TraceResult:
    """Trace of the Hessian by Hutchinson's estimator ``z^T H z`` with Rademacher probes ``z``.

    Explained in ``book/landscape/sharpness.ipynb``. Probes are drawn ``batch_probes`` at a time (one batched HVP);
    the estimate stops once at least ``min_probes`` (>= 3; PyHessian could stop after 2) probes give
    ``stderr / |trace| < rel_error`` with ``stderr = std(samples, ddof=1) / sqrt(n)``, or at ``max_probes``
    (``converged`` is then False).

    ``deflate = k > 0`` first finds the ``k`` largest-|λ| eigenvectors ``V`` by Lanczos and splits
    ``Tr H = Σ_i v_iᵀ H v_i + Tr((I - P) H (I - P))`` with ``P = V Vᵀ`` (the cross terms vanish because
    ``(I - P) P = 0``; the split is exact for any orthonormal ``V``). The first part is computed exactly, Hutchinson
    estimates only the second with projected probes ``(I - P) z``. A trained network's spectrum has a few large
    outliers that dominate the variance of ``zᵀ H z``, so removing them can cut the probes needed many-fold
    (the idea of Hutch++, Meyer et al. 2021).
    """
    check_positive("rel_error", rel_error)
    check_int("min_probes", min_probes, minimum=3)
    check_int("max_probes", max_probes, minimum=1)
    check_int("batch_probes", batch_probes)
    if max_probes < min_probes:
        raise ValueError(f"max_probes ({max_probes}) must be >= min_probes ({min_probes})")
    check_int("deflate", deflate, minimum=0)
    if deflate >= space.dim:
        raise ValueError(f"deflate={deflate} must be below the dimension {space.dim}")
    gen = _generator(seed)
    exact_part, n_hvp, basis = 0.0, 0, None
    if deflate:
        eig = lanczos(space, k=deflate, tol=1e-6, seed=seed, which="LM")
        basis = eig.eigenvectors.to(space.device, space.dtype)
        exact_part = float((basis * space.hvp(basis)).sum())  # Σ v_iᵀ H v_i, computed, not taken from Ritz values
        n_hvp += eig.n_hvp + deflate
    samples: list[float] = []
    converged = False
    while len(samples) < max_probes:
        b = min(batch_probes, max_probes - len(samples))
        z = (torch.randint(0, 2, (b, space.dim), generator=gen, dtype=torch.int8) * 2 - 1)
        z = z.to(space.device, space.dtype)
        if basis is not None:
            z = z - (z @ basis.T) @ basis
        hz = space.hvp(z) if b > 1 else space.hvp(z[0]).reshape(1, -1)
        n_hvp += b
        samples.extend((z * hz).sum(1).tolist())
        n = len(samples)
        if n >= min_probes:
            arr = np.asarray(samples)
            se = arr.std(ddof=1) / math.sqrt(n)
            if se < rel_error * abs(exact_part + arr.mean()):
                converged = True
                break
    arr = np.asarray(samples)
    return TraceResult(float(exact_part + arr.mean()), float(arr.std(ddof=1) / math.sqrt(len(arr))), len(arr), arr,
                       converged, n_hvp, exact_part)


def slq_density(space: LossSpace, n_probes: int = 10, n_iter: int = 50, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Spectral density of the Hessian by stochastic Lanczos quadrature: Ritz nodes and weights pooled over probes.

    Explained in ``book/landscape/sharpness.ipynb``. For each Rademacher probe ``z`` Lanczos runs ``n_iter`` steps
    (fewer on exhausting the space); the nodes are the Ritz values and the weights the squared first components of
    the Ritz vectors, divided by ``n_probes`` so all weights sum to 1. Then ``sum(w * nodes**p)`` estimates
    ``tr(H**p) / dim``. Smooth with :func:`density_on_grid` for a plot.
    """
    check_int("n_probes", n_probes)
    check_int("n_iter", n_iter)
    gen = _generator(seed)
    nodes, weights = [], []
    for _ in range(n_probes):
        z = (torch.randint(0, 2, (space.dim,), generator=gen, dtype=torch.int8) * 2 - 1).to(space.device, space.dtype)
        alphas, betas, _, _, _ = _lanczos_steps(space, z, n_iter, restart=None)
        theta, s = _ritz(alphas, betas)
        nodes.append(theta)
        weights.append(s[0] ** 2 / n_probes)
    return np.concatenate(nodes), np.concatenate(weights)


def density_on_grid(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """The SLQ density smoothed by Gaussians of width ``sigma``, evaluated on ``grid`` (integrates to ~1).

    Explained in ``book/landscape/sharpness.ipynb``.
    """
    check_positive("sigma", sigma)
    nodes, weights, grid = (np.asarray(a, dtype=float) for a in (nodes, weights, grid))
    if nodes.shape != weights.shape:
        raise ValueError(f"nodes {nodes.shape} and weights {weights.shape} differ in shape")
    z = (grid[..., None] - nodes) / sigma
    return (weights * np.exp(-0.5 * z**2)).sum(-1) / (sigma * math.sqrt(2 * math.pi))
