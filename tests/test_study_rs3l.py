"""The RS3L chapter (``book/rs3l/rs3l.ipynb``): partner sampling, the split, fine-tuning from a pre-trained
backbone, the Wasserstein distance and the chapter's tables, on small synthetic jets."""

import numpy as np
import pytest
import torch

from hepnb.data.datasets import PartnerBatches
from hepnb.data.sample import CLASS_NAMES, VARIATION_NAMES, SampleError
from hepnb.evaluation import metrics
from hepnb.studies import rs3l as study

V = len(VARIATION_NAMES)


def coded_jets(n=30, c=4):
    """Jets whose features encode (event, variation): x[i, v, :, 0] = i, x[i, v, :, 1] = v."""
    x = np.zeros((n, V, c, 15), np.float32)
    x[..., 0] = np.arange(n)[:, None, None]
    x[..., 1] = np.arange(V)[None, :, None]
    return {"x": torch.from_numpy(x), "mask": torch.ones(n, V, c, dtype=torch.bool)}


def test_partners_come_from_the_same_event_and_the_allowed_set_and_change_every_epoch():
    jets = coded_jets()
    rows = np.arange(3, 27)
    batches = PartnerBatches(jets, rows, partners=[1, 4], batch_size=7, seed=5)
    drawn = []
    for _ in range(4):
        events, partners = [], []
        for b in batches:
            assert b["x"].shape[1:] == (2, 4, 15) and b["mask"].shape[1:] == (2, 4)
            anchor, partner = b["x"][:, 0, 0], b["x"][:, 1, 0]
            torch.testing.assert_close(anchor[:, 0], partner[:, 0])  # one hard event per pair
            assert set(anchor[:, 1].tolist()) == {0.0} and set(partner[:, 1].tolist()) <= {1.0, 4.0}
            events += anchor[:, 0].int().tolist()
            partners += partner[:, 1].int().tolist()
        assert sorted(events) == rows.tolist()  # every row once per pass
        drawn.append(dict(zip(events, partners)))
    assert any(drawn[0] != d for d in drawn[1:])  # partners are drawn afresh
    assert {p for d in drawn for p in d.values()} == {1, 4}
    again = PartnerBatches(jets, rows, partners=[1, 4], batch_size=7, seed=5)
    assert [dict(zip(*again.draw(k))) for k in range(4)] == [dict(zip(*batches.draw(k))) for k in range(4)]
    fixed = PartnerBatches(jets, rows, partners=[1, 2, 3, 4], batch_size=7, fixed=True, shuffle=False)
    first, second = [b["x"].clone() for b in fixed], [b["x"].clone() for b in fixed]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_the_mixture_layout_stacks_anchors_then_partners_with_their_labels():
    jets = coded_jets()
    y = torch.arange(30, dtype=torch.float32)
    b = next(iter(PartnerBatches(jets, np.arange(30), [2], 10, "mixture", labels={"y": y}, seed=1)))
    assert b["x"].shape == (20, 4, 15) and b["y"].shape == (20,)
    torch.testing.assert_close(b["x"][:10, 0, 0], b["x"][10:, 0, 0])
    torch.testing.assert_close(b["y"][:10], b["x"][:10, 0, 0])  # the label of row i rides with row i
    assert set(b["x"][:10, 0, 1].tolist()) == {0.0} and set(b["x"][10:, 0, 1].tolist()) == {2.0}


@pytest.mark.parametrize("kwargs, match", [({"partners": []}, "partner"), ({"partners": [5]}, "partner"),
                                          ({"rows": [40]}, "rows"), ({"layout": "grid"}, "layout"),
                                          ({"anchor": 7}, "anchor")])
def test_partner_batches_refuse_nonsense(kwargs, match):
    args = {"jets": coded_jets(), "rows": np.arange(5), "partners": [1]}
    args.update(kwargs)
    with pytest.raises(SampleError, match=match):
        PartnerBatches(**args)


def test_wasserstein_on_known_distributions():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert metrics.wasserstein(a, a + 0.25) == pytest.approx(0.25, abs=1e-12)  # a shift moves every quantile by d
    assert metrics.wasserstein(a, a) == 0.0
    # two point masses at 0 and 1 with weights 1/2 against all at 0: half the mass moves by 1
    assert metrics.wasserstein(np.r_[np.zeros(50), np.ones(50)], np.zeros(100)) == pytest.approx(0.5)
    # uniform(0, 1) vs uniform(0, 2): the mean of |F^-1 - G^-1| = E|u - 2u| = 1/2
    u = (np.arange(20_000) + 0.5) / 20_000
    assert metrics.wasserstein(u, 2 * u) == pytest.approx(0.5, rel=1e-4)
    with pytest.raises(ValueError, match="non-empty"):
        metrics.wasserstein([], a)
    with pytest.raises(ValueError, match="finite"):
        metrics.wasserstein([np.nan], a)


