"""The sharpness page's heavy lifting: the landscape toolkit checked against an exact Hessian, then applied to a
trained jet tagger. Explained in ``book/landscape/sharpness.ipynb``.

* :func:`tagger_data` splits H->bb and QCD jets by hard event into train/validation/test tensors and records the
  data files they came from (the checkpoint key);
* :func:`small_tagger` trains a tagger small enough (a few hundred float64 parameters) for its full Hessian, and
  :func:`exact_hessian` forms that Hessian with ``torch.autograd.functional.hessian`` of the loss as a function of
  the flattened parameters -- independently of :mod:`hepnb.landscape`, so it can check it;
  :func:`exact_check` compares every estimator with it, :func:`convergence` and :func:`running_trace` give the
  curves of the page;
* :func:`trained_tagger` trains the dense tagger of Rothen et al. through
  :func:`hepnb.training.checkpoints.load_or_train`; :func:`sharpness`, :func:`reduced_rows`, :func:`ascent_paths` and
  :func:`eigen_walk` measure it (top eigenvalues and trace; reduced Hessians and gradient-ascent paths of Rothen et
  al.; the loss profile along the top eigenvector and Glowacki's output ratio R(eps)).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from hepnb import landscape
from hepnb.data.datasets import JetDataset, TensorBatches, split_datasets
from hepnb.data.features import EtaPhiRotation
from hepnb.data.sample import JetSample
from hepnb.evaluation.metrics import auc
from hepnb.evaluation.tables import format_pm
from hepnb.models import DenseTagger, mode
from hepnb.training.adversarial import batch_attack_region, leading_constituents
from hepnb.training.checkpoints import load_or_train
from hepnb.training.loop import fit, predict
from hepnb.training.tasks import BinaryTask
from hepnb.validation import check_int

__all__ = [
    "CLASSES", "LOSS", "data_requests", "N_CONSTITUENTS", "SMALL", "TAGGER_LR", "TRAINING_VERSION", "AscentPath",
    "EigenWalk", "ExactCheck",
    "Sharpness", "SmallTagger", "TaggerData", "as_landscape_batch", "ascent_paths", "convergence",
    "eigen_walk", "exact_check", "exact_hessian", "reduced_rows", "running_trace", "sharpness", "small_tagger",
    "tagger_auc", "tagger_data", "trained_tagger"
]

TRAINING_VERSION = 1  # bump when a change here makes this page's checkpoints wrong (other chapters keep theirs)
CLASSES: tuple[str, ...] = ("hbb", "qcd")  # the generated classes the page reads (hepnb.data.cache.load_or_generate)
N_CONSTITUENTS = 40  # the dense tagger's constituents (Rothen et al., Table VII)
TAGGER_LR = 1e-3  # AdamW learning rate of the jet tagger on this page
TASK = BinaryTask()
LOSS = TASK.criterion  # BCE on logits: the loss every Hessian of the page is taken of, the one trained
# the small tagger of the exact check: two constituents, one hidden layer of eight, float64, full-batch AdamW
SMALL: dict[str, Any] = {"n_constituents": 2, "hidden": (8,), "train_jets": 512, "val_jets": 256, "epochs": 300,
                         "lr": 1e-2}

LandscapeBatch = tuple[tuple[Tensor, ...], Tensor]


# ----------------------------------------------------------------------------------------------------------------
# data


@dataclass
class TaggerData:
    """H->bb vs QCD jets of the nominal shower, split by hard event into train/val/test tensors."""

    sets: dict[str, JetDataset]
    batch_size: int
    key: dict[str, Any]  # the data part of every checkpoint key: file names, sizes, split seed

    def batches(self, split: str, shuffle: bool = False, seed: int = 0, batch_size: int | None = None
                ) -> TensorBatches:
        """Minibatches (dicts ``x``, ``jet``, ``mask``, ``y``) of one split; shuffled by ``seed`` only."""
        return TensorBatches(self.sets[split], "nominal", batch_size or self.batch_size, shuffle=shuffle, seed=seed)

    def subset(self, split: str, n: int, seed: int = 0, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
        """``n`` jets of a split drawn at random (seeded; all of them, shuffled, if it holds fewer) as one dict
        batch, floats cast to ``dtype``. Random, not the first rows: a split lists its jets file by file, so its
        first rows can all be of one class."""
        s = self.sets[split]
        rows = torch.from_numpy(np.random.default_rng(seed).permutation(len(s))[: check_int("n", n)])
        batch = {"x": s.x[rows, 0], "jet": s.jet[rows, 0], "mask": s.mask[rows, 0], "y": s.y[rows]}
        return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v) for k, v in batch.items()}

    def sizes(self) -> list[dict[str, Any]]:
        """Rows of jets per split and class, for a table."""
        return [{"split": name, **s.n_per_class, "jets": len(s)} for name, s in self.sets.items()]


def data_requests(cfg: Any) -> list[Any]:
    """The generated files the page reads with its configuration ``cfg``: :data:`CLASSES` at ``cfg.n_events`` (for
    ``make data``, :func:`hepnb.data.generators.plan`)."""
    from hepnb.data.generators import requests

    return requests("resim", CLASSES, cfg.n_events, [cfg.seed], "landscape")


def tagger_data(samples: Sequence[JetSample], seed: int = 0, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                batch_size: int = 128) -> TaggerData:
    """H->bb and QCD jets of ``samples`` (one per class, as :func:`hepnb.data.cache.load_or_generate` gives them)
    split by hard event, balanced per split, :data:`N_CONSTITUENTS` constituents, nominal shower only."""
    sample = JetSample.concatenate(list(samples))
    sets = split_datasets(sample, fractions, seed, variations=("nominal",), classes=("qcd", "hbb"),
                          max_constituents=N_CONSTITUENTS)
    key = {"sources": sorted(Path(s.source).name for s in samples), "rows": [len(s) for s in samples],
           "fractions": list(fractions), "seed": int(seed), "batch_size": int(batch_size),
           "n_constituents": N_CONSTITUENTS}
    return TaggerData(sets, int(batch_size), key)


def as_landscape_batch(batch: dict[str, Tensor]) -> LandscapeBatch:
    """``((x, jet, mask), y)`` of a dict batch: the ``(inputs, targets)`` form of :mod:`hepnb.landscape`."""
    return TASK.inputs(batch), TASK.targets(batch)


# ----------------------------------------------------------------------------------------------------------------
# the exact check


@dataclass
class SmallTagger:
    """The small float64 tagger of the exact check, the batch it was trained on (whose Hessian is formed), its
    training history and whether it was trained now (else loaded from its checkpoint)."""

    model: DenseTagger
    batch: LandscapeBatch
    meta: dict[str, Any]
    trained: bool


def small_tagger(data: TaggerData, seed: int = 0, epochs: int = SMALL["epochs"]) -> SmallTagger:
    """A :class:`DenseTagger` of :data:`SMALL` size in float64, trained with :func:`hepnb.training.loop.fit` for
    ``epochs`` on ``SMALL["train_jets"]`` random training jets as one full batch (AdamW without weight decay, so
    it settles near a minimum of that very loss), validated on ``SMALL["val_jets"]`` random validation jets;
    cached by :func:`load_or_train` (kind ``landscape-small``)."""
    train = data.subset("train", SMALL["train_jets"], seed, torch.float64)
    val = data.subset("val", SMALL["val_jets"], seed, torch.float64)
    key = {"chapter": "landscape", "model": f"DenseTagger({SMALL['n_constituents']}, 15, 2, {SMALL['hidden']})",
           "dtype": "float64", "seed": int(seed), "epochs": check_int("epochs", epochs), "lr": SMALL["lr"],
           "train_jets": len(train["y"]), "val_jets": len(val["y"]),
           "optimiser": "AdamW(weight_decay=0), full batch", "data": data.key}

    def make() -> DenseTagger:
        torch.manual_seed(seed)
        return DenseTagger(n_constituents=SMALL["n_constituents"], hidden=SMALL["hidden"]).double()

    def train_fn(model: nn.Module) -> dict[str, Any]:
        model.load_state_dict(make().state_dict())  # the seed's initial weights
        return fit(model, [train], [val], epochs=epochs, lr=SMALL["lr"], weight_decay=0.0,
                   progress=False).as_dict()

    model = make()
    meta, trained = load_or_train("landscape-small", key, model, train_fn, version=TRAINING_VERSION)
    return SmallTagger(model, as_landscape_batch(train), meta, trained)


def exact_hessian(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], inputs: Sequence[Tensor],
                  targets: Tensor) -> Tensor:
    """The exact ``(P, P)`` Hessian of ``loss_fn(model(*inputs), targets)`` in the model's trainable parameters
    (``named_parameters`` order), in eval mode: :func:`torch.autograd.functional.hessian` of the loss as a function
    of one flat parameter vector, the model called through :func:`torch.func.functional_call`.

    The reference of ``book/landscape/sharpness.ipynb``: it uses nothing of :mod:`hepnb.landscape`, so the
    estimators built on Hessian-vector products (and ``dense_hessian``) are checked against an independent matrix.
    """
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    shapes = [p.shape for p in named.values()]
    sizes = [p.numel() for p in named.values()]
    fixed = {n: b.detach() for n, b in model.named_buffers()}
    flat = torch.cat([p.detach().reshape(-1) for p in named.values()])

    def loss_of(w: Tensor) -> Tensor:
        weights = {n: part.reshape(s) for n, part, s in zip(named, w.split(sizes), shapes)}
        return loss_fn(functional_call(model, {**fixed, **weights}, tuple(inputs)), targets)

    with mode(model, False):
        return torch.autograd.functional.hessian(loss_of, flat, vectorize=True).detach()


@dataclass
class ExactCheck:
    """Every estimator of the page against the exact Hessian of one space."""

    eigenvalues: np.ndarray  # exact, descending
    eigenvectors: np.ndarray  # exact, column i belongs to eigenvalue i
    dense_difference: float  # max |landscape.dense_hessian - exact|
    dense_scale: float  # max |exact|
    power: landscape.EigenResult
    lanczos: landscape.EigenResult
    trace: landscape.TraceResult
    deflated: landscape.TraceResult
    slq: tuple[np.ndarray, np.ndarray]  # nodes and weights
    slq_probes: int
    rel_error: float  # the standard error Hutchinson's runs stopped at, relative to their estimate

    @property
    def exact_trace(self) -> float:
        return float(self.eigenvalues.sum())

    def rows(self) -> list[dict[str, Any]]:
        """Estimate, exact value, relative error and HVPs of every estimator; |cos| to the exact eigenvector."""
        rows = []
        for name, res in (("power iteration + deflation", self.power), ("Lanczos", self.lanczos)):
            for i, value in enumerate(res.eigenvalues):
                rows.append({"method": name, "quantity": f"λ{i + 1}", "estimate": float(value),
                             "exact": float(self.eigenvalues[i]),
                             "relative error": abs(value / self.eigenvalues[i] - 1),
                             "|cos| to exact vector": abs(float(res.eigenvectors[i].cpu().numpy()
                                                                @ self.eigenvectors[:, i])),
                             "HVPs": res.n_hvp})
        k = len(self.lanczos.eigenvalues)
        for name, res in ((f"Hutchinson to {self.rel_error:.0%}", self.trace),
                          (f"Hutchinson to {self.rel_error:.0%}, top {k} deflated", self.deflated)):
            rows.append({"method": name, "quantity": "trace", "estimate": res.trace, "exact": self.exact_trace,
                         "relative error": abs(res.trace / self.exact_trace - 1),
                         "|cos| to exact vector": f"{abs(res.trace - self.exact_trace) / res.stderr:.1f} SE off",
                         "HVPs": res.n_hvp})
        nodes, weights = self.slq
        moment = float((weights * nodes).sum()) * len(self.eigenvalues)  # tr(H) = dim * sum(w * node)
        for quantity, value, exact in (("λ1 (largest node)", float(nodes.max()), float(self.eigenvalues[0])),
                                       ("trace (dim · Σ w θ)", moment, self.exact_trace)):
            rows.append({"method": f"SLQ ({self.slq_probes} probes)", "quantity": quantity, "estimate": value,
                         "exact": exact, "relative error": abs(value / exact - 1), "|cos| to exact vector": "",
                         "HVPs": len(nodes)})
        return rows


def exact_check(space: landscape.ParameterSpace, exact: Tensor, k: int = 3, seed: int = 0, rel_error: float = 0.02,
                slq_probes: int = 8, slq_iter: int = 40) -> ExactCheck:
    """Power iteration, Lanczos (top ``k``), Hutchinson to ``rel_error`` (plain and with the top ``k`` deflated),
    SLQ and ``dense_hessian`` of ``space``, each against ``exact`` (from :func:`exact_hessian`)."""
    values, vectors = np.linalg.eigh(exact.cpu().numpy())
    dense = landscape.dense_hessian(space)
    return ExactCheck(
        eigenvalues=values[::-1].copy(), eigenvectors=vectors[:, ::-1].copy(),
        dense_difference=float((dense - exact).abs().max()), dense_scale=float(exact.abs().max()),
        power=landscape.power_iteration(space, k=k, tol=1e-10, max_iter=5000, seed=seed),
        lanczos=landscape.lanczos(space, k=k, tol=1e-10, seed=seed),
        trace=landscape.hutchinson_trace(space, rel_error=rel_error, batch_probes=16, seed=seed),
        deflated=landscape.hutchinson_trace(space, rel_error=rel_error, batch_probes=16, seed=seed, deflate=k),
        slq=landscape.slq_density(space, n_probes=slq_probes, n_iter=slq_iter, seed=seed), slq_probes=slq_probes,
        rel_error=rel_error)


def convergence(space: landscape.LossSpace, top: float, budgets: Sequence[int], seed: int = 0
                ) -> dict[str, np.ndarray]:
    """Relative error of the top eigenvalue against the exact ``top`` after each number of HVPs in ``budgets``, for
    power iteration and Lanczos (the same seed: the same start vector)."""
    def error(method: Callable[..., landscape.EigenResult], m: int) -> float:
        return abs(method(space, k=1, tol=1e-14, max_iter=int(m), seed=seed).eigenvalues[0] / top - 1)

    return {name: np.array([error(method, m) for m in budgets])
            for name, method in (("power iteration", landscape.power_iteration), ("Lanczos", landscape.lanczos))}


def running_trace(result: landscape.TraceResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(HVPs so far, running trace estimate, its standard error)`` after each probe of a Hutchinson run (the
    deflation's products counted first; the error is NaN after one probe)."""
    samples = np.asarray(result.samples, dtype=float)
    n = np.arange(1, len(samples) + 1)
    running = result.deflated + np.cumsum(samples) / n
    stderr = np.array([samples[:i].std(ddof=1) / np.sqrt(i) if i > 1 else np.nan for i in n])
    return n + result.n_hvp - result.n_probes, running, stderr


