"""hepnb.data.datasets: event-level splits, JetDataset layouts and balancing, reproducible loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepnb.data.datasets import JetDataset, make_loaders, split_by_event
from hepnb.data.features import sample_features
from hepnb.data.sample import CLASS_NAMES, VARIATION_NAMES, JetSample, SampleError


def make_sample(counts: dict[str, int], V: int = 3, C: int = 8, seed: int = 0, repeat_ids: int = 1) -> JetSample:
    """A small synthetic sample: ``counts`` rows per class, shuffled; ``repeat_ids`` rows share each event id."""
    rng = np.random.default_rng(seed)
    label = np.concatenate([np.full(k, CLASS_NAMES.index(name), np.int8) for name, k in counts.items()])
    label = label[rng.permutation(len(label))]
    n = len(label)
    n_real = rng.integers(1, C + 1, size=(n, V))
    mask = np.arange(C) < n_real[..., None]
    pt = np.sort(rng.exponential(20.0, size=(n, V, C)) + 1.0, axis=-1)[..., ::-1]
    eta = rng.normal(0, 0.3, size=(n, V, C)) + rng.uniform(-2, 2, size=(n, 1, 1))
    phi = rng.normal(0, 0.3, size=(n, V, C)) + rng.uniform(-3, 3, size=(n, 1, 1))
    p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=-1)
    p4 = np.where(mask[..., None], p4, 0.0)
    charge = np.where(mask, rng.integers(-1, 2, size=(n, V, C)), 0).astype(np.int8)
    pid = np.where(mask, np.where(charge == 0, 22, 211 * charge.astype(np.int32)), 0).astype(np.int32)
    d0 = np.where(charge != 0, rng.normal(0, 0.1, size=(n, V, C)), 0).astype(np.float32)
    return JetSample(p4=p4.astype(np.float32), charge=charge, pid=pid, d0=d0, dz=2 * d0, mask=mask,
                     jet_p4=p4.sum(axis=2), n_constituents=mask.sum(-1).astype(np.int32), label=label,
                     parton=np.full(n, 21, np.int32), event_id=(np.arange(n) // repeat_ids).astype(np.int64) * 7 + 3,
                     variations=VARIATION_NAMES[:V], source="synthetic")


@pytest.fixture(scope="module")
def sample() -> JetSample:
    return make_sample({"qcd": 60, "hbb": 40, "wqq": 20})


# ---------------------------------------------------------------------------------------------------------------
# split_by_event


def test_splits_partition_the_rows_and_never_share_an_event():
    ids = np.repeat(np.random.default_rng(1).permutation(300), 4)  # 4 rows per event, shuffled ids
    ids = ids[np.random.default_rng(2).permutation(len(ids))]
    splits = split_by_event(ids, (0.7, 0.15, 0.15), seed=3)
    assert len(splits) == 3
    everything = np.concatenate(splits)
    assert len(everything) == len(ids) and len(np.unique(everything)) == len(ids)  # a partition of the rows
    events = [set(ids[s]) for s in splits]
    assert not (events[0] & events[1]) and not (events[0] & events[2]) and not (events[1] & events[2])
    assert [len(e) for e in events] == [210, 45, 45]  # split sizes follow the fractions, in events
    for s in splits:
        assert (np.diff(s) > 0).all() and s.dtype == np.int64


def test_split_sizes_follow_the_fractions():
    splits = split_by_event(np.arange(1000), (0.5, 0.3, 0.2), seed=0)
    assert [len(s) for s in splits] == [500, 300, 200]
    two = split_by_event(np.arange(101), (0.8, 0.2), seed=0)
    assert len(two) == 2 and abs(len(two[0]) - 81) <= 1 and len(two[0]) + len(two[1]) == 101


def test_splits_are_deterministic_and_depend_on_the_seed():
    ids = np.arange(200) // 2
    a, b, c = split_by_event(ids, seed=5), split_by_event(ids, seed=5), split_by_event(ids, seed=6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c))
    # the assignment of an event does not depend on the row order
    order = np.random.default_rng(0).permutation(len(ids))
    shuffled = split_by_event(ids[order], seed=5)
    for x, y in zip(a, shuffled):
        assert set(ids[x]) == set(ids[order][y])


@pytest.mark.parametrize("fractions, message", [((0.7, 0.2), "sum to 1"), ((1.2, -0.2), "> 0"),
                                                ((0.5, float("nan"), 0.5), "> 0"), ((), "empty"),
                                                (("a", "b"), "a number"), (0.5, "sequence")])
def test_nonsense_fractions_are_rejected(fractions, message):
    with pytest.raises(ValueError, match=message):
        split_by_event(np.arange(10), fractions)


def test_event_ids_must_be_one_dimensional():
    with pytest.raises(ValueError, match="one-dimensional"):
        split_by_event(np.zeros((3, 2)))


# ---------------------------------------------------------------------------------------------------------------
# JetDataset


def test_items_per_jet_and_labels_follow_the_classes_order(sample):
    ds = JetDataset(sample, variations=(0, "fsr_down"), classes=("hbb", "qcd"), max_constituents=5, balance=False)
    assert ds.variations == ("nominal", "fsr_down") and ds.variation_indices == (0, 2)
    assert ds.n_per_class == {"hbb": 40, "qcd": 60}
    assert len(ds) == 100 * 2
    assert not np.isin(ds.rows, np.flatnonzero(sample.class_mask("wqq"))).any()  # other classes dropped
    item = ds[3]
    assert item["x"].shape == (5, 15) and item["x"].dtype == torch.float32
    assert item["jet"].shape == (2,) and item["mask"].shape == (5,) and item["mask"].dtype == torch.bool
    assert item["y"].dtype == torch.float32 and item["y"].ndim == 0
    assert item["row"] == ds.rows[1] and item["variation"] == 2
    for i in range(len(ds)):
        it = ds[i]
        expected = {"hbb": 0.0, "qcd": 1.0}[CLASS_NAMES[sample.label[it["row"]]]]
        assert it["y"].item() == expected
    x, jet, mask = sample_features(sample.rows(ds.rows[1:2]), variations=[2], max_constituents=5)
    torch.testing.assert_close(item["x"], torch.from_numpy(x[0, 0]))
    torch.testing.assert_close(item["jet"], torch.from_numpy(jet[0, 0]))
    assert torch.equal(item["mask"], torch.from_numpy(mask[0, 0]))


def test_default_classes_give_zero_for_qcd_and_one_for_hbb(sample):
    ds = JetDataset(sample, balance=False)
    assert ds.classes == ("qcd", "hbb")
    np.testing.assert_array_equal(ds.labels, (sample.label[ds.rows] == CLASS_NAMES.index("hbb")).astype(int))
    assert ds.x.shape[2] == sample.max_constituents  # max_constituents=100 > C keeps all of them


def test_balance_gives_equal_class_counts_by_hard_event(sample):
    ds = JetDataset(sample, variations=(0, 1, 2), classes=("qcd", "hbb", "wqq"), balance=True, seed=4)
    assert ds.n_per_class == {"qcd": 20, "hbb": 20, "wqq": 20}
    assert np.bincount(ds.labels).tolist() == [20, 20, 20]
    assert len(np.unique(ds.rows)) == 60 and len(ds) == 60 * 3  # whole rows kept, all their variations
    again = JetDataset(sample, variations=(0, 1, 2), classes=("qcd", "hbb", "wqq"), balance=True, seed=4)
    other = JetDataset(sample, variations=(0, 1, 2), classes=("qcd", "hbb", "wqq"), balance=True, seed=5)
    np.testing.assert_array_equal(ds.rows, again.rows)
    assert not np.array_equal(ds.rows, other.rows)


def test_paired_items_hold_every_variation_of_one_row(sample):
    ds = JetDataset(sample, variations=("nominal", "seed", "fsr_down"), paired=True, max_constituents=6)
    assert len(ds) == len(ds.rows)
    item = ds[7]
    assert item["x"].shape == (3, 6, 15) and item["jet"].shape == (3, 2) and item["mask"].shape == (3, 6)
    assert item["row"] == ds.rows[7] and item["y"].ndim == 0
    row = ds.rows[7]
    for v in range(3):
        real = sample.mask[row, v, :6]
        assert torch.equal(item["mask"][v], torch.from_numpy(real))
        np.testing.assert_allclose(item["x"][v, :, 0][real].numpy(), np.log(np.hypot(
            sample.p4[row, v, :6, 0], sample.p4[row, v, :6, 1]))[real], rtol=1e-5)
    flat = JetDataset(sample, variations=("nominal", "seed", "fsr_down"), max_constituents=6)
    for v in range(3):
        torch.testing.assert_close(flat[7 * 3 + v]["x"], item["x"][v])


def test_rows_selection_by_index_and_mask(sample):
    rows = np.flatnonzero(~sample.class_mask("wqq"))[:30]
    by_index = JetDataset(sample, rows=rows, balance=False)
    mask = np.zeros(len(sample), bool)
    mask[rows] = True
    by_mask = JetDataset(sample, rows=mask, balance=False)
    np.testing.assert_array_equal(by_index.rows, rows)
    np.testing.assert_array_equal(by_mask.rows, rows)


@pytest.mark.parametrize("kwargs, message", [
    ({"classes": ("qcd", "top")}, "unknown class 'top'"),
    ({"classes": ("qcd", "zqq")}, "'zqq' is absent from the sample"),
    ({"classes": ("qcd", "qcd")}, "twice"),
    ({"classes": ()}, "classes is empty"),
    ({"variations": ("alt_shower",)}, "alt_shower"),
    ({"variations": (7,)}, "outside"),
    ({"variations": ()}, "variations is empty"),
    ({"rows": []}, "empty selection"),
    ({"rows": [0, 10_000]}, "outside"),
    ({"max_constituents": 0}, "max_constituents"),
])
def test_bad_selections_raise_clear_errors(sample, kwargs, message):
    with pytest.raises(SampleError, match=message):
        JetDataset(sample, **kwargs)


def test_a_class_missing_from_the_selected_rows_is_an_empty_selection(sample):
    qcd_rows = np.flatnonzero(sample.class_mask("qcd"))
    with pytest.raises(SampleError, match="empty selection: class 'hbb'"):
        JetDataset(sample, rows=qcd_rows)


# ---------------------------------------------------------------------------------------------------------------
# make_loaders


def test_loaders_split_by_event_with_duplicated_event_ids():
    shared = make_sample({"qcd": 120, "hbb": 120}, repeat_ids=3)  # three rows per hard event
    loaders = make_loaders(shared, batch_size=16, seed=2, variations=(0, 1))
    assert set(loaders) == {"train", "val", "test"}
    events = {name: set(shared.event_id[loader.dataset.rows]) for name, loader in loaders.items()}
    assert not (events["train"] & events["val"]) and not (events["train"] & events["test"])
    assert not (events["val"] & events["test"])
    for loader in loaders.values():  # balance is applied per split
        counts = loader.dataset.n_per_class
        assert counts["qcd"] == counts["hbb"] > 0
    seen = {name: set() for name in loaders}
    for name, loader in loaders.items():
        for batch in loader:
            seen[name] |= set(shared.event_id[batch["row"].numpy()])
    assert not (seen["train"] & seen["test"])
    assert len(events["train"]) > len(events["val"])


def test_same_seed_gives_the_same_batches_and_another_seed_does_not(sample):
    first = make_loaders(sample, batch_size=8, seed=11)["train"]
    second = make_loaders(sample, batch_size=8, seed=11)["train"]
    other = make_loaders(sample, batch_size=8, seed=12)["train"]
    a, b, c = next(iter(first)), next(iter(second)), next(iter(other))
    assert a["x"].shape == (8, sample.max_constituents, 15) and a["y"].shape == (8,)
    for key in ("x", "jet", "mask", "y", "row", "variation"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["row"], c["row"])
    # the training loader shuffles; validation and test keep the sample order
    val = make_loaders(sample, batch_size=1000, seed=11)["val"]
    rows = next(iter(val))["row"].numpy()
    assert (np.diff(rows) >= 0).all()
    assert not (np.diff(next(iter(make_loaders(sample, batch_size=1000, seed=11)["train"]))["row"].numpy())
                >= 0).all()


def test_paired_loaders_batch_variations_together(sample):
    loaders = make_loaders(sample, batch_size=4, paired=True, variations=(0, 1))
    batch = next(iter(loaders["train"]))
    assert batch["x"].shape == (4, 2, sample.max_constituents, 15) and batch["mask"].shape[:2] == (4, 2)


@pytest.mark.parametrize("kwargs, message", [({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
                                             ({"batch_size": True}, "batch_size"), ({"num_workers": -1}, "num_workers"),
                                             ({"fractions": (0.5, 0.5)}, "needs 3 fractions"),
                                             ({"fractions": (0.5, 0.4, 0.4)}, "sum to 1"),
                                             ({"rows": [1, 2]}, "rows"), ({"classes": ("qcd", "top")}, "unknown")])
def test_make_loaders_rejects_nonsense(sample, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_loaders(sample, **kwargs)


def test_too_few_events_name_the_empty_split():
    tiny = make_sample({"qcd": 2, "hbb": 2})
    with pytest.raises(SampleError, match="split 'val' is empty|split 'test' is empty"):
        make_loaders(tiny, fractions=(0.9, 0.05, 0.05))


def test_tensor_batches_hold_the_datasets_jets_of_one_variation(sample):
    from hepnb.data.datasets import TensorBatches

    ds = JetDataset(sample, variations=(0, 2), classes=("qcd", "hbb"))
    ordered = TensorBatches(ds, VARIATION_NAMES[2], batch_size=7)
    got = list(ordered)
    assert len(got) == len(ordered) == -(-len(ds.rows) // 7)
    x = torch.cat([b["x"] for b in got])
    assert torch.equal(x, ds.x[:, 1]) and torch.equal(torch.cat([b["y"] for b in got]), ds.y)
    assert torch.equal(torch.cat([b["mask"] for b in got]), ds.mask[:, 1])
    # shuffled: a permutation, the same for the same seed, new every pass
    a, b = TensorBatches(ds, 0, 5, shuffle=True, seed=3), TensorBatches(ds, 0, 5, shuffle=True, seed=3)
    first, again = [t["jet"] for t in a], [t["jet"] for t in b]
    assert all(torch.equal(u, v) for u, v in zip(first, again))
    assert not torch.equal(torch.cat([t["jet"] for t in a]), torch.cat(first))  # pass two: another order
    assert sorted(torch.cat(first)[:, 0].tolist()) == sorted(ds.jet[:, 0, 0].tolist())
    with pytest.raises(SampleError, match="not in the dataset"):
        TensorBatches(ds, "alt_shower")
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatches(ds, 0, 0)
