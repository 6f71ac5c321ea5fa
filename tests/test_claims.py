"""Paper-vs-ours claim rows: the verdict follows the numbers through the one rule in hepnb.evaluation.stats."""

import math

import numpy as np
import pytest

from hepnb.evaluation.claims import CLAIM_COLUMNS, claim, claims_table, verdict_legend
from hepnb.evaluation.stats import seed_difference, seed_stats, verdict


@pytest.mark.parametrize("diff, err, sign, expected", [
    (0.05, 0.01, +1, "yes"),
    (-0.05, 0.01, +1, "no (opposite)"),
    (0.01, 0.01, +1, "not significant"),
    (-0.05, 0.01, -1, "yes"),
    (0.05, 0.01, -1, "no (opposite)"),
    (0.05, math.nan, +1, "not significant"),  # one seed: no error, no verdict
])
def test_claim_verdict_follows_the_numbers(diff, err, sign, expected):
    row = claim("x", 0.1, diff, err, sign)
    assert row["reproduced"] == expected == verdict(diff, err, sign)
    assert tuple(row) == CLAIM_COLUMNS


def test_claim_formats_paper_and_ours():
    row = claim("gap", 0.0125, 0.00504, 0.00141, +1)
    assert row["paper"] == "+0.013" and row["ours"] == "+0.0050 ± 0.0014"
    assert claim("lead", -0.0041, 0.0, 1.0, +1, paper_digits=4)["paper"] == "-0.0041"
    assert claim("flat", "< 0 (Fig. 3)", -1.0, 0.1, -1, digits=3)["paper"] == "< 0 (Fig. 3)"
    assert claim("flat", "< 0", -1.0, 0.1, -1, digits=3)["ours"] == "-1.000 ± 0.100"


def test_claim_rejects_a_sign_that_is_not_plus_or_minus_one():
    with pytest.raises(ValueError, match="expected_sign"):
        claim("x", 0.1, 1.0, 0.1, 0)


def test_claims_table_has_the_standard_columns_and_legend_names_the_threshold():
    table = claims_table([claim("a", 0.1, 1.0, 0.1, +1)], "title")
    assert table.columns == list(CLAIM_COLUMNS) and table.title == "title"
    assert "more than 2 standard errors" in verdict_legend()
    assert "more than 3 bootstrap errors" in verdict_legend(3, "bootstrap errors")


def test_seed_difference_paired_and_unpaired():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.4, 2.6])
    diff, err = seed_difference(a, b)
    assert diff == pytest.approx(0.5) and err == pytest.approx(seed_stats(a - b)[2])
    diff, err = seed_difference(a, b, paired=False)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert err == pytest.approx(np.hypot(seed_stats(a)[2], seed_stats(b)[2]))
    assert err > seed_difference(a, b)[1]  # pairing removes the seed-to-seed spread both share
    assert math.isnan(seed_difference([1.0], [0.0])[1])
    with pytest.raises(ValueError, match="one per seed"):
        seed_difference([1.0, 2.0], [1.0])