# ----------------------------------------------------------------------------------------------------------------
# the jet tagger


def trained_tagger(data: TaggerData, epochs: int, seed: int = 0, lr: float = TAGGER_LR, device: str = "cpu"
                   ) -> tuple[DenseTagger, dict[str, Any], bool]:
    """``(model in eval mode, meta, trained now?)``: the dense tagger of Rothen et al. (Table VI) trained with
    :func:`hepnb.training.loop.fit` (AdamW, weight decay 0.01, the weights of the best validation epoch), cached
    by :func:`load_or_train` (kind ``landscape``). ``meta`` is the training history (losses, AUCs, seconds)."""
    key = {"chapter": "landscape", "model": f"DenseTagger({N_CONSTITUENTS}, 15, 2, (128, 64, 32))",
           "seed": int(seed), "epochs": check_int("epochs", epochs), "lr": float(lr),
           "optimiser": "AdamW(weight_decay=0.01)", "data": data.key}

    def train_fn(model: nn.Module) -> dict[str, Any]:
        torch.manual_seed(seed)
        model.load_state_dict(DenseTagger().state_dict())  # the seed's initial weights
        return fit(model, data.batches("train", shuffle=True, seed=seed), data.batches("val", batch_size=1024),
                   epochs=epochs, lr=lr, device=device, progress=False).as_dict()

    model = DenseTagger()
    meta, trained = load_or_train("landscape", key, model, train_fn, version=TRAINING_VERSION)
    return model.to(device).eval(), meta, trained


