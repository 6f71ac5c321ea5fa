"""Cross-simulator study of Rothen et al.: train the dense tagger on one shower, evaluate on both.

Explained in ``book/adversarial/adversarial.ipynb``; this module holds the chapter's logic and the paper's published
values, so the page only narrates and plots. The pieces, in the page's order:

* data: :func:`load_splits` reads (or generates) H->bb and QCD jets and :func:`simulator_splits` cuts them into
  train/validation/test by *hard event*, so the test jets of the two simulators are the same hard events showered
  twice; :func:`load_replicas` gives every training seed its own data (generated with that seed) and its own
  split, so that the spread over seeds is the spread of the whole experiment;
* training: :func:`trained_model` trains one (method, simulator, seed) through
  :func:`hepnb.training.checkpoints.load_or_train` (versioned by :data:`TRAINING_VERSION`), :func:`train_grid` the
  whole grid of methods x simulators x seeds into a :class:`Grid`, which also holds every :func:`evaluate` result;
* measures: :func:`evaluate` (AUC, rejection, mass sculpting) and :func:`sharpness` (reduced Hessians and
  gradient-ascent paths, with :mod:`hepnb.landscape`), for every model by :func:`measure_sharpness`;
* tables and figures: :func:`cost_rows`, :func:`default_rows` (Table III), :func:`transfer_rows` (Tables IX and V),
  :func:`rejection_curves`, :func:`jsd_bars`, :func:`mean_paths`, :func:`eigen_rows` (Tables IV and X),
  :func:`claims_rows`, :func:`gain_rows`, :func:`sam_radius_rows`;
* the published values: :data:`ROTHEN_SCORES` (Tables III and IX), :data:`ROTHEN_DELTA_S` (Table V),
  :data:`ROTHEN_EIGEN_PP` (Table IV).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hepnb import landscape
from hepnb.data.cache import cache_path, load_classes
from hepnb.data.datasets import JetDataset, TensorBatches, split_datasets
from hepnb.data.sample import CLASS_NAMES, JetSample
from hepnb.evaluation import metrics
from hepnb.evaluation.claims import claim
from hepnb.evaluation.stats import seed_difference, seed_estimate, seed_stats, verdict
from hepnb.evaluation.tables import format_pm
from hepnb.models.dense import DenseTagger
from hepnb.physics.kinematics import mass as jet_mass
from hepnb.training.adversarial import METHODS, batch_attack_region, leading_constituents, make_strategy
from hepnb.training.checkpoints import load_or_train
from hepnb.training.loop import fit, predict
from hepnb.training.tasks import BinaryTask, move

__all__ = ["data_requests", "CLASSES", "TRAINING_VERSION", "N_CONSTITUENTS", "SIMULATORS", "LABELS",
           "PAPER_SIMULATOR", "ORDER", "PASSES",
           "ROTHEN_METHODS", "ROTHEN_SCORES", "ROTHEN_DELTA_S", "ROTHEN_EIGEN_PP",
           "SimulatorSplits", "simulator_splits", "load_splits", "load_replicas", "jet_distributions", "layer_rows",
           "training_key", "trained_model", "Evaluation", "evaluate", "Sharpness", "sharpness",
           "rejection_on_grid", "Grid", "train_grid", "measure_sharpness",
           "cost_rows", "default_rows", "transfer_rows", "rejection_curves", "jsd_bars", "mean_paths",
           "eigen_rows", "claims_rows", "gain_rows", "sam_radius_rows"]

TRAINING_VERSION = 3  # bump when a change to this chapter's training makes its checkpoints wrong
N_CONSTITUENTS = 40  # Rothen et al., Table VII

CLASSES: tuple[str, ...] = ("hbb", "qcd")  # the generated classes each replica reads
SIMULATORS: tuple[str, ...] = ("nominal", "alt_shower")  # our "Pythia" and our stand-in for "Herwig"
LABELS: dict[str, str] = {"nominal": "Pythia", "alt_shower": "alt. shower"}
PAPER_SIMULATOR: dict[str, str] = {"nominal": "pythia", "alt_shower": "herwig"}  # keys of the ROTHEN_* tables
ORDER: tuple[str, ...] = ("default", "fgsm", "pgd", "sam", "ssamd")
PASSES: dict[str, str] = {"default": "1 forward + 1 backward", "fgsm": "+1 input gradient",
                          "pgd": "+N = 5 input gradients", "sam": "+1 forward + backward",
                          "ssamd": "+1 forward + backward (masked perturbation)"}

# ---------------------------------------------------------------------------------------------------------------
# Published values of Rothen et al. (Phys. Rev. D 112, 016004), copied from their tables as (value, uncertainty).
# "pythia" is their nominal Pythia 8 (RS3L0), "herwig" their Herwig 7 re-shower (RS3L4); keys are (train, evaluate).
# Uncertainties are the standard deviation over 5 seeds.

ROTHEN_METHODS: tuple[str, ...] = ("default", "sam", "ssamd", "fgsm", "pgd")

# Table IX (raw scores, cross-evaluation) and its "Target" row = the default model on its own simulator (Table III):
# AUC and background rejection at signal efficiency 0.85.
ROTHEN_SCORES: dict[tuple[str, str, str], dict[str, tuple[float, float]]] = {
    ("default", "pythia", "herwig"): {"auc": (0.953, 0.004), "rejection": (11.3, 0.2)},
    ("sam", "pythia", "herwig"): {"auc": (0.962, 0.002), "rejection": (13.8, 0.1)},
    ("ssamd", "pythia", "herwig"): {"auc": (0.963, 0.002), "rejection": (14.2, 0.2)},
    ("fgsm", "pythia", "herwig"): {"auc": (0.957, 0.004), "rejection": (11.5, 0.1)},
    ("pgd", "pythia", "herwig"): {"auc": (0.962, 0.003), "rejection": (13.8, 0.2)},
    ("default", "herwig", "pythia"): {"auc": (0.965, 0.003), "rejection": (15.0, 0.1)},
    ("sam", "herwig", "pythia"): {"auc": (0.968, 0.001), "rejection": (15.6, 0.2)},
    ("ssamd", "herwig", "pythia"): {"auc": (0.968, 0.003), "rejection": (16.3, 0.2)},
    ("fgsm", "herwig", "pythia"): {"auc": (0.971, 0.002), "rejection": (17.5, 0.2)},
    ("pgd", "herwig", "pythia"): {"auc": (0.975, 0.003), "rejection": (20.7, 0.3)},
    ("default", "herwig", "herwig"): {"auc": (0.974, 0.002), "rejection": (21.2, 0.0)},
    ("default", "pythia", "pythia"): {"auc": (0.978, 0.002), "rejection": (24.2, 0.0)},
}

# Table V: fractional improvement Delta S (eq. 14) over the default model.
ROTHEN_DELTA_S: dict[tuple[str, str, str], dict[str, tuple[float, float]]] = {
    ("sam", "pythia", "herwig"): {"auc": (0.44, 0.02), "rejection": (0.25, 0.02)},
    ("ssamd", "pythia", "herwig"): {"auc": (0.47, 0.01), "rejection": (0.29, 0.02)},
    ("fgsm", "pythia", "herwig"): {"auc": (0.21, 0.01), "rejection": (0.03, 0.01)},
    ("pgd", "pythia", "herwig"): {"auc": (0.46, 0.02), "rejection": (0.25, 0.02)},
    ("sam", "herwig", "pythia"): {"auc": (0.20, 0.01), "rejection": (0.07, 0.01)},
    ("ssamd", "herwig", "pythia"): {"auc": (0.23, 0.01), "rejection": (0.14, 0.01)},
    ("fgsm", "herwig", "pythia"): {"auc": (0.44, 0.02), "rejection": (0.27, 0.02)},
    ("pgd", "herwig", "pythia"): {"auc": (0.76, 0.03), "rejection": (0.62, 0.02)},
}

# Table IV: largest reduced-Hessian eigenvalue, trained and evaluated on Pythia; (space, class).
ROTHEN_EIGEN_PP: dict[str, dict[tuple[str, str], tuple[float, float]]] = {
    "default": {("features", "hbb"): (0.84, 0.08), ("features", "qcd"): (0.03, 0.01),
                ("weights", "hbb"): (0.31, 0.05), ("weights", "qcd"): (0.28, 0.07)},
    "sam": {("features", "hbb"): (0.82, 0.11), ("features", "qcd"): (0.07, 0.04),
            ("weights", "hbb"): (0.11, 0.01), ("weights", "qcd"): (0.12, 0.01)},
    "ssamd": {("features", "hbb"): (0.98, 0.09), ("features", "qcd"): (0.04, 0.01),
              ("weights", "hbb"): (0.22, 0.01), ("weights", "qcd"): (0.19, 0.03)},
    "fgsm": {("features", "hbb"): (0.17, 0.01), ("features", "qcd"): (0.024, 0.006),
             ("weights", "hbb"): (0.80, 0.09), ("weights", "qcd"): (0.49, 0.07)},
    "pgd": {("features", "hbb"): (0.056, 0.004), ("features", "qcd"): (0.005, 0.002),
            ("weights", "hbb"): (0.72, 0.07), ("weights", "qcd"): (0.42, 0.08)},
}


def _label(simulator: str) -> str:
    return LABELS.get(simulator, simulator)


# ---------------------------------------------------------------------------------------------------------------
# data


@dataclass
class SimulatorSplits:
    """Per-simulator minibatch iterables of one event split, with the test jets' masses and labels."""

    simulators: tuple[str, ...]
    train_set: JetDataset  # every simulator of the training events; see :meth:`train`
    batch_size: int
    val: dict[str, TensorBatches]
    test: dict[str, TensorBatches]
    test_mass: dict[str, np.ndarray]
    test_labels: np.ndarray
    n_per_class: dict[str, dict[str, int]]
    data_key: dict[str, Any]
    datasets: dict[str, JetDataset] = field(default_factory=dict)  # "train", "val", "test"

    def train(self, simulator: str, seed: int) -> TensorBatches:
        """Fresh shuffled training batches of one simulator: the order depends on ``seed`` only, never on what was
        trained before (each model's run is reproducible on its own)."""
        return TensorBatches(self.train_set, simulator, self.batch_size, shuffle=True, seed=seed)


