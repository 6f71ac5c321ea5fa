"""The simplicity chapter's study module (``book/simplicity/simplicity.ipynb``) on synthetic inputs: the split keeps the
paper's proportions and never shares a jet, test sets pair gluons with the right signal, Table 2's ratios are formed
per seed from the curvature, the claims are paired differences with the right signs, the lambda scan maps lambda = 0 to
the unconstrained model, and jobs refuse nonsense."""

import math

import numpy as np
import pytest

from hepnb.studies import simplicity as study


def fake_data(n_per_class=200, seed=0):
    rng = np.random.default_rng(seed)
    label = np.repeat([0, 2, 3, 4], [n_per_class, n_per_class, 60, 60])
    n, c = len(label), 32
    mask = np.arange(c) < rng.integers(3, c + 1, n)[:, None]
    p4 = np.where(mask[..., None], rng.normal(0, 10, (n, c, 4)), 0.0)
    p4[..., 3] = np.where(mask, np.linalg.norm(p4[..., :3], axis=-1) + 1.0, 0.0)
    rows = {"train": [], "val": [], "test": []}
    for cls, lab in (("g", 0), ("w", 2)):
        index = np.flatnonzero(label == lab)
        for part, local in study._split(len(index), seed, cls).items():
            rows[part].append(index[np.sort(local)])
    rows = {k: np.concatenate(v) for k, v in rows.items()}
    rows["near"], rows["far"] = np.flatnonzero(label == 3), np.flatnonzero(label == 4)
    x = np.zeros((n, c, 7), np.float32)
    return study.JetData(p4, mask, x, label, np.arange(n), rows, {"fake": True})


def test_split_keeps_the_papers_proportions_and_is_disjoint():
    parts = study._split(10_000, 3, "g")
    assert sum(len(v) for v in parts.values()) == 10_000
    assert len(np.unique(np.concatenate(list(parts.values())))) == 10_000
    for name, share in study.FRACTIONS.items():
        assert abs(len(parts[name]) / 10_000 - share) < 1e-3
    assert study.n_test(10_000) == len(parts["test"])
    np.testing.assert_array_equal(study._split(100, 3, "g")["train"], study._split(100, 3, "g")["train"])
    assert not np.array_equal(study._split(100, 3, "g")["train"], study._split(100, 4, "g")["train"])


def test_test_sets_pair_the_test_gluons_with_the_right_signal():
    data = fake_data()
    for task, label in (("id", 2), ("near", 3), ("far", 4)):
        rows, y = data.test_rows(task)
        assert set(data.label[rows[y == 0]]) == {0} and set(data.label[rows[y == 1]]) == {label}
        np.testing.assert_array_equal(np.sort(rows[y == 0]), np.sort(data.rows["test"][data.label[data.rows["test"]]
                                                                                      == 0]))
    t = data.tensors(data.rows["train"])
    assert set(t) == {"x", "mask", "p4", "y"} and float(t["y"].sum()) == float((data.label[data.rows["train"]] == 2)
                                                                               .sum())


def analysis(lam1, trace, auc, near, far, robust, msd=0.01):
    return {"invariance": {"msd": msd, "mad": msd ** 0.5},
            "classification": {"id": {"auc": auc, "accuracy": 0.9}, "near": {"auc": near, "accuracy": 0.8},
                               "far": {"auc": far, "accuracy": 0.5}},
            "robustness": {"sigmas": [0.0, 0.5], "auc": robust},
            "curvature": {"lambda1": lam1, "lambda1_residual": 0.01 * lam1, "trace": trace, "trace_se": 0.02 * trace}}


def synthetic():
    out = {}
    for seed in range(3):
        out[study.Job("bce", 0.0, seed, 1, 16)] = analysis(10.0 + seed, 100.0, 0.98, 0.93, 0.42, [0.98, 0.90])
        out[study.Job("seal", 0.1, seed, 1, 16)] = analysis(1.0 + 0.1 * seed, 12.0 + seed, 0.97, 0.94, 0.53,
                                                            [0.97, 0.93], msd=0.001 * (1 + seed))
        out[study.Job("seal", 1.0, seed, 1, 16)] = analysis(0.5, 5.0, 0.96, 0.94, 0.55, [0.96, 0.94])
    return out


def test_table2_ratios_are_per_seed_and_claims_have_the_papers_signs():
    an = synthetic()
    best = {"bce": study.Job("bce", 0.0, 0, 1, 16), "seal": study.Job("seal", 0.1, 0, 1, 16)}
    rows = study.table2_rows(an, best)
    expected = np.mean([(1.0 + 0.1 * s) / (10.0 + s) for s in range(3)])
    assert rows[0]["ours: mean ± SE over seeds"].startswith(f"{expected:.3f}")
    assert rows[0]["best-val-loss pair"].startswith("0.100") and rows[0]["paper"] == "0.079"
    claims = {r["key"]: r for r in study.claims_rows(an, {})}
    assert claims["lambda1 ratio"]["outcome"] == "yes" and claims["trace ratio"]["outcome"] == "yes"
    assert claims["far OOD AUC"]["outcome"] == "yes"  # +0.11 in every seed
    assert claims["ID AUC difference"]["outcome"] == "yes"  # -0.01 in every seed: the paper's sign is negative too
    assert claims["boost invariance"]["outcome"] == "yes"
    assert claims["smearing robustness"]["outcome"] == "yes"  # the constrained model loses 0.04 instead of 0.08
    assert math.isclose(float(claims["lambda1 ratio"]["ours"].split()[0]),
                        np.mean([math.log((1.0 + 0.1 * s) / (10.0 + s)) for s in range(3)]), abs_tol=1e-3)


def test_scan_maps_lambda_zero_to_the_unconstrained_model():
    series = study.scan_series(synthetic(), (0.0, 0.1, 1.0))
    np.testing.assert_allclose(series["lambda1"][0], [11.0, 1.1, 0.5])
    np.testing.assert_allclose(series["auc_far"][0], [0.42, 0.53, 0.55])
    assert len(study.scan_rows(synthetic(), (0.0, 0.1, 1.0))) == 3


def test_jobs_refuse_nonsense():
    with pytest.raises(ValueError, match="unknown method"):
        study.Job("sam", 0.0, 0, 1, 16)
    with pytest.raises(ValueError, match="lam"):
        study.Job("bce", 0.1, 0, 1, 16)
    with pytest.raises(ValueError, match="width"):
        study.make_teacher(4)
    assert [j.lam for j in study.jobs(["bce", "seal"], [0], 2, 16)] == [0.0, 0.1]
    assert {j.lam for j in study.scan_jobs([0, 1], 2, 16)} == {0.01, 0.1, 1.0}
