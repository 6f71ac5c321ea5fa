"""One training loop for every chapter; explained in ``book/landscape/sharpness.ipynb``.

:func:`fit` trains any model on any :class:`~hepnb.training.tasks.Task` (what a batch becomes, the loss, a
prediction and its score) with any :class:`Strategy` (how one optimisation step is taken: plain descent here, the
adversarial steps of Rothen et al. in :mod:`hepnb.training.adversarial`, explained in
``book/adversarial/adversarial.ipynb``). It keeps the weights of the epoch with the lowest validation loss and
records, per epoch, the training and validation loss, the task's metric and the seconds the epoch's steps took.
Batches are dicts of tensors from any iterable (a DataLoader, :class:`hepnb.data.datasets.TensorBatches`, a list).
Seed torch before calling (``hepnb.set_seed``): the same seed gives bit-identical weights on a CPU.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hepnb.models import mode
from hepnb.training.tasks import Batch, BinaryTask, Task, move
from hepnb.validation import check_int, check_positive

__all__ = ["History", "Strategy", "fit", "evaluate", "predict"]

Optimiser = torch.optim.Optimizer
MakeOptimiser = Callable[[Iterable[nn.Parameter]], Optimiser]
MakeScheduler = Callable[[Optimiser], Any]
Monitor = Callable[[nn.Module, int], Mapping[str, float]]


@dataclass
class History:
    """Per-epoch training loss, validation loss and validation metric, the seconds of each epoch's training steps,
    the epoch whose weights were kept (lowest validation loss), and what a ``monitor`` measured after each epoch
    (``monitored[name][epoch]``)."""

    metric: str = ""
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    monitored: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able copy (stored with checkpoints)."""
        return {"metric": self.metric, "train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
                "val_metric": list(self.val_metric), "epoch_seconds": list(self.epoch_seconds),
                "best_epoch": self.best_epoch, "monitored": {k: list(v) for k, v in self.monitored.items()}}