def simulator_splits(sample: JetSample, simulators: Sequence[str] = SIMULATORS,
                     batch_size: int = 128, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                     sources: Sequence[str] = ()) -> SimulatorSplits:
    """Split H->bb vs QCD jets by hard event (balanced per split) and slice each simulator's jets out.

    ``sources``: names of the data files (their settings hash) for the checkpoint key, so a model is never reused
    on other data.
    """
    sets = split_datasets(sample, fractions, seed, variations=tuple(simulators), classes=("qcd", "hbb"),
                          max_constituents=N_CONSTITUENTS)
    val = {s: TensorBatches(sets["val"], s, 1024) for s in simulators}
    test = {s: TensorBatches(sets["test"], s, 1024) for s in simulators}
    test_rows = sets["test"].rows
    mass = {s: jet_mass(sample.jet_p4[test_rows, sample.variations.index(s)]) for s in simulators}
    key = {"sources": sorted(sources), "rows": int(len(sample.event_id)), "fractions": list(fractions),
           "seed": int(seed), "batch_size": int(batch_size), "n_constituents": N_CONSTITUENTS}
    return SimulatorSplits(tuple(simulators), sets["train"], int(batch_size), val, test, mass,
                           sets["test"].labels.copy(),
                           {k: dict(v.n_per_class) for k, v in sets.items()}, key, sets)