def tagger_auc(model: nn.Module, data: TaggerData, split: str = "test", device: str = "cpu") -> float:
    """AUC of ``model`` on one split (the test split by default)."""
    scores, labels = predict(model, data.batches(split, batch_size=1024), device)
    return auc(labels.astype(int), scores)


@dataclass
class Sharpness:
    """Top eigenpairs (Lanczos), the deflated Hutchinson trace and the loss of one space, with seconds."""

    top: landscape.EigenResult
    trace: landscape.TraceResult
    loss: float
    seconds: dict[str, float]
    deflate: int
    rel_error: float

    def rows(self) -> list[dict[str, Any]]:
        """The sharpness table of the page."""
        return [{"quantity": "λ1, λ2, λ3", "value": ", ".join(f"{x:.4g}" for x in self.top.eigenvalues),
                 "HVPs": self.top.n_hvp, "seconds": round(self.seconds["lanczos"], 2)},
                {"quantity": f"Tr H (top {self.deflate} deflated), "
                             + (f"to {self.rel_error:.0%}" if self.trace.converged
                                else f"{self.rel_error:.0%} not reached in {self.trace.n_probes} probes"),
                 "value": format_pm(self.trace.trace, self.trace.stderr, 3, signed=False), "HVPs": self.trace.n_hvp,
                 "seconds": round(self.seconds["trace"], 2)},
                {"quantity": "loss on the batch", "value": f"{self.loss:.4f}", "HVPs": "", "seconds": ""}]


