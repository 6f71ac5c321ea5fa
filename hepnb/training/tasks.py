"""Tasks: what a batch becomes (the model's inputs), what is minimised (the loss), what a prediction is, and how a
prediction is scored. Explained in ``book/landscape/sharpness.ipynb``.

:func:`hepnb.training.loop.fit` knows nothing about jets, labels or losses: it asks the task. A chapter that learns
something new brings a new task and leaves the loop alone:

* :class:`BinaryTask`: one logit per example, binary cross-entropy, sigmoid scores, AUC (the taggers of Rothen et
  al. and Harris et al.);
* :class:`MultiClassTask`: one logit per class, cross-entropy, softmax probabilities, accuracy (Glowacki's five
  jet classes);
* :class:`ContrastiveTask`: two views of each example and no labels, the NT-Xent loss of SimCLR (the pre-training of
  Harris et al.);
* :class:`InvariancePenaltyTask`: any supervised task plus ``weight * mean((p(x) - p(g x))^2)`` for a transformation
  ``g`` of the batch (the soft symmetry loss of Glowacki's SEAL, with ``g`` a Lorentz boost);
* :class:`AugmentedTask`: any supervised task on the batch and its transformed copy, without a penalty (the
  control that separates SEAL's penalty from its more varied data);
* :class:`DistillationTask`: a student fitted to a frozen teacher's logits by mean squared error (Glowacki's
  distillation), scored like the task it imitates.

Batches are dicts of tensors. A supervised task names the keys it feeds to the model (``input_keys``, called
``model(*inputs)``) and the key of its target, so jets ``("x", "jet", "mask")`` and dimuon 4-vectors ``("p4",)`` are
the same to the loop. Strategies that attack the inputs (:mod:`hepnb.training.adversarial`) use
:meth:`Task.inputs` and the ``inputs=`` argument of :meth:`Task.loss`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from hepnb.models import mode
from hepnb.validation import check_int, check_positive

__all__ = ["Batch", "Task", "SupervisedTask", "BinaryTask", "MultiClassTask", "ContrastiveTask", "nt_xent",
           "InvariancePenaltyTask", "AugmentedTask", "DistillationTask", "move"]

Batch = Mapping[str, Any]


def move(batch: Batch, device: str | torch.device) -> dict[str, Any]:
    """A copy of ``batch`` with every tensor on ``device`` (other values are kept as they are)."""
    return {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}


class Task:
    """What is learned from a batch. Subclasses implement :meth:`inputs`, :meth:`loss` and :meth:`predict`.

    ``metric_name`` names the score :meth:`metric` computes on a whole validation or test set ("" if the task has
    none: the validation loss then decides alone).
    """

    metric_name: str = ""

    def inputs(self, batch: Batch) -> tuple[Tensor, ...]:
        """The tensors the model is called with, ``model(*inputs)``."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch, inputs: tuple[Tensor, ...] | None = None) -> Tensor:
        """The scalar (mean) loss of one batch; ``inputs`` replaces :meth:`inputs` (an attacked copy, say)."""
        raise NotImplementedError

    def predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """``(predictions, targets)`` of one batch (targets ``None`` without labels)."""
        raise NotImplementedError

    def loss_and_predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(loss, predictions, targets)`` of one batch (used for validation; one forward pass where possible)."""
        return (self.loss(model, batch), *self.predict(model, batch))

    def batch_size(self, batch: Batch) -> int:
        """Number of examples in ``batch`` (the leading size of its first input)."""
        return int(self.inputs(batch)[0].shape[0])

    def metric(self, predictions: np.ndarray, targets: np.ndarray | None) -> float:
        """The task's score over a whole set; NaN when it has none or it is undefined."""
        return float("nan")


def _keys(name: str, keys: str | Sequence[str]) -> tuple[str, ...]:
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError(f"{name} must name at least one batch key, got {keys!r}")
    return keys


def _get(batch: Batch, key: str) -> Any:
    try:
        return batch[key]
    except KeyError:
        raise KeyError(f"the batch has no {key!r}; it has {', '.join(map(str, batch))}") from None


@dataclass
class SupervisedTask(Task):
    """A task with a target per example: the model maps ``input_keys`` to outputs scored against ``target_key``.

    Subclasses set :meth:`criterion` (outputs, targets → mean loss) and :meth:`prediction` (outputs → what is
    reported, e.g. probabilities).
    """

    input_keys: tuple[str, ...] = ("x", "jet", "mask")
    target_key: str = "y"

    def __post_init__(self) -> None:
        self.input_keys = _keys("input_keys", self.input_keys)
        self.target_key = _keys("target_key", self.target_key)[0]

    def inputs(self, batch: Batch) -> tuple[Tensor, ...]:
        return tuple(_get(batch, k) for k in self.input_keys)

    def targets(self, batch: Batch) -> Tensor:
        return _get(batch, self.target_key)

    def criterion(self, outputs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def prediction(self, outputs: Tensor) -> Tensor:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch, inputs: tuple[Tensor, ...] | None = None) -> Tensor:
        outputs = model(*(self.inputs(batch) if inputs is None else inputs))
        return self.criterion(outputs, self.targets(batch))

    def predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        return self.prediction(model(*self.inputs(batch))), self.targets(batch)

    def loss_and_predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        outputs, targets = model(*self.inputs(batch)), self.targets(batch)
        return self.criterion(outputs, targets), self.prediction(outputs), targets