def data_requests(cfg: Any) -> list[Any]:
    """The generated files :func:`load_replicas` reads with the chapter's configuration ``cfg``: H->bb and QCD at
    every training seed ``cfg.seed .. cfg.seed + cfg.seeds - 1`` (for ``make data``,
    :func:`hepnb.data.generators.plan`)."""
    from hepnb.data.generators import requests

    return requests("resim", CLASSES, cfg.n_events, [cfg.seed + k for k in range(cfg.seeds)], "adversarial")

def load_splits(n_events: int, seed: int = 0, batch_size: int = 128, workers: int = 1,
                simulators: Sequence[str] = SIMULATORS) -> tuple[JetSample, SimulatorSplits]:
    """``(jets, splits)``: ``n_events`` H->bb and QCD hard events from the generation cache (generated first if
    missing, chapter ``book/data/resimulation.ipynb``), split by :func:`simulator_splits` with the files' names in
    the checkpoint key."""
    classes = CLASSES
    jets = load_classes(classes, n_events, seed=seed, workers=workers)
    sources = [cache_path(c, seed).name for c in classes]
    return jets, simulator_splits(jets, simulators, batch_size=batch_size, seed=seed, sources=sources)


def load_replicas(n_events: int, seeds: Sequence[int], batch_size: int = 128, workers: int = 1,
                  simulators: Sequence[str] = SIMULATORS) -> tuple[JetSample, dict[int, SimulatorSplits]]:
    """``(jets of the first seed, {seed: splits})``: one independent replica of the experiment per training seed.

    Seed ``s`` gets its own ``n_events`` H->bb and QCD hard events, generated with seed ``s``, split with seed
    ``s`` (:func:`load_splits`). Its models start from seed ``s``'s weights, so everything random in one replica,
    data included, differs between seeds, and the seed-to-seed spread of a result is the spread a reader would see
    on repeating the whole study: a verdict over seeds is then a verdict that survives new data. Two methods on
    the same seed share data, split and initial weights, so their difference is paired. Explained in
    ``book/adversarial/adversarial.ipynb``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"replicas need distinct seeds, got {seeds}")
    first, replicas = None, {}
    for s in tqdm(seeds, desc="replicas", delay=2):
        jets, replicas[s] = load_splits(n_events, s, batch_size, workers, simulators)
        first = first if first is not None else jets  # only the first seed's jets are kept, for the plots
    return first, replicas


def jet_distributions(jets: JetSample, simulators: Sequence[str] = SIMULATORS,
                      classes: Sequence[str] = ("hbb", "qcd")) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Constituent multiplicity and jet mass per ``(simulator, class)`` (the paper's Figs. 1 and 2)."""
    out = {}
    for sim in simulators:
        v = jets.variations.index(sim)
        for name in classes:
            rows = jets.label == CLASS_NAMES.index(name)
            out[sim, name] = {"constituents": jets.n_constituents[rows, v], "mass": jet_mass(jets.jet_p4[rows, v])}
    return out