def sharpness(space: landscape.LossSpace, k: int = 3, deflate: int = 20, seed: int = 0, rel_error: float = 0.02,
              max_probes: int = 500) -> Sharpness:
    """Lanczos's top ``k`` eigenpairs (tol 1e-4) and Hutchinson's trace to ``rel_error`` with the top ``deflate``
    deflated, stopped at ``max_probes`` probes if that accuracy is not reached (the table then says so)."""
    start = time.perf_counter()
    top = landscape.lanczos(space, k=k, tol=1e-4, seed=seed)
    middle = time.perf_counter()
    trace = landscape.hutchinson_trace(space, rel_error=rel_error, batch_probes=8, seed=seed, deflate=deflate,
                                       max_probes=max_probes)
    end = time.perf_counter()
    return Sharpness(top, trace, space.loss(), {"lanczos": middle - start, "trace": end - middle}, deflate,
                     rel_error)


def reduced_rows(model: nn.Module, batch: LandscapeBatch, reduced_jets: int) -> list[dict[str, Any]]:
    """Reduced Hessians (Rothen et al., App. A) per class: the last layer's weights on the class's mean loss, and
    each of the first ``reduced_jets`` jets' own loss in its 5 leading constituents' features (mean ± standard
    error over jets). Largest eigenvalue and largest ``|eigenvalue|`` of each."""
    (inputs, targets), rows = batch, []
    for label, name in ((1.0, "H->bb"), (0.0, "QCD")):
        chosen = targets == label
        own = (tuple(t[chosen] for t in inputs), targets[chosen])
        head = landscape.reduced_hessian(landscape.ParameterSpace(model, LOSS, own, params=["head."]))
        rows.append({"jets": name, "space": "weights: last layer (mean loss of the class)",
                     "dimension": head.matrix.shape[0], "largest λ": f"{head.max_eigenvalue:.4g}",
                     "largest |λ|": f"{head.max_abs_eigenvalue:.4g}"})
        few = (tuple(t[:reduced_jets] for t in own[0]), own[1][:reduced_jets])
        per_jet = landscape.reduced_hessians_per_sample(model, LOSS, few, select=leading_constituents(inputs[0]))
        top = np.array([[h.max_eigenvalue, h.max_abs_eigenvalue] for h in per_jet])
        se = top.std(0, ddof=1) / np.sqrt(len(top)) if len(top) > 1 else np.full(2, np.nan)
        rows.append({"jets": name, "space": f"features: first 5 constituents, per jet (mean of {len(per_jet)})",
                     "dimension": per_jet[0].matrix.shape[0],
                     "largest λ": format_pm(top[:, 0].mean(), se[0], 6, False),
                     "largest |λ|": format_pm(top[:, 1].mean(), se[1], 6, False)})
    return rows


