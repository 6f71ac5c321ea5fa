"""One training loop for the book's jet classifiers; explained in ``book/landscape/sharpness.ipynb``.

Batches are the dicts of :class:`hepnb.data.datasets.JetDataset` (``x``, ``jet``, ``mask``, ``y``); the model is called as
``model(x, jet, mask)`` and returns one logit per jet. AdamW, binary cross-entropy, the state with the lowest
validation loss is kept (early stopping), and a history of losses is returned. How each minibatch updates the
weights is a :class:`Strategy`: plain gradient descent here, the adversarial ones of paper 000 in
:mod:`hepnb.training.adversarial` (explained in ``book/adversarial/adversarial.ipynb``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


@dataclass
class History:
    """Per-epoch mean training and validation loss, and the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    epoch_seconds: list[float] = field(default_factory=list)  # wall time of each epoch's training steps

    def as_dict(self) -> dict[str, Any]:
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss), "best_epoch": self.best_epoch,
                "epoch_seconds": list(self.epoch_seconds)}


class Strategy:
    """How one minibatch updates the weights: the default, plain gradient descent on the batch's loss.

    Subclasses (:mod:`hepnb.training.adversarial`) change the inputs (FGSM, PGD) or the point where the gradient is taken
    (SAM, SSAM-D). ``start_epoch`` is called before each epoch; ``step`` returns the batch's training loss.
    """

    name = "default"

    def start_epoch(self, epoch: int) -> None:
        """Called with the 0-based epoch before its first step."""

    def step(self, model: nn.Module, optimiser: torch.optim.Optimizer, loss_fn: nn.Module,
             inputs: tuple[torch.Tensor, ...], y: torch.Tensor) -> float:
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(*inputs), y)
        loss.backward()
        optimiser.step()
        return float(loss.detach())


def batch_inputs(batch: dict[str, torch.Tensor], device: str | torch.device = "cpu"
                 ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """``((x, jet, mask), y)`` of a JetDataset batch, on ``device`` (the form hepnb.landscape takes, too)."""
    return (batch["x"].to(device), batch["jet"].to(device), batch["mask"].to(device)), batch["y"].to(device)


@torch.no_grad()
def evaluate_loss(model: nn.Module, loader: Any, device: str | torch.device = "cpu") -> float:
    """Mean binary cross-entropy over a loader, in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    for batch in loader:
        inputs, y = batch_inputs(batch, device)
        total += float(loss_fn(model(*inputs), y))
        count += len(y)
    model.train(was_training)
    return total / max(count, 1)


@torch.no_grad()
def predict(model: nn.Module, loader: Any, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid scores and labels over a loader, in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    scores, labels = [], []
    for batch in loader:
        inputs, y = batch_inputs(batch, device)
        scores.append(torch.sigmoid(model(*inputs)).cpu().numpy())
        labels.append(y.cpu().numpy())
    model.train(was_training)
    return np.concatenate(scores), np.concatenate(labels)


def fit(model: nn.Module, train: Any, val: Any, epochs: int, lr: float = 1e-4, weight_decay: float = 1e-2,
        patience: int | None = None, device: str | torch.device = "cpu", progress: bool = True,
        strategy: Strategy | None = None) -> History:
    """Train with AdamW on binary cross-entropy; keep the weights of the epoch with the lowest validation loss.

    ``patience``: stop after this many epochs without improvement (None: run all ``epochs``). ``strategy``: how a
    minibatch updates the weights (default :class:`Strategy`, plain descent). The validation loss is always the
    clean loss in eval mode. Seed torch before calling (``hepnb.set_seed``) for reproducible CPU results.
    """
    strategy = Strategy() if strategy is None else strategy
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    history, best_state, best = History(), None, np.inf
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, delay=2.0)
    for epoch in bar:
        model.train()
        strategy.start_epoch(epoch)
        total, count = 0.0, 0
        start = time.perf_counter()
        for batch in train:
            inputs, y = batch_inputs(batch, device)
            total += strategy.step(model, optimiser, loss_fn, inputs, y) * len(y)
            count += len(y)
        history.epoch_seconds.append(time.perf_counter() - start)
        history.train_loss.append(total / max(count, 1))
        history.val_loss.append(evaluate_loss(model, val, device))
        bar.set_postfix(train=f"{history.train_loss[-1]:.4f}", val=f"{history.val_loss[-1]:.4f}")
        if history.val_loss[-1] < best:
            best, history.best_epoch = history.val_loss[-1], epoch
            best_state = copy.deepcopy(model.state_dict())
        elif patience is not None and epoch - history.best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.zero_grad(set_to_none=True)
    model.eval()
    return history
