"""hepnb.data.datasets.DictBatches (in order, shuffled, drawn by weight) and the ``monitor`` of
hepnb.training.loop.fit.

Weighted draws follow the weights within statistics and never pick a weight-0 example, seeds reproduce, a shuffle is
a permutation, bad weights and empty tensors are refused. The monitor runs once per epoch in eval mode without
gradients, its values land in ``History.monitored`` one per epoch, and training resumes in training mode.
"""

import time

import numpy as np
import pytest
import torch
from torch import nn

from hepnb.data.datasets import DictBatches
from hepnb.errors import SampleError
from hepnb.training.loop import Strategy, fit
from hepnb.training.tasks import BinaryTask


def tensors(n):
    """Examples identified by ``i`` (0..n-1), with a second tensor tied to the first (``y = 10 i``)."""
    i = torch.arange(n)
    return {"i": i, "y": 10 * i}


def drawn(batches):
    return torch.cat([b["i"] for b in batches])


# -- DictBatches ---------------------------------------------------------------------------------------------------


def test_weighted_draws_follow_the_weights():
    weights = np.array([1.0, 3.0, 0.0, 4.0, 0.0, 2.0])
    batches = DictBatches(tensors(6), batch_size=4, weights=weights, seed=1)
    passes = 4000
    counts = np.zeros(6)
    for _ in range(passes):
        one_pass = list(batches)
        assert [len(b["i"]) for b in one_pass] == [4, 2]  # each pass draws as many examples as there are
        counts += np.bincount(drawn(one_pass).numpy(), minlength=6)
    total = counts.sum()
    assert total == passes * 6
    p = weights / weights.sum()
    assert counts[2] == counts[4] == 0  # weight 0: never drawn
    sd = np.sqrt(total * p * (1 - p))
    assert np.all(np.abs(counts - total * p) < 4 * sd + 1e-9)


def test_weighted_batches_keep_the_tensors_aligned():
    batches = DictBatches(tensors(50), batch_size=7, weights=np.linspace(0, 1, 50), seed=2)
    for batch in batches:
        assert torch.equal(batch["y"], 10 * batch["i"])


def test_weighted_draws_are_with_replacement_and_new_every_pass():
    batches = DictBatches(tensors(100), batch_size=100, weights=np.ones(100), seed=3)
    first, second = drawn(batches), drawn(batches)
    assert len(first) == 100 and len(torch.unique(first)) < 100  # repeats: with replacement
    assert not torch.equal(first, second)


def test_same_seed_same_batches():
    def passes(seed, **kwargs):
        batches = DictBatches(tensors(40), batch_size=16, seed=seed, **kwargs)
        return [drawn(batches) for _ in range(3)]

    for kwargs in ({"shuffle": True}, {"weights": np.arange(40) % 5}):
        a, b, c = passes(7, **kwargs), passes(7, **kwargs), passes(8, **kwargs)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_shuffle_is_a_new_permutation_every_pass():
    batches = DictBatches(tensors(37), batch_size=10, shuffle=True, seed=4)
    assert len(batches) == 4 and [len(b["i"]) for b in batches] == [10, 10, 10, 7]
    first, second = drawn(batches), drawn(batches)
    for order in (first, second):
        assert torch.equal(torch.sort(order).values, torch.arange(37))
    assert not torch.equal(first, second)
    for batch in batches:
        assert torch.equal(batch["y"], 10 * batch["i"])


def test_without_shuffle_or_weights_the_order_is_kept():
    batches = DictBatches(tensors(25), batch_size=10)
    assert torch.equal(drawn(batches), torch.arange(25))
    assert torch.equal(drawn(batches), torch.arange(25))


@pytest.mark.parametrize("weights", [[1, -1, 1, 1], [1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0],
                                     [1, float("nan"), 1, 1], [1, float("inf"), 1, 1]])
def test_bad_weights_are_refused(weights):
    with pytest.raises(SampleError, match="weights"):
        DictBatches(tensors(4), weights=np.array(weights, dtype=float))


@pytest.mark.parametrize("content", [{}, {"x": torch.empty(0)}, {"x": torch.zeros(3), "y": torch.zeros(4)}])
def test_empty_or_ragged_tensors_are_refused(content):
    with pytest.raises(SampleError, match="non-empty tensors of one length"):
        DictBatches(content)


# -- fit(monitor=...) ----------------------------------------------------------------------------------------------


