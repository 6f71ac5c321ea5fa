"""Scores of paper 000 on inputs with known answers; load-or-train checkpoints; in-memory minibatches."""

import numpy as np
import pytest
import torch

from hepnb.evaluation import metrics
from hepnb.training import checkpoints
from hepnb.training.checkpoints import CheckpointError, load_checkpoint, load_or_train, save_checkpoint
from hepnb.models.dense import DenseTagger


def test_auc_and_rejection_on_a_known_ranking():
    # background scores 0..99, signal scores 20..119: 85% of the signal is above 35 -> eps_B at 0.85 is 64/100
    bkg, sig = np.arange(100.0), np.arange(20.0, 120.0)
    labels = np.r_[np.zeros(100), np.ones(100)]
    scores = np.r_[bkg, sig]
    # P(sig > bkg) for the shifted uniform grids
    want_auc = np.mean(sig[:, None] > bkg[None, :]) + 0.5 * np.mean(sig[:, None] == bkg[None, :])
    assert metrics.auc(labels, scores) == pytest.approx(want_auc)
    assert metrics.rejection_at(labels, scores, 0.85) == pytest.approx(100 / 64, rel=0.02)
    cut = metrics.threshold_at(labels, scores, 0.85)
    assert np.mean(sig >= cut) == pytest.approx(0.85)
    eff, rej = metrics.rejection_curve(labels, scores)
    assert np.all(np.diff(eff) >= 0) and np.all(np.isfinite(rej)) and rej.min() == pytest.approx(1.0)
    # perfect separation: AUC 1, infinite rejection
    perfect = np.r_[np.zeros(100), np.ones(100) + 5]
    assert metrics.auc(labels, perfect) == 1.0 and metrics.rejection_at(labels, perfect, 0.85) == np.inf


def test_scores_refuse_bad_input():
    with pytest.raises(ValueError, match="one class"):
        metrics.auc(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="strictly between"):
        metrics.rejection_at(np.r_[0, 1], np.r_[0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="0 \\(background\\) or 1"):
        metrics.auc(np.r_[0, 2], np.r_[0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        metrics.auc(np.r_[0, 1], np.r_[0.0, np.nan])


def test_delta_s_is_eq14():
    # default 0.953 (Pythia -> Herwig), target 0.974 (Herwig -> Herwig): SAM's 0.962 is 9/21 of the way
    assert metrics.delta_s(0.962, 0.953, 0.974) == pytest.approx(9 / 21)
    assert metrics.delta_s(0.953, 0.953, 0.974) == 0.0 and metrics.delta_s(0.974, 0.953, 0.974) == 1.0
    assert np.allclose(metrics.delta_s(np.r_[0.95, 0.96], 0.95, 0.97), [0.0, 0.5])
    with pytest.raises(ValueError, match="zero gap"):
        metrics.delta_s(0.9, 0.95, 0.95)


def test_jensen_shannon_known_values():
    p = np.array([1.0, 2.0, 3.0])
    assert metrics.jensen_shannon(p, 2 * p) == pytest.approx(0.0, abs=1e-12)  # normalised first
    assert metrics.jensen_shannon(np.r_[1.0, 0.0], np.r_[0.0, 1.0]) == pytest.approx(1.0)  # disjoint: 1 bit
    # half overlap: JSD = 0.5 bit
    assert metrics.jensen_shannon(np.r_[1.0, 1.0, 0.0], np.r_[0.0, 1.0, 1.0]) == pytest.approx(0.5)
    a, b = np.r_[0.2, 0.8], np.r_[0.6, 0.4]
    assert metrics.jensen_shannon(a, b) == pytest.approx(metrics.jensen_shannon(b, a))


def test_mass_sculpting_zero_for_mass_blind_scores_and_large_for_a_mass_cut():
    rng = np.random.default_rng(0)
    n = 20000
    labels = np.r_[np.zeros(n), np.ones(n)].astype(int)
    mass = np.r_[rng.uniform(0, 300, n), rng.normal(125, 10, n)]
    blind = np.r_[rng.normal(0, 1, n), rng.normal(1.5, 1, n)]  # independent of mass
    sculpting = -np.abs(mass - 125)  # a mass window
    low = metrics.mass_sculpting(mass, labels, blind, eff=0.5)[0]
    high = metrics.mass_sculpting(mass, labels, sculpting, eff=0.5)[0]
    assert low < 0.01 and high > 0.5


def test_load_or_train_trains_once_and_reloads(tmp_path):
    key = {"method": "default", "seed": 1}
    calls = []

    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.head.bias.fill_(3.25)
        return {"best_epoch": 4}

    model = DenseTagger(n_constituents=2, hidden=(4,))
    meta, trained = load_or_train("test", key, model, train, folder=tmp_path)
    assert trained and meta == {"best_epoch": 4} and len(calls) == 1
    again = DenseTagger(n_constituents=2, hidden=(4,))
    meta, trained = load_or_train("test", key, again, train, folder=tmp_path)
    assert not trained and len(calls) == 1 and meta == {"best_epoch": 4}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not again.training
    # another key, another file
    other = checkpoints.checkpoint_path("test", {**key, "seed": 2}, tmp_path)
    assert other != checkpoints.checkpoint_path("test", key, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [checkpoints.checkpoint_path("test", key, tmp_path).name]


def test_bad_checkpoints_are_named_and_retrained(tmp_path):
    key = {"seed": 0}
    model = DenseTagger(n_constituents=2, hidden=(4,))
    path = checkpoints.checkpoint_path("test", key, tmp_path)
    path.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path, model, key)
    meta, trained = load_or_train("test", key, model, lambda m: {"ok": True}, folder=tmp_path)
    assert trained and load_checkpoint(path, model, key) == {"ok": True}
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a hepnb checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", model, key)
    with pytest.raises(CheckpointError, match="other settings"):
        load_checkpoint(path, model, {"seed": 9})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, DenseTagger(n_constituents=3, hidden=(4,)), key)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt", model, key)
    save_checkpoint(tmp_path / "x.pt", model, key, {})
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: nothing half-written left
    with pytest.raises(ValueError, match="JSON"):
        checkpoints.key_hash({"a": object()})