def layer_rows(model: nn.Module) -> list[dict[str, Any]]:
    """The parameter count of each Linear and BatchNorm layer of ``model``, and the total (the paper's Table VI)."""
    from hepnb.models import n_parameters

    rows = [{"layer": name, "type": type(m).__name__, "parameters": sum(p.numel() for p in m.parameters())}
            for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    return rows + [{"layer": "total", "type": "", "parameters": n_parameters(model)}]


# ---------------------------------------------------------------------------------------------------------------
# one model


def training_key(method: str, simulator: str, seed: int, epochs: int, lr: float, data_key: Mapping[str, Any],
                 overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything that determines a trained model, for :func:`hepnb.training.checkpoints.load_or_train` (which adds
    :data:`TRAINING_VERSION`)."""
    params = {**METHODS[method].params, **(overrides or {})}
    return {"chapter": "adversarial", "model": "DenseTagger(40, 15, 2, (128, 64, 32))", "method": method,
            "params": params, "train_on": simulator, "seed": int(seed), "epochs": int(epochs), "lr": float(lr),
            "optimiser": "AdamW(weight_decay=0.01)", "data": dict(data_key)}


def trained_model(method: str, simulator: str, seed: int, splits: SimulatorSplits, epochs: int, lr: float = 1e-4,
                  device: str = "cpu", overrides: Mapping[str, Any] | None = None
                  ) -> tuple[nn.Module, dict[str, Any], bool]:
    """``(model in eval mode, meta, trained now?)`` for one method trained on one simulator with one seed.

    Seeded: the same arguments give the same weights on a CPU. ``meta`` holds the history (losses, the kept epoch,
    seconds per epoch). Loaded from the checkpoint cache when present (see :mod:`hepnb.training.checkpoints`).
    """
    key = training_key(method, simulator, seed, epochs, lr, splits.data_key, overrides)

    def train(model: nn.Module) -> dict[str, Any]:
        torch.manual_seed(seed)
        model.load_state_dict(DenseTagger().state_dict())  # the seed's initial weights
        strategy = make_strategy(method, seed=seed, **(overrides or {}))
        history = fit(model, splits.train(simulator, seed), splits.val[simulator], epochs=epochs, lr=lr,
                      device=device, strategy=strategy, progress=False)
        return history.as_dict()

    model = DenseTagger()
    meta, trained = load_or_train("adversarial", key, model, train, version=TRAINING_VERSION)
    return model.to(device).eval(), meta, trained


@dataclass
class Evaluation:
    """Scores of one model on one test set."""

    auc: float
    rejection: float  # background rejection at the working point
    efficiency: np.ndarray  # signal efficiencies of the rejection curve
    rejection_curve: np.ndarray
    jsd: float  # mass sculpting at the working point
    scores: np.ndarray


def evaluate(model: nn.Module, splits: SimulatorSplits, simulator: str, eff: float = 0.85,
             device: str = "cpu") -> Evaluation:
    """AUC, rejection at ``eff`` (Rothen et al.: 0.85), the rejection curve and the background-mass JSD at
    ``eff``."""
    scores, labels = predict(model, splits.test[simulator], device)
    if not np.array_equal(labels.astype(int), splits.test_labels):
        raise RuntimeError("test labels out of order: the test batches must not be shuffled")
    e, r = metrics.rejection_curve(labels, scores)
    jsd = float(metrics.mass_sculpting(splits.test_mass[simulator], labels, scores, eff)[0])
    return Evaluation(metrics.auc(labels, scores), metrics.rejection_at(labels, scores, eff), e, r, jsd, scores)


@dataclass
class Sharpness:
    """Reduced-Hessian largest eigenvalues (feature and weight space, per class) and mean ascent paths."""

    feature_hbb: float
    feature_qcd: float
    weight_hbb: float
    weight_qcd: float
    path_features: np.ndarray
    path_weights: np.ndarray


def _test_tensors(splits: SimulatorSplits, simulator: str, device: str
                  ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """``((x, jet, mask), y)`` of a simulator's whole test set, in test order (the form :mod:`hepnb.landscape`
    takes)."""
    task = BinaryTask()
    batches = [move(b, device) for b in splits.test[simulator]]
    inputs = [task.inputs(b) for b in batches]
    return (tuple(torch.cat([b[i] for b in inputs]) for i in range(len(inputs[0]))),
            torch.cat([task.targets(b) for b in batches]))


def sharpness(model: nn.Module, splits: SimulatorSplits, simulator: str, reduced_jets: int, path_jets: int,
              steps: int = 15, step_size: float = 0.01, path_batch: int = 128, device: str = "cpu") -> Sharpness:
    """Rothen et al.'s two sharpness measures on a test set (Sec. IV, App. A), with :mod:`hepnb.landscape`.

    Feature space: the 75 x 75 Hessian of each jet's loss in its 5 leading constituents' 15 features, largest
    eigenvalue averaged over ``reduced_jets`` jets per class. Weight space: the Hessian of the mean loss of the
    class's first ``path_jets`` test jets in the output layer (32 weights and the bias). Paths: 15 normalised
    gradient-ascent steps of 0.01 from the minimum, averaged over batches of ``path_batch`` (the training batch size;
    the step is normalised over a whole batch, so this sets the per-jet step) of the first ``path_jets`` test jets;
    in feature space only the continuous features of each jet's real constituents move (the attacks' region).
    """
    loss_fn = nn.BCEWithLogitsLoss()
    xs, y = _test_tensors(splits, simulator, device)
    first_five = leading_constituents(xs[0])
    values = {}
    for label, name in ((1.0, "hbb"), (0.0, "qcd")):
        rows = torch.nonzero(y == label).squeeze(1)
        few, many = rows[:reduced_jets], rows[:path_jets]
        per_jet = landscape.reduced_hessians_per_sample(model, loss_fn, (tuple(t[few] for t in xs), y[few]),
                                                        select=first_five)
        values[f"feature_{name}"] = float(np.mean([h.max_eigenvalue for h in per_jet]))
        head = landscape.ParameterSpace(model, loss_fn, (tuple(t[many] for t in xs), y[many]), params=["head."])
        values[f"weight_{name}"] = landscape.reduced_hessian(head).max_eigenvalue
    xs, y = tuple(t[:path_jets] for t in xs), y[:path_jets]
    batches = [(tuple(t[i:i + path_batch] for t in xs), y[i:i + path_batch]) for i in range(0, len(y), path_batch)]
    path_f, _ = landscape.ascent_path_over(model, loss_fn, batches, kind="features", steps=steps,
                                           step_size=step_size, select=batch_attack_region)
    path_w, _ = landscape.ascent_path_over(model, loss_fn, batches, kind="weights", steps=steps,
                                           step_size=step_size)
    return Sharpness(path_features=path_f, path_weights=path_w, **values)


def rejection_on_grid(evaluation: Evaluation, grid: np.ndarray) -> np.ndarray:
    """The rejection curve of one evaluation at the signal efficiencies ``grid`` (interpolated in log rejection),
    so that curves of several seeds can be averaged point by point."""
    return np.exp(np.interp(grid, evaluation.efficiency, np.log(evaluation.rejection_curve)))


# ---------------------------------------------------------------------------------------------------------------
# the grid: methods x simulators x seeds


Key = tuple[str, str, int]  # (training simulator, method, seed)
EvalKey = tuple[str, str, int, str]  # (training simulator, method, seed, evaluation simulator)


@dataclass
class Grid:
    """Every model of the study and what was measured on it.

    ``models`` and ``metas`` (training history, seconds per epoch) are keyed ``(train simulator, method, seed)``;
    ``evals`` (:class:`Evaluation`) and ``sharp`` (:class:`Sharpness`, filled by :func:`measure_sharpness`) are keyed
    ``(train simulator, method, seed, evaluation simulator)``. ``splits`` (one :class:`SimulatorSplits` per seed,
    :func:`load_replicas`), ``epochs``, ``lr`` and ``device`` are what trained them (the SAM radius scan trains more
    models the same way).
    """

    simulators: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    models: dict[Key, nn.Module] = field(default_factory=dict)
    metas: dict[Key, dict[str, Any]] = field(default_factory=dict)
    evals: dict[EvalKey, Evaluation] = field(default_factory=dict)
    sharp: dict[EvalKey, Sharpness] = field(default_factory=dict)
    splits: dict[int, SimulatorSplits] = field(default_factory=dict)
    epochs: int = 0
    lr: float = 1e-4
    device: str = "cpu"
    n_trained: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(train, evaluate)`` pair of simulators, the diagonal included."""
        return [(t, e) for t in self.simulators for e in self.simulators]

    @property
    def directions(self) -> list[tuple[str, str]]:
        """The ``(train, evaluate)`` pairs across simulators."""
        return [(t, e) for t, e in self.pairs if t != e]

    def values(self, train: str, method: str, evaluate_on: str, name: str) -> np.ndarray:
        """One number per seed: ``name`` of the :class:`Evaluation` (``"auc"``, ``"rejection"``, ``"jsd"``) or of
        the :class:`Sharpness` (``"feature_hbb"``, ``"path_weights"``, ...) of ``method`` trained on ``train`` and
        evaluated on ``evaluate_on``."""
        source = self.evals if name in {f.name for f in fields(Evaluation)} else self.sharp
        try:
            return np.array([getattr(source[train, method, s, evaluate_on], name) for s in self.seeds])
        except KeyError as err:
            what = "evaluated" if source is self.evals else "measured by measure_sharpness"
            raise KeyError(f"no {name!r} for {err.args[0]}: not {what}") from None

    def summary(self) -> str:
        """One line on the training: models, how many were trained now, seconds, epochs and the kept epoch."""
        kept = np.mean([m["best_epoch"] + 1 for m in self.metas.values()])
        return (f"{len(self.models)} models: {self.n_trained} trained now, {len(self.models) - self.n_trained} "
                f"loaded from checkpoints, {self.seconds.get('training', 0.0):.0f} s; {self.epochs} epochs each, "
                f"the kept epoch on average {kept:.1f}")


