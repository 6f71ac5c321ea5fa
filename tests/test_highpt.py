"""hepnb.generate.highpt and hepnb.data.highpt: the 1 TeV g, q, W, Z, t jets of Glowacki's SEAL chapter and their
native ``hepnb-highpt`` file and cache.

Reproducible bytes (seed, worker count), the physics of each class (matched to its parton, boson or top and to every
decay product, inside the pT and |eta| window, a b in every top jet), the constituents (pT order, zero padding, their
sum against the jet), the event-record walk that finds a top after its own gluon emissions, the cache (a smaller
request served from a bigger file, a bigger one regenerating it) and the reader's errors. Generation runs once per
class on the first, smallest shard (500 events, ~1-2 s per class) in temporary folders.
"""

import hashlib
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from hepnb.data import dimuon, highpt, store
from hepnb.errors import DataFileError, SampleError
from hepnb.generate import highpt as gen
from hepnb.physics.kinematics import delta_r, mass, pt_eta_phi

N = 60  # jets per class: the first shard (500 events) gives ~400
CLASSES = ("g", "q", "w", "z", "t")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("highpt")


@pytest.fixture(scope="module")
def jets(folder):
    return highpt.load_highpt(list(CLASSES), N, seed=0, folder=folder, progress=False)


def of_class(sample, name):
    return sample.select(np.flatnonzero(sample.label == gen.highpt_class(name).label))


def path_of(folder, name="t"):
    return highpt.cache_path(name, 0, folder=folder)


# -- reproducibility -----------------------------------------------------------------------------------------------


def test_one_or_two_workers_write_the_same_bytes_other_seed_other_jets(tmp_path, jets):
    # ~420 Z jets come from the first shard (500 events): 450 need the second one too, so the merge order matters
    info1 = highpt.generate_file(tmp_path / "w1.h5", "z", 450, seed=1, workers=1, progress=False)
    info2 = highpt.generate_file(tmp_path / "w2.h5", "z", 450, seed=1, workers=2, progress=False)
    assert info1["shards"] == info2["shards"] == 2
    assert sha256(tmp_path / "w1.h5") == sha256(tmp_path / "w2.h5")
    other = highpt.read_highpt(tmp_path / "w1.h5")
    assert not np.array_equal(other.p4[:N], of_class(jets, "z").p4)  # seed 1 is not seed 0
    assert 0 < info1["init_fraction"] < 0.5 and info1["jets_per_core_second"] > 0
    assert highpt.cache_path("z", 1, folder=tmp_path / "a").name == highpt.cache_path("z", 1, folder=tmp_path).name
    assert highpt.cache_path("z", 1).name != highpt.cache_path("z", 2).name != highpt.cache_path("w", 1).name


# -- physics -------------------------------------------------------------------------------------------------------


def test_labels_follow_the_hls4ml_order_and_the_requested_classes(folder, jets):
    assert gen.HIGHPT_CLASS_NAMES == CLASSES
    assert [c.label for c in gen.HIGHPT_CLASSES] == list(range(5))
    np.testing.assert_array_equal(jets.label, np.repeat(np.arange(5, dtype=np.int8), N))
    assert jets.label.dtype == np.int8 and len(jets.sources) == 5
    swapped = highpt.load_highpt(["t", "g"], 20, seed=0, folder=folder, progress=False)
    np.testing.assert_array_equal(swapped.label, np.repeat([4, 0], 20))
    np.testing.assert_array_equal(swapped.p4[:20], of_class(jets, "t").p4[:20])


def test_jets_lie_in_the_window(jets):
    pt, eta, _ = pt_eta_phi(jets.jet_p4)
    sel = gen.Selection()
    assert np.all((pt > sel.jet_pt_min) & (pt < sel.jet_pt_max)) and np.all(np.abs(eta) < sel.jet_eta_max)
    assert sel.jet_pt_min == 900 and sel.jet_pt_max == 1100 and sel.R == sel.match_dr == 0.8


def dr_to(jet_p4, p4):
    _, eta, phi = pt_eta_phi(jet_p4)
    _, eta2, phi2 = pt_eta_phi(p4)
    return delta_r(eta, phi, eta2, phi2)


