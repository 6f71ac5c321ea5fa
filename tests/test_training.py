"""The training core: one fit for any task. A multi-class task on non-jet inputs, a contrastive task on paired views
with no labels, a soft invariance penalty and distillation to a teacher all train without touching the loop; NT-Xent
and the penalty equal their definitions."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from hepnb.training.loop import History, Strategy, evaluate, fit, predict
from hepnb.training.tasks import (
    BinaryTask,
    ContrastiveTask,
    DistillationTask,
    InvariancePenaltyTask,
    MultiClassTask,
    Task,
    nt_xent,
)


def _four_vector_batches(n=600, n_classes=3, seed=0):
    """Events that are not jets: one 4-vector per example, class k has its momentum along axis k."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=g)
    p4 = torch.randn(n, 4, generator=g)
    p4[torch.arange(n), y] += 2.5
    batches = [{"p4": p4[i:i + 50], "label": y[i:i + 50]} for i in range(0, n, 50)]
    return batches[:8], batches[8:]


def test_a_toy_multiclass_task_on_non_jet_inputs_trains_with_the_same_fit():
    torch.manual_seed(0)
    train, val = _four_vector_batches()
    task = MultiClassTask(input_keys=("p4",), target_key="label", n_classes=3)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    history = fit(model, train, val, epochs=25, lr=1e-2, progress=False, task=task)
    probabilities, labels = predict(model, val, task=task)
    assert probabilities.shape == (200, 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert history.metric == "accuracy" and len(history.val_metric) == 25
    assert task.metric(probabilities, labels) > 0.85
    assert history.val_metric[history.best_epoch] == pytest.approx(task.metric(probabilities, labels))
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    with pytest.raises(ValueError, match="outputs"):
        task.criterion(torch.zeros(5, 2), torch.zeros(5))
    with pytest.raises(KeyError, match="'label'"):
        task.targets({"p4": torch.zeros(2, 4)})


def test_a_toy_contrastive_task_without_labels_learns_to_match_views():
    """Two noisy views of the same latent point: after training, a view's nearest neighbour among the other views
    is its own partner far more often than by chance."""
    g = torch.Generator().manual_seed(1)
    latent = torch.randn(512, 8, generator=g)
    views = latent[:, None, :] + 0.3 * torch.randn(512, 2, 8, generator=g)
    batches = [{"x": views[i:i + 64]} for i in range(0, 512, 64)]
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 8))
    task = ContrastiveTask(input_keys=("x",), temperature=0.1)
    before = evaluate(encoder, batches[6:], task)[0]
    history = fit(encoder, batches[:6], batches[6:], epochs=15, lr=3e-3, progress=False, task=task)
    assert history.val_loss[history.best_epoch] < 0.7 * before
    assert math.isnan(history.val_metric[0])  # no labels, no metric: the validation loss decides
    with torch.no_grad():
        z0 = nn.functional.normalize(encoder(views[384:, 0]), dim=1)
        z1 = nn.functional.normalize(encoder(views[384:, 1]), dim=1)
    top1 = (z0 @ z1.T).argmax(1) == torch.arange(128)
    assert top1.float().mean() > 0.5  # chance is 1/128
    embeddings, targets = predict(encoder, batches[6:], task=task)
    assert embeddings.shape == (128, 8) and targets is None
    with pytest.raises(ValueError, match="two views"):
        task.inputs({"x": torch.zeros(4, 3, 8)})


def test_nt_xent_equals_its_definition():
    g = torch.Generator().manual_seed(2)
    z1, z2, tau = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), 0.2
    z = nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    terms = []
    for i in range(10):
        partner = (i + 5) % 10
        others = [k for k in range(10) if k != i]
        denominator = sum(torch.exp(z[i] @ z[k] / tau) for k in others)
        terms.append(-torch.log(torch.exp(z[i] @ z[partner] / tau) / denominator))
    assert torch.isclose(nt_xent(z1, z2, tau), torch.stack(terms).mean(), atol=1e-5)
    # identical, well-separated views give a loss near its floor
    basis = torch.eye(4)
    assert nt_xent(basis, basis, 0.01) < 1e-3
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z1, z2, 0.0)
    with pytest.raises(ValueError, match="B >= 2"):
        nt_xent(z1[:1], z2[:1])


