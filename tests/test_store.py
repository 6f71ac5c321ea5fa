"""hepnb.data.store and hepnb.data.cache: the native hepnb-resim HDF5 file (round trip, reproducible bytes, validated reads, atomic writes) and the
settings-hash cache (naming, load_or_generate served from and regenerating the cache).

Most tests use small synthetic arrays written with ``write_resim``; one test runs the real generator on tiny shards.
"""

import copy
import shutil
import time

import h5py
import numpy as np
import pytest

from hepnb.data import cache, files, store
from hepnb.data.features import impact_parameters
from hepnb.data.public import write_rs3l_layout
from hepnb.errors import DataFileError
from hepnb.generate import resim, shards
from hepnb.generate.catalogue import CLASS_NAMES, VARIATION_NAMES
from hepnb.physics import kinematics

N, V, C = 9, len(VARIATION_NAMES), 12
CAND_FIELDS = ["px", "py", "pz", "E", "vx", "vy", "vz"]
HBB = CLASS_NAMES.index("hbb")


def make_arrays(n=N, seed=0):
    """Valid arrays of one hbb file: pT-ordered constituents, pid nonzero exactly for the first min(n_const, C)."""
    rng = np.random.default_rng(seed)
    n_const = rng.integers(1, C + 6, size=(n, V)).astype(np.int32)  # some jets hold more than C (truncated)
    n_const[0, 0] = C  # exactly full
    n_const[0, 1] = C + 3  # truncated
    mask = np.arange(C) < np.minimum(n_const, C)[..., None]
    pt = -np.sort(-rng.exponential(30, size=(n, V, C)), axis=-1) + 1.0
    eta = rng.normal(0, 0.3, size=(n, V, C))
    phi = rng.uniform(-np.pi, np.pi, size=(n, 1, 1)) + rng.normal(0, 0.2, size=(n, V, C))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + 0.13957**2)
    vertex = rng.normal(0, 0.5, size=(n, V, C, 3)) * (rng.random((n, V, C, 1)) < 0.5)  # half at the origin
    cands = np.concatenate([np.stack([px, py, pz, e], axis=-1), vertex], axis=-1)
    cands = np.where(mask[..., None], cands, 0).astype(np.float32)
    charged = rng.random((n, V, C)) < 0.6
    charge = np.where(mask & charged, rng.choice([-1, 1], size=(n, V, C)), 0).astype(np.int8)
    pid = np.where(charged, 211 * charge.astype(np.int32), rng.choice([22, 130], size=(n, V, C)))
    pid = np.where(mask, pid, 0).astype(np.int32)
    return {
        "cands": cands,
        "pid": pid,
        "charge": charge,
        "n_constituents": n_const,
        "jet": cands[..., :4].astype(np.float64).sum(axis=2) * 1.01,  # "more constituents than stored"
        "hard_p4": rng.normal(0, 300, size=(n, 4)),
        "parton": np.full(n, 25, np.int32),
        "event_id": np.arange(n, dtype=np.int64) * 5 + 11,
        "label": np.full(n, HBB, np.int8),
    }


def make_attrs(n=N, seed=0):
    return {"format": store.FORMAT, "schema_version": store.SCHEMA_VERSION, "n_events": n, "class_name": "hbb",
            "variations": list(VARIATION_NAMES), "cand_fields": list(CAND_FIELDS), "seed": seed,
            "settings": {"hard": ["HiggsSM:ffbar2HZ = on"], **{v: [f"# {v}"] for v in VARIATION_NAMES}}}


@pytest.fixture(scope="module")
def arrays():
    return make_arrays()


@pytest.fixture
def good(arrays, tmp_path):
    return store.write_resim(tmp_path / "good.h5", arrays, make_attrs())


def leftovers(folder):
    return sorted(p.name for p in folder.glob(".*.tmp-*"))


# -- round trip ------------------------------------------------------------------------------------------------