@pytest.mark.parametrize("name", CLASSES)
def test_every_jet_is_matched_to_its_origin_and_all_its_decay_products(jets, name):
    sample = of_class(jets, name)
    cls = gen.highpt_class(name)
    assert np.all(dr_to(sample.jet_p4, sample.origin_p4) < 0.8)
    assert np.all(np.isin(np.abs(sample.origin_pid), cls.origin_ids))
    for k in range(3):
        if k < cls.n_decay:  # W, Z: two quarks; t: b, q, q'
            assert np.all(dr_to(sample.jet_p4, sample.decay_p4[:, k]) < 0.8), k
            assert np.all((np.abs(sample.decay_pid[:, k]) >= 1) & (np.abs(sample.decay_pid[:, k]) <= 5))
        else:
            assert np.all(sample.decay_pid[:, k] == 0) and np.all(sample.decay_p4[:, k] == 0)


def test_class_specific_truth(jets):
    g, q, w, z, t = (of_class(jets, n) for n in CLASSES)
    assert np.all(g.origin_pid == 21)
    assert np.all(np.isin(np.abs(q.origin_pid), (1, 2, 3)))  # u, d, s only: c and b jets are not kept
    assert np.all(np.abs(w.origin_pid) == 24) and np.all(z.origin_pid == 23) and np.all(np.abs(t.origin_pid) == 6)
    assert np.all(np.abs(t.decay_pid[:, 0]) == 5)  # every top jet holds its b
    assert np.all(np.sign(t.decay_pid[:, 0]) == np.sign(t.origin_pid))  # t -> b W+, tbar -> bbar W-
    # the two quarks of a W have opposite-sign ids of different flavour (one up-type, one down-type)
    assert np.all(w.decay_pid[:, 0] * w.decay_pid[:, 1] < 0) and np.all(w.decay_pid[:, 0] != -w.decay_pid[:, 1])
    assert np.all(z.decay_pid[:, 0] == -z.decay_pid[:, 1])  # Z -> q qbar
    # a W or Z decays at its last copy: its two quarks add up to it
    for sample in (w, z):
        np.testing.assert_allclose(sample.decay_p4[:, :2].sum(axis=1), sample.origin_p4, atol=1e-6, rtol=1e-9)
    # Breit-Wigner peaks (the median of a Breit-Wigner is its mass; tails are wide, so no per-jet window)
    for sample, m0 in ((w, 80.4), (z, 91.19), (t, 172.5)):
        assert abs(np.median(mass(sample.origin_p4)) - m0) < 2.0
    # jet masses: W and Z peak near their masses, tops near 173 GeV; gluon jets are wider and heavier than quark ones
    assert 70 < np.median(mass(w.jet_p4)) < 95 and 80 < np.median(mass(z.jet_p4)) < 105
    assert 160 < np.median(mass(t.jet_p4)) < 200
    assert np.median(g.n_constituents) > np.median(q.n_constituents)


def test_constituents_are_pt_ordered_zero_padded_and_counted(jets):
    c = jets.max_constituents
    assert c == 32 and jets.p4.dtype == np.float32 and jets.jet_p4.dtype == np.float64
    assert jets.pid.dtype == np.int32 and jets.charge.dtype == np.int8 and jets.n_constituents.dtype == np.int32
    np.testing.assert_array_equal(jets.mask.sum(axis=1), np.minimum(jets.n_constituents, c))
    assert np.all(jets.n_constituents >= jets.mask.sum(axis=1))
    assert np.all(jets.p4[~jets.mask] == 0) and np.all(jets.pid[~jets.mask] == 0)
    assert np.all(jets.charge[~jets.mask] == 0) and np.all(jets.pid[jets.mask] != 0)
    assert set(np.unique(jets.charge)) <= {-1, 0, 1}
    assert not np.any(np.isin(np.abs(jets.pid[jets.mask]), (12, 14, 16)))  # no neutrinos
    pt = pt_eta_phi(jets.p4)[0]
    assert np.all(pt[:, :-1] >= pt[:, 1:] * (1 - 1e-6))
    # energies are positive, so the kept constituents never carry more energy than the jet
    assert np.all(jets.p4[..., 3].astype(np.float64).sum(axis=1) <= jets.jet_p4[:, 3] * (1 + 1e-6))
    whole = jets.n_constituents <= c  # nothing truncated: the constituents are the whole jet
    assert whole.sum() >= 10
    np.testing.assert_allclose(jets.p4[whole].astype(np.float64).sum(axis=1), jets.jet_p4[whole],
                               atol=1e-4 * jets.jet_p4[whole, 3:].max())
    assert np.all(np.diff(jets.event_id[jets.label == 4]) > 0) and np.all(jets.event_id < 2**20)  # shard 0 only


