"""The cross-simulator study of Rothen et al.: paired test sets, seeded load-or-train, evaluation, sharpness, and
the chapter's tables computed from a grid of results."""

import numpy as np
import pytest
import torch
from test_datasets import make_sample  # tests/ is on sys.path (rootdir conftest, no __init__)

from hepnb.data.sample import CLASS_NAMES
from hepnb.evaluation.stats import seed_stats
from hepnb.studies import adversarial as study
from hepnb.training.adversarial import METHODS
from hepnb.training.checkpoints import checkpoint_path

SIMS = ("nominal", "alt_shower")


@pytest.fixture(scope="module")
def splits():
    sample = make_sample({"qcd": 200, "hbb": 200}, V=5, C=40, seed=4)
    hbb = sample.label == CLASS_NAMES.index("hbb")
    sample.p4[hbb] *= 1.8  # harder H->bb jets: a learnable, not perfect, difference
    sample.jet_p4[hbb] *= 1.8
    return study.simulator_splits(sample, SIMS, batch_size=32, seed=1, sources=["synthetic"])


def _same_weights(a, b):
    return all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))


# ---------------------------------------------------------------------------------------------------------------
# data, one model


def test_test_sets_are_the_same_hard_events_showered_twice(splits):
    a, b = (torch.cat([t["y"] for t in splits.test[s]]) for s in splits.simulators)
    assert torch.equal(a, b) and np.array_equal(a.numpy().astype(int), splits.test_labels)
    xa, xb = (torch.cat([t["x"] for t in splits.test[s]]) for s in splits.simulators)
    assert not torch.equal(xa, xb)  # different showers of those events
    assert splits.test_mass["nominal"].shape == splits.test_labels.shape
    counts = splits.n_per_class
    assert counts["train"]["qcd"] == counts["train"]["hbb"] > counts["test"]["hbb"] > 0