def train_grid(splits: SimulatorSplits | Mapping[int, SimulatorSplits], seeds: Sequence[int], epochs: int,
               lr: float = 1e-4, device: str = "cpu", methods: Sequence[str] = ORDER, progress: bool = True) -> Grid:
    """Train (or load) every method on every simulator with every seed, and evaluate each model on its seed's test
    sets.

    ``splits``: one per seed (:func:`load_replicas`), or one shared by every seed. A tqdm bar counts the models.
    Seconds spent are in ``grid.seconds["training"]`` (loading included) and ``grid.seconds["evaluation"]``.
    """
    seeds = tuple(int(s) for s in seeds)
    per_seed = dict(splits) if isinstance(splits, Mapping) else {s: splits for s in seeds}
    missing = [s for s in seeds if s not in per_seed]
    if missing:
        raise ValueError(f"no splits for seeds {missing}")
    grid = Grid(tuple(per_seed[seeds[0]].simulators), tuple(methods), seeds, splits=per_seed,
                epochs=int(epochs), lr=float(lr), device=device)
    runs = [(sim, method, s) for sim in grid.simulators for method in grid.methods for s in grid.seeds]
    start = time.perf_counter()
    for sim, method, s in tqdm(runs, desc="models", delay=2, disable=not progress):
        grid.models[sim, method, s], grid.metas[sim, method, s], trained = trained_model(
            method, sim, s, per_seed[s], epochs, lr, device)
        grid.n_trained += trained
    grid.seconds["training"] = time.perf_counter() - start
    start = time.perf_counter()
    grid.evals = {(train, method, s, ev): evaluate(grid.models[train, method, s], per_seed[s], ev, device=device)
                  for train, method, s in grid.models for ev in grid.simulators}
    grid.seconds["evaluation"] = time.perf_counter() - start
    return grid