def test_round_trip_returns_the_arrays_exactly(arrays, good):
    s = store.read_resim(good)
    assert len(s) == N and s.variations == VARIATION_NAMES and s.max_constituents == C
    np.testing.assert_array_equal(s.p4, arrays["cands"][..., :4])
    assert s.p4.dtype == np.float32
    np.testing.assert_array_equal(s.charge, arrays["charge"])
    np.testing.assert_array_equal(s.pid, arrays["pid"])
    np.testing.assert_array_equal(s.mask, arrays["pid"] != 0)
    np.testing.assert_array_equal(s.mask.sum(axis=-1), np.minimum(arrays["n_constituents"], C))
    np.testing.assert_array_equal(s.jet_p4, arrays["jet"])
    np.testing.assert_array_equal(s.n_constituents, arrays["n_constituents"])
    assert s.n_constituents[0, 1] == C + 3  # the count before truncation survives
    np.testing.assert_array_equal(s.label, arrays["label"])
    np.testing.assert_array_equal(s.parton, arrays["parton"])
    np.testing.assert_array_equal(s.event_id, arrays["event_id"])
    assert s.attrs["class_name"] == "hbb" and s.attrs["variations"] == list(VARIATION_NAMES)
    assert s.attrs["settings"] == make_attrs()["settings"]  # JSON attributes come back decoded
    assert s.source == str(good)
    assert store.read_attrs(good) == s.attrs


def test_impact_parameters_come_from_the_written_vertices(arrays, good):
    s = store.read_resim(good)
    cands = arrays["cands"]
    d0, dz = impact_parameters(cands[..., :4], cands[..., 4:], arrays["charge"])
    np.testing.assert_array_equal(s.d0, d0)
    np.testing.assert_array_equal(s.dz, dz)
    # by hand for every charged track with a displaced vertex, in float64
    track = (arrays["charge"] != 0) & (np.abs(cands[..., 4]) > 0)
    assert track.sum() > 20
    px, py, pz = (cands[..., k][track].astype(np.float64) for k in range(3))
    x, y, z = (cands[..., 4 + k][track].astype(np.float64) for k in range(3))
    pt = np.hypot(px, py)
    np.testing.assert_allclose(s.d0[track], (x * py - y * px) / pt, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.dz[track], z - (x * px + y * py) * pz / pt**2, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(s.d0[track]) > 0)
    # neutrals and padding have none
    assert np.all(s.d0[arrays["charge"] == 0] == 0) and np.all(s.dz[arrays["charge"] == 0] == 0)


def test_equal_inputs_give_identical_bytes_and_different_inputs_do_not(arrays, tmp_path):
    a = store.write_resim(tmp_path / "a.h5", arrays, make_attrs())
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution: a file that stored one would now differ
    b = store.write_resim(tmp_path / "sub" / "b.h5", copy.deepcopy(arrays), make_attrs())
    assert a.read_bytes() == b.read_bytes()
    changed = copy.deepcopy(arrays)
    changed["cands"][3, 2, 0, 0] += 1.0
    c = store.write_resim(tmp_path / "c.h5", changed, make_attrs())
    assert c.read_bytes() != a.read_bytes()
    d = store.write_resim(tmp_path / "d.h5", arrays, {**make_attrs(), "seed": 1})
    assert d.read_bytes() != a.read_bytes()
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "sub") == []


def test_n_rows_reads_the_first_rows(good):
    full = store.read_resim(good)
    for k in (1, 4, N, np.int64(3)):
        part = store.read_resim(good, n_rows=k)
        assert len(part) == k
        want = full.rows(slice(0, int(k)))
        for name in ("p4", "charge", "pid", "d0", "dz", "mask", "jet_p4", "n_constituents", "label", "parton",
                     "event_id"):
            np.testing.assert_array_equal(getattr(part, name), getattr(want, name), err_msg=name)
    with pytest.raises(DataFileError, match=f"asked for {N + 1} hard events, the file holds {N}"):
        store.read_resim(good, n_rows=N + 1)
    for bad in (0, -1, True, 2.5):  # a whole float (2.0) is read as the integer it is
        with pytest.raises(ValueError, match="n_rows must be an integer"):
            store.read_resim(good, n_rows=bad)


