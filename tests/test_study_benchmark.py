"""The cross-shower benchmark: every method trains on the same events, each model is tested on the same hard events
in every shower, the measurements and the table's ranking are computed from the results, and the new pieces
(the SEAL boost of the dense inputs, the pairwise-invariant hybrid, a fixed RS3L backbone) do what they claim."""

import numpy as np
import pytest
import torch
from test_datasets import make_sample  # tests/ is on sys.path (rootdir conftest, no __init__)

from hepnb.data.features import boosted_inputs, sample_features
from hepnb.data.sample import CLASS_NAMES
from hepnb.evaluation.tables import SortableTable
from hepnb.models.pairwise import JetHybrid, PairInvariantNet, pair_invariants
from hepnb.physics.kinematics import boost, random_velocities
from hepnb.studies import adversarial
from hepnb.studies import benchmark as study
from hepnb.training.loop import predict
from hepnb.training.tasks import BinaryTask

ST = study.Settings(epochs=1, lr=1e-3, batch_size=32, pretrain_epochs=1, hessian_jets=32, rel_error=0.5,
                    max_probes=8)


def _sample(seed):
    sample = make_sample({"qcd": 100, "hbb": 100}, V=5, C=40, seed=20 + seed)
    hbb = sample.label == CLASS_NAMES.index("hbb")
    sample.p4[hbb] *= 1.8  # harder H->bb jets: learnable, not perfectly
    sample.jet_p4[hbb] *= 1.8
    return sample


@pytest.fixture(scope="module")
def replicas():
    samples = {}
    mp = pytest.MonkeyPatch()

    def fake_load_splits(n_events, seed, batch_size, workers, simulators):
        samples[seed] = _sample(seed)
        return samples[seed], adversarial.simulator_splits(samples[seed], simulators, batch_size, seed=seed,
                                                           sources=[f"synthetic-{seed}"])

    mp.setattr(adversarial, "load_splits", fake_load_splits)
    try:
        reps = study.load_replicas(200, [3, 4], batch_size=ST.batch_size)
    finally:
        mp.undo()
    return reps, samples


@pytest.fixture(scope="module", autouse=True)
def data_folder(tmp_path_factory):
    """Every checkpoint of this module goes to one temporary data folder (a test that needs its own sets it)."""
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("benchmark-data")
    mp.setenv("HEPNB_DATA", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="module")
def results(replicas):
    return study.run(replicas[0], ST, study.ORDER, workers=1), study.run(replicas[0], ST, study.ORDER, workers=1)


def test_every_method_trains_on_exactly_the_same_events(replicas):
    reps, _ = replicas
    rows = study.training_rows(reps, ST)
    assert [r["seed"] for r in rows] == [3, 4]
    for r in reps.values():
        events = {m: study.training_events(m, r, ST) for m in study.ORDER}
        train = np.sort(r.event_id["train"])
        for m, seen in events.items():
            assert np.array_equal(np.unique(seen), train), m
            if study.METHODS[m].partners:  # the augmented mixture: every event's nominal jet and one partner
                assert np.all(np.unique(seen, return_counts=True)[1] == 2), m
            else:  # the same jets in the same order as the default (and as the adversarial chapter's batches)
                assert np.array_equal(seen, events["default"]), m
        assert not set(r.event_id["train"]) & set(r.event_id["test"])
    assert reps[3].key() != reps[4].key()  # each replica its own data: no checkpoint is shared between them


def test_a_method_on_other_rows_is_caught(replicas, monkeypatch):
    reps, _ = replicas
    original = study._train_batches

    def fewer(method, replica, st):
        batches = list(original(method, replica, st))
        return batches[:-1] if method == "seal" else batches

    monkeypatch.setattr(study, "_train_batches", fewer)
    with pytest.raises(RuntimeError, match="seal trains on other events"):
        study.training_rows(reps, ST)


def test_every_shower_is_scored_on_the_same_hard_events(replicas, results):
    reps, samples = replicas
    first, _ = results
    r, sample = reps[3], samples[3]
    row_of = {int(e): i for i, e in enumerate(sample.event_id)}
    rows = np.array([row_of[int(e)] for e in r.event_id["test"]])
    model, _, trained = study._model("default", r, ST, "cpu")
    assert not trained  # the model the run measured
    for v, name in enumerate(study.VARIATIONS):  # features of the same events, straight from the sample
        x, jet, mask = sample_features(sample.rows(rows), variations=[name], max_constituents=40)
        batch = [{"x": torch.from_numpy(x[:, 0]), "jet": torch.from_numpy(jet[:, 0]),
                  "mask": torch.from_numpy(mask[:, 0]), "y": torch.zeros(len(rows))}]
        direct = predict(model, batch, task=BinaryTask())[0]
        np.testing.assert_allclose(first["default", 3].scores[:, v], direct, rtol=1e-5, atol=1e-6)
    assert np.array_equal(first["default", 3].labels, (sample.label[rows] == CLASS_NAMES.index("hbb")))


