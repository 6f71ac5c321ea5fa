"""Curvature of the loss landscape: Hessian-vector products, spectra, reduced Hessians, ascent paths and profiles.

Explained in ``book/landscape/sharpness.ipynb``. The loss is seen as a function of a flat vector -- all or some of a
model's parameters (:class:`ParameterSpace`) or some entries of one batch's inputs (:class:`InputSpace`) -- and
everything else only needs that space's :meth:`~LossSpace.hvp`:

``spaces``   :class:`ParameterSpace`, :class:`InputSpace` and their Hessian-vector products
``spectra``  :func:`power_iteration`, :func:`lanczos` (top eigenpairs), :func:`hutchinson_trace` (the trace, with a
             standard error), :func:`slq_density` (the spectral density)
``reduced``  :func:`dense_hessian`, :func:`reduced_hessian`: the explicit matrix on a small subspace (Rothen et al.,
             App. A)
``paths``    :func:`ascent_path`, :func:`ascent_path_over`, :func:`loss_profile`, :func:`output_ratio`: walks through
             the landscape (Rothen et al. Sec. IV B, Glowacki eq. 6)

Choices that differ from PyHessian (DESIGN 5): the model is always evaluated in eval mode (and its per-module modes
are restored afterwards), gradients are taken with :func:`torch.autograd.grad` so no ``.grad`` is ever left set, the
attention kernel is forced to the math backend so transformers support double backward, and the trace estimate never
stops before ``min_probes`` (>= 3) probes. Everything is importable from ``hepnb.landscape`` directly.
"""

from hepnb.landscape.paths import ascent_path, ascent_path_over, loss_profile, output_ratio
from hepnb.landscape.reduced import ReducedHessian, dense_hessian, reduced_hessian, reduced_hessians_per_sample
from hepnb.landscape.spaces import Batch, InputSpace, LossFn, LossSpace, ParameterSpace, eval_mode
from hepnb.landscape.spectra import (
                                     EigenResult,
                                     TraceResult,
                                     density_on_grid,
                                     hutchinson_trace,
                                     lanczos,
                                     power_iteration,
                                     slq_density,
)

__all__ = [
    "Batch", "EigenResult", "InputSpace", "LossFn", "LossSpace", "ParameterSpace", "ReducedHessian", "TraceResult",
    "ascent_path", "ascent_path_over", "dense_hessian", "density_on_grid", "eval_mode", "hutchinson_trace",
    "lanczos", "loss_profile", "output_ratio", "power_iteration", "reduced_hessian", "reduced_hessians_per_sample",
    "slq_density",
]