class Strategy:
    """How one minibatch updates the weights: the default is plain gradient descent on the task's loss.

    Subclasses (:mod:`hepnb.training.adversarial`) change the inputs (FGSM, PGD) or the point where the gradient is
    taken (SAM, SSAM-D). ``start_epoch`` is called before each epoch; ``step`` returns the batch's training loss.
    """

    name = "default"

    def start_epoch(self, epoch: int) -> None:
        """Called with the 0-based epoch before its first step."""

    def step(self, model: nn.Module, optimiser: Optimiser, task: Task, batch: Batch) -> float:
        optimiser.zero_grad(set_to_none=True)
        loss = task.loss(model, batch)
        loss.backward()
        optimiser.step()
        return float(loss.detach())


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], task: Task | None = None,
             device: str | torch.device = "cpu") -> tuple[float, float]:
    """``(mean loss, metric)`` of ``task`` over ``batches`` in eval mode (each module's mode is restored).

    The loss is averaged over examples (each batch's mean weighted by its size)."""
    task = BinaryTask() if task is None else task
    total, count, predictions, targets = 0.0, 0, [], []
    with mode(model, False):
        for batch in batches:
            batch = move(batch, device)
            n = task.batch_size(batch)
            loss, p, t = task.loss_and_predict(model, batch)
            total += float(loss) * n
            count += n
            predictions.append(p.cpu().numpy())
            targets.append(None if t is None else t.cpu().numpy())
    if count == 0:
        raise ValueError("evaluate got no batches")
    labels = None if any(t is None for t in targets) else np.concatenate(targets)
    return total / count, task.metric(np.concatenate(predictions), labels)


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[Batch], device: str | torch.device = "cpu",
            task: Task | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The task's predictions and targets over ``batches``, in order, in eval mode (the model's modes are
    restored): sigmoid scores and 0/1 labels for the default :class:`~hepnb.training.tasks.BinaryTask`."""
    task = BinaryTask() if task is None else task
    predictions, targets = [], []
    with mode(model, False):
        for batch in batches:
            p, t = task.predict(model, move(batch, device))
            predictions.append(p.cpu().numpy())
            targets.append(None if t is None else t.cpu().numpy())
    if not predictions:
        raise ValueError("predict got no batches")
    labels = None if any(t is None for t in targets) else np.concatenate(targets)
    return np.concatenate(predictions), labels


def fit(model: nn.Module, train: Iterable[Batch], val: Iterable[Batch], epochs: int, lr: float = 1e-4,
        weight_decay: float = 1e-2, patience: int | None = None, device: str | torch.device = "cpu",
        progress: bool = True, task: Task | None = None, strategy: Strategy | None = None,
        make_optimiser: MakeOptimiser | None = None, make_scheduler: MakeScheduler | None = None,
        monitor: Monitor | None = None) -> History:
    """Train ``model`` on ``task`` with ``strategy``; keep the weights of the epoch with the lowest validation loss.

    ``train``, ``val``: iterables of dict batches, iterated once per epoch. ``task``: what is learned (default
    :class:`~hepnb.training.tasks.BinaryTask`). ``strategy``: how a step is taken (default :class:`Strategy`,
    plain descent). The optimiser is AdamW(``lr``, ``weight_decay``) unless ``make_optimiser(params)`` builds
    another; ``make_scheduler(optimiser)`` (optional) is stepped once per epoch. ``patience``: stop after this many
    epochs without a better validation loss (None: all ``epochs``). The validation loss is the task's clean loss in
    eval mode. ``monitor(model, epoch) -> {name: value}`` is called after every epoch with the model in eval mode
    and without gradients (a learning curve on a fixed test set, say: ``book/symmetry/symmetry.ipynb``); its
    values go to ``History.monitored`` and its time is not counted in ``epoch_seconds``. Returns the
    :class:`History`; the model is left in eval mode with no ``.grad`` set.
    """
    epochs = check_int("epochs", epochs)
    if patience is not None:
        patience = check_int("patience", patience)
    task = BinaryTask() if task is None else task
    strategy = Strategy() if strategy is None else strategy
    model.to(device)
    if make_optimiser is None:
        optimiser = torch.optim.AdamW(model.parameters(), lr=check_positive("lr", lr), weight_decay=weight_decay)
    else:
        optimiser = make_optimiser(model.parameters())
    scheduler = make_scheduler(optimiser) if make_scheduler is not None else None
    history, best_state, best = History(metric=task.metric_name), None, np.inf
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, delay=2.0)
    for epoch in bar:
        model.train()
        strategy.start_epoch(epoch)
        total, count = 0.0, 0
        start = time.perf_counter()
        for batch in train:
            batch = move(batch, device)
            n = task.batch_size(batch)
            total += strategy.step(model, optimiser, task, batch) * n
            count += n
        if count == 0:
            raise ValueError("the training batches are empty")
        if scheduler is not None:
            scheduler.step()
        history.epoch_seconds.append(time.perf_counter() - start)
        history.train_loss.append(total / count)
        val_loss, val_metric = evaluate(model, val, task, device)
        history.val_loss.append(val_loss)
        history.val_metric.append(val_metric)
        if monitor is not None:
            with torch.no_grad(), mode(model, False):
                for name, value in monitor(model, epoch).items():
                    history.monitored.setdefault(name, []).append(float(value))
        bar.set_postfix(train=f"{history.train_loss[-1]:.4f}", val=f"{val_loss:.4f}")
        if val_loss < best:
            best, history.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif patience is not None and epoch - history.best_epoch >= patience:
            break
    if best_state is None:
        raise FloatingPointError(f"the validation loss was never finite ({history.val_loss}); nothing to keep")
    model.load_state_dict(best_state)
    model.zero_grad(set_to_none=True)
    model.eval()
    return history