class Tiny(nn.Module):
    """A logistic regression with a BatchNorm (so eval and training mode differ) that records, per call, whether it
    was in training mode, whether gradients were on, and the mode of its BatchNorm."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(3)
        self.linear = nn.Linear(3, 1)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, self.norm.training, torch.is_grad_enabled()))
        return self.linear(self.norm(x)).squeeze(-1)


def dict_batches(n_batches, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        x = torch.randn(16, 3, generator=g)
        out.append({"x": x, "y": (x[:, 0] > 0).float()})
    return out


class Recorder:
    """A monitor: records the model's state when called, returns two values per epoch."""

    def __init__(self, probe):
        self.probe, self.seen = probe, []

    def __call__(self, model, epoch):
        stats = model.norm.running_mean.clone()
        out = model(self.probe["x"])
        self.seen.append({"epoch": epoch, "training": model.training, "norm_training": model.norm.training,
                          "grad": torch.is_grad_enabled(), "requires_grad": out.requires_grad,
                          "stats_unchanged": torch.equal(stats, model.norm.running_mean)})
        return {"mean_score": float(torch.sigmoid(out).mean()), "epoch_twice": 2 * epoch}


def test_monitor_runs_once_per_epoch_in_eval_mode_without_gradients():
    torch.manual_seed(0)
    model = Tiny()
    monitor = Recorder(dict_batches(1, seed=9)[0])
    history = fit(model, dict_batches(4, seed=1), dict_batches(2, seed=2), epochs=3, lr=1e-2, progress=False,
                  task=BinaryTask(input_keys=("x",)), monitor=monitor)
    assert [s["epoch"] for s in monitor.seen] == [0, 1, 2]
    for state in monitor.seen:
        assert state["training"] is False and state["norm_training"] is False  # every module, not just the top
        assert state["grad"] is False and state["requires_grad"] is False
        assert state["stats_unchanged"]  # eval mode: BatchNorm's running statistics are not updated
    assert set(history.monitored) == {"mean_score", "epoch_twice"}
    assert history.monitored["epoch_twice"] == [0.0, 2.0, 4.0]
    assert len(history.monitored["mean_score"]) == len(history.train_loss) == 3
    assert all(isinstance(v, float) and 0 < v < 1 for v in history.monitored["mean_score"])
    assert history.as_dict()["monitored"] == history.monitored


def test_training_resumes_in_training_mode_after_the_monitor():
    torch.manual_seed(0)
    model = Tiny()
    steps = []

    class Watch(Strategy):
        def step(self, model, optimiser, task, batch):
            steps.append((model.training, model.norm.training))
            return super().step(model, optimiser, task, batch)

    fit(model, dict_batches(3, seed=1), dict_batches(1, seed=2), epochs=3, lr=1e-2, progress=False,
        task=BinaryTask(input_keys=("x",)), monitor=Recorder(dict_batches(1, seed=3)[0]), strategy=Watch())
    assert len(steps) == 9 and all(flags == (True, True) for flags in steps)
    # the training forward passes had gradients; the monitor's and validation's did not
    training_calls = [c for c in model.calls if c[0]]
    assert len(training_calls) == 9 and all(c == (True, True, True) for c in training_calls)
    assert all(c == (False, False, False) for c in model.calls if not c[0])
    # fit leaves the model in eval mode, every module
    assert not any(m.training for m in model.modules())


class Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x).squeeze(-1)


def test_monitor_values_follow_early_stopping_and_its_time_is_not_counted():
    torch.manual_seed(0)

    def slow(model, epoch):
        time.sleep(0.1)
        return {"epoch": epoch}

    # learning rate 0: the validation loss never improves after epoch 0, so patience 2 stops after epoch 2
    history = fit(Logistic(), dict_batches(2, seed=1), dict_batches(1, seed=2), epochs=50, patience=2,
                  progress=False, task=BinaryTask(input_keys=("x",)), monitor=slow,
                  make_optimiser=lambda params: torch.optim.SGD(params, lr=0.0))
    assert len(history.train_loss) == 3 and history.best_epoch == 0
    assert history.monitored["epoch"] == [0.0, 1.0, 2.0]
    assert len(history.epoch_seconds) == 3
    assert all(s < 0.1 for s in history.epoch_seconds)  # the monitor's sleep is not in the epoch's time


def test_without_a_monitor_nothing_is_monitored():
    torch.manual_seed(0)
    history = fit(Logistic(), dict_batches(2, seed=1), dict_batches(1, seed=2), epochs=2, progress=False,
                  task=BinaryTask(input_keys=("x",)))
    assert history.monitored == {}
