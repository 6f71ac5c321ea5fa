"""Explicit Hessians on small subspaces (Rothen et al., App. A); explained in ``book/landscape/sharpness.ipynb``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from hepnb.landscape.spaces import Batch, InputSpace, LossFn, LossSpace, _batch_size, _split_batch
from hepnb.validation import check_int


def dense_hessian(space: LossSpace, chunk: int = 64) -> Tensor:
    """The explicit ``(dim, dim)`` Hessian from ``dim`` HVPs with basis vectors (``chunk`` per batched call),
    symmetrised. Explained in ``book/landscape/sharpness.ipynb``."""
    check_int("chunk", chunk)
    rows = []
    for start in range(0, space.dim, chunk):
        stop = min(start + chunk, space.dim)
        basis = torch.zeros(stop - start, space.dim, dtype=space.dtype, device=space.device)
        basis[torch.arange(stop - start), torch.arange(start, stop)] = 1
        rows.append(space.hvp(basis))
    h = torch.cat(rows)
    return 0.5 * (h + h.T)


@dataclass
class ReducedHessian:
    """A dense Hessian on a small subspace with its spectrum (Rothen et al., Appendix A).

    Explained in ``book/landscape/sharpness.ipynb``: ``max_eigenvalue`` is the largest lambda (the curvature of the
    steepest upward direction), ``max_abs_eigenvalue`` the largest ``|lambda|`` (what Rothen et al.'s code reports;
    it can come from a negative eigenvalue).
    """

    matrix: Tensor
    eigenvalues: np.ndarray
    max_eigenvalue: float
    max_abs_eigenvalue: float


def reduced_hessian(space: LossSpace, max_dim: int = 5000) -> ReducedHessian:
    """The dense Hessian of a small space (e.g. the last layer, the first 5 constituents' features) and its spectrum.

    Explained in ``book/landscape/sharpness.ipynb``. Refuses spaces larger than ``max_dim``: use :func:`lanczos`.
    """
    if space.dim > max_dim:
        raise ValueError(f"the space has {space.dim} dimensions, more than max_dim={max_dim}: a dense Hessian would "
                         "cost dim HVPs and dim**2 memory; restrict it (params=..., select=...) or use lanczos()")
    h = dense_hessian(space)
    eig = torch.linalg.eigvalsh(h).cpu().numpy().astype(float)
    return ReducedHessian(h, eig, float(eig[-1]), float(np.abs(eig).max()))


def reduced_hessians_per_sample(model: nn.Module, loss_fn: LossFn, batch: Batch, select: Tensor | None = None,
                                input_index: int = 0, max_dim: int = 5000) -> list[ReducedHessian]:
    """One reduced input Hessian per sample of ``batch``: the loss of that sample alone as a function of its
    selected input entries (Rothen et al., App. A: the first 5 constituents x 15 features = 75 x 75 per jet).

    Explained in ``book/landscape/sharpness.ipynb``. ``select`` must broadcast to one sample's input, shaped
    ``(1, ...)`` (e.g. ``(1, C, F)``). The model is in eval mode, so samples do not interact through BatchNorm.
    """
    xs, y = _split_batch(batch, next(model.parameters()).device)
    out = []
    for i in range(_batch_size(y)):
        one = (tuple(t[i:i + 1] for t in xs), y[i:i + 1] if y.dim() > 0 else y)
        out.append(reduced_hessian(InputSpace(model, loss_fn, one, select=select, input_index=input_index), max_dim))
    return out