def test_a_top_is_followed_through_its_gluon_emissions_to_the_top_that_decays():
    # 0 system, 5 t (hard process) -> 7 t' (recoil copy) -> 8 t'' + 9 g (emission) -> 10 W, 11 b; 10 W -> 12 W copy
    # -> 13 u, 14 dbar. resim._bottom_copy stops at the emission (7); the top that decays is 8.
    from hepnb.generate.resim import _bottom_copy

    pid = np.array([90, 2212, 2212, 21, 21, 6, -6, 6, 6, 21, 24, 5, 24, 2, -1])
    d1 = np.array([0, 0, 0, 5, 5, 7, 0, 8, 10, 0, 12, 0, 13, 0, 0])
    d2 = np.array([0, 0, 0, 6, 6, 7, 0, 9, 11, 0, 12, 0, 14, 0, 0])
    offsets = np.array([0, len(pid)])
    start = np.array([5])
    assert _bottom_copy(start, offsets, d1, d2, pid)[0] == 7
    assert gen._last_copy(start, offsets, d1, d2, pid)[0] == 8
    assert gen._last_copy(np.array([10]), offsets, d1, d2, pid)[0] == 12
    g_pid = pid.copy()
    g_pid[[7, 8, 9]] = 21  # a gluon splitting into two gluons has no unique copy: it stops there
    assert gen._last_copy(np.array([7]), offsets, d1, d2, g_pid)[0] == 7


# -- the cache -----------------------------------------------------------------------------------------------------


def test_the_file_records_its_settings(folder, jets):
    with h5py.File(path_of(folder)) as f:
        assert list(f) == list(highpt._DTYPES)
        assert f["p4"].dtype == np.float32 and f["p4"].shape == (N, 32, 4)
    attrs = highpt.read_highpt(path_of(folder)).attrs
    assert jets.attrs["class_name"] == "g"  # a concatenation keeps the first sample's
    assert attrs["format"] == highpt.FORMAT and attrs["class_name"] == "t" and attrs["label"] == 4
    assert attrs["n_jets"] == N and attrs["seed"] == 0 and attrs["process"] == "hl_t"
    settings = attrs["settings"]
    assert "PhaseSpace:pTHatMin = 950" in settings and "PhaseSpace:pTHatMax = 1150" in settings
    assert "PartonLevel:ISR = on" in settings and "PartonLevel:MPI = off" in settings
    assert "6:onIfMatch = 24 5" in settings and "24:onIfAny = 1 2 3 4 5" in settings
    assert "WeakZ0:gmZmode = 2" in gen.highpt_settings("z") and "HardQCD:gg2gg = on" in gen.highpt_settings("g")
    assert attrs["selection"] == {"jet_pt_min": 900.0, "jet_pt_max": 1100.0, "jet_eta_max": 1.7, "match_dr": 0.8,
                                  "R": 0.8, "max_constituents": 32}
    assert attrs["clustering"].startswith("fastjet ") and attrs["generator"].startswith("pythia8mc ")
    assert attrs["tried"] == 500 and len(attrs["shard_seeds"]) == attrs["shards_used"] == 1