def measure_sharpness(grid: Grid, reduced_jets: int, path_jets: int, progress: bool = True) -> Grid:
    """Fill ``grid.sharp`` with :func:`sharpness` of every model on every test set (a tqdm bar counts the models);
    the seconds are in ``grid.seconds["sharpness"]``. Returns the grid."""
    if not grid.splits:
        raise ValueError("the grid has no splits to measure sharpness on")
    start = time.perf_counter()
    for train, method, s in tqdm(list(grid.models), desc="sharpness", delay=2, disable=not progress):
        for ev in grid.simulators:
            grid.sharp[train, method, s, ev] = sharpness(grid.models[train, method, s], grid.splits[s], ev,
                                                         reduced_jets, path_jets, device=grid.device)
    grid.seconds["sharpness"] = time.perf_counter() - start
    return grid


# ---------------------------------------------------------------------------------------------------------------
# tables and figures


def _mean_epoch_seconds(grid: Grid, method: str) -> float:
    return float(np.mean([np.median(grid.metas[sim, method, s]["epoch_seconds"])
                          for sim in grid.simulators for s in grid.seeds]))


def cost_rows(grid: Grid) -> list[dict[str, Any]]:
    """Training cost per method: hyperparameters, the extra passes per step, the median seconds per epoch (mean over
    seeds and simulators; as recorded when the checkpoint was trained) and its ratio to the default's."""
    base = _mean_epoch_seconds(grid, "default")
    rows = []
    for method in grid.methods:
        sec = _mean_epoch_seconds(grid, method)
        params = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                           for k, v in METHODS[method].params.items())
        rows.append({"method": METHODS[method].label, "hyperparameters": params or "-",
                     "extra work per step": PASSES[method], "s / epoch": sec, "cost / default": sec / base})
    return rows


def default_rows(grid: Grid) -> list[dict[str, str]]:
    """Table III: the default model's AUC and rejection (mean ± std over seeds) on both test sets, per training
    simulator, beside the paper's."""
    rows = []
    for train in grid.simulators:
        row = {"trained on": _label(train)}
        for ev in grid.simulators:
            paper = ROTHEN_SCORES["default", PAPER_SIMULATOR[train], PAPER_SIMULATOR[ev]]
            auc = seed_stats(grid.values(train, "default", ev, "auc"))
            rej = seed_stats(grid.values(train, "default", ev, "rejection"))
            row[f"AUC on {_label(ev)}"] = format_pm(auc[0], auc[1], 4, False)
            row[f"paper AUC on {PAPER_SIMULATOR[ev]}"] = format_pm(*paper["auc"], 3, False)
            row[f"rejection on {_label(ev)}"] = format_pm(rej[0], rej[1], 1, False)
            row[f"paper rejection on {PAPER_SIMULATOR[ev]}"] = format_pm(*paper["rejection"], 1, False)
        rows.append(row)
    return rows


def transfer_rows(grid: Grid) -> list[dict[str, str]]:
    """Tables IX and V: per direction and method the raw cross scores S (mean ± std over seeds) and the fractional
    improvement ΔS (eq. 14, mean ± std), beside the paper's; a last row per direction gives the target (the default
    model on its own simulator) and the target gap ± its standard error.

    ΔS is shown only where the gap (target minus the default's cross score, paired by seed) is positive by the book's
    verdict rule (:func:`hepnb.evaluation.stats.verdict`: its 95% t interval lies above zero); elsewhere it is
    undefined within the noise (the paper's condition under eq. 14).
    """
    scores = ("auc", "rejection")
    digits = {"auc": 4, "rejection": 1}
    rows = []
    for train, ev in grid.directions:
        pt, pe = PAPER_SIMULATOR[train], PAPER_SIMULATOR[ev]
        default = {k: seed_stats(grid.values(train, "default", ev, k)) for k in scores}
        target = {k: seed_stats(grid.values(ev, "default", ev, k)) for k in scores}
        gap = {k: seed_difference(grid.values(ev, "default", ev, k), grid.values(train, "default", ev, k))
               for k in scores}
        gap_ok = {k: verdict(gap[k], +1).outcome == "yes" for k in scores}
        for method in grid.methods:
            row = {"train → evaluate": f"{_label(train)} → {_label(ev)}", "method": METHODS[method].label}
            for k in scores:
                raw = grid.values(train, method, ev, k)
                mean, std, _ = seed_stats(raw)
                row[f"S_{k}"] = format_pm(mean, std, digits[k], False)
                row[f"paper S_{k}"] = format_pm(*ROTHEN_SCORES[method, pt, pe][k], digits[k], False)
                if gap_ok[k]:
                    ds = seed_stats(metrics.delta_s(raw, default[k][0], target[k][0]))
                    row[f"ΔS_{k}"] = format_pm(ds[0], ds[1], 2)
                else:
                    row[f"ΔS_{k}"] = "n/a: no significant gap"
                paper = ROTHEN_DELTA_S.get((method, pt, pe))
                row[f"paper ΔS_{k}"] = format_pm(*paper[k], 2) if paper else "0 (by definition)"
            rows.append(row)
        row = {"train → evaluate": f"{_label(train)} → {_label(ev)}", "method": "target (default on its own)"}
        for k in scores:
            row[f"S_{k}"] = format_pm(target[k][0], target[k][1], digits[k], False)
            row[f"paper S_{k}"] = format_pm(*ROTHEN_SCORES["default", pe, pe][k], digits[k], False)
        for k in scores:
            row[f"ΔS_{k}"] = "gap " + format_pm(*gap[k], digits[k])
        rows.append(row)
    return rows