@dataclass
class AscentPath:
    """Mean loss increase per gradient-ascent step over batches, its standard error, and what it averaged."""

    mean: np.ndarray
    stderr: np.ndarray
    n_batches: int
    n_jets: int


def ascent_paths(model: nn.Module, data: TaggerData, n_jets: int, steps: int = 15, step_size: float = 0.01,
                 seed: int = 0) -> dict[str, AscentPath]:
    """Gradient-ascent paths (Rothen et al., Sec. IV B) in weight and feature space, averaged over the batches
    (training batch size) of ``n_jets`` random test jets (seeded): ``steps`` normalised steps of ``step_size``.
    Keys ``"weight"`` and ``"feature"``."""
    first = data.subset("test", n_jets, seed)
    size = data.batch_size
    batches = [as_landscape_batch({k: v[i:i + size] for k, v in first.items()})
               for i in range(0, len(first["y"]), size)]
    out = {}
    for kind, select in (("weights", None), ("features", batch_attack_region)):
        mean, std = landscape.ascent_path_over(model, LOSS, batches, kind=kind, steps=steps, step_size=step_size,
                                               select=select)
        out[kind[:-1]] = AscentPath(mean, std / np.sqrt(len(batches)), len(batches), len(first["y"]))
    return out


@dataclass
class EigenWalk:
    """The loss profile along the top eigenvector with its second-order Taylor prediction, and Glowacki's R(eps)."""

    eps_profile: np.ndarray
    profile: np.ndarray
    taylor: np.ndarray  # slope * eps + lambda_1 * eps**2 / 2, slope = g . nu_1
    slope: float
    eps_ratio: np.ndarray
    ratio: np.ndarray


