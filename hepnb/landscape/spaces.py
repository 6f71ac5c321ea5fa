"""Loss landscapes as flat vector spaces and their Hessian-vector products; explained in
``book/landscape/sharpness.ipynb``.

A :class:`LossSpace` sees the loss as a function of one flat vector: all or some of a model's parameters
(:class:`ParameterSpace`) or some entries of one batch's inputs (:class:`InputSpace`). Everything else in
:mod:`hepnb.landscape` needs only its :meth:`~LossSpace.hvp`, :meth:`~LossSpace.loss` and gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from hepnb.models import mode

Batch = tuple[Tensor | tuple[Tensor, ...], Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]

__all__ = ["Batch", "InputSpace", "LossFn", "LossSpace", "ParameterSpace", "eval_mode"]


# ----------------------------------------------------------------------------------------------------------------
# small helpers


def eval_mode(model: nn.Module) -> contextlib.AbstractContextManager:
    """:func:`hepnb.models.mode` in eval mode: every module evaluated, each module's own mode restored on exit.

    Explained in ``book/landscape/sharpness.ipynb`` (BatchNorm must use its running statistics, dropout must be off).
    """
    return mode(model, False)


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


def _checked_model_and_loss(model: nn.Module, loss_fn: LossFn) -> tuple[nn.Module, LossFn]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    if not callable(loss_fn):
        raise ValueError("loss_fn must be callable as loss_fn(output, target) -> scalar")
    return model, loss_fn


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
        self.model, self.loss_fn = _checked_model_and_loss(model, loss_fn)
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
        self.model, self.loss_fn = _checked_model_and_loss(model, loss_fn)
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