def test_smaller_requests_are_served_from_a_bigger_file_and_bigger_ones_regenerate(folder, jets):
    path = highpt.cache_path("w", 0, folder=folder)
    stamp, digest = path.stat().st_mtime_ns, sha256(path)
    small = highpt.load_or_generate("w", 25, seed=0, folder=folder, progress=False)
    assert path.stat().st_mtime_ns == stamp and sha256(path) == digest  # served, not rewritten
    assert len(small) == 25 and small.attrs["n_jets"] == N
    w = of_class(jets, "w")
    np.testing.assert_array_equal(small.p4, w.p4[:25])
    np.testing.assert_array_equal(small.event_id, w.event_id[:25])
    big = highpt.load_or_generate("w", 2 * N, seed=0, folder=folder, progress=False)  # regenerates
    assert big.attrs["n_jets"] == 2 * N and len(big) == 2 * N
    for name in ("p4", "pid", "charge", "jet_p4", "origin_p4", "decay_pid", "event_id"):
        np.testing.assert_array_equal(getattr(big, name)[:N], getattr(w, name), err_msg=name)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_a_corrupt_cache_file_is_regenerated(tmp_path):
    path = highpt.cache_path("z", 6, folder=tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an HDF5 file")
    sample = highpt.load_or_generate("z", 10, seed=6, folder=tmp_path, progress=False)
    assert len(sample) == 10 and sample.attrs["n_jets"] == 10


# -- the sample ----------------------------------------------------------------------------------------------------


def test_select_truncate_and_concatenate(jets):
    part = jets.select(np.array([5, 0, N + 1]))
    np.testing.assert_array_equal(part.label, [0, 0, 1])
    np.testing.assert_array_equal(part.decay_p4[1], jets.decay_p4[0])
    short = jets.truncate(8)
    assert short.p4.shape == (len(jets), 8, 4) and short.pid.shape == (len(jets), 8)
    np.testing.assert_array_equal(short.n_constituents, jets.n_constituents)
    np.testing.assert_array_equal(short.p4, jets.p4[:, :8])
    both = highpt.HighPtSample.concatenate([jets.select(np.arange(3)), jets.select(np.arange(3, 6))])
    np.testing.assert_array_equal(both.p4, jets.p4[:6])
    with pytest.raises(SampleError, match="truncate"):
        highpt.HighPtSample.concatenate([jets, short])
    no_truth = highpt.HighPtSample(short.p4, short.mask, None, None, short.n_constituents, short.jet_p4, short.label,
                                   short.event_id)
    mixed = highpt.HighPtSample.concatenate([short, no_truth])
    assert mixed.pid is None and mixed.origin_p4 is None and len(mixed) == 2 * len(jets)
    with pytest.raises(ValueError, match="max_constituents"):
        jets.truncate(33)


def test_inconsistent_samples_are_refused(jets):
    s = jets.select(np.arange(4))
    with pytest.raises(SampleError, match="at least one jet"):
        highpt.HighPtSample(s.p4[:0], s.mask[:0], None, None, s.n_constituents[:0], s.jet_p4[:0], s.label[:0],
                            s.event_id[:0])
    with pytest.raises(SampleError, match="mask"):
        highpt.HighPtSample(s.p4, s.mask[:, :5], None, None, s.n_constituents, s.jet_p4, s.label, s.event_id)
    with pytest.raises(SampleError, match="labels"):
        highpt.HighPtSample(s.p4, s.mask, None, None, s.n_constituents, s.jet_p4, s.label + 7, s.event_id)
    with pytest.raises(SampleError, match="nothing to concatenate"):
        highpt.HighPtSample.concatenate([])


# -- errors --------------------------------------------------------------------------------------------------------


def test_a_missing_or_non_hdf5_file_is_named(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        highpt.read_highpt(tmp_path / "absent.h5")
    (tmp_path / "text.h5").write_text("p4, label\n")
    with pytest.raises(DataFileError, match="HDF5") as info:
        highpt.read_highpt(tmp_path / "text.h5")
    assert "text.h5" in str(info.value)


def test_a_truncated_file_is_refused(folder, jets, tmp_path):
    path = tmp_path / "cut.h5"
    data = path_of(folder).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        highpt.read_highpt(path)


def test_foreign_files_are_sent_to_their_reader(folder, jets, tmp_path):
    with pytest.raises(DataFileError, match=r"1 TeV jets.*read_highpt"):
        dimuon.read_dimuons(path_of(folder))
    with pytest.raises(DataFileError, match=r"1 TeV jets.*read_highpt"):
        store.read_resim(path_of(folder))
    fake = tmp_path / "dimuon.h5"
    with h5py.File(fake, "w") as f:
        f.attrs["format"] = dimuon.FORMAT
    with pytest.raises(DataFileError, match=r"dimuon file.*read_dimuons"):
        highpt.read_highpt(fake)
    public = tmp_path / "hls4ml.h5"
    with h5py.File(public, "w") as f:
        f.create_dataset("jetConstituentList", data=np.zeros((2, 150, 16), np.float32))
    with pytest.raises(DataFileError, match=r"hls4ml.*load_hls4ml"):
        highpt.read_highpt(public)


def replace(f, name, value):
    del f[name]
    f.create_dataset(name, data=value)


def set_item(name, index, value):
    def edit(f):
        data = f[name][()]
        data[index] = value
        replace(f, name, data)
    return edit


def swap_constituents(f):
    p4 = f["p4"][()]
    p4[0, [0, 1]] = p4[0, [1, 0]]
    replace(f, "p4", p4)


@pytest.mark.parametrize("what, edit, message", [
    ("a W label in a top file", set_item("label", 0, 2), "labels disagree"),
    ("a W as origin", set_item("origin_pid", 3, 24), "origin PDG id"),
    ("no b", set_item("decay_pid", (1, 0), 1), "without its b"),
    ("a lepton as decay product", set_item("decay_pid", (2, 1), 11), "decay products disagree"),
    ("padding", set_item("n_constituents", 0, 1), "padding disagrees"),
    ("an empty jet", set_item("n_constituents", 0, 0), "n_constituents < 1"),
    ("a space-like constituent", set_item("p4", (0, 0, 3), 0.0), "time-like"),
    ("a NaN jet", set_item("jet_p4", (1, 0), np.nan), "jet_p4 is not finite"),
    ("a jet outside the window", lambda f: replace(f, "jet_p4", 2 * f["jet_p4"][()]), "outside the file's window"),
    ("unordered constituents", swap_constituents, "decreasing pT"),
    ("repeated event ids", set_item("event_id", 1, 0), "strictly increasing"),
    ("a float64 p4", lambda f: replace(f, "p4", f["p4"][()].astype(np.float64)), "dtype float64, expected float32"),
    ("two decay slots", lambda f: replace(f, "decay_pid", f["decay_pid"][:, :2]), r"decay_pid has shape \(60, 2\)"),
    ("no labels", lambda f: f.__delitem__("label"), "'label' is missing"),
    ("schema 2", lambda f: f.attrs.__setitem__("schema_version", 2), "schema version 2"),
    ("no selection", lambda f: f.attrs.__delitem__("selection"), "'selection' is missing"),
    ("an unknown class", lambda f: f.attrs.__setitem__("class_name", "h"), "unknown high-pT jet class 'h'"),
])
def test_inconsistent_files_are_refused(folder, jets, tmp_path, what, edit, message):
    path = tmp_path / "edited.h5"
    shutil.copyfile(path_of(folder), path)
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(DataFileError, match=message) as info:
        highpt.read_highpt(path)
    assert str(path) in str(info.value)


def test_more_rows_than_the_file_holds_is_refused(folder, jets):
    with pytest.raises(DataFileError, match=f"asked for {N + 1} jets, the file holds {N}"):
        highpt.read_highpt(path_of(folder), n_rows=N + 1)


def test_unknown_classes_and_bad_counts_are_argument_errors(tmp_path):
    with pytest.raises(KeyError, match="unknown high-pT jet class 'h'; known: g, q, w, z, t"):
        gen.highpt_class("h")
    with pytest.raises(KeyError, match="known: g, q, w, z, t"):
        highpt.load_highpt(["t", "h"], 10, folder=tmp_path, progress=False)
    with pytest.raises(KeyError, match="'gq'"):
        highpt.load_highpt("gq", 10, folder=tmp_path, progress=False)  # a string is one class name
    for classes, match in (([], "empty"), (["t", "t"], "twice")):
        with pytest.raises(ValueError, match=match):
            highpt.load_highpt(classes, 10, folder=tmp_path, progress=False)
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_jets") as info:
            highpt.load_highpt(["z"], n, folder=tmp_path, progress=False)
        assert type(info.value) is ValueError  # the argument is wrong, not a file
    with pytest.raises(ValueError, match="jet_pt_max"):
        gen.Selection(jet_pt_min=1100.0, jet_pt_max=900.0)
    with pytest.raises(ValueError, match="jet_eta_max"):
        gen.Selection(jet_eta_max=-1.0)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_reading_files_does_not_load_pythia():
    code = ("import sys, hepnb.data.highpt, hepnb.data.hls4ml, hepnb.generate.highpt; "
            "print(sorted(m for m in ('pythia8mc', 'hepnb.generate.pythia', 'fastjet') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