def rejection_curves(grid: Grid, efficiencies: np.ndarray
                     ) -> dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray | None]]]:
    """Per ``(train, evaluate)`` pair and method, the rejection at ``efficiencies`` averaged over seeds point by
    point, and its standard deviation (None for one seed): the paper's Figs. 4 and 5."""
    out: dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}
    for train, ev in grid.pairs:
        out[train, ev] = {}
        for method in grid.methods:
            curves = np.array([rejection_on_grid(grid.evals[train, method, s, ev], efficiencies)
                               for s in grid.seeds])
            out[train, ev][method] = (curves.mean(0), curves.std(0) if len(grid.seeds) > 1 else None)
    return out


def jsd_bars(grid: Grid) -> dict[str, tuple[list[float], list[float]]]:
    """Per method, the mass-sculpting JSD at the working point for each ``grid.pairs`` entry: means over seeds and
    standard deviations (0 for one seed): the paper's Fig. 6."""
    out = {}
    for method in grid.methods:
        stats = [seed_stats(grid.values(t, method, e, "jsd")) for t, e in grid.pairs]
        out[method] = ([v[0] for v in stats], [0.0 if np.isnan(v[1]) else v[1] for v in stats])
    return out


def mean_paths(grid: Grid) -> dict[tuple[str, str, str], dict[str, tuple[np.ndarray, np.ndarray | None]]]:
    """Per ``(train, evaluate, space)`` (space ``"features"`` or ``"weights"``) and method, the gradient-ascent path
    ΔL_i averaged over seeds, and its standard deviation (None for one seed): the paper's Figs. 3 and 7."""
    out: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}
    for train, ev in grid.pairs:
        for space in ("features", "weights"):
            out[train, ev, space] = {}
            for method in grid.methods:
                paths = np.array([getattr(grid.sharp[train, method, s, ev], f"path_{space}") for s in grid.seeds])
                out[train, ev, space][method] = (paths.mean(0), paths.std(0) if len(grid.seeds) > 1 else None)
    return out


def eigen_rows(grid: Grid, pairs: Sequence[tuple[str, str]] | None = None, paper: bool = False
               ) -> list[dict[str, str]]:
    """Largest reduced-Hessian eigenvalues (mean ± std over seeds) per method, in feature and weight space, for
    H->bb and QCD jets.

    ``paper=True``: Table IV, trained and evaluated on the first simulator (Pythia), the paper's values beside ours.
    Otherwise Table X: one row per method and ``(train, evaluate)`` pair (default: all of ``grid.pairs``).
    """
    first = grid.simulators[0]
    pairs = [(first, first)] if paper else list(grid.pairs if pairs is None else pairs)
    rows = []
    for train, ev in pairs:
        for method in grid.methods:
            row = {"method": METHODS[method].label}
            if not paper:
                row = {"train → evaluate": f"{_label(train)} → {_label(ev)}", **row}
            for space in ("features", "weights"):
                for cls in ("hbb", "qcd"):
                    v = seed_stats(grid.values(train, method, ev, f"{space[:-1]}_{cls}"))
                    name = f"{space} {cls}" if paper else f"{space[:-1]} {cls}"
                    row[name] = format_pm(v[0], v[1], 3, False)
                    if paper:
                        row[f"paper {space} {cls}"] = format_pm(*ROTHEN_EIGEN_PP[method][space, cls], 3, False)
            rows.append(row)
    return rows


def _paper_cross_gain(method: str, train: str, ev: str) -> float:
    """The paper's cross AUC of ``method`` minus the default's (Table IX), paper simulator names."""
    return ROTHEN_SCORES[method, train, ev]["auc"][0] - ROTHEN_SCORES["default", train, ev]["auc"][0]