def eigen_walk(model: nn.Module, space: landscape.ParameterSpace, top: landscape.EigenResult, inputs: Sequence[Tensor],
               seed: int = 0, reach: float = 3.0, eps_ratio: np.ndarray | None = None,
               transform: Callable | None = None) -> EigenWalk:
    """Walk along the top eigenvector ``nu_1`` of ``space``.

    The loss profile ``L(theta + eps nu_1) - L(theta)`` for ``|eps| <= reach / sqrt(lambda_1)`` (where the
    quadratic term is of order one) next to its second-order Taylor expansion ``(g . nu_1) eps + lambda_1 eps^2 / 2``
    (``g`` the gradient: zero at an exact minimum, small after early stopping); and Glowacki's eq. 6 ratio
    ``R(eps) = f(x) / f(g x)`` on the jets ``inputs`` (those of the space), ``g`` a rotation of each jet by a random
    angle (seeded) in the (deta, dphi) plane (:class:`hepnb.data.features.EtaPhiRotation`), or ``transform``
    (inputs -> g inputs) where given: the random Lorentz boost of ``book/simplicity/simplicity.ipynb``.
    """
    lam, nu1 = float(top.eigenvalues[0]), top.eigenvectors[0]
    slope = float(space.gradient() @ nu1.to(space.device, space.dtype))
    eps_profile = np.linspace(-reach, reach, 13) / np.sqrt(lam)
    eps_ratio = np.linspace(-0.5, 0.5, 21) if eps_ratio is None else np.asarray(eps_ratio, dtype=float)
    if transform is None:
        angle = torch.rand(len(inputs[0]), generator=torch.Generator().manual_seed(seed), dtype=inputs[0].dtype)
        transform = EtaPhiRotation((angle * 2 * np.pi).to(space.device))
    ratio = landscape.output_ratio(model, tuple(inputs), transform, nu1, eps_ratio, space)
    return EigenWalk(eps_profile, landscape.loss_profile(space, nu1, eps_profile),
                     slope * eps_profile + 0.5 * lam * eps_profile**2, slope, eps_ratio, ratio)
