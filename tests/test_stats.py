"""The small-sample rule behind every verdict: t intervals cover at their nominal rate, one seed decides nothing,
pairing narrows the interval, Welch and paired verdicts agree with scipy's tests, and "needs >= N seeds" is the
sample size that really decides an effect of that size 80% of the time."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from hepnb.evaluation.stats import (
    CONFIDENCE,
    POWER,
    Estimate,
    needed,
    paired_bootstrap,
    power,
    seed_difference,
    seed_estimate,
    t_critical,
    verdict,
)


@pytest.mark.parametrize("n", [3, 5])
def test_t_interval_covers_the_true_mean_at_its_nominal_rate(n):
    rng = np.random.default_rng(1)
    samples = rng.normal(0.7, 0.3, size=(10_000, n))
    covered = []
    for values in samples:
        lo, hi = seed_estimate(values).interval()
        covered.append(lo <= 0.7 <= hi)
    rate = np.mean(covered)
    assert abs(rate - CONFIDENCE) < 0.008, rate  # binomial sd at 10k trials: 0.0022
    # the old "2 standard errors" rule covers far less at small n: why the verdicts flipped with the seed
    mean, sem = samples.mean(1), samples.std(1, ddof=1) / math.sqrt(n)
    assert np.mean(np.abs(mean - 0.7) <= 2 * sem) < CONFIDENCE - 0.04


def test_critical_values_are_students():
    assert t_critical(2) == pytest.approx(4.3027, abs=1e-4)
    assert t_critical(4) == pytest.approx(2.7764, abs=1e-4)
    assert t_critical(math.inf) == pytest.approx(1.95996, abs=1e-5)
    assert math.isinf(t_critical(math.nan)) and math.isinf(t_critical(0))
    with pytest.raises(ValueError, match="confidence"):
        t_critical(3, 1.5)


@pytest.mark.parametrize("sign", [+1, -1])
def test_one_seed_gives_no_verdict_however_large_the_effect(sign):
    v = verdict(seed_estimate([sign * 1e6]), sign)
    assert v.outcome == "none" and str(v) != "yes"
    assert verdict(seed_difference([5.0], [0.0]), +1).outcome == "none"
    assert verdict(seed_difference([5.0], [0.0], paired=False), +1).outcome == "none"


def test_yes_opposite_and_open_keep_apart():
    clear = seed_estimate([1.0, 1.1, 0.9, 1.05])
    assert str(verdict(clear, +1)) == "yes" and str(verdict(clear, -1)) == "no (opposite)"
    open_ = seed_estimate([0.2, -0.1, 0.4])
    assert verdict(open_, +1).outcome in ("undecided", "not significant")
    assert verdict(seed_estimate([0.001, -0.5, 0.5]), +1).outcome == "not significant"  # tiny against the noise
    with pytest.raises(ValueError, match="expected_sign"):
        verdict(clear, 0)


def test_paired_design_is_narrower_than_unpaired_on_correlated_data():
    rng = np.random.default_rng(2)
    seed_effect = rng.normal(0, 1.0, 5)  # what method and default share on one seed (init, order, split)
    a = 0.3 + seed_effect + rng.normal(0, 0.05, 5)
    b = seed_effect + rng.normal(0, 0.05, 5)
    paired, unpaired = seed_difference(a, b), seed_difference(a, b, paired=False)
    assert paired.mean == pytest.approx(unpaired.mean)
    assert np.diff(paired.interval())[0] < 0.2 * np.diff(unpaired.interval())[0]
    assert verdict(paired, +1).outcome == "yes" and verdict(unpaired, +1).outcome != "yes"


def test_verdicts_agree_with_scipys_paired_and_welch_tests():
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(2, 7))
        a, b = rng.normal(rng.normal(0, 1), 1, n), rng.normal(0, rng.uniform(0.3, 2), n)
        for paired, test in ((True, sps.ttest_rel(a, b)), (False, sps.ttest_ind(a, b, equal_var=False))):
            decided = verdict(seed_difference(a, b, paired=paired), +1).outcome in ("yes", "opposite")
            assert decided == (test.pvalue < 1 - CONFIDENCE), (a, b, paired, test.pvalue)


def test_needed_seeds_really_decide_the_effect_with_the_stated_power():
    effect, sd = 0.5, 1.0
    n = needed(Estimate(effect, sd / math.sqrt(3), 2, 3, "paired"))
    assert n is not None and power(effect, sd, n) >= POWER > power(effect, sd, n - 1)
    rng = np.random.default_rng(4)
    for size, expect in ((n, POWER), (n - 1, None)):
        hits = np.mean([verdict(seed_estimate(rng.normal(effect, sd, size), "paired"), +1).outcome == "yes"
                        for _ in range(4000)])
        if expect is None:
            assert hits < POWER
        else:
            assert hits == pytest.approx(POWER, abs=0.04)


def test_undecided_claims_say_how_many_seeds_and_hopeless_ones_are_not_significant():
    v = verdict(seed_estimate([0.3, 0.1, 0.5]), +1)  # t = 3.5 at 2 dof: just short of 4.30
    assert v.outcome == "undecided" and 3 < v.needed <= 6 and str(v) == f"undecided (needs ≥{v.needed} seeds)"
    assert needed(Estimate(0.0, 1.0, 2, 3)) is None and needed(Estimate(1.0, math.nan, math.nan, 1)) is None


def test_bootstrap_estimates_are_normal_and_count_events():
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, 2000)
    est = paired_bootstrap(a, a + rng.normal(0.02, 0.5, 2000), np.mean, n_boot=200)
    assert math.isinf(est.dof) and est.n == 2000 and est.sample == "hard events"
    assert est.critical() == pytest.approx(1.96, abs=0.01)
    v = verdict(est, +1)
    if v.outcome == "undecided":
        assert str(v).endswith("hard events)") and v.needed > 2000
