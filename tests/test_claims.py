"""Paper-vs-ours claim rows and tables: the verdict follows the numbers through the one rule in
hepnb.evaluation.stats, the rule is printed under the table, and the verdicts travel with the notebook's output so
that two runs can be compared (hepnb.evaluation.stability)."""

import json
import math

import pytest

from hepnb.errors import HepnbError
from hepnb.evaluation.claims import CLAIM_COLUMNS, METADATA_KEY, claim, claims_table, statement, undecided
from hepnb.evaluation.stability import claims_from_notebook, compare, decision
from hepnb.evaluation.stats import Estimate, needed, seed_estimate, verdict


def est(mean, error, n=3):
    return Estimate(mean, error, n - 1 if n > 1 else math.nan, n, "paired")


@pytest.mark.parametrize("mean, error, n, sign, expected", [
    (0.05, 0.01, 3, +1, "yes"),  # 5 standard errors > 4.30
    (0.04, 0.01, 3, +1, "undecided (needs ≥4 seeds)"),  # 4 < 4.30 at 2 dof; decided at 3.18 with 3 dof
    (0.04, 0.01, 5, +1, "yes"),  # 4 > 2.78 at 4 dof
    (-0.05, 0.01, 3, +1, "no (opposite)"),
    (-0.05, 0.01, 3, -1, "yes"),
    (0.0001, 0.01, 3, +1, "not significant"),
    (0.05, math.nan, 1, +1, "no verdict (one seed, no error)"),
])
def test_claim_verdict_follows_the_numbers(mean, error, n, sign, expected):
    e = est(mean, error, n)
    row = claim("x", 0.1, e, sign)
    assert row["reproduced"] == expected == str(verdict(e, sign))
    assert [c for c in CLAIM_COLUMNS if c in row] == list(CLAIM_COLUMNS)


def test_claim_formats_paper_ours_and_the_interval():
    row = claim("gap", 0.0125, est(0.00504, 0.00141), +1)
    assert row["paper"] == "+0.013" and row["ours"] == "+0.0050 ± 0.0014"
    assert row["interval"] == "[-0.0010, +0.0111]"  # 4.303 * 0.00141 = 0.00607
    assert claim("lead", -0.0041, est(0.0, 1.0), +1, paper_digits=4)["paper"] == "-0.0041"
    assert claim("flat", "< 0 (Fig. 3)", est(-1.0, 0.1), -1, digits=3)["paper"] == "< 0 (Fig. 3)"
    assert claim("flat", "< 0", est(-1.0, 0.1, 1), -1)["interval"] == "-"
    assert claim("lead (ours: SAM)", 0.1, est(1, 1), +1, key="lead")["key"] == "lead"


def test_claim_rejects_a_sign_that_is_not_plus_or_minus_one():
    with pytest.raises(ValueError, match="expected_sign"):
        claim("x", 0.1, est(1.0, 0.1), 0)


def test_claims_table_prints_the_rule_its_confidence_and_n_under_the_table():
    rows = [claim("a", 0.1, seed_estimate([1.0, 1.2, 0.9]), +1)]
    table = claims_table(rows, "title")
    assert table.columns == list(CLAIM_COLUMNS) and table.title == "title"
    for text in (table._repr_html_(), str(table)):
        assert "95%" in text and "n = 3 seeds" in text and "4.30" in text and "Student-t" in text
    boot = claims_table([claim("b", "up", Estimate(1.0, 0.1, math.inf, 5000, "bootstrap", "hard events"), +1)], "t")
    assert "n = 5,000 hard events" in str(boot) and "1.96" in str(boot) and "needs ≥N hard events" in str(boot)