def test_nt_xent_scales_with_the_temperature():
    """The temperature divides the cosine logits; with orthonormal identical views the loss is
    log(1 + (2B - 2) exp(-1/tau)) exactly, falling monotonically as tau falls; at large tau every other vector is as
    likely as the partner, and the loss tends to log(2B - 1)."""
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    cosine = nn.functional.cosine_similarity(torch.cat([z1, z2])[:, None], torch.cat([z1, z2])[None], dim=-1)
    partner = torch.tensor([6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5])
    for tau in (0.05, 0.3, 1.0, 7.0):
        logits = (cosine / tau).fill_diagonal_(-math.inf)
        assert torch.isclose(nt_xent(z1, z2, tau), nn.functional.cross_entropy(logits, partner), rtol=1e-12)
    basis, b = 3.0 * torch.eye(5, dtype=torch.float64), 5  # the scale is normalised away
    taus = [4.0, 1.0, 0.5, 0.2, 0.1, 0.05]
    losses = [float(nt_xent(basis, basis, tau)) for tau in taus]
    assert losses == pytest.approx([math.log1p((2 * b - 2) * math.exp(-1 / tau)) for tau in taus], rel=1e-12)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    at_large = [float(nt_xent(z1, z2, tau)) for tau in (10.0, 100.0, 1e4)]
    gaps = [abs(loss - math.log(2 * 6 - 1)) for loss in at_large]
    assert gaps[-1] < 1e-4 and gaps[0] > gaps[1] > gaps[2]


class _Quadratic(Task):
    """A task with no data at all: the loss of a one-parameter model is (w - 3)^2."""

    metric_name = "w"

    def inputs(self, batch):
        return (batch["dummy"],)

    def loss(self, model, batch, inputs=None):
        return (model.w - 3.0) ** 2

    def predict(self, model, batch):
        return model.w.detach().reshape(1), None

    def metric(self, predictions, targets):
        return float(predictions.mean())


class _Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


def test_fit_takes_any_task_optimiser_and_scheduler_and_records_the_metric():
    model, batches = _Scalar(), [{"dummy": torch.zeros(1, 1)}]
    lrs = []

    class Recording(Strategy):
        def start_epoch(self, epoch):
            lrs.append(optimiser_box[0].param_groups[0]["lr"])

    optimiser_box = []

    def make_optimiser(params):
        optimiser_box.append(torch.optim.SGD(params, lr=0.1))
        return optimiser_box[0]

    history = fit(model, batches, batches, epochs=40, task=_Quadratic(), strategy=Recording(), progress=False,
                  make_optimiser=make_optimiser,
                  make_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5))
    w = float(model.w.detach())
    # SGD on (w - 3)^2 shrinks the error by 1 - 2 lr per step: 20 epochs at lr 0.1, then 20 at 0.05
    assert w == pytest.approx(3.0 - 3.0 * 0.8**20 * 0.9**20, rel=1e-5)
    assert lrs[0] == pytest.approx(0.1) and lrs[25] == pytest.approx(0.05)  # stepped once per epoch
    assert history.metric == "w" and history.val_metric[history.best_epoch] == pytest.approx(w)
    assert set(history.as_dict()) == {"metric", "train_loss", "val_loss", "val_metric", "epoch_seconds", "best_epoch",
                                      "monitored"}


def test_binary_task_predictions_are_sigmoid_scores_and_the_metric_is_auc():
    task = BinaryTask()
    model = nn.Linear(3, 1)
    batch = {"x": torch.randn(8, 3), "y": torch.tensor([0, 1] * 4).float()}
    task = BinaryTask(input_keys=("x",))
    scores, labels = task.predict(lambda x: model(x).squeeze(-1), batch)
    assert torch.all((scores > 0) & (scores < 1)) and torch.equal(labels, batch["y"])
    assert task.metric(np.array([0.1, 0.9, 0.2, 0.8]), np.array([0, 1, 0, 1])) == 1.0
    assert math.isnan(task.metric(np.array([0.1, 0.9]), np.array([1, 1])))  # one class: AUC undefined


