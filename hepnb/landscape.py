"""Curvature of the loss landscape: Hessian-vector products, spectra, reduced Hessians, ascent paths and profiles.

Explained in ``book/landscape/sharpness.ipynb``. The loss is seen as a function of a flat vector -- all or some of a
model's parameters (:class:`ParameterSpace`) or some entries of one batch's inputs (:class:`InputSpace`) -- and
everything else here only needs that space's :meth:`~LossSpace.hvp`:

* :func:`power_iteration` and :func:`lanczos` give the top eigenvalues and eigenvectors of the Hessian,
* :func:`hutchinson_trace` its trace (with a standard error), :func:`slq_density` its spectral density,
* :func:`dense_hessian` and :func:`reduced_hessian` the explicit matrix on a small subspace (paper 000, App. A),
* :func:`ascent_path`, :func:`ascent_path_over`, :func:`loss_profile` and :func:`output_ratio` walk through the
  landscape (paper 000 Sec. IV B, paper 002 eq. 6).

Choices that differ from PyHessian (DESIGN 5): the model is always evaluated in eval mode (and its per-module modes
are restored afterwards), gradients are taken with :func:`torch.autograd.grad` so no ``.grad`` is ever left set, the
attention kernel is forced to the math backend so transformers support double backward, and the trace estimate never
stops before ``min_probes`` (>= 3) probes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

Batch = tuple[Tensor | tuple[Tensor, ...], Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]

__all__ = [
    "Batch", "EigenResult", "InputSpace", "LossFn", "LossSpace", "ParameterSpace", "ReducedHessian", "TraceResult",
    "ascent_path", "ascent_path_over", "dense_hessian", "density_on_grid", "hutchinson_trace", "lanczos",
    "eval_mode", "loss_profile", "output_ratio", "power_iteration", "reduced_hessian", "reduced_hessians_per_sample",
    "slq_density",
]


# ----------------------------------------------------------------------------------------------------------------
# small helpers


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module of ``model`` in eval mode and restore each module's own mode on exit.

    Explained in ``book/landscape/sharpness.ipynb`` (BatchNorm must use its running statistics, dropout must be off).
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _is_batch(obj: object) -> bool:
    """Whether ``obj`` is one ``(inputs, targets)`` batch rather than an iterable of batches."""
    if not isinstance(obj, (tuple, list)) or len(obj) != 2 or not isinstance(obj[1], Tensor):
        return False
    x = obj[0]
    return isinstance(x, Tensor) or (isinstance(x, (tuple, list)) and all(isinstance(t, Tensor) for t in x))


def _split_batch(batch: object, device: torch.device) -> tuple[tuple[Tensor, ...], Tensor]:
    """``(inputs as a tuple, targets)`` of one batch, moved to ``device``; ValueError for anything else."""
    if not _is_batch(batch):
        raise ValueError("a batch must be (inputs, targets) with targets a Tensor and inputs a Tensor or a tuple of "
                         f"Tensors; got {type(batch).__name__}")
    x, y = batch  # type: ignore[misc]
    xs = (x,) if isinstance(x, Tensor) else tuple(x)
    return tuple(t.to(device) for t in xs), y.to(device)


def _batch_size(y: Tensor) -> int:
    """Number of samples in a batch, from its targets (a 0-d target counts as one)."""
    return int(y.shape[0]) if y.dim() > 0 else 1


def _scalar_loss(loss_fn: LossFn, out: Tensor, y: Tensor) -> Tensor:
    loss = loss_fn(out, y)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must return a scalar (mean) loss; got "
                         f"{tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__}")
    return loss.reshape(())


def _orthogonalise(v: Tensor, basis: Sequence[Tensor] | Tensor) -> Tensor:
    """``v`` minus its projection on the orthonormal rows of ``basis``, done twice (Gram-Schmidt, reorthogonalised)."""
    if isinstance(basis, Tensor):
        if basis.shape[0] == 0:
            return v
        for _ in range(2):
            v = v - basis.T @ (basis @ v)
        return v
    for _ in range(2):
        for u in basis:
            v = v - torch.dot(u, v) * u
    return v


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _check_tol(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")


# ----------------------------------------------------------------------------------------------------------------
# spaces


class LossSpace:
    """A loss seen as a function of one flat vector, with its value, gradient and Hessian-vector products.

    Explained in ``book/landscape/sharpness.ipynb``. Subclasses (:class:`ParameterSpace`, :class:`InputSpace`) say
    which tensors are the variables; this class evaluates the model in eval mode under the math attention kernel,
    averages over batches (weighted by batch size) and caches the gradient graph of a single batch so that all
    Hessian-vector products reuse one forward and one backward pass (as PyHessian does).
    """

    model: nn.Module
    loss_fn: LossFn
    dim: int
    dtype: torch.dtype
    device: torch.device
    vectorize: bool | None = None

    # --- to be provided by subclasses ---
    def _terms(self, requires_grad: bool) -> Iterator[tuple[list[Tensor], Tensor, int]]:
        """Yield ``(variables, loss_b, n_b)`` for every batch, the loss built from the current variables."""
        raise NotImplementedError

    def _n_terms(self) -> int | None:
        """Number of batches when known (a graph is cached only for exactly one)."""
        raise NotImplementedError

    def _state_key(self) -> tuple:
        """Changes whenever the variables, the model or the data change (invalidates the cached graph)."""
        raise NotImplementedError

    def unflatten(self, v: Tensor):  # pragma: no cover - documented in subclasses
        raise NotImplementedError

    # --- shared machinery ---
    @contextlib.contextmanager
    def _context(self) -> Iterator[None]:
        with eval_mode(self.model), sdpa_kernel(SDPBackend.MATH):
            yield

    def _model_key(self) -> tuple:
        return tuple(t._version for t in self.model.parameters()) + tuple(t._version for t in self.model.buffers())

    def _flat(self, parts: Sequence[Tensor | None], variables: Sequence[Tensor]) -> Tensor:
        return torch.cat([(torch.zeros_like(x) if p is None else p).reshape(-1) for p, x in zip(parts, variables)])

    def _cached_graph(self) -> tuple[list[Tensor], Tensor, list[Tensor | None]] | None:
        """``(variables, loss, grads with create_graph)`` of the single batch, rebuilt when the state changed."""
        if self._n_terms() != 1:
            return None
        key = self._state_key()
        cache = getattr(self, "_cache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
        self._cache = None
        with self._context(), torch.enable_grad():
            ((variables, loss, _),) = list(self._terms(requires_grad=True))
            grads = list(torch.autograd.grad(loss, variables, create_graph=True, allow_unused=True))
        graph = (variables, loss.detach(), grads)
        self._cache = (self._state_key(), graph)
        return graph

    def clear_cache(self) -> None:
        """Drop the cached gradient graph (frees its memory; it is rebuilt on the next Hessian-vector product)."""
        self._cache = None

    def loss(self) -> float:
        """The loss at the current point, averaged over batches weighted by their size."""
        graph = self._cached_graph()
        if graph is not None:
            return float(graph[1])
        total, count = 0.0, 0
        with self._context(), torch.no_grad():
            for _, loss, n in self._terms(requires_grad=False):
                total += float(loss) * n
                count += n
        return total / count

    def loss_and_gradient(self) -> tuple[float, Tensor]:
        """The loss and its flat gradient ``(dim,)`` at the current point (one forward and backward per batch)."""
        graph = self._cached_graph()
        if graph is not None:
            variables, loss, grads = graph
            return float(loss), self._flat([None if g is None else g.detach() for g in grads], variables)
        total, grad, count = 0.0, torch.zeros(self.dim, dtype=self.dtype, device=self.device), 0
        with self._context(), torch.enable_grad():
            for variables, loss, n in self._terms(requires_grad=True):
                g = torch.autograd.grad(loss, variables, allow_unused=True)
                grad += n * self._flat(g, variables)
                total += float(loss.detach()) * n
                count += n
        return total / count, grad / count

    def gradient(self) -> Tensor:
        """The flat gradient ``(dim,)`` of the loss at the current point."""
        return self.loss_and_gradient()[1]

    def _as_matrix(self, v: Tensor) -> tuple[Tensor, bool]:
        if not isinstance(v, Tensor):
            raise ValueError(f"v must be a Tensor; got {type(v).__name__}")
        if v.dim() == 1 and v.shape[0] == self.dim:
            return v.detach().to(self.device, self.dtype).reshape(1, -1), False
        if v.dim() == 2 and v.shape[1] == self.dim and v.shape[0] > 0:
            return v.detach().to(self.device, self.dtype), True
        raise ValueError(f"v must have shape ({self.dim},) or (m, {self.dim}); got {tuple(v.shape)}")

    def _second(self, variables: list[Tensor], grads: list[Tensor | None], vs: Tensor, vectorize: bool) -> Tensor:
        """``H @ v`` for every row of ``vs`` from one gradient graph: one vmapped double backward through the
        autograd engine (``vectorize``) or one double backward per row."""
        m = vs.shape[0]
        sizes = [x.numel() for x in variables]
        parts = [p.reshape(m, *x.shape) for p, x in zip(vs.split(sizes, dim=1), variables)]
        live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        if not live:
            return torch.zeros_like(vs)
        outputs = [grads[i] for i in live]

        def one(j: int) -> Tensor:
            res = torch.autograd.grad(outputs, variables, grad_outputs=[parts[i][j] for i in live],
                                      retain_graph=True, allow_unused=True)
            return self._flat(res, variables)

        if m == 1 or not vectorize:
            return torch.stack([one(j) for j in range(m)])
        try:
            res = torch.autograd.grad(outputs, variables, grad_outputs=[parts[i] for i in live], retain_graph=True,
                                      allow_unused=True, is_grads_batched=True)
        except (RuntimeError, NotImplementedError):  # an op without a batching rule: fall back to a loop
            self.vectorize = False
            return torch.stack([one(j) for j in range(m)])
        return torch.cat([(torch.zeros(m, x.numel(), dtype=vs.dtype, device=vs.device) if r is None
                           else r.reshape(m, -1)) for r, x in zip(res, variables)], dim=1)

    def _hvp_rows(self, vs: Tensor, vectorize: bool) -> Tensor:
        graph = self._cached_graph()
        if graph is not None:
            with self._context(), torch.enable_grad():
                return self._second(graph[0], graph[2], vs, vectorize).detach()
        out, count = torch.zeros_like(vs), 0
        with self._context(), torch.enable_grad():
            for variables, loss, n in self._terms(requires_grad=True):
                grads = list(torch.autograd.grad(loss, variables, create_graph=True, allow_unused=True))
                out += n * self._second(variables, grads, vs, vectorize).detach()
                count += n
        return out / count

    def _choose_vectorize(self, vs: Tensor) -> None:
        """Time a vmapped and a looped product on a few rows once and keep the faster (vmap wins for small
        networks; on a CPU a large transformer can be faster row by row). Both give the same products."""
        import time

        rows = vs[: min(len(vs), 4)]
        sync = torch.cuda.synchronize if vs.device.type == "cuda" else (lambda: None)
        self._hvp_rows(rows[:1], False)  # builds the cached graph, so neither timing pays for it
        timings = {}
        for vectorize in (True, False):
            sync()
            start = time.perf_counter()
            self._hvp_rows(rows, vectorize)
            sync()
            timings[vectorize] = time.perf_counter() - start
        if self.vectorize is None:  # not switched off by a failed vmap
            self.vectorize = timings[True] <= timings[False]

    def hvp(self, v: Tensor) -> Tensor:
        """Hessian-vector product ``H v`` of the (batch-averaged) loss.

        ``v`` is flat ``(dim,)`` -> ``(dim,)``, or a stack ``(m, dim)`` -> ``(m, dim)`` computed from one gradient
        graph per batch, either by one vmapped double backward or row by row (:attr:`vectorize`: True, False, or
        None to time both on the first stacked call and keep the faster). The model's mode and ``.grad`` are
        untouched.
        """
        vs, batched = self._as_matrix(v)
        if len(vs) > 1 and self.vectorize is None:
            self._choose_vectorize(vs)
        out = self._hvp_rows(vs, bool(self.vectorize))
        return out if batched else out[0]


class ParameterSpace(LossSpace):
    """The loss as a function of (a subset of) the model's parameters, on one batch or averaged over batches
    (weighted by batch size).

    Explained in ``book/landscape/sharpness.ipynb``. ``data`` is one ``(inputs, targets)`` batch or an iterable of
    them (a DataLoader is re-iterated on every call; a one-shot iterator is stored as a list). ``inputs`` may be a
    tuple, passed as ``model(*inputs)``. ``params`` are parameter names or name prefixes (``"head."``, ``"net.6"``
    matches ``net.6.weight`` and ``net.6.bias``); ``None`` takes every parameter with ``requires_grad``. For a single
    batch the gradient graph is built once and reused by every Hessian-vector product until a parameter, buffer or
    input changes (it is then rebuilt). ``vectorize`` chooses how stacked products are computed (see :meth:`hvp`).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Batch | Iterable[Batch],
                 params: Sequence[str] | None = None, device: torch.device | str | None = None,
                 vectorize: bool | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable as loss_fn(output, target) -> scalar")
        self.model, self.loss_fn = model, loss_fn
        named = dict(model.named_parameters())
        if not named:
            raise ValueError("the model has no parameters")
        self.names = self._select(named, params)
        self.params = [named[n] for n in self.names]
        self.shapes = [p.shape for p in self.params]
        self.dim = sum(p.numel() for p in self.params)
        self.dtype = self.params[0].dtype
        if any(p.dtype != self.dtype for p in self.params):
            raise ValueError("all selected parameters must share one dtype")
        self.device = torch.device(device) if device is not None else self.params[0].device
        if _is_batch(data):
            self._batches: Iterable = [data]
            self._single = True
        else:
            if not isinstance(data, Iterable):
                raise ValueError("data must be one (inputs, targets) batch or an iterable of batches")
            self._batches = list(data) if iter(data) is data else data  # type: ignore[arg-type]
            self._single = isinstance(self._batches, (list, tuple)) and len(self._batches) == 1
            if isinstance(self._batches, (list, tuple)):
                if not self._batches:
                    raise ValueError("data holds no batch")
                bad = [i for i, b in enumerate(self._batches) if not _is_batch(b)]
                if bad:
                    raise ValueError(f"data[{bad[0]}] is not a batch: every batch must be (inputs, targets) with "
                                     "targets a Tensor and inputs a Tensor or a tuple of Tensors")
        self._moved: tuple[tuple[Tensor, ...], Tensor] | None = None
        self._cache = None
        self.vectorize = vectorize

    @staticmethod
    def _select(named: Mapping[str, Tensor], params: Sequence[str] | None) -> list[str]:
        if params is None:
            names = [n for n, p in named.items() if p.requires_grad]
            if not names:
                raise ValueError("no parameter of the model requires grad")
            return names
        if isinstance(params, str):
            params = [params]
        chosen: list[str] = []
        for spec in params:
            prefix = spec if spec.endswith(".") else spec + "."
            hits = [n for n in named if n == spec or n.startswith(prefix)]
            if not hits:
                raise ValueError(f"no parameter matches {spec!r}; available: {', '.join(named)}")
            for n in hits:
                if not named[n].requires_grad:
                    raise ValueError(f"parameter {n!r} has requires_grad=False")
                if n not in chosen:
                    chosen.append(n)
        return [n for n in named if n in chosen]  # model order

    def _iter_batches(self) -> Iterator[tuple[tuple[Tensor, ...], Tensor]]:
        if self._single:
            if self._moved is None:
                self._moved = _split_batch(self._batches[0], self.device)  # type: ignore[index]
            yield self._moved
            return
        for b in self._batches:
            yield _split_batch(b, self.device)

    def _n_terms(self) -> int | None:
        return 1 if self._single else None

    def _state_key(self) -> tuple:
        xs, y = next(self._iter_batches())
        return self._model_key() + tuple(t._version for t in xs) + (y._version,)

    def _terms(self, requires_grad: bool) -> Iterator[tuple[list[Tensor], Tensor, int]]:
        for xs, y in self._iter_batches():
            yield self.params, _scalar_loss(self.loss_fn, self.model(*xs), y), _batch_size(y)

    def unflatten(self, v: Tensor) -> dict[str, Tensor]:
        """Parameter-shaped copies ``{name: tensor}`` of a flat vector ``(dim,)``."""
        if not isinstance(v, Tensor) or v.shape != (self.dim,):
            raise ValueError(f"v must be a flat Tensor of shape ({self.dim},); got "
                             f"{tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__}")
        parts = v.detach().split([p.numel() for p in self.params])
        return {n: part.reshape(s).clone() for n, part, s in zip(self.names, parts, self.shapes)}

    def flatten(self, v: Mapping[str, Tensor] | Sequence[Tensor] | Tensor) -> Tensor:
        """A flat ``(dim,)`` vector from parameter-shaped tensors (a dict by name or a list in :attr:`names` order)."""
        if isinstance(v, Tensor):
            if v.shape != (self.dim,):
                raise ValueError(f"a flat direction must have shape ({self.dim},); got {tuple(v.shape)}")
            return v.detach().to(self.device, self.dtype)
        if isinstance(v, Mapping):
            missing = [n for n in self.names if n not in v]
            if missing:
                raise ValueError(f"direction lacks parameters {missing}")
            parts = [v[n] for n in self.names]
        else:
            parts = list(v)
            if len(parts) != len(self.names):
                raise ValueError(f"direction has {len(parts)} tensors; the space has {len(self.names)}")
        for n, part, s in zip(self.names, parts, self.shapes):
            if tuple(part.shape) != tuple(s):
                raise ValueError(f"direction for {n!r} has shape {tuple(part.shape)}; expected {tuple(s)}")
        return torch.cat([p.detach().reshape(-1).to(self.device, self.dtype) for p in parts])

    @contextlib.contextmanager
    def perturbed(self, v: Tensor | Mapping[str, Tensor], eps: float) -> Iterator[None]:
        """Temporarily set the selected parameters to ``theta + eps * v``; they are restored bit-exactly on exit."""
        flat = self.flatten(v)
        saved = [p.detach().clone() for p in self.params]
        try:
            with torch.no_grad():
                for p, part in zip(self.params, flat.split([p.numel() for p in self.params])):
                    p.add_(part.reshape(p.shape), alpha=float(eps))
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved):
                    p.copy_(s)


