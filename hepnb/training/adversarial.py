"""White-box adversarial training of Rothen et al. (Sec. III and App. B): FGSM and PGD attack the
inputs, SAM and SSAM-D the weights.

Explained in ``book/adversarial/adversarial.ipynb``. Each method is a :class:`hepnb.training.loop.Strategy` for
:func:`hepnb.training.loop.fit`; the attacks themselves (:func:`fgsm`, :func:`pgd`) and the weight perturbations
(:func:`sam_perturbation`, :class:`SparseMask`) are plain functions that tests check one by one.

Choices where the paper and its reference code differ (the chapter discusses each):

* Feature attacks move only what a detector could mis-measure: the continuous features (``log pT``, ``log pT/pT_jet``,
  ``log E``, ``log E/E_jet``, ``d eta``, ``d phi``, ``dR``, ``tanh d0``, ``tanh dz``) of *real* constituents, and the
  two jet features. Charge and particle-type flags stay integers, padding stays zero. The ball is L-infinity in the
  features' own units, without random start (as the paper).
* PGD's step is ``alpha = 2.5 eps / N`` (Madry et al.) by default, not Table VIII's 0.01 > eps = 0.007, with which the
  first step already saturates every coordinate and later steps can only flip corners.
* SAM perturbs ``rho g / ||g||_2`` (Foret et al., and the paper's code), not eq. 8's ``rho sign(g)``: with Table
  VIII's rho = 0.7 the sign version would move every one of the 88,001 weights by 0.7.
* SSAM-D: ``sparsity`` is the fraction of weights *not* perturbed; every ``update_every`` epochs the mask drops the
  ``drop_rate`` share of its weights with the smallest ``|grad|`` (eq. B3) and grows as many at random among the
  weights outside the old mask (eq. B4), so its size never changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from hepnb.data.features import FEATURE_NAMES
from hepnb.models import mode
from hepnb.training.loop import Strategy
from hepnb.training.tasks import Batch, Task
from hepnb.validation import check_int, check_positive

__all__ = ["CONTINUOUS_FEATURES", "attack_region", "batch_attack_region", "leading_constituents",
           "supervised_objective", "fgsm", "pgd", "FeatureAttack",
           "sam_perturbation",
           "SAM", "SparseMask", "SSAMD", "METHODS", "MethodSpec", "make_strategy"]

CONTINUOUS_FEATURES: tuple[str, ...] = ("log_pt", "log_pt_rel", "log_e", "log_e_rel", "deta", "dphi", "dr",
                                        "tanh_d0", "tanh_dz")

Inputs = tuple[Tensor, ...]  # (x (B, C, F), jet (B, 2), mask (B, C))
Objective = Callable[[Inputs], Tensor]  # attacked inputs -> scalar loss


def attack_region(inputs: Inputs, features: Sequence[str] = CONTINUOUS_FEATURES,
                  jet_features: bool = True) -> tuple[Tensor, Tensor]:
    """Boolean masks ``(x-shaped, jet-shaped)`` of the entries an attack may change: the named ``features`` of real
    constituents (``mask`` True), and the jet features if ``jet_features``."""
    x, jet, mask = inputs[:3]
    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; known: {FEATURE_NAMES}")
    chosen = torch.zeros(x.shape[-1], dtype=torch.bool, device=x.device)
    chosen[[FEATURE_NAMES.index(f) for f in features]] = True
    region_x = mask.bool()[..., None] & chosen
    region_jet = torch.full_like(jet, bool(jet_features), dtype=torch.bool)
    return region_x, region_jet


def _input_gradient(objective: Objective, inputs: Inputs) -> tuple[Tensor, Tensor]:
    """d objective / d (x, jet), leaving no ``.grad`` on the parameters."""
    x, jet = inputs[0].detach().requires_grad_(True), inputs[1].detach().requires_grad_(True)
    with torch.enable_grad():
        loss = objective((x, jet, *inputs[2:]))
        gx, gjet = torch.autograd.grad(loss, (x, jet))
    return gx, gjet


def batch_attack_region(batch: tuple[Inputs, Tensor]) -> Tensor:
    """The ``x``-shaped mask of :func:`attack_region` for a ``((x, jet, mask), y)`` batch (the form of
    :mod:`hepnb.landscape`): where the feature-space ascent paths of Rothen et al. may move, the same entries the
    attacks move. Explained in ``book/landscape/sharpness.ipynb``."""
    return attack_region(batch[0])[0]


def leading_constituents(x: Tensor, n: int = 5) -> Tensor:
    """A ``(1, C, F)`` mask of every feature of the ``n`` leading constituents of ``x`` (B, C, F): the reduced
    feature-space Hessian of Rothen et al., App. A (5 x 15 = 75 inputs per jet). Explained in
    ``book/landscape/sharpness.ipynb``."""
    select = torch.zeros(1, *x.shape[1:], dtype=torch.bool, device=x.device)
    select[:, :check_int("n", n)] = True
    return select


def supervised_objective(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], y: Tensor) -> Objective:
    """``inputs -> loss_fn(model(*inputs), y)``: the objective of an attack on a plain supervised batch."""
    return lambda inputs: loss_fn(model(*inputs), y)


def fgsm(model: nn.Module, objective: Objective, inputs: Inputs, eps: float,
         region: tuple[Tensor, Tensor] | None = None) -> Inputs:
    """Fast gradient sign method, eq. 7: ``x' = x + eps * sign(grad_x L)`` on the attack ``region``, ``L`` the
    ``objective`` of the inputs (a task's loss, or :func:`supervised_objective`).

    The gradient is taken in eval mode (BatchNorm's running statistics: the attack targets the function that will
    be deployed, and does not touch the statistics); the model's mode is restored.
    """
    check_positive("eps", eps)
    region = attack_region(inputs) if region is None else region
    with mode(model, False):
        gx, gjet = _input_gradient(objective, inputs)
    x = inputs[0] + eps * torch.sign(gx) * region[0]
    jet = inputs[1] + eps * torch.sign(gjet) * region[1]
    return (x.detach(), jet.detach(), *inputs[2:])


def pgd(model: nn.Module, objective: Objective, inputs: Inputs, eps: float, step: float, n_steps: int,
        region: tuple[Tensor, Tensor] | None = None) -> Inputs:
    """Projected gradient ascent on ``objective`` in the L-infinity ball of radius ``eps`` (Rothen et al.,
    Algorithm 1).

    ``n_steps`` signed steps of size ``step`` from the clean input, each followed by the projection
    ``clamp(x' - x, -eps, eps)``; only the attack ``region`` moves. Eval mode for the gradients (as :func:`fgsm`).
    """
    check_positive("eps", eps)
    check_positive("step", step)
    n_steps = check_int("n_steps", n_steps)
    region = attack_region(inputs) if region is None else region
    x0, jet0 = inputs[0].detach(), inputs[1].detach()
    dx, djet = torch.zeros_like(x0), torch.zeros_like(jet0)
    with mode(model, False):
        for _ in range(n_steps):
            gx, gjet = _input_gradient(objective, (x0 + dx, jet0 + djet, *inputs[2:]))
            dx = torch.clamp(dx + step * torch.sign(gx) * region[0], -eps, eps)
            djet = torch.clamp(djet + step * torch.sign(gjet) * region[1], -eps, eps)
    return (x0 + dx, jet0 + djet, *inputs[2:])


@dataclass
class FeatureAttack(Strategy):
    """Adversarial training on attacked inputs (FGSM when ``n_steps == 1`` and ``step == eps``, else PGD): each
    minibatch is replaced by its attacked copy and the weights descend on that loss alone (Algorithm 1)."""

    eps: float
    step_size: float
    n_steps: int
    features: tuple[str, ...] = CONTINUOUS_FEATURES
    jet_features: bool = True
    name: str = "pgd"

    def step(self, model: nn.Module, optimiser: torch.optim.Optimizer, task: Task, batch: Batch) -> float:
        inputs = task.inputs(batch)
        region = attack_region(inputs, self.features, self.jet_features)

        def objective(attacked: Inputs) -> Tensor:
            return task.loss(model, batch, attacked)

        if self.n_steps == 1 and self.step_size == self.eps:
            attacked = fgsm(model, objective, inputs, self.eps, region)
        else:
            attacked = pgd(model, objective, inputs, self.eps, self.step_size, self.n_steps, region)
        optimiser.zero_grad(set_to_none=True)
        loss = task.loss(model, batch, attacked)
        loss.backward()
        optimiser.step()
        return float(loss.detach())


def sam_perturbation(grads: Sequence[Tensor], rho: float, kind: str = "l2") -> list[Tensor]:
    """The weight perturbation of SAM: ``rho g / ||g||_2`` over all tensors together (``kind="l2"``, Foret et al.)
    or eq. 8's ``rho sign(g)`` (``kind="sign"``). A zero gradient gives a zero perturbation."""
    check_positive("rho", rho)
    if kind == "sign":
        return [rho * torch.sign(g) for g in grads]
    if kind != "l2":
        raise ValueError(f"kind must be 'l2' or 'sign'; got {kind!r}")
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    if norm == 0:
        return [torch.zeros_like(g) for g in grads]
    return [(rho / norm).to(g.dtype) * g for g in grads]


@contextlib.contextmanager
def _frozen_batchnorm(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise with the batch's statistics but do not update their running ones (SAM's second
    pass must not count the batch twice)."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.momentum))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


def _sharpness_aware_step(model: nn.Module, optimiser: torch.optim.Optimizer, closure: Callable[[], Tensor],
                          perturb: Any) -> float:
    """One SAM-type update: gradient of ``closure()`` (the batch loss) at w, perturbation e = perturb(params, grads),
    gradient at w + e applied at w."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = closure()
    grads = torch.autograd.grad(loss, params)
    eps = perturb(params, grads)
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.add_(e)
    optimiser.zero_grad(set_to_none=True)
    try:
        with _frozen_batchnorm(model):
            closure().backward()
    finally:
        with torch.no_grad():
            for p, e in zip(params, eps):
                p.sub_(e)
    optimiser.step()
    return float(loss.detach())


@dataclass
class SAM(Strategy):
    """Sharpness-aware minimisation (Algorithm 2): the gradient is taken at ``w + e(w)``, ``e`` from
    :func:`sam_perturbation`, and applied at ``w`` (eq. B2, the second-order term dropped)."""

    rho: float
    kind: str = "l2"
    name: str = "sam"

    def step(self, model: nn.Module, optimiser: torch.optim.Optimizer, task: Task, batch: Batch) -> float:
        return _sharpness_aware_step(model, optimiser, lambda: task.loss(model, batch),
                                     lambda params, grads: sam_perturbation(grads, self.rho, self.kind))


class SparseMask:
    """The binary mask of SSAM-D over a list of parameter shapes: a fixed number of weights are perturbed.

    ``sparsity`` is the fraction of weights left out. :meth:`update` applies eqs. B3-B4: drop the ``n_drop`` masked
    weights with the smallest ``|grad|``, then grow as many at random among the weights that were outside the mask
    before the update. Seeded; the count of masked weights never changes.
    """

    def __init__(self, shapes: Sequence[torch.Size], sparsity: float, seed: int = 0,
                 device: torch.device | str = "cpu"):
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1); got {sparsity}")
        self.shapes = [torch.Size(s) for s in shapes]
        self.sizes = [s.numel() for s in self.shapes]
        self.total = sum(self.sizes)
        self.n_masked = int(round((1.0 - sparsity) * self.total))
        if self.n_masked < 1:
            raise ValueError(f"sparsity {sparsity} leaves no weight of {self.total} to perturb")
        self.generator = torch.Generator().manual_seed(int(seed))
        self.flat = torch.zeros(self.total, dtype=torch.bool)
        self.flat[torch.randperm(self.total, generator=self.generator)[: self.n_masked]] = True
        self.flat = self.flat.to(device)

    def masks(self) -> list[Tensor]:
        """The mask as one boolean tensor per parameter."""
        return [m.reshape(s) for m, s in zip(self.flat.split(self.sizes), self.shapes)]

    def update(self, grads: Sequence[Tensor], drop_rate: float) -> int:
        """Drop and regrow ``round(drop_rate * n_masked)`` weights (eqs. B3-B4); returns that number."""
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"drop_rate must be in [0, 1]; got {drop_rate}")
        outside = torch.nonzero(~self.flat).squeeze(1)
        n = min(int(round(drop_rate * self.n_masked)), len(outside))
        if n == 0:
            return 0
        g = torch.cat([gr.detach().reshape(-1) for gr in grads]).abs()
        inside = torch.nonzero(self.flat).squeeze(1)
        drop = inside[torch.topk(g[inside], n, largest=False).indices]
        grow = outside[torch.randperm(len(outside), generator=self.generator)[:n].to(outside.device)]
        self.flat[drop] = False
        self.flat[grow] = True
        return n


@dataclass
class SSAMD(Strategy):
    """Dynamic sparse SAM (Algorithm 3): SAM's perturbation restricted to a :class:`SparseMask`,
    ``e = rho (g * m) / ||g * m||``, the mask refreshed at the first step of every ``update_every``-th epoch."""

    rho: float
    sparsity: float
    update_every: int
    drop_rate: float
    seed: int = 0
    name: str = "ssamd"
    mask: SparseMask | None = field(default=None, repr=False)
    _refresh: bool = field(default=False, repr=False)
    updates: int = 0

    def start_epoch(self, epoch: int) -> None:
        self._refresh = epoch > 0 and epoch % self.update_every == 0

    def step(self, model: nn.Module, optimiser: torch.optim.Optimizer, task: Task, batch: Batch) -> float:
        def perturb(params: list[Tensor], grads: Sequence[Tensor]) -> list[Tensor]:
            if self.mask is None:
                self.mask = SparseMask([p.shape for p in params], self.sparsity, self.seed, params[0].device)
            if self._refresh:
                self.mask.update(grads, self.drop_rate)
                self.updates += 1
                self._refresh = False
            masked = [g * m for g, m in zip(grads, self.mask.masks())]
            return sam_perturbation(masked, self.rho, "l2")

        return _sharpness_aware_step(model, optimiser, lambda: task.loss(model, batch), perturb)


@dataclass(frozen=True)
class MethodSpec:
    """A training method and its hyperparameters (Rothen et al., Table VIII, with the choices stated above)."""

    name: str
    label: str
    space: str  # "none", "features" or "weights"
    params: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, MethodSpec] = {
    "default": MethodSpec("default", "Default", "none"),
    "fgsm": MethodSpec("fgsm", "FGSM", "features", {"eps": 0.007}),
    "pgd": MethodSpec("pgd", "PGD", "features", {"eps": 0.007, "n_steps": 5, "step_size": 2.5 * 0.007 / 5}),
    "sam": MethodSpec("sam", "SAM", "weights", {"rho": 0.7, "kind": "l2"}),
    "ssamd": MethodSpec("ssamd", "SSAM-D", "weights",
                        {"rho": 0.1, "sparsity": 0.5, "update_every": 5, "drop_rate": 0.5}),
}


def make_strategy(method: str | MethodSpec, seed: int = 0, **overrides: Any) -> Strategy:
    """A fresh :class:`~hepnb.training.loop.Strategy` for a method of :data:`METHODS` (``overrides`` replace its
    hyperparameters, e.g. ``step_size=0.01`` for Table VIII's PGD step)."""
    spec = METHODS[method] if isinstance(method, str) and method in METHODS else method
    if not isinstance(spec, MethodSpec):
        raise ValueError(f"unknown method {method!r}; known: {list(METHODS)}")
    unknown = set(overrides) - set(spec.params)
    if unknown:
        raise ValueError(f"{spec.name} has no hyperparameters {sorted(unknown)}; it has {sorted(spec.params)}")
    p = {**spec.params, **overrides}
    if spec.name == "default":
        return Strategy()
    if spec.name == "fgsm":
        return FeatureAttack(eps=p["eps"], step_size=p["eps"], n_steps=1, name="fgsm")
    if spec.name == "pgd":
        return FeatureAttack(eps=p["eps"], step_size=p["step_size"], n_steps=p["n_steps"], name="pgd")
    if spec.name == "sam":
        return SAM(rho=p["rho"], kind=p["kind"])
    if spec.name == "ssamd":
        return SSAMD(rho=p["rho"], sparsity=p["sparsity"], update_every=p["update_every"],
                     drop_rate=p["drop_rate"], seed=seed)
    raise ValueError(f"no strategy for method {spec.name!r}")
