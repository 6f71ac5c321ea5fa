"""Walking through a loss landscape: gradient-ascent paths (Rothen et al., Sec. IV B), loss profiles along a
direction and the output ratio under a transformation (Glowacki, eq. 6); explained in
``book/landscape/sharpness.ipynb``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from hepnb.landscape.spaces import Batch, InputSpace, LossFn, LossSpace, ParameterSpace
from hepnb.validation import check_int, check_positive


def ascent_path(space: LossSpace, steps: int = 15, step_size: float = 0.01) -> np.ndarray:
    """Loss increase ``Delta L_i`` along a gradient-ascent path with fixed normalised steps (Rothen et al., Sec. IV B).

    Explained in ``book/landscape/sharpness.ipynb``. From the current point (the trained minimum), ``steps`` times
    move by ``step_size * g / ||g||`` along the space's normalised gradient and record ``L_i - L_0`` (so
    ``Delta L_0 = 0``). Weights or inputs are moved temporarily and restored exactly. For an
    :class:`InputSpace` the norm is that of the whole batch's selected entries. Returns ``steps + 1`` values.
    """
    check_int("steps", steps)
    check_positive("step_size", step_size)
    loss0, g = space.loss_and_gradient()
    out = [0.0]
    shift = torch.zeros(space.dim, dtype=space.dtype, device=space.device)
    for _ in range(steps):
        norm = g.norm()
        if norm == 0:  # a stationary point: no ascent direction
            out.append(out[-1])
            continue
        shift = shift + step_size * g / norm
        with space.perturbed(shift, 1.0):
            loss, g = space.loss_and_gradient()
        out.append(loss - loss0)
    return np.asarray(out)


def ascent_path_over(model: nn.Module, loss_fn: LossFn, batches: Iterable[Batch], kind: str = "weights",
                     steps: int = 15, step_size: float = 0.01, params: Sequence[str] | None = None,
                     select: Tensor | Callable[[Batch], Tensor] | None = None, input_index: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over a test set of :func:`ascent_path` curves, one per batch.

    Explained in ``book/landscape/sharpness.ipynb``. ``kind="weights"`` walks the parameters (``params`` as in
    :class:`ParameterSpace`) on each batch's loss; ``kind="features"`` walks each batch's inputs (``select`` as in
    :class:`InputSpace`: a mask that broadcasts to every batch, e.g. shaped ``(1, P, F)``, or a function of the
    batch returning its own mask, e.g. the real constituents of each jet).
    """
    if kind not in ("weights", "features"):
        raise ValueError(f"kind must be 'weights' or 'features'; got {kind!r}")
    if kind == "weights" and select is not None:
        raise ValueError("select applies to kind='features' only")
    if kind == "features" and params is not None:
        raise ValueError("params applies to kind='weights' only")
    curves = []
    for batch in batches:
        if kind == "weights":
            space: LossSpace = ParameterSpace(model, loss_fn, batch, params=params)
        else:
            mask = select(batch) if callable(select) else select
            space = InputSpace(model, loss_fn, batch, select=mask, input_index=input_index)
        curves.append(ascent_path(space, steps, step_size))
    if not curves:
        raise ValueError("batches holds no batch")
    arr = np.stack(curves)
    return arr.mean(0), arr.std(0)


def _unit_direction(space: LossSpace, direction) -> Tensor:
    flat = space.flatten(direction)  # type: ignore[attr-defined]
    norm = flat.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError("direction must be a non-zero, finite vector")
    return flat / norm


def loss_profile(space: LossSpace, direction, eps: np.ndarray) -> np.ndarray:
    """``L(theta + eps * d) - L(theta)`` for every ``eps``, ``d`` the normalised ``direction`` (flat or shaped).

    Explained in ``book/landscape/sharpness.ipynb``: along an eigenvector with eigenvalue lambda at a minimum this is
    ``lambda * eps**2 / 2`` for small ``eps``. The variables are restored exactly afterwards.
    """
    d = _unit_direction(space, direction)
    eps = np.asarray(eps, dtype=float).reshape(-1)
    loss0 = space.loss()
    out = []
    for e in eps:
        with space.perturbed(d, float(e)):
            out.append(space.loss() - loss0)
    return np.asarray(out)


def output_ratio(model: nn.Module, x: Tensor | tuple[Tensor, ...], transform: Callable, direction,
                 eps: np.ndarray, space: ParameterSpace,
                 prob: Callable[[Tensor], Tensor] = torch.sigmoid) -> np.ndarray:
    """Glowacki, eq. 6: the batch mean of ``f(x) / f(g x)`` with weights ``theta + eps * v``, for every ``eps``.

    Explained in ``book/landscape/sharpness.ipynb``. ``f`` is ``prob`` of the model output -- the sigmoid of a single
    logit by default, one value per sample (pass another ``prob`` for other heads). ``transform`` maps the inputs
    ``x`` (a Tensor, or a tuple given to ``model(*x)``) to ``g x``; it is applied once. ``v`` is ``direction``
    (flat or parameter-shaped, e.g. the top eigenvector) normalised to unit length. Model in eval mode; parameters
    restored exactly. A ratio of 1 at every ``eps`` means the perturbed model stays invariant under ``g``.
    """
    if not isinstance(space, ParameterSpace) or space.model is not model:
        raise ValueError("space must be a ParameterSpace of the same model")
    if not callable(transform):
        raise ValueError("transform must be a callable x -> g x")
    d = _unit_direction(space, direction)
    eps = np.asarray(eps, dtype=float).reshape(-1)
    xs = (x,) if isinstance(x, Tensor) else tuple(x)
    xs = tuple(t.to(space.device) for t in xs)
    with torch.no_grad():
        gx = transform(x if isinstance(x, Tensor) else xs)
    gxs = (gx,) if isinstance(gx, Tensor) else tuple(gx)
    gxs = tuple(t.to(space.device) for t in gxs)

    def f(inputs: tuple[Tensor, ...]) -> Tensor:
        p = prob(model(*inputs))
        if p.dim() > 1 and p.shape[-1] == 1:
            p = p.squeeze(-1)
        if p.dim() != 1:
            raise ValueError(f"prob(model(x)) must give one value per sample; got shape {tuple(p.shape)}")
        return p

    out = []
    with space._context(), torch.no_grad():
        for e in eps:
            with space.perturbed(d, float(e)):
                out.append(float((f(xs) / f(gxs)).mean()))
    return np.asarray(out)