class InputSpace(LossSpace):
    """The loss as a function of the inputs of one batch ``(x, y)``, optionally only of the entries selected by a
    boolean mask broadcastable to ``x`` (e.g. the first 5 constituents, or chosen features).

    Explained in ``book/landscape/sharpness.ipynb``. ``input_index`` says which of a tuple of inputs is
    differentiated (the others are passed unchanged). The flat vector holds the selected entries in row-major order;
    :meth:`unflatten` puts one back into the shape of ``x`` (zeros outside the selection). The loss is the batch mean,
    so the Hessian of independent samples is block diagonal with blocks ``1/N`` of each sample's own Hessian.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, batch: Batch, select: Tensor | None = None,
                 input_index: int = 0, vectorize: bool | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable as loss_fn(output, target) -> scalar")
        self.model, self.loss_fn = model, loss_fn
        params = list(model.parameters())
        self.device = params[0].device if params else torch.device("cpu")
        xs, self.y = _split_batch(batch, self.device)
        if not isinstance(input_index, int) or not -len(xs) <= input_index < len(xs):
            raise ValueError(f"input_index {input_index!r} out of range for {len(xs)} input tensor(s)")
        self.input_index = input_index % len(xs)
        self.inputs = xs
        x = xs[self.input_index].detach()
        if not x.is_floating_point():
            raise ValueError(f"the differentiated input must be floating point; got {x.dtype}")
        self.dtype = x.dtype
        self.x0 = x.clone()
        if select is None:
            self.mask = None
            self._index = None
            self.dim = x.numel()
        else:
            if not isinstance(select, Tensor) or select.dtype != torch.bool:
                raise ValueError("select must be a boolean Tensor broadcastable to the input")
            try:
                mask = torch.broadcast_to(select.to(self.device), x.shape)
            except RuntimeError as err:
                raise ValueError(f"select of shape {tuple(select.shape)} does not broadcast to the input "
                                 f"{tuple(x.shape)}") from err
            self.mask = mask.contiguous()
            self._index = self.mask.reshape(-1).nonzero().reshape(-1)
            self.dim = int(self._index.numel())
            if self.dim == 0:
                raise ValueError("select selects no entry of the input")
        self.shape = x.shape
        self._z = x.reshape(-1).clone() if self._index is None else x.reshape(-1)[self._index].clone()
        self._z_version = 0
        self._cache = None
        self.vectorize = vectorize

    @property
    def x(self) -> Tensor:
        """The current (possibly perturbed) differentiated input, shaped like the original."""
        return self._assemble(self._z)

    def _assemble(self, z: Tensor) -> Tensor:
        if self._index is None:
            return z.reshape(self.shape)
        return self.x0.reshape(-1).index_put((self._index,), z).reshape(self.shape)

    def _n_terms(self) -> int | None:
        return 1

    def _state_key(self) -> tuple:
        return self._model_key() + (self._z_version,)

    def _terms(self, requires_grad: bool) -> Iterator[tuple[list[Tensor], Tensor, int]]:
        z = self._z.detach().clone().requires_grad_(requires_grad)
        xs = list(self.inputs)
        xs[self.input_index] = self._assemble(z)
        yield [z], _scalar_loss(self.loss_fn, self.model(*xs), self.y), _batch_size(self.y)

    def unflatten(self, v: Tensor) -> Tensor:
        """A tensor shaped like the input with ``v`` at the selected entries and zeros elsewhere."""
        if not isinstance(v, Tensor) or v.shape != (self.dim,):
            raise ValueError(f"v must be a flat Tensor of shape ({self.dim},); got "
                             f"{tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__}")
        v = v.detach().to(self.device, self.dtype)
        if self._index is None:
            return v.reshape(self.shape).clone()
        return torch.zeros(self.shape, dtype=self.dtype, device=self.device).reshape(-1).index_put(
            (self._index,), v).reshape(self.shape)

    def flatten(self, v: Tensor) -> Tensor:
        """The flat ``(dim,)`` vector of selected entries of an input-shaped tensor (or a flat one, checked)."""
        if not isinstance(v, Tensor):
            raise ValueError(f"direction must be a Tensor; got {type(v).__name__}")
        v = v.detach().to(self.device, self.dtype)
        if v.shape == (self.dim,):
            return v
        if v.shape != self.shape:
            raise ValueError(f"direction must have shape ({self.dim},) or {tuple(self.shape)}; got {tuple(v.shape)}")
        return v.reshape(-1) if self._index is None else v.reshape(-1)[self._index]

    @contextlib.contextmanager
    def perturbed(self, v: Tensor, eps: float) -> Iterator[None]:
        """Temporarily move the selected input entries to ``x + eps * v``; restored exactly on exit."""
        flat = self.flatten(v)
        saved = self._z
        self._z = saved + float(eps) * flat
        self._z_version += 1
        try:
            yield
        finally:
            self._z = saved
            self._z_version += 1


# ----------------------------------------------------------------------------------------------------------------
# spectra


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
    _check_positive_int("k", k)
    _check_positive_int("max_iter", max_iter)
    _check_tol("tol", tol)
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
    _check_positive_int("k", k)
    _check_positive_int("max_iter", max_iter)
    _check_tol("tol", tol)
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
    _check_tol("rel_error", rel_error)
    _check_positive_int("min_probes", min_probes, 3)
    _check_positive_int("max_probes", max_probes, 1)
    _check_positive_int("batch_probes", batch_probes)
    if max_probes < min_probes:
        raise ValueError(f"max_probes ({max_probes}) must be >= min_probes ({min_probes})")
    _check_positive_int("deflate", deflate, 0)
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
    _check_positive_int("n_probes", n_probes)
    _check_positive_int("n_iter", n_iter)
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
    _check_tol("sigma", sigma)
    nodes, weights, grid = (np.asarray(a, dtype=float) for a in (nodes, weights, grid))
    if nodes.shape != weights.shape:
        raise ValueError(f"nodes {nodes.shape} and weights {weights.shape} differ in shape")
    z = (grid[..., None] - nodes) / sigma
    return (weights * np.exp(-0.5 * z**2)).sum(-1) / (sigma * math.sqrt(2 * math.pi))


# ----------------------------------------------------------------------------------------------------------------
# reduced Hessians


def dense_hessian(space: LossSpace, chunk: int = 64) -> Tensor:
    """The explicit ``(dim, dim)`` Hessian from ``dim`` HVPs with basis vectors (``chunk`` per batched call),
    symmetrised. Explained in ``book/landscape/sharpness.ipynb``."""
    _check_positive_int("chunk", chunk)
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
    """A dense Hessian on a small subspace with its spectrum (paper 000, Appendix A).

    Explained in ``book/landscape/sharpness.ipynb``: ``max_eigenvalue`` is the largest lambda (the curvature of the
    steepest upward direction), ``max_abs_eigenvalue`` the largest ``|lambda|`` (what paper 000's code reports; it can
    come from a negative eigenvalue).
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
    selected input entries (paper 000, App. A: the first 5 constituents x 15 features = 75 x 75 per jet).

    Explained in ``book/landscape/sharpness.ipynb``. ``select`` must broadcast to one sample's input, shaped
    ``(1, ...)`` (e.g. ``(1, C, F)``). The model is in eval mode, so samples do not interact through BatchNorm.
    """
    xs, y = _split_batch(batch, next(model.parameters()).device)
    out = []
    for i in range(_batch_size(y)):
        one = (tuple(t[i:i + 1] for t in xs), y[i:i + 1] if y.dim() > 0 else y)
        out.append(reduced_hessian(InputSpace(model, loss_fn, one, select=select, input_index=input_index), max_dim))
    return out


# ----------------------------------------------------------------------------------------------------------------
# walking through the landscape


def ascent_path(space: LossSpace, steps: int = 15, step_size: float = 0.01) -> np.ndarray:
    """Loss increase ``Delta L_i`` along a gradient-ascent path with fixed normalised steps (paper 000 Sec. IV B).

    Explained in ``book/landscape/sharpness.ipynb``. From the current point (the trained minimum), ``steps`` times
    move by ``step_size * g / ||g||`` along the space's normalised gradient and record ``L_i - L_0`` (so
    ``Delta L_0 = 0``). Weights or inputs are moved temporarily and restored exactly. For an
    :class:`InputSpace` the norm is that of the whole batch's selected entries. Returns ``steps + 1`` values.
    """
    _check_positive_int("steps", steps)
    _check_tol("step_size", step_size)
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
    """Paper 002 eq. 6: the batch mean of ``f(x) / f(g x)`` with weights ``theta + eps * v``, for every ``eps``.

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