def test_write_refuses_missing_or_ragged_arrays(arrays, tmp_path):
    with pytest.raises(ValueError, match="arrays missing \\['hard_p4'\\]"):
        store.write_resim(tmp_path / "x.h5", {k: v for k, v in arrays.items() if k != "hard_p4"}, make_attrs())
    with pytest.raises(ValueError, match="parton has 8 rows, event_id has 9"):
        store.write_resim(tmp_path / "x.h5", {**arrays, "parton": arrays["parton"][:-1]}, make_attrs())
    assert list(tmp_path.iterdir()) == []


# -- errors naming the problem ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        store.read_resim(tmp_path / "nope.h5")
    with pytest.raises(DataFileError, match="no such file"):
        store.read_attrs(tmp_path / "nope.h5")


def test_truncated_file(good, tmp_path):
    data = good.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="truncated or corrupt") as err:
        store.read_resim(cut)
    assert str(cut) in str(err.value)


def test_not_hdf5(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("these are not the jets you are looking for\n" * 10)
    with pytest.raises(DataFileError, match="cannot be opened as HDF5"):
        store.read_resim(text)


def test_foreign_hdf5(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((3, 4)))
    with pytest.raises(DataFileError, match="foreign file: attribute format=None, expected 'hepnb-resim'") as err:
        store.read_resim(path)
    assert "load_rs3l" not in str(err.value)


def test_public_rs3l_file_points_to_load_rs3l(good, tmp_path):
    path = tmp_path / "rs3l.h5"
    write_rs3l_layout(store.read_resim(good), path)
    with pytest.raises(DataFileError, match="foreign file.*public RS3L file.*hepnb.data.public.load_rs3l"):
        store.read_resim(path)


def test_wrong_schema_version(arrays, tmp_path):
    path = store.write_resim(tmp_path / "v2.h5", arrays, {**make_attrs(), "schema_version": store.SCHEMA_VERSION + 1})
    with pytest.raises(DataFileError, match=f"schema version {store.SCHEMA_VERSION + 1}, this hepnb reads version "
                                            f"{store.SCHEMA_VERSION}"):
        store.read_resim(path)


@pytest.mark.parametrize("key", ["class_name", "cand_fields", "variations", "settings", "seed"])
def test_missing_attribute(arrays, tmp_path, key):
    attrs = {k: v for k, v in make_attrs().items() if k != key}
    path = store.write_resim(tmp_path / "a.h5", arrays, attrs)
    with pytest.raises(DataFileError, match=f"attribute '{key}' is missing"):
        store.read_resim(path)


def _edited_copy(good, tmp_path, edit):
    """A copy of the good file, changed in place by ``edit(f)`` on the open ``h5py.File``."""
    path = tmp_path / "copy.h5"
    shutil.copyfile(good, path)
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def _retype_label(f):
    label = f["label"][:]
    del f["label"]
    f.create_dataset("label", data=label.astype(np.int64))


def test_missing_dataset(good, tmp_path):
    path = _edited_copy(good, tmp_path, lambda f: f.__delitem__("hard_p4"))
    with pytest.raises(DataFileError, match="dataset 'hard_p4' is missing"):
        store.read_resim(path)


def test_wrong_shape(arrays, tmp_path):
    path = store.write_resim(tmp_path / "s.h5", {**arrays, "jet": arrays["jet"][:, :3]}, make_attrs())
    with pytest.raises(DataFileError, match=rf"jet has shape \({N}, 3, 4\), expected \({N}, {V}, 4\)"):
        store.read_resim(path)
    path = store.write_resim(tmp_path / "c.h5", {**arrays, "cands": arrays["cands"][:, :3]}, make_attrs())
    with pytest.raises(DataFileError, match=f"cands has shape .* but the file lists {V} variations"):
        store.read_resim(path)


def test_wrong_dtype(good, tmp_path):
    path = _edited_copy(good, tmp_path, _retype_label)
    with pytest.raises(DataFileError, match="label has dtype int64, expected int8"):
        store.read_resim(path)


def test_labels_disagree_with_class(arrays, tmp_path):
    label = arrays["label"].copy()
    label[4] = CLASS_NAMES.index("qcd")
    path = store.write_resim(tmp_path / "l.h5", {**arrays, "label": label}, make_attrs())
    with pytest.raises(DataFileError, match="labels disagree with the file's class 'hbb'"):
        store.read_resim(path)
    store.read_resim(path, n_rows=4)  # the first 4 rows are all hbb: only the rows read are checked


def test_padding_inconsistent_with_n_constituents(arrays, tmp_path):
    n_const = arrays["n_constituents"].copy()
    row = np.argwhere(n_const < C - 1)[0]
    n_const[tuple(row)] += 1  # one more real constituent claimed than pids stored
    path = store.write_resim(tmp_path / "p.h5", {**arrays, "n_constituents": n_const}, make_attrs())
    with pytest.raises(DataFileError, match="padding disagrees with n_constituents"):
        store.read_resim(path)
    pid = arrays["pid"].copy()
    pid[tuple(row) + (C - 1,)] = 22  # a particle in the padding
    path = store.write_resim(tmp_path / "q.h5", {**arrays, "pid": pid}, make_attrs())
    with pytest.raises(DataFileError, match="padding disagrees with n_constituents"):
        store.read_resim(path)


# -- atomic writes ---------------------------------------------------------------------------------------------


class Boom(RuntimeError):
    pass


def fail_on_third_dataset(monkeypatch):
    original = h5py.Group.create_dataset
    calls = []

    def create_dataset(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 3:
            raise Boom(f"disk full while writing {name}")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "create_dataset", create_dataset)
    return calls


def test_interrupted_write_leaves_nothing(arrays, tmp_path, monkeypatch):
    calls = fail_on_third_dataset(monkeypatch)
    path = tmp_path / "new.h5"
    with pytest.raises(Boom):
        store.write_resim(path, arrays, make_attrs())
    assert len(calls) == 3  # the patch was hit: two datasets were written before the failure
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_file(arrays, good, tmp_path, monkeypatch):
    before = good.read_bytes()
    changed = {**arrays, "event_id": arrays["event_id"] + 1}
    calls = fail_on_third_dataset(monkeypatch)
    with pytest.raises(Boom):
        store.write_resim(good, changed, make_attrs())
    assert len(calls) == 3
    assert good.read_bytes() == before
    assert leftovers(tmp_path) == []
    np.testing.assert_array_equal(store.read_resim(good).event_id, arrays["event_id"])


def test_atomic_path_renames_on_success_and_deletes_on_failure(tmp_path):
    final = tmp_path / "deep" / "f.txt"
    with files.atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp != final
        tmp.write_text("new")
        assert not final.exists()  # nothing visible until the block succeeds
    assert final.read_text() == "new"
    with pytest.raises(Boom), files.atomic_path(final) as tmp:
        tmp.write_text("half")
        raise Boom
    assert final.read_text() == "new" and leftovers(final.parent) == []


# -- the cache -------------------------------------------------------------------------------------------------


def test_cache_path_naming(tmp_path):
    p = cache.cache_path("hbb", 1, folder=tmp_path)
    assert p == cache.cache_path("hbb", 1, resim.Selection(), folder=tmp_path)  # default selection spelled out
    assert p.parent == tmp_path and p.suffix == ".h5" and p.name.startswith("resim-hbb-seed1-")
    others = [cache.cache_path("hbb", 2, folder=tmp_path), cache.cache_path("qcd", 1, folder=tmp_path),
              cache.cache_path("hbb", 1, resim.Selection(jet_pt_min=500), folder=tmp_path)]
    assert len({p, *others}) == 4
    assert cache.cache_path("hbb", 1, folder=tmp_path / "x").parent == tmp_path / "x"


def test_settings_hash_changes_with_any_pythia_setting():
    record = cache.generation_record("hbb", 3)
    base = cache.settings_hash(record)
    assert base == cache.settings_hash(cache.generation_record("hbb", 3))
    assert len(base) == 64 and int(base, 16) >= 0
    assert set(record["settings"]) == {"hard", *VARIATION_NAMES}
    n = 0
    for step, lines in record["settings"].items():
        for i in range(len(lines)):
            changed = copy.deepcopy(record)
            changed["settings"][step][i] += "1"
            assert cache.settings_hash(changed) != base, (step, lines[i])
            n += 1
        changed = copy.deepcopy(record)
        changed["settings"][step].append("Print:quiet = on")
        assert cache.settings_hash(changed) != base, step
    assert n > 30
    for key, value in (("seed", 4), ("pipeline_version", -1), ("generator", "pythia8mc 0")):
        assert cache.settings_hash({**record, key: value}) != base, key


# -- real generation on tiny shards ----------------------------------------------------------------------------


def test_load_or_generate_caches_and_serves_prefixes(tmp_path, monkeypatch):
    sizes = []

    def tiny_shard(shard):
        sizes.append(shard)
        return 120

    monkeypatch.setattr(shards, "shard_size", tiny_shard)
    original = cache.generate_file
    generated = []
    allow = {"generate": True}

    def generate_file(path, class_name, n_events, *args, **kwargs):
        if not allow["generate"]:
            raise AssertionError("regenerated although the cache holds enough events")
        generated.append(n_events)
        return original(path, class_name, n_events, *args, **kwargs)

    monkeypatch.setattr(cache, "generate_file", generate_file)

    first = cache.load_or_generate("hbb", 20, seed=3, folder=tmp_path, progress=False)
    path = cache.cache_path("hbb", 3, folder=tmp_path)
    assert generated == [20] and sizes  # generated, through the patched (tiny) shard size
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert len(first) == 20 and first.source == str(path)
    assert np.all(first.label == HBB) and np.all(first.parton == 25)
    assert len(np.unique(first.event_id)) == 20 and np.all(first.event_id < 120)  # all from the tiny shard 0

    # the same hard event in every variation: each variation's jet lies within 0.8 of the nominal jet axis
    pt, eta, phi = kinematics.pt_eta_phi(first.jet_p4)
    assert np.all(kinematics.delta_r(eta, phi, eta[:, :1], phi[:, :1]) < 0.8)
    assert np.all(pt > 450) and np.all(first.mask.any(axis=-1))

    attrs = store.read_attrs(path)
    assert attrs["generator"].startswith("pythia8mc 8.317")
    assert attrs["n_events"] == 20 and attrs["class_name"] == "hbb" and attrs["seed"] == 3
    assert attrs["settings_hash"] == cache.settings_hash(cache.generation_record("hbb", 3))
    assert attrs["variations"] == list(VARIATION_NAMES)
    assert set(attrs["settings"]) == {"hard", *VARIATION_NAMES}
    for v in resim.VARIATIONS:
        settings = attrs["settings"][v.name]
        assert isinstance(settings, list) and all(isinstance(s, str) for s in settings)
        assert "Beams:frameType = 4" in settings and all(s in settings for s in v.settings)
    assert "TimeShower:renormMultFac = 0.5" in attrs["settings"]["fsr_down"]
    showered, passed = attrs["showered"], attrs["passed"]
    assert set(showered) == set(passed) == set(VARIATION_NAMES)
    assert all(passed[v] <= showered[v] for v in VARIATION_NAMES)
    assert showered["nominal"] == 120 * attrs["shards_used"]
    for prev, nxt in zip(VARIATION_NAMES, VARIATION_NAMES[1:]):
        assert showered[nxt] == passed[prev]  # each variation re-showers the previous one's survivors
    assert passed["alt_shower"] >= 20

    # a smaller request is served from the file, without generating
    allow["generate"] = False
    before = path.read_bytes()
    second = cache.load_or_generate("hbb", 10, seed=3, folder=tmp_path, progress=False)
    assert len(second) == 10 and generated == [20]
    want = first.rows(slice(0, 10))
    for name in ("p4", "charge", "pid", "d0", "dz", "mask", "jet_p4", "n_constituents", "label", "parton",
                 "event_id"):
        np.testing.assert_array_equal(getattr(second, name), getattr(want, name), err_msg=name)
    assert path.read_bytes() == before

    # a bigger one regenerates, over the same file, and starts with the same events
    allow["generate"] = True
    third = cache.load_or_generate("hbb", 40, seed=3, folder=tmp_path, progress=False)
    assert generated == [20, 40] and len(third) == 40
    assert store.read_attrs(path)["n_events"] == 40
    np.testing.assert_array_equal(third.event_id[:20], first.event_id)
    np.testing.assert_array_equal(third.p4[:20], first.p4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