def _notebook(tmp_path, name, tables):
    cells = []
    for rows in tables:
        data, meta = claims_table(rows, "claims")._repr_mimebundle_()
        cells.append({"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
                      "outputs": [{"output_type": "execute_result", "data": data, "metadata": meta,
                                   "execution_count": 1}]})
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_stability_agreement_of_two_hand_made_claims_tables(tmp_path):
    a = [claim("gap", 0.1, est(0.05, 0.01), +1),  # yes
         claim("flat", 0.1, est(0.04, 0.01), +1),  # undecided
         claim("lead (ours: SAM)", 0.1, est(-0.05, 0.01), +1, key="lead"),  # opposite
         statement("ks", "seed ~ nominal", "KS 0.01", "no")]
    b = [claim("gap", 0.1, est(0.06, 0.01), +1),  # yes: agrees
         claim("flat", 0.1, est(0.0001, 0.01), +1),  # not significant: agrees (both open)
         claim("lead (ours: FGSM)", 0.1, est(0.05, 0.01), +1, key="lead"),  # yes: differs
         statement("ks", "seed ~ nominal", "KS 0.01", "yes"),  # differs
         claim("new", 0.1, est(0.05, 0.01), +1)]
    rows_a = claims_from_notebook(_notebook(tmp_path, "a.ipynb", [a[:2], a[2:]]))
    rows_b = claims_from_notebook(_notebook(tmp_path, "b.ipynb", [b]))
    assert [r["key"] for r in rows_a] == ["gap", "flat", "lead", "ks"]
    agreement = compare(rows_a, rows_b)
    assert (agreement.n, agreement.agreeing, agreement.fraction) == (4, 2, 0.5)
    assert [d["claim"] for d in agreement.disagreeing] == ["lead (ours: SAM)", "ks"]
    assert agreement.only_one == ["new"] and "2 of 4 claims (50%)" in str(agreement)
    assert agreement.contradictions == 2  # opposite vs yes, and "no" vs "yes": both decided, differently
    assert compare(rows_a, rows_a).fraction == 1.0


def test_stability_refuses_notebooks_without_claims(tmp_path):
    empty = _notebook(tmp_path, "empty.ipynb", [])
    with pytest.raises(HepnbError, match="no claims table"):
        claims_from_notebook(empty)
    (tmp_path / "bad.ipynb").write_text("not json")
    with pytest.raises(HepnbError, match="not a readable notebook"):
        claims_from_notebook(tmp_path / "bad.ipynb")
    with pytest.raises(ValueError, match="unknown verdict outcome"):
        decision("maybe")
    assert decision("undecided") == decision("not significant") == "open"


def test_undecided_lists_what_more_seeds_would_decide():
    rows = [claim("a", 0.1, est(0.04, 0.01), +1), claim("b", 0.1, est(0.05, 0.01), +1),
            claim("c", 0.1, est(0.02, 0.01), +1)]
    assert [(r["claim"], r["needs"]) for r in undecided(rows)] == [("a", 4), ("c", needed(est(0.02, 0.01)))]
    assert undecided(rows)[1]["needs"] > 4  # a smaller effect on the same spread needs more seeds
    assert METADATA_KEY in claims_table(rows, "t")._repr_mimebundle_()[1]


def _stability_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "claims_stability.py"
    spec = importlib.util.spec_from_file_location("claims_stability", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stability_script_compares_two_executed_notebooks_and_refuses_bad_runs(tmp_path, capsys):
    from hepnb.errors import ConfigError

    script = _stability_script()
    a = _notebook(tmp_path, "a.ipynb", [[claim("gap", 0.1, est(0.05, 0.01), +1), claim("x", 0.1, est(0.0, 1), +1)]])
    b = _notebook(tmp_path, "b.ipynb", [[claim("gap", 0.1, est(-0.05, 0.01), +1), claim("x", 0.1, est(0.1, 1), +1)]])
    script.main(["--compare", str(a), str(b)])
    out = capsys.readouterr().out
    assert "1 of 2 claims (50%)" in out and "differs: gap: yes  |  no (opposite)" in out
    with pytest.raises(ConfigError, match="unknown chapter 'nope'"):
        script.main(["--chapter", "nope"])
    with pytest.raises(SystemExit):  # seeds 0,1,2 and 1,2,3 overlap: not two independent runs
        script.main(["--chapter", "adversarial", "--bases", "0", "1"])
    assert "overlap" in capsys.readouterr().err
