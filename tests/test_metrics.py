"""Scores of Rothen et al. (AUC, rejection, Delta S, mass sculpting) on inputs with known answers; in-memory
minibatches."""

import numpy as np
import pytest

from hepnb.evaluation import metrics


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