def test_trained_models_are_seeded_cached_and_keyed(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    model, meta, trained = study.trained_model("fgsm", "nominal", 3, splits, epochs=2)
    assert trained and len(meta["epoch_seconds"]) == 2 and not model.training
    again, meta2, trained2 = study.trained_model("fgsm", "nominal", 3, splits, epochs=2)
    assert not trained2 and meta2 == meta and _same_weights(model, again)
    key = study.training_key("fgsm", "nominal", 3, 2, 1e-4, splits.data_key)
    path = checkpoint_path("adversarial", key, study.TRAINING_VERSION)
    assert path.exists() and path.parent == tmp_path / "checkpoints" / "adversarial"
    # same seed, same CPU weights: retraining from scratch reproduces the file's model bit for bit
    path.unlink()
    fresh, _, trained3 = study.trained_model("fgsm", "nominal", 3, splits, epochs=2)
    assert trained3 and _same_weights(model, fresh)
    other_seed, _, _ = study.trained_model("fgsm", "nominal", 4, splits, epochs=2)
    assert not _same_weights(model, other_seed)
    # every ingredient changes the key, and so does the study's training version
    assert checkpoint_path("adversarial", key, study.TRAINING_VERSION + 1) != path
    for changed in (study.training_key("pgd", "nominal", 3, 2, 1e-4, splits.data_key),
                    study.training_key("fgsm", "alt_shower", 3, 2, 1e-4, splits.data_key),
                    study.training_key("fgsm", "nominal", 4, 2, 1e-4, splits.data_key),
                    study.training_key("fgsm", "nominal", 3, 3, 1e-4, splits.data_key),
                    study.training_key("fgsm", "nominal", 3, 2, 1e-4, {**splits.data_key, "sources": ["x"]}),
                    study.training_key("fgsm", "nominal", 3, 2, 1e-4, splits.data_key, {"eps": 0.01})):
        assert checkpoint_path("adversarial", changed, study.TRAINING_VERSION) != path


def test_evaluation_and_sharpness_of_a_trained_model(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    model, _, _ = study.trained_model("default", "nominal", 0, splits, epochs=5, lr=1e-3)
    ev = study.evaluate(model, splits, "alt_shower")
    assert 0.6 < ev.auc < 1.0 and 1.0 < ev.rejection < np.inf and 0.0 <= ev.jsd <= 1.0
    grid = np.linspace(0.3, 0.95, 5)
    assert np.all(np.diff(study.rejection_on_grid(ev, grid)) <= 1e-9)  # rejection falls with efficiency
    sh = study.sharpness(model, splits, "nominal", reduced_jets=3, path_jets=64, steps=4)
    assert sh.path_features[0] == 0.0 and sh.path_weights[0] == 0.0
    assert sh.path_weights[-1] > 0 and sh.path_features[-1] > 0  # climbing the gradient raises the loss
    assert all(np.isfinite([sh.feature_hbb, sh.feature_qcd, sh.weight_hbb, sh.weight_qcd]))
    assert sh.weight_hbb >= 0 and sh.weight_qcd >= 0  # output-layer Hessian of BCE is positive semi-definite


def test_seed_stats():
    mean, std, sem = seed_stats([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, 1.0) and sem == pytest.approx(1 / np.sqrt(3))
    assert np.isnan(seed_stats([5.0])[1])
    with pytest.raises(ValueError):
        seed_stats([])


def test_paper_value_tables_have_the_expected_keys():
    sims, methods = ("pythia", "herwig"), set(study.ROTHEN_METHODS)
    assert methods == set(study.ORDER) == set(METHODS)
    cross = {(m, a, b) for m in methods for a in sims for b in sims if a != b}
    targets = {("default", s, s) for s in sims}
    assert set(study.ROTHEN_SCORES) == cross | targets  # Table IX and its target row (Table III)
    assert set(study.ROTHEN_DELTA_S) == {k for k in cross if k[0] != "default"}  # Table V
    assert set(study.ROTHEN_EIGEN_PP) == methods  # Table IV
    spaces = {(s, c) for s in ("features", "weights") for c in ("hbb", "qcd")}
    assert all(set(v) == spaces for v in study.ROTHEN_EIGEN_PP.values())
    for table in (study.ROTHEN_SCORES, study.ROTHEN_DELTA_S):
        assert all(set(v) == {"auc", "rejection"} for v in table.values())
    values = [v for t in (study.ROTHEN_SCORES, study.ROTHEN_DELTA_S) for d in t.values() for v in d.values()]
    values += [v for d in study.ROTHEN_EIGEN_PP.values() for v in d.values()]
    assert all(len(v) == 2 and v[1] >= 0 for v in values)  # (value, uncertainty)
    assert set(study.PAPER_SIMULATOR.values()) == set(sims) and set(study.PAPER_SIMULATOR) == set(study.SIMULATORS)


# ---------------------------------------------------------------------------------------------------------------
# the grid and its tables, from numbers we choose


def _fake_grid(auc, path=None, eigen=None, seeds=(0, 1, 2), seconds=None):
    """A grid of fake results: ``auc(train, method, seed, ev)``, ``path(method, seed)`` (last ascent step, both
    spaces), ``eigen(method, seed)`` (every reduced-Hessian value)."""
    path = path or (lambda m, s: 1.0)
    eigen = eigen or (lambda m, s: 0.5)
    grid = study.Grid(SIMS, study.ORDER, tuple(seeds))
    eff = np.linspace(0.0, 1.0, 11)
    for t in SIMS:
        for m in study.ORDER:
            for s in seeds:
                grid.metas[t, m, s] = {"epoch_seconds": [(seconds or {}).get(m, 1.0)] * 3, "best_epoch": 1}
                for e in SIMS:
                    a = auc(t, m, s, e)
                    grid.evals[t, m, s, e] = study.Evaluation(a, 10 * a, eff, 1.0 / (eff + 0.01) * a, 0.1 * a,
                                                              np.zeros(1))
                    p = np.linspace(0.0, path(m, s), 16)
                    v = eigen(m, s)
                    grid.sharp[t, m, s, e] = study.Sharpness(v, v, v, v, p, p)
    return grid


NOISE = (-0.001, 0.0, 0.001)


def _auc(train, method, seed, ev):
    """In-domain 0.95, across 0.90; PGD +0.01 across, SAM -0.01 across, FGSM and SSAM-D noise only."""
    base = 0.95 if train == ev else 0.90
    shift = {"pgd": 0.01, "sam": -0.01}.get(method, 0.0) if train != ev else 0.0
    return base + shift + (NOISE[seed] if method in ("fgsm", "ssamd") else 0.0)


def _rows_by_claim(rows):
    return {r["claim"]: r["reproduced"] for r in rows}


def test_claims_rows_follow_the_numbers_given():
    path = {"fgsm": 0.5, "pgd": 1.5, "sam": 0.5, "ssamd": 1.0}  # default 1.0
    grid = _fake_grid(_auc, path=lambda m, s: path.get(m, 1.0) + 0.01 * s,
                      eigen=lambda m, s: {"sam": 0.2, "pgd": 0.9}.get(m, 0.5) + 0.01 * s)
    got = _rows_by_claim(study.claims_rows(grid))
    gaps = [v for k, v in got.items() if k.startswith("cross-evaluation gap")]
    assert gaps == ["yes", "yes"]  # 0.95 trained there vs 0.90 trained on the other
    assert got["FGSM flattens feature space: ΔL after 15 ascent steps, minus default's (Pythia → Pythia)"] == "yes"
    assert got["PGD flattens feature space: ΔL after 15 ascent steps, minus default's (Pythia → Pythia)"] == \
        "no (opposite)"
    assert got["SSAM-D flattens weight space: ΔL after 15 ascent steps, minus default's (Pythia → Pythia)"] == \
        "not significant"
    assert got["SAM flattens weight space: reduced-Hessian λ_max minus default's (hbb, Pythia → Pythia)"] == "yes"
    assert got["PGD flattens feature space: reduced-Hessian λ_max minus default's (qcd, Pythia → Pythia)"] == \
        "no (opposite)"
    for direction in ("Pythia → alt. shower", "alt. shower → Pythia"):
        assert got[f"PGD generalises better: cross AUC minus default's, {direction}"] == "yes"
        assert got[f"SAM generalises better: cross AUC minus default's, {direction}"] == "no (opposite)"
        assert got[f"FGSM generalises better: cross AUC minus default's, {direction}"] == "not significant"
    best = [k for k in got if k.startswith("PGD best overall")]
    assert len(best) == 1 and got[best[0]] == "yes" and "next best" in best[0]
    rows = study.claims_rows(grid)
    assert all(r["paper"] for r in rows) and len(rows) == 2 + 4 * 3 + 4 * 2 + 1


def test_claims_with_one_seed_are_never_significant():
    grid = _fake_grid(_auc, seeds=(0,))
    assert {r["outcome"] for r in study.claims_rows(grid)} == {"none"}  # never "yes" without an error


def test_transfer_rows_show_delta_s_only_over_a_significant_gap():
    grid = _fake_grid(_auc)
    rows = study.transfer_rows(grid)
    assert len(rows) == 2 * (len(study.ORDER) + 1)
    pgd = next(r for r in rows if r["method"] == "PGD")
    assert pgd["ΔS_auc"].startswith("+0.20")  # (0.91 - 0.90) / (0.95 - 0.90)
    assert pgd["paper ΔS_auc"] == "+0.46 ± 0.02" and pgd["paper S_auc"] == "0.9620 ± 0.0030"
    target = rows[len(study.ORDER)]
    assert target["method"].startswith("target") and target["ΔS_auc"].startswith("gap +0.0500")
    # the same in-domain and cross scores: no gap, no ΔS
    flat = study.transfer_rows(_fake_grid(lambda t, m, s, e: 0.9 + NOISE[s]))
    assert all(r["ΔS_auc"] == "n/a: no significant gap" for r in flat if not r["method"].startswith("target"))


def test_gain_rows_separate_generalisation_from_a_better_tagger():
    def auc(train, method, seed, ev):  # SSAM-D gains 0.01 everywhere, PGD only across
        gain = {"ssamd": 0.01, "pgd": 0.01 if train != ev else 0.0}.get(method, 0.0)
        return 0.9 + gain + NOISE[seed] * (method == "pgd")

    rows = {r["method"]: r for r in study.gain_rows(_fake_grid(auc))}
    assert set(rows) == {"FGSM", "PGD", "SAM", "SSAM-D"}
    assert rows["PGD"]["larger across simulators?"] == "yes"
    assert rows["SSAM-D"]["larger across simulators?"] == "not significant"
    assert rows["SSAM-D"]["AUC gain, same simulator"] == "+0.0100 ± 0.0000"


def test_tables_and_figure_values_of_a_grid():
    grid = _fake_grid(_auc, seconds={"default": 2.0, "pgd": 7.0})
    cost = {r["method"]: r for r in study.cost_rows(grid)}
    assert cost["PGD"]["cost / default"] == pytest.approx(3.5) and cost["Default"]["hyperparameters"] == "-"
    table_iii = study.default_rows(grid)
    assert [r["trained on"] for r in table_iii] == ["Pythia", "alt. shower"]
    assert table_iii[0]["AUC on Pythia"] == "0.9500 ± 0.0000" and table_iii[0]["paper AUC on pythia"] == "0.978 ± 0.002"
    table_iv = study.eigen_rows(grid, paper=True)
    assert len(table_iv) == len(study.ORDER) and table_iv[0]["paper features hbb"] == "0.840 ± 0.080"
    assert len(study.eigen_rows(grid)) == 4 * len(study.ORDER)
    curves = study.rejection_curves(grid, np.linspace(0.3, 0.9, 7))
    assert set(curves) == set(grid.pairs) and curves["nominal", "nominal"]["pgd"][0].shape == (7,)
    means, errors = study.jsd_bars(grid)["default"]
    assert means == pytest.approx([0.095, 0.09, 0.09, 0.095]) and errors == pytest.approx([0.0] * 4)
    paths = study.mean_paths(_fake_grid(_auc, seeds=(0,)))
    assert paths["nominal", "alt_shower", "weights"]["sam"][1] is None  # one seed: no spread drawn
    with pytest.raises(KeyError, match="measure_sharpness"):
        study.Grid(SIMS, study.ORDER, (0,)).values("nominal", "default", "nominal", "feature_hbb")


def test_grid_trains_once_then_loads_and_the_radius_scan_marks_one_radius(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    grid = study.train_grid(splits, seeds=(0, 1), epochs=1, methods=("default", "fgsm"), progress=False)
    assert grid.n_trained == 8 and set(grid.evals) == {(t, m, s, e) for t in SIMS for m in ("default", "fgsm")
                                                       for s in (0, 1) for e in SIMS}
    again = study.train_grid(splits, seeds=(0, 1), epochs=1, methods=("default", "fgsm"), progress=False)
    assert again.n_trained == 0 and "0 trained now" in again.summary()
    assert all(_same_weights(grid.models[k], again.models[k]) for k in grid.models)
    assert all(grid.evals[k].auc == again.evals[k].auc for k in grid.evals)
    rows = study.sam_radius_rows(grid, (0.05, 0.7))
    assert len(rows) == 4 and [r["trained on"] for r in rows] == ["Pythia", "Pythia", "alt. shower", "alt. shower"]
    for sim in ("Pythia", "alt. shower"):
        block = [r for r in rows if r["trained on"] == sim]
        assert sum(r["chosen by validation"] == "◀" for r in block) == 1
        chosen = next(r for r in block if r["chosen by validation"])
        assert chosen["validation AUC, own simulator"] == max(r["validation AUC, own simulator"] for r in block)


def _replica(seed):
    sample = make_sample({"qcd": 120, "hbb": 120}, V=5, C=40, seed=10 + seed)
    hbb = sample.label == CLASS_NAMES.index("hbb")
    sample.p4[hbb] *= 1.8
    sample.jet_p4[hbb] *= 1.8
    return sample, study.simulator_splits(sample, SIMS, batch_size=32, seed=seed, sources=[f"synthetic-{seed}"])


def test_every_seed_is_its_own_replica_data_split_and_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    asked = []

    def fake_load_splits(n_events, seed, batch_size, workers, simulators):
        asked.append(seed)
        return _replica(seed)

    monkeypatch.setattr(study, "load_splits", fake_load_splits)
    jets, replicas = study.load_replicas(240, [5, 6])
    assert asked == [5, 6] and set(replicas) == {5, 6}  # data generated with each seed
    assert replicas[5].data_key != replicas[6].data_key  # so no checkpoint is shared between replicas
    with pytest.raises(ValueError, match="distinct seeds"):
        study.load_replicas(240, [5, 5])
    grid = study.train_grid(replicas, seeds=(5, 6), epochs=1, methods=("default",), progress=False)
    for s in (5, 6):  # each model is trained on, and evaluated on, its own replica
        model = grid.models["nominal", "default", s]
        assert grid.evals["nominal", "default", s, "nominal"].auc == study.evaluate(model, replicas[s], "nominal").auc
        assert len(grid.evals["nominal", "default", s, "nominal"].scores) == len(replicas[s].test_labels)
        key = study.training_key("default", "nominal", s, 1, 1e-4, replicas[s].data_key)
        assert checkpoint_path("adversarial", key, version=study.TRAINING_VERSION).exists()
    with pytest.raises(ValueError, match="no splits for seeds"):
        study.train_grid(replicas, seeds=(5, 7), epochs=1, methods=("default",), progress=False)