def test_fit_refuses_nonsense():
    model, batches = _Scalar(), [{"dummy": torch.zeros(1, 1)}]
    with pytest.raises(ValueError, match="epochs"):
        fit(model, batches, batches, epochs=0, task=_Quadratic())
    with pytest.raises(ValueError, match="lr"):
        fit(model, batches, batches, epochs=1, lr=-1.0, task=_Quadratic())
    with pytest.raises(ValueError, match="empty"):
        fit(model, [], batches, epochs=1, task=_Quadratic(), progress=False)
    assert isinstance(History(), History)


def _signal_in_two_features(n=512, seed=3):
    """Binary toy data: the label sits in x[:, 0] and, more weakly, in x[:, 1]; the symmetry g flips x[:, 0]."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.5).float()
    x = torch.randn(n, 4, generator=g)
    x[:, 0] += 2.0 * (2 * y - 1)
    x[:, 1] += 1.0 * (2 * y - 1)
    batches = [{"x": x[i:i + 64], "y": y[i:i + 64]} for i in range(0, n, 64)]
    return batches[:6], batches[6:]


def _flip_first(batch):
    x = batch["x"].clone()
    x[:, 0] = -x[:, 0]
    return {**batch, "x": x}


def test_invariance_penalty_equals_its_definition_and_makes_the_model_invariant():
    train, val = _signal_in_two_features()
    base = BinaryTask(input_keys=("x",))
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    batch = train[0]
    same = InvariancePenaltyTask(base, transform=lambda b: b, weight=5.0)
    assert torch.equal(same.loss(model, batch), base.loss(model, batch))  # g = identity: no penalty
    task = InvariancePenaltyTask(base, transform=_flip_first, weight=5.0)
    p, q = torch.sigmoid(model(batch["x"])), torch.sigmoid(model(_flip_first(batch)["x"]))
    assert torch.isclose(task.loss(model, batch), base.loss(model, batch) + 5.0 * ((p - q) ** 2).mean())
    gaps = {}
    for name, t in (("plain", base), ("penalised", task)):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
        history = fit(net, train, val, epochs=30, lr=1e-2, progress=False, task=t)
        assert history.metric == "AUC" and history.val_metric[-1] > 0.7
        with torch.no_grad():
            gaps[name] = float(sum(task.penalty(net, b) for b in val) / len(val))
    assert gaps["penalised"] < 0.2 * gaps["plain"]  # the soft constraint made the model (nearly) invariant under g
    zero = InvariancePenaltyTask(base, transform=_flip_first, weight=0.0)  # lambda = 0 is exactly the base loss
    assert torch.equal(zero.loss(model, batch), base.loss(model, batch))
    for bad in (-0.1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="weight"):
            InvariancePenaltyTask(base, transform=_flip_first, weight=bad)


def test_distillation_fits_the_teacher_logits_and_leaves_the_teacher_alone():
    train, val = _signal_in_two_features(seed=4)
    base = BinaryTask(input_keys=("x",))
    torch.manual_seed(1)
    teacher = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
    fit(teacher, train, val, epochs=20, lr=1e-2, progress=False, task=base)
    teacher.train()  # the task must evaluate it in eval mode anyway, and restore its mode
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    task = DistillationTask(base, teacher)
    torch.manual_seed(2)
    student = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1), nn.Flatten(0))
    before = evaluate(student, val, task)[0]
    history = fit(student, train, val, epochs=40, lr=1e-2, progress=False, task=task)
    assert history.val_loss[history.best_epoch] < 0.1 * before  # the student reproduces the teacher's logits
    assert teacher.training and all(torch.equal(v, frozen[k]) for k, v in teacher.state_dict().items())
    scores, labels = predict(student, val, task=task)
    teacher_scores, _ = predict(teacher, val, task=base)
    assert abs(task.metric(scores, labels) - base.metric(teacher_scores, labels)) < 0.03  # scored like the teacher
    with pytest.raises(ValueError, match="teacher"):
        DistillationTask(base, teacher="not a model")