def test_run_measures_every_method_and_caches_it(replicas, results):
    reps, _ = replicas
    first, again = results
    assert set(first) == {(m, s) for m in study.ORDER for s in (3, 4)}
    for key, res in first.items():
        assert res.scores.shape == (len(reps[key[1]].event_id["test"]), 5)
        assert np.isfinite(res.curvature["lambda1"]) and np.isfinite(res.curvature["trace"])
        assert res.curvature["dimension"] == sum(p.numel() for p in study._model(key[0], reps[key[1]], ST,
                                                                                 "cpu")[0].parameters())
        assert again[key].record["cached"] and np.array_equal(again[key].scores, res.scores)
    assert first["rs3l_fixed", 3].record["parameters"] == 9  # the head only; the Hessian sees every weight
    assert first["rs3l_fixed", 3].record["pretrain_seconds"] > 0
    w = np.asarray(first["hybrid", 3].record["weight"]["w"])
    assert np.all((w >= 0) & (w <= 1))


def test_the_adversarial_chapters_checkpoints_are_reused(replicas, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    r = replicas[0][3]
    model, _, trained = adversarial.trained_model("pgd", "nominal", 3, r.splits, ST.epochs, ST.lr)
    assert trained
    ours, _, trained = study._model("pgd", r, ST, "cpu")
    assert not trained and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                  ours.state_dict().values()))


def test_a_fixed_rs3l_backbone_is_the_pretrained_one(replicas, results, tmp_path, monkeypatch):
    r = replicas[0][3]
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    fixed, _, _ = study._model("rs3l_fixed", r, ST, "cpu")
    encoder, _ = study._pretrained("rs3l_fixed", r, ST, "cpu")
    for a, b in zip(fixed.backbone.state_dict().values(), encoder.state_dict().values()):
        assert torch.equal(a, b)  # weights *and* batch-norm statistics: the fixed backbone never moved
    floating, _, _ = study._model("rs3l_floating", r, ST, "cpu")
    assert not all(torch.equal(a, b) for a, b in zip(floating.backbone.state_dict().values(),
                                                     encoder.state_dict().values()))


def _vals(auc, alt, lam=None, seeds=4):
    rng = np.random.default_rng(0)
    out = {}
    for m in auc:
        noise = rng.normal(0, 1e-4, seeds)
        a = np.full(seeds, auc[m]) + noise
        b = np.full(seeds, alt[m]) + rng.normal(0, 1e-4, seeds)
        out[m] = {"auc": a, "auc_alt_shower": b, "dauc_alt_shower": a - b, "r50": 30 + a, "dr50_alt_shower": a - b,
                  "w_alt_shower": a - b, "jsd": a * 0, "lambda1": np.full(seeds, (lam or {}).get(m, 1.0)) * (1 + noise),
                  "trace": np.full(seeds, 10 * (lam or {}).get(m, 1.0)), "cost": np.ones(seeds),
                  **{f"{k}_{v}": a - b for k in ("dauc", "dr50", "w") for v in study.SHIFTS if v != "alt_shower"}}
    return out


def test_the_ranking_and_the_pareto_front_are_computed():
    vals = _vals({"default": 0.90, "pgd": 0.92, "sam": 0.88, "seal": 0.91},
                 {"default": 0.85, "pgd": 0.88, "sam": 0.87, "seal": 0.84})
    assert study.rank(vals) == ["pgd", "sam", "default", "seal"]
    rows, keys = study.summary_rows(vals)
    assert [r["method"] for r in rows] == ["PGD", "SAM", "Default", "SEAL"]
    assert [k["AUC alt. shower"] for k in keys] == sorted((k["AUC alt. shower"] for k in keys), reverse=True)
    assert set(study.pareto_front(vals)) == {"pgd", "sam"}  # default and SEAL are beaten on both by PGD
    assert {r["method"] for r in rows if r["Pareto front"]} == {"PGD", "SAM"}
    vals["seal"]["auc_alt_shower"] += 0.1
    assert study.rank(vals)[0] == "seal"


def test_correlations_see_a_monotonic_link_and_its_sign():
    drops = {"default": 0.05, "pgd": 0.02, "sam": 0.03, "seal": 0.01}
    auc = {m: 0.9 for m in drops}
    alt = {m: 0.9 - d for m, d in drops.items()}
    sharper = _vals(auc, alt, lam={m: 10 ** (10 * d) for m, d in drops.items()})
    c = study.correlations(sharper)
    assert c["spearman"] > 0.9 and c["pearson"] > 0.9 and c["n"] == 16
    flatter = _vals(auc, alt, lam={m: 10 ** (-10 * d) for m, d in drops.items()})
    assert study.correlations(flatter)["spearman"] < -0.9