@dataclass
class BinaryTask(SupervisedTask):
    """One logit per example, targets 0/1: binary cross-entropy on logits, sigmoid scores, AUC."""

    metric_name = "AUC"

    def criterion(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(outputs, targets.to(outputs.dtype))

    def prediction(self, outputs: Tensor) -> Tensor:
        return torch.sigmoid(outputs)

    def metric(self, predictions: np.ndarray, targets: np.ndarray | None) -> float:
        from hepnb.evaluation.metrics import auc

        if targets is None or len(np.unique(targets)) < 2:
            return float("nan")
        return auc(targets.astype(int), predictions)


@dataclass
class MultiClassTask(SupervisedTask):
    """``n_classes`` logits per example, integer targets ``0 .. n_classes-1``: cross-entropy, softmax
    probabilities, accuracy (the arg-max prediction equals the target)."""

    n_classes: int = 2
    metric_name = "accuracy"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_classes = check_int("n_classes", self.n_classes, minimum=2)

    def criterion(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if outputs.ndim != 2 or outputs.shape[1] != self.n_classes:
            raise ValueError(f"a {self.n_classes}-class task needs outputs (B, {self.n_classes}), "
                             f"got {tuple(outputs.shape)}")
        return F.cross_entropy(outputs, targets.long())

    def prediction(self, outputs: Tensor) -> Tensor:
        return torch.softmax(outputs, dim=-1)

    def metric(self, predictions: np.ndarray, targets: np.ndarray | None) -> float:
        if targets is None or len(targets) == 0:
            return float("nan")
        return float(np.mean(np.argmax(predictions, axis=-1) == targets.astype(int)))


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> Tensor:
    """The normalised temperature-scaled cross-entropy of SimCLR (Chen et al.; Harris et al., eq. 2).

    ``z1[i]`` and ``z2[i]`` (B, D) are the representations of two views of example ``i``. Each of the 2B vectors is
    L2-normalised; for each, its partner is the positive and the other 2B - 2 vectors are the negatives, with cosine
    similarities divided by ``temperature``: ``-log(exp(s_pos) / sum_{k != self} exp(s_k))``, averaged over all 2B.
    Explained in ``book/landscape/sharpness.ipynb`` (the training core) and used by the RS3L chapter.
    """
    check_positive("temperature", temperature)
    if z1.shape != z2.shape or z1.ndim != 2 or z1.shape[0] < 2:
        raise ValueError(f"nt_xent needs two (B, D) batches with B >= 2, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), -math.inf)
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, partner)


@dataclass
class ContrastiveTask(Task):
    """Two views of every example and no labels: ``model`` maps one view to a representation, and the NT-Xent loss
    (:func:`nt_xent`) pulls the two views of an example together and pushes the others apart.

    Each of ``input_keys`` holds both views on axis 1, shaped ``(B, 2, ...)`` (the paired re-simulated jets of the
    data chapter: one hard event, two showers); view ``k`` is called as ``model(*(batch[key][:, k] for key in
    input_keys))``. :meth:`predict` gives the representations of the first view.
    """

    input_keys: tuple[str, ...] = ("x", "jet", "mask")
    temperature: float = 0.1

    def __post_init__(self) -> None:
        self.input_keys = _keys("input_keys", self.input_keys)
        self.temperature = check_positive("temperature", self.temperature)

    def inputs(self, batch: Batch) -> tuple[Tensor, ...]:
        paired = tuple(_get(batch, k) for k in self.input_keys)
        for key, t in zip(self.input_keys, paired):
            if t.ndim < 2 or t.shape[1] != 2:
                raise ValueError(f"{key!r} must hold two views on axis 1, shaped (B, 2, ...); got {tuple(t.shape)}")
        return paired

    def view(self, inputs: tuple[Tensor, ...], k: int) -> tuple[Tensor, ...]:
        """The model inputs of view ``k`` (0 or 1)."""
        return tuple(t[:, k] for t in inputs)

    def loss(self, model: nn.Module, batch: Batch, inputs: tuple[Tensor, ...] | None = None) -> Tensor:
        paired = self.inputs(batch) if inputs is None else inputs
        z1, z2 = self.representations(model, paired)
        return nt_xent(z1, z2, self.temperature)

    def representations(self, model: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        """The representations of both views, from one forward pass over the 2B examples (a model whose output for
        an example depends on the rest of its batch, like one with batch normalisation in training mode, would see
        both views in one batch)."""
        z = model(*(torch.cat([t[:, 0], t[:, 1]]) for t in inputs))
        return z[: len(z) // 2], z[len(z) // 2:]

    def predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, None]:
        return model(*self.view(self.inputs(batch), 0)), None


@dataclass
class InvariancePenaltyTask(Task):
    """``base``'s loss plus a soft invariance penalty, ``weight * mean((p(x) - p(g x))^2)``.

    ``transform(batch) -> batch`` is the symmetry transformation ``g`` (for SEAL a random Lorentz boost per example
    with the features recomputed); ``p`` is ``base.prediction`` of the model outputs (probabilities, as in the SEAL
    authors' code), and the gradient flows through both terms. Predictions and the metric are ``base``'s on the
    untransformed batch. A new ``g`` is drawn at every call, so the validation loss sees fresh transformations too.
    """

    base: SupervisedTask
    transform: Callable[[Batch], Batch]
    weight: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not self.weight >= 0 \
                or not math.isfinite(self.weight):
            raise ValueError(f"weight must be a finite number >= 0 (0 gives the base loss), got {self.weight!r}")
        if not callable(self.transform):
            raise ValueError("transform must be callable as transform(batch) -> transformed batch")
        self.metric_name = self.base.metric_name

    def inputs(self, batch: Batch) -> tuple[Tensor, ...]:
        return self.base.inputs(batch)

    def _consistency(self, model: nn.Module, outputs: Tensor, batch: Batch) -> Tensor:
        """``mean((p(x) - p(g x))^2)`` given the model's outputs on ``x``."""
        q = self.base.prediction(model(*self.base.inputs(self.transform(batch))))
        return ((self.base.prediction(outputs) - q) ** 2).mean()

    def penalty(self, model: nn.Module, batch: Batch, inputs: tuple[Tensor, ...] | None = None) -> Tensor:
        """``mean((p(x) - p(g x))^2)`` over the batch."""
        return self._consistency(model, model(*(self.inputs(batch) if inputs is None else inputs)), batch)

    def loss(self, model: nn.Module, batch: Batch, inputs: tuple[Tensor, ...] | None = None) -> Tensor:
        if self.weight == 0:  # exactly the base loss (and no second forward pass)
            return self.base.loss(model, batch, inputs)
        outputs = model(*(self.inputs(batch) if inputs is None else inputs))  # one forward pass on x for both terms
        return self.base.criterion(outputs, self.base.targets(batch)) + self.weight * self._consistency(
            model, outputs, batch)

    def predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        return self.base.predict(model, batch)

    def metric(self, predictions: np.ndarray, targets: np.ndarray | None) -> float:
        return self.base.metric(predictions, targets)


@dataclass
class AugmentedTask(Task):
    """``base``'s loss on the batch and on its transformed copy ``g x``, averaged: the data a soft symmetry loss
    sees, without its consistency term. The control of ``book/simplicity/simplicity.ipynb``, which separates "the
    SEAL penalty" from "more varied training data". A new ``g`` is drawn at every call; predictions and the metric
    are ``base``'s on the untransformed batch."""

    base: SupervisedTask
    transform: Callable[[Batch], Batch]

    def __post_init__(self) -> None:
        if not callable(self.transform):
            raise ValueError("transform must be callable as transform(batch) -> transformed batch")
        self.metric_name = self.base.metric_name

    def inputs(self, batch: Batch) -> tuple[Tensor, ...]:
        return self.base.inputs(batch)

    def loss(self, model: nn.Module, batch: Batch, inputs: tuple[Tensor, ...] | None = None) -> Tensor:
        return 0.5 * (self.base.loss(model, batch, inputs) + self.base.loss(model, self.transform(batch)))

    def predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        return self.base.predict(model, batch)

    def metric(self, predictions: np.ndarray, targets: np.ndarray | None) -> float:
        return self.base.metric(predictions, targets)


@dataclass
class DistillationTask(Task):
    """Fit a student to a frozen ``teacher``: mean squared error between the student's and the teacher's logits on
    the same inputs. The teacher runs in eval mode without gradients; predictions and the metric are ``base``'s
    (the task the teacher was trained on), so a student is scored like its teacher."""

    base: SupervisedTask
    teacher: nn.Module

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, nn.Module):
            raise ValueError(f"teacher must be an nn.Module, got {type(self.teacher).__name__}")
        self.metric_name = self.base.metric_name

    def inputs(self, batch: Batch) -> tuple[Tensor, ...]:
        return self.base.inputs(batch)

    def teacher_logits(self, inputs: tuple[Tensor, ...]) -> Tensor:
        with torch.no_grad(), mode(self.teacher, False):
            return self.teacher(*inputs)

    def loss(self, model: nn.Module, batch: Batch, inputs: tuple[Tensor, ...] | None = None) -> Tensor:
        inputs = self.inputs(batch) if inputs is None else inputs
        return F.mse_loss(model(*inputs), self.teacher_logits(inputs))

    def predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        return self.base.predict(model, batch)

    def metric(self, predictions: np.ndarray, targets: np.ndarray | None) -> float:
        return self.base.metric(predictions, targets)
