"""The paper-000 dense tagger and the training loop."""

import numpy as np
import pytest
import torch

from hepnb.models import DenseTagger, n_parameters
from hepnb.training.loop import fit, predict


def test_parameter_count_is_table_vi():
    assert n_parameters(DenseTagger()) == 88_001  # paper 000, Table VI


def test_only_the_first_constituents_are_used():
    torch.manual_seed(0)
    model = DenseTagger(n_constituents=4).eval()
    x, jet = torch.randn(5, 10, 15), torch.randn(5, 2)
    changed = x.clone()
    changed[:, 4:] = torch.randn(5, 6, 15)
    assert torch.equal(model(x, jet), model(changed, jet))
    with pytest.raises(ValueError, match="expected x"):
        model(torch.randn(5, 3, 15), jet)


def _loaders(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.5).float()
    x = torch.randn(n, 6, 15, generator=g) + 1.5 * y[:, None, None]  # separable
    jet = torch.randn(n, 2, generator=g)
    batches = [{"x": x[i:i + 64], "jet": jet[i:i + 64], "mask": torch.ones(len(x[i:i + 64]), 6, dtype=torch.bool),
                "y": y[i:i + 64]} for i in range(0, n, 64)]
    return batches[:6], batches[6:]


def test_fit_learns_a_separable_problem_and_keeps_the_best_epoch():
    torch.manual_seed(1)
    train, val = _loaders()
    model = DenseTagger(n_constituents=6, hidden=(16, 8))
    history = fit(model, train, val, epochs=15, lr=3e-3, progress=False)
    scores, labels = predict(model, val)
    accuracy = np.mean((scores > 0.5) == labels)
    assert accuracy > 0.9, accuracy
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_fit_is_reproducible_on_cpu():
    train, val = _loaders()
    weights = []
    for _ in range(2):
        torch.manual_seed(3)
        model = DenseTagger(n_constituents=6, hidden=(16, 8))
        fit(model, train, val, epochs=3, lr=3e-3, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])