def test_claims_and_verdicts_follow_the_numbers():
    vals = _vals({"default": 0.90, "pgd": 0.90, "sam": 0.90}, {"default": 0.85, "pgd": 0.87, "sam": 0.83})
    rows = {r["key"]: r for r in study.claims_rows(vals)}
    assert rows["pgd: cross-shower AUC"]["outcome"] == "yes"
    assert rows["pgd: alt.-shower drop"]["outcome"] == "yes"
    assert rows["sam: cross-shower AUC"]["outcome"] == "opposite"
    text = study.verdicts(vals)
    assert "**PGD**" in text and "It generalises better" in text and "worse on the other shower" in text
    summary = study.summary(vals)
    assert "Best on the alternative shower:** PGD" in summary and "1 of 2 methods (PGD)" in summary


def test_boosted_inputs_give_back_the_features_at_rest_and_keep_the_mass():
    sample = _sample(0)
    x, jet, mask = sample_features(sample.rows(np.arange(20)), variations=[0], max_constituents=40)
    p4 = torch.from_numpy(sample.p4[:20, 0, :40].astype(np.float64))
    jet_p4 = torch.from_numpy(sample.jet_p4[:20, 0])
    x0, j0 = boosted_inputs(torch.from_numpy(x[:, 0]), p4, torch.from_numpy(mask[:, 0]), jet_p4, np.zeros((20, 3)))
    np.testing.assert_allclose(x0.numpy(), x[:, 0], atol=2e-5)
    np.testing.assert_allclose(j0.numpy(), jet[:, 0], atol=2e-5)
    beta = random_velocities(20, 0.9, 1)
    xb, jb = boosted_inputs(torch.from_numpy(x[:, 0]), p4, torch.from_numpy(mask[:, 0]), jet_p4, beta)
    np.testing.assert_allclose(jb[:, 1].numpy(), jet[:, 0, 1], atol=1e-4)  # log m: invariant
    assert not np.allclose(jb[:, 0].numpy(), jet[:, 0, 0], atol=1e-2)  # log pT: not
    np.testing.assert_array_equal(xb[..., 7:].numpy(), x[:, 0, :, 7:])  # charge, impact parameters, flags kept
    assert torch.all(xb[~torch.from_numpy(mask[:, 0])] == 0)  # padding stays zero


def test_the_invariant_subnet_is_lorentz_and_permutation_invariant():
    torch.manual_seed(0)
    sample = _sample(1)
    n = 12  # fewer real constituents than the 20 it pairs, so a boost keeps the same set
    p4 = torch.from_numpy(sample.p4[:16, 0, :20].astype(np.float64))
    mask = torch.arange(20)[None, :] < torch.randint(3, n, (16, 1))
    p4 = p4 * mask[..., None]
    net = PairInvariantNet().double().eval()
    beta = torch.from_numpy(random_velocities(16, 0.9, 2))
    boosted = boost(p4, beta[:, None, :])
    perm = torch.randperm(20)
    with torch.no_grad():
        ref = net(p4, mask)
        torch.testing.assert_close(net(boosted, mask), ref, rtol=1e-7, atol=1e-7)
        torch.testing.assert_close(net(p4[:, perm], mask[:, perm]), ref, rtol=1e-9, atol=1e-9)
    s, real = pair_invariants(p4, mask)
    assert s.shape == (16, 190) and torch.all(s[~real] == 0) and torch.all(s[real] >= -1e-6)
    hybrid = JetHybrid().eval()
    w = hybrid.general_weight(torch.linspace(5, 7, 9))
    assert torch.all((w >= 0) & (w <= 1))


def test_sortable_table_carries_its_sort_keys():
    table = SortableTable([{"method": "a", "AUC": "0.91 ± 0.01"}, {"method": "b", "AUC": "0.89 ± 0.02"}],
                          [{"AUC": 0.91}, {"AUC": 0.89}], title="t")
    html = table._repr_html_()
    assert 'data-sort="0.91"' in html and 'data-sort="a"' in html and "<script>" in html
    assert html.count('id="hepnb-sortable-') == 1 and "0.91 ± 0.01" in str(table)
    with pytest.raises(ValueError, match="sort_keys"):
        SortableTable([{"a": 1}], [{}, {}])


def test_the_jsd_floor_is_what_a_mass_blind_cut_gives():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(800, int), np.zeros(800, int)]
    mass = rng.uniform(20, 280, 1600)
    curvature = {"lambda1": 1.0, "trace": 1.0}

    def result(scores, seed):
        return study.Result("default", seed, np.repeat(scores[:, None], 5, 1).astype(np.float32), labels, mass,
                            curvature, 1.0)

    blind = {("default", s): result(rng.random(1600), s) for s in (0, 1)}
    floor = study.jsd_floor(blind, draws=50)
    assert 0 < floor < 0.2
    jsd = np.mean(study.values(blind)["default"]["jsd"])
    assert abs(jsd - floor) < 3 * 0.02  # random scores sculpt nothing: they sit at the floor
    sculpting = {("default", s): result(-np.abs(mass - 125) + rng.normal(0, 5, 1600), s) for s in (0, 1)}
    assert np.mean(study.values(sculpting)["default"]["jsd"]) > 5 * floor  # a cut on mass sits far above it
