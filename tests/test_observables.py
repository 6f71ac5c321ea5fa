"""Jet observables and domain-shift measures on inputs with known answers."""

import math

import numpy as np
import pytest

from hepnb.data.sample import CLASS_NAMES, VARIATION_NAMES, JetSample
from hepnb.evaluation.stats import Estimate, paired_bootstrap, verdict
from hepnb.physics.kinematics import mass as jet_mass
from hepnb.physics.kinematics import pt as jet_pt
from hepnb.physics.observables import (
    DISPLACED_D0_MM,
    iqr,
    ks_distance,
    ks_noise_level,
    observables,
    peak_width,
    shift_table,
)


def test_jet_mass_and_pt_of_known_vectors():
    p4 = np.array([[3.0, 4.0, 0.0, 13.0], [0.0, 0.0, 5.0, 5.0], [1.0, 0.0, 0.0, 0.9999999]])
    assert np.allclose(jet_mass(p4), [12.0, 0.0, 0.0])
    assert np.allclose(jet_pt(p4), [5.0, 0.0, 1.0])


def test_ks_distance_known_answers():
    a = np.arange(100.0)
    assert ks_distance(a, a) == 0.0
    assert ks_distance(a, a + 1000) == 1.0
    assert ks_distance(a, a + 50) == pytest.approx(0.5)
    assert ks_distance(np.append(a, np.nan), a) == 0.0  # NaNs (e.g. N2 of tiny jets) are dropped


def test_ks_noise_level_is_the_95_percent_quantile_for_equal_distributions():
    rng = np.random.default_rng(0)
    n = 400
    stats = [ks_distance(rng.normal(size=n), rng.normal(size=n)) for _ in range(400)]
    assert np.mean(np.array(stats) < ks_noise_level(n)) == pytest.approx(0.95, abs=0.03)


def _sample():
    N, V, C = 4, len(VARIATION_NAMES), 6
    p4 = np.zeros((N, V, C, 4), np.float32)
    p4[..., 0], p4[..., 3] = 10.0, 10.0
    charge = np.zeros((N, V, C), np.int8)
    charge[:, :, :4] = 1  # 4 tracks per jet
    d0 = np.zeros((N, V, C), np.float32)
    d0[0, 0, :2] = 0.5  # jet 0, nominal: 2 of its 4 tracks displaced
    d0[1, 0, :4] = 2 * DISPLACED_D0_MM
    d0[2, 0, 0] = DISPLACED_D0_MM / 2  # below threshold
    mask = np.ones((N, V, C), bool)
    mask[3, :, 3:] = False  # jet 3: only 3 constituents, 3 tracks
    d0[3, 0, 4] = 1.0  # displaced but padding: ignored
    jet = np.tile(np.array([100.0, 0.0, 0.0, 125.0]), (N, V, 1))
    return JetSample(p4=p4, charge=charge, pid=np.where(mask, 211, 0).astype(np.int32), d0=d0, dz=np.zeros_like(d0),
                     mask=mask, jet_p4=jet, n_constituents=mask.sum(-1).astype(np.int32),
                     label=np.full(N, CLASS_NAMES.index("hbb"), np.int8), parton=np.full(N, 25, np.int32),
                     event_id=np.arange(N, dtype=np.int64))


def test_observables_of_a_synthetic_sample():
    obs = observables(_sample(), "nominal", with_n2=False)
    assert np.allclose(obs["displaced"], [0.5, 1.0, 0.0, 0.0])
    assert np.allclose(obs["mass"], 75.0) and np.allclose(obs["pt"], 100.0)
    assert np.array_equal(obs["multiplicity"], [6, 6, 6, 3])


def test_shift_table_rows_skip_the_reference():
    a = np.arange(50.0)
    values = {"hbb": {"nominal": {"m": a}, "seed": {"m": a}, "alt_shower": {"m": a + 25}}}
    rows = shift_table(values)
    assert [(r["variation"], r["KS m"]) for r in rows] == [("seed", 0.0), ("alt_shower", 0.5)]


def test_paired_bootstrap_error_matches_the_analytic_one_for_a_mean_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=4000)
    b = a + 0.1 + rng.normal(scale=0.5, size=4000)  # correlated pair: the error is that of the difference only
    diff, err = paired_bootstrap(a, b, np.mean, n_boot=400)  # an Estimate unpacks as (mean, error)
    assert diff == pytest.approx(np.mean(b - a))
    assert err == pytest.approx(0.5 / np.sqrt(4000), rel=0.15)


def test_bootstrap_verdicts_and_widths():
    def est(mean):
        return Estimate(mean, 0.1, math.inf, 4000, "bootstrap", "hard events")

    assert str(verdict(est(0.5), +1)) == "yes"
    assert str(verdict(est(-0.5), +1)) == "no (opposite)"
    assert str(verdict(est(0.15), +1)) == "undecided (needs ≥13,954 hard events)"  # 4000 (2.80 * 0.1 / 0.15)^2
    assert str(verdict(est(-0.5), -1)) == "yes"
    rng = np.random.default_rng(2)
    masses = rng.normal(125.0, 8.0, 200_000)
    assert peak_width(masses) == pytest.approx(8.0, rel=0.02)
    assert iqr(np.append(masses, np.nan)) == pytest.approx(2 * 0.6745 * 8.0, rel=0.02)
