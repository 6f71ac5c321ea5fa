"""hepnb.set_seed: same seed, same numbers (python, numpy, torch, a tiny training run)."""

import random

import numpy as np
import pytest
import torch

from hepnb import ConfigError, set_seed


def _draws():
    return (random.random(), np.random.rand(3).tolist(), torch.randn(3).tolist())


def _train_tiny_model(seed):
    set_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64, 1)).float()
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_draws():
    set_seed(123)
    first = _draws()
    set_seed(123)
    assert _draws() == first


def test_different_seed_different_draws():
    set_seed(1)
    first = _draws()
    set_seed(2)
    second = _draws()
    assert all(a != b for a, b in zip(first, second))


def test_returned_generator_is_seeded():
    assert np.array_equal(set_seed(5).normal(size=4), set_seed(5).normal(size=4))
    assert not np.array_equal(set_seed(5).normal(size=4), set_seed(6).normal(size=4))


def test_training_is_bitwise_reproducible_on_cpu():
    assert torch.equal(_train_tiny_model(7), _train_tiny_model(7))
    assert not torch.equal(_train_tiny_model(7), _train_tiny_model(8))


@pytest.mark.parametrize("bad", [-1, 2**32, 0.5, "1", None])
def test_bad_seed(bad):
    with pytest.raises(ConfigError, match="seed"):
        set_seed(bad)
