"""Cross-simulator study of paper 000 (Rothen et al.): train the dense tagger on one shower, evaluate on both.

Explained in ``book/adversarial/adversarial.ipynb``. :func:`simulator_splits` cuts H->bb and QCD jets into
train/validation/test by *hard event*, so the test jets of the two simulators are the same hard events showered
twice; :func:`trained_model` trains one (method, simulator, seed) through :func:`hepnb.training.checkpoints.load_or_train`;
:func:`evaluate` scores a model on a test set; :func:`sharpness` measures its reduced Hessians and gradient-ascent
paths with :mod:`hepnb.landscape`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hepnb import landscape
from hepnb.evaluation import metrics
from hepnb.training.adversarial import METHODS, attack_region, make_strategy
from hepnb.training.checkpoints import load_or_train
from hepnb.data.datasets import JetDataset, TensorBatches, split_by_event
from hepnb.data.features import FEATURE_NAMES
from hepnb.models.dense import DenseTagger
from hepnb.physics.kinematics import mass as jet_mass
from hepnb.data.sample import JetSample
from hepnb.training.loop import batch_inputs, fit, predict

__all__ = ["SimulatorSplits", "simulator_splits", "training_key", "trained_model", "Evaluation", "evaluate",
           "Sharpness", "sharpness", "seed_stats", "rejection_on_grid"]

N_CONSTITUENTS = 40  # paper 000, Table VII


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

    def train(self, simulator: str, seed: int) -> TensorBatches:
        """Fresh shuffled training batches of one simulator: the order depends on ``seed`` only, never on what was
        trained before (each model's run is reproducible on its own)."""
        return TensorBatches(self.train_set, simulator, self.batch_size, shuffle=True, seed=seed)


def simulator_splits(sample: JetSample, simulators: Sequence[str] = ("nominal", "alt_shower"),
                     batch_size: int = 128, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                     sources: Sequence[str] = ()) -> SimulatorSplits:
    """Split H->bb vs QCD jets by hard event (balanced per split) and slice each simulator's jets out.

    ``sources``: names of the data files (their settings hash) for the checkpoint key, so a model is never reused
    on other data.
    """
    rows = split_by_event(sample.event_id, fractions, seed)
    sets = {name: JetDataset(sample, rows=r, variations=tuple(simulators), classes=("qcd", "hbb"),
                             max_constituents=N_CONSTITUENTS, seed=seed)
            for name, r in zip(("train", "val", "test"), rows)}
    val = {s: TensorBatches(sets["val"], s, 1024) for s in simulators}
    test = {s: TensorBatches(sets["test"], s, 1024) for s in simulators}
    test_rows = sets["test"].rows
    mass = {s: jet_mass(sample.jet_p4[test_rows, sample.variations.index(s)]) for s in simulators}
    key = {"sources": sorted(sources), "rows": int(len(sample.event_id)), "fractions": list(fractions),
           "seed": int(seed), "batch_size": int(batch_size), "n_constituents": N_CONSTITUENTS}
    return SimulatorSplits(tuple(simulators), sets["train"], int(batch_size), val, test, mass,
                           sets["test"].labels.copy(),
                           {k: dict(v.n_per_class) for k, v in sets.items()}, key)


def training_key(method: str, simulator: str, seed: int, epochs: int, lr: float, data_key: Mapping[str, Any],
                 overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything that determines a trained model, for :func:`hepnb.training.checkpoints.load_or_train`."""
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
        history = fit(model, splits.train(simulator, seed), splits.val[simulator], epochs=epochs, lr=lr, device=device,
                      strategy=strategy, progress=False)
        return history.as_dict()

    model = DenseTagger()
    meta, trained = load_or_train("adversarial", key, model, train)
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
    """AUC, rejection at ``eff`` (paper 000: 0.85), the rejection curve and the background-mass JSD at ``eff``."""
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
    """``((x, jet, mask), y)`` of a simulator's whole test set, in test order."""
    batches = [batch_inputs(b, device) for b in splits.test[simulator]]
    return tuple(torch.cat([b[0][i] for b in batches]) for i in range(3)), torch.cat([b[1] for b in batches])


def _real_continuous(batch: tuple[tuple[torch.Tensor, ...], torch.Tensor]) -> torch.Tensor:
    """The entries of ``x`` the feature attacks may move: continuous features of real constituents."""
    return attack_region(batch[0])[0]


def sharpness(model: nn.Module, splits: SimulatorSplits, simulator: str, reduced_jets: int, path_jets: int,
              steps: int = 15, step_size: float = 0.01, path_batch: int = 128, device: str = "cpu") -> Sharpness:
    """Paper 000's two sharpness measures on a test set (Sec. IV, App. A), with :mod:`hepnb.landscape`.

    Feature space: the 75 x 75 Hessian of each jet's loss in its 5 leading constituents' 15 features, largest
    eigenvalue averaged over ``reduced_jets`` jets per class. Weight space: the Hessian of the mean loss of the
    class's first ``path_jets`` test jets in the output layer (32 weights and the bias). Paths: 15 normalised
    gradient-ascent steps of 0.01 from the minimum, averaged over batches of ``path_batch`` (the training batch size;
    the step is normalised over a whole batch, so this sets the per-jet step) of the first ``path_jets`` test jets;
    in feature space only the continuous features of each jet's real constituents move (the attacks' region).
    """
    loss_fn = nn.BCEWithLogitsLoss()
    first_five = torch.zeros(1, N_CONSTITUENTS, len(FEATURE_NAMES), dtype=torch.bool)
    first_five[:, :5] = True
    xs, y = _test_tensors(splits, simulator, device)
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
                                           step_size=step_size, select=_real_continuous)
    path_w, _ = landscape.ascent_path_over(model, loss_fn, batches, kind="weights", steps=steps,
                                           step_size=step_size)
    return Sharpness(path_features=path_f, path_weights=path_w, **values)


def rejection_on_grid(evaluation: Evaluation, grid: np.ndarray) -> np.ndarray:
    """The rejection curve of one evaluation at the signal efficiencies ``grid`` (interpolated in log rejection),
    so that curves of several seeds can be averaged point by point."""
    return np.exp(np.interp(grid, evaluation.efficiency, np.log(evaluation.rejection_curve)))