def fake_data(n=48, c=6, seed=0):
    """Synthetic jets: H jets have a feature shifted up, W jets another; the rest is noise."""
    rng = np.random.default_rng(seed)
    label = np.repeat([CLASS_NAMES.index(k) for k in ("qcd", "hbb", "wqq")], n)
    mask = np.arange(c) < rng.integers(2, c + 1, len(label))[:, None, None]
    x = rng.normal(size=(len(label), V, c, 15)).astype(np.float32)
    x[..., 0] += 1.5 * (label == 1)[:, None, None]
    x[..., 2] += 1.5 * (label == 2)[:, None, None]
    x = np.where(mask[..., None], x, 0).astype(np.float32)
    mask = np.broadcast_to(mask, (len(label), V, c)).copy()
    rows = {}
    for cls in ("qcd", "hbb", "wqq"):
        members = np.flatnonzero(label == CLASS_NAMES.index(cls))
        for split, idx in study._split(len(members), seed, cls, pretrain=cls != "wqq").items():
            rows[f"{split}:{cls}"] = members[np.sort(idx)]
    parton = np.where(label == 0, rng.choice([1, 4, 5, 21], len(label)), 25)
    pool = sum(len(rows[f"{s}:{k}"]) for s in ("pretrain", "finetune") for k in ("hbb", "qcd"))
    return study.RS3LData(x, mask, label.astype(np.int8), parton, np.arange(len(label)), rows,
                          rng.normal(size=(len(label), V)), max(1, pool // 8), {"fake": seed})


def test_the_split_is_by_event_disjoint_and_keeps_the_papers_ratios():
    parts = study._split(10_000, 3, "hbb", pretrain=True)
    assert len(np.unique(np.concatenate(list(parts.values())))) == 10_000
    assert (len(parts["test"]), len(parts["val"])) == (4000, 1000)
    assert len(parts["pretrain"]) / len(parts["finetune"]) == pytest.approx(5 / 3, rel=1e-3)
    assert "pretrain" not in study._split(100, 3, "wqq", pretrain=False)
    data = fake_data()
    one, three, eight = (data.labelled_rows("h", u) for u in (1, 3, 8))
    assert set(one) < set(three) < set(eight)
    assert set(eight) == set(data.rows_of("pretrain")) | set(data.rows_of("finetune"))
    assert not set(three) & set(data.rows_of("pretrain"))  # fine-tuning rows are independent of pre-training
    y = data.target("h").numpy()
    assert y[three].mean() == 0.5 and set(data.label[data.labelled_rows("w", 3)]) == {0, 2}
    with pytest.raises(ValueError, match="units"):
        data.labelled_rows("w", 8)


def test_jobs_refuse_nonsense():
    for kwargs in ({"kind": "pretrain", "augment": "all", "seed": 0, "units": 3},
                   {"kind": "floating", "augment": "all", "seed": 0},
                   {"kind": "teacher", "augment": "all", "seed": 0},
                   {"kind": "supervised", "augment": "herwig", "seed": 0, "units": 1},
                   {"kind": "supervised", "augment": "all", "seed": 0, "units": 1, "task": "z"}):
        with pytest.raises(ValueError):
            study.Job(**kwargs)
    assert study.Job("fixed", "seed", 4, "h", 3, 1e-3).backbone == study.Job("pretrain", "seed", 4)


def test_fine_tuning_starts_from_the_backbone_and_fixed_leaves_it_bit_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    data = fake_data()
    st = study.Settings(k=3, width=8, pretrain_epochs=2, epochs=2, batch_size=16)
    jobs = [study.Job(kind, "all", s, "h", 3, 3e-3) for kind in ("fixed", "floating", "supervised") for s in (0, 1)]
    jobs += [study.Job("floating", "all", s, "w", 3, 3e-3) for s in (0, 1)]
    jobs += [study.Job("supervised", "all", s, "h", u, 3e-3) for s in (0, 1) for u in (1, 8)]
    metas = study.train(jobs, data, st)
    assert all(j.backbone in metas for j in jobs if j.kind != "supervised")
    pre = metas[study.Job("pretrain", "all", 0)]
    assert len(pre["history"]["monitored"]["positive_hbb"]) == 2 and -1 <= pre["fig2_start"]["mean_h_vs_qcd"] <= 1
    backbone = study.load_backbone(study.Job("pretrain", "all", 0), data, st).state_dict()
    from hepnb.models.edgeconv import RS3LTagger
    from hepnb.training.checkpoints import load_if_usable

    def tagger(job):
        model = RS3LTagger(study.make_backbone(st), job.kind == "fixed")
        assert load_if_usable(study.KIND, study._key(job, data, st), model, study.TRAINING_VERSION) is not None
        return model.backbone.state_dict()

    fixed, floating = tagger(jobs[0]), tagger(jobs[2])
    assert all(torch.equal(fixed[k], backbone[k]) for k in backbone)
    assert any(not torch.equal(floating[k], backbone[k]) for k in backbone)
    s = study.scores(metas[jobs[0]])
    assert s.shape == (len(data.rows_of("test")), V) and np.all((s > 0) & (s < 1))
    # a second call loads every checkpoint instead of training
    assert not any(m["trained"] for m in study.train(jobs, data, st).values())
    # the tables are built from these values
    table2 = study.rejection_rows(metas, data)
    assert table2[0]["setup"] == "N₂" and len(table2) == 1 + len(study.HARRIS["table2"]) - 1
    y = study.test_labels(data)
    manual = [metrics.rejection_at(y, study.scores(metas[j])[:, 0], 0.5) for j in jobs[:2]]
    assert table2[1]["ε = 0.5"].split(" ± ")[0] == f"{np.mean(manual):.1f}"
    table3 = study.wasserstein_rows(metas, data)
    w_alt = [metrics.wasserstein(study.scores(metas[j])[:, 0], study.scores(metas[j])[:, 4]) for j in jobs[:2]]
    assert table3[1]["alt_shower"].split(" ± ")[0] == f"{1e3 * np.mean(w_alt):.2f}"
    claims = study.claims_rows(metas, data)
    floating_vs_fixed = next(c for c in claims if c["claim"].startswith("floating beats fixed"))
    r = {j.kind: [metrics.rejection_at(y, study.scores(metas[k])[:, 0], 0.5) for k in jobs if k.kind == j.kind
                  and k.task == "h" and k.units == 3] for j in jobs[:4]}
    diff = np.log(r["floating"]) - np.log(r["fixed"])
    assert floating_vs_fixed["ours"].startswith(f"{diff.mean():+.3f}")
    assert floating_vs_fixed["n"] == 2 and floating_vs_fixed["design"] == "paired"


def test_representation_helpers():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 200)
    z = rng.normal(size=(400, 8))
    z[:, 5] -= 2.0 * y  # dimension 5 falls with H-ness
    best, auc = study.discriminating_dimension(z, y)
    assert best == 5 and auc > 0.9
    same = rng.normal(size=(300, 8))
    assert study.shower_mixing(same[:150], same[150:]) == pytest.approx(0.5, abs=0.06)
    far = np.c_[np.ones((150, 1)), np.zeros((150, 7))] + 0.01 * rng.normal(size=(150, 8))
    assert study.shower_mixing(far, -far) == 0.0
    pairs = study.pearson_pairs(z[y == 1], z[y == 0])
    assert len(pairs) == 28 and all(i > j for (i, j), _, _ in pairs)


def test_label_efficiency_and_reading_are_built_from_the_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    data = fake_data(seed=3)
    st = study.Settings(k=3, width=8, pretrain_epochs=1, epochs=1, batch_size=16)
    jobs = [j for g in study.main_jobs([0, 1], {"fixed": 3e-3, "floating": 3e-3, "supervised": 3e-3}).values()
            for j in g]
    metas = study.train(jobs, data, st)
    curve = study.label_efficiency(metas, data)
    y = study.test_labels(data)
    n, mean, low, high = curve["supervised"]
    np.testing.assert_allclose(n, np.array([1 / 3, 1, 3, 8]) * data.unit)
    r = [metrics.rejection_at(y, study.scores(m)[:, 0], 0.5) for j, m in metas.items()
         if j.kind == "supervised" and j.units == 8 and j.augment == "all"]
    assert mean[-1] == pytest.approx(np.exp(np.mean(np.log(r))))
    assert low[-1] == pytest.approx(min(r)) and high[-1] == pytest.approx(max(r))
    for kind in curve:
        assert np.all(curve[kind][2] <= curve[kind][1]) and np.all(curve[kind][1] <= curve[kind][3])
    text = study.reading(metas, data)
    assert f"{np.exp(np.mean(np.log(r))):.0f} (8 u)" in text and "Table III" in text


def test_training_falls_back_to_one_process_when_shared_memory_is_full(tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    data = fake_data(seed=4)

    def full(self):
        raise RuntimeError("unable to write to file </torch_1>: No space left on device (28)")

    monkeypatch.setattr(torch.Tensor, "share_memory_", full)
    st = study.Settings(k=3, width=8, pretrain_epochs=1, epochs=1, batch_size=16)
    with pytest.warns(RuntimeWarning, match="shared memory"):
        metas = study.train([study.Job("supervised", "all", 0, "h", 1, 3e-3)], data, st, workers=2)
    assert len(metas) == 1