def claims_rows(grid: Grid) -> list[dict[str, str]]:
    """The headline claims of Rothen et al., each as an :class:`~hepnb.evaluation.stats.Estimate` over seeds with
    its verdict (:func:`hepnb.evaluation.claims.claim`). Every difference is paired by seed: seed ``k`` of every
    method and simulator starts from the same initial weights and sees the same data, split and batch order
    (:func:`load_replicas`), while different seeds are independent replicas of the whole study.

    * the cross-evaluation gap per direction (trained on the evaluation simulator minus trained on the other);
    * each method flattens its own space (FGSM, PGD: features; SAM, SSAM-D: weights), Pythia → Pythia: the ascent
      path's ΔL after the last step, and the reduced-Hessian λ_max per class, minus the default's (expected < 0);
    * each method generalises better: its cross AUC minus the default's, per direction (expected > 0);
    * PGD is best overall: its cross-AUC gain (mean over both directions) minus the best other method's.
    """
    paper_sim = PAPER_SIMULATOR
    home = grid.simulators[0]
    rows = []
    for train, ev in grid.directions:
        gap = seed_difference(grid.values(ev, "default", ev, "auc"), grid.values(train, "default", ev, "auc"))
        paper = (ROTHEN_SCORES["default", paper_sim[ev], paper_sim[ev]]["auc"][0]
                 - ROTHEN_SCORES["default", paper_sim[train], paper_sim[ev]]["auc"][0])
        rows.append(claim(f"cross-evaluation gap: AUC on {_label(ev)}, trained there minus trained on "
                          f"{_label(train)}", paper, gap, +1))
    for space, methods in (("feature", ("fgsm", "pgd")), ("weight", ("sam", "ssamd"))):
        for method in methods:
            if method not in grid.methods:
                continue
            label = METHODS[method].label
            last = [v[-1] for v in grid.values(home, method, home, f"path_{space}s")]
            last_default = [v[-1] for v in grid.values(home, "default", home, f"path_{space}s")]
            rows.append(claim(f"{label} flattens {space} space: ΔL after 15 ascent steps, minus default's "
                              "(Pythia → Pythia)", "< 0 (Fig. 3)", seed_difference(last, last_default), -1))
            for cls in ("hbb", "qcd"):
                diff = seed_difference(grid.values(home, method, home, f"{space}_{cls}"),
                                       grid.values(home, "default", home, f"{space}_{cls}"))
                paper = (ROTHEN_EIGEN_PP[method][space + "s", cls][0]
                         - ROTHEN_EIGEN_PP["default"][space + "s", cls][0])
                rows.append(claim(f"{label} flattens {space} space: reduced-Hessian λ_max minus default's "
                                  f"({cls}, Pythia → Pythia)", paper, diff, -1, digits=3))
    gains = _cross_gains(grid)
    for method in gains:
        for (train, ev), diff in zip(grid.directions, gains[method]):
            rows.append(claim(f"{METHODS[method].label} generalises better: cross AUC minus default's, "
                              f"{_label(train)} → {_label(ev)}",
                              _paper_cross_gain(method, paper_sim[train], paper_sim[ev]),
                              seed_estimate(diff, "paired"), +1))
    if "pgd" in gains and len(gains) > 1:
        overall = {m: np.mean(v, axis=0) for m, v in gains.items()}  # per seed, averaged over both directions
        others = {m: overall[m].mean() for m in overall if m != "pgd"}
        best_other = max(others, key=others.get)
        paper_gain = {m: np.mean([_paper_cross_gain(m, a, b) for a, b in (("pythia", "herwig"), ("herwig", "pythia"))])
                      for m in gains}
        paper_lead = paper_gain["pgd"] - max(v for m, v in paper_gain.items() if m != "pgd")
        rows.append(claim(f"PGD best overall: its mean cross-AUC gain minus the next best's (ours: "
                          f"{METHODS[best_other].label})", paper_lead,
                          seed_estimate(overall["pgd"] - overall[best_other], "paired"), +1, paper_digits=4,
                          key="PGD best overall"))
    return rows


def _cross_gains(grid: Grid) -> dict[str, list[np.ndarray]]:
    """Per non-default method, per direction, the per-seed cross AUC minus the default's."""
    return {m: [grid.values(t, m, e, "auc") - grid.values(t, "default", e, "auc") for t, e in grid.directions]
            for m in grid.methods if m != "default"}


def gain_rows(grid: Grid) -> list[dict[str, str]]:
    """Each method's AUC gain over the default on its own simulator and across simulators (each averaged over the
    simulators per seed; ± standard error over seeds), their difference, and whether the gain is larger across
    (the book's verdict, expected > 0): generalisation proper rather than a better tagger (the paper's Fig. 5)."""
    rows = []
    for method in grid.methods:
        if method == "default":
            continue
        home = np.mean([grid.values(t, method, t, "auc") - grid.values(t, "default", t, "auc")
                        for t in grid.simulators], axis=0)
        away = np.mean(_cross_gains(grid)[method], axis=0)
        rows.append({"method": METHODS[method].label,
                     "AUC gain, same simulator": format_pm(*seed_stats(home)[::2], 4),
                     "AUC gain, other simulator": format_pm(*seed_stats(away)[::2], 4),
                     "other minus same": format_pm(*seed_stats(away - home)[::2], 4),
                     "larger across simulators?": str(verdict(seed_estimate(away - home, "paired"), +1))})
    return rows


def sam_radius_rows(grid: Grid, rhos: Sequence[float]) -> list[dict[str, Any]]:
    """SAM trained with each radius in ``rhos`` on each simulator (first seed), scored as the paper's grid search
    (Sec. V) scores it: validation AUC on the *training* simulator, and its difference from the default's; for
    information the test AUC on the other simulator and its difference from the default's. The radius with the best
    validation AUC is marked "◀" per simulator. Radii equal to the main study's load its models."""
    if not grid.splits:
        raise ValueError("the grid has no splits to train the scan on")
    seed = grid.seeds[0]
    splits = grid.splits[seed]
    rows = []
    for train, ev in grid.directions:
        scores, labels = predict(grid.models[train, "default", seed], splits.val[train], grid.device)
        default_val = metrics.auc(labels, scores)
        block = []
        for rho in rhos:
            model, _, _ = trained_model("sam", train, seed, splits, grid.epochs, grid.lr, grid.device,
                                        overrides={"rho": float(rho)})
            scores, labels = predict(model, splits.val[train], grid.device)
            val = metrics.auc(labels, scores)
            cross = evaluate(model, splits, ev, device=grid.device).auc
            block.append({"trained on": _label(train), "rho": rho, "validation AUC, own simulator": val,
                          "Δ vs default (validation)": val - default_val, "test AUC, other simulator": cross,
                          "Δ vs default (other simulator)": cross - grid.evals[train, "default", seed, ev].auc})
        best = max(range(len(block)), key=lambda i: block[i]["validation AUC, own simulator"])
        for i, row in enumerate(block):
            row["chosen by validation"] = "◀" if i == best else ""
        rows += block
    return rows
