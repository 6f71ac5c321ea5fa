"""The public hls4ml layout: hepnb.data.hls4ml.load_hls4ml / write_hls4ml_layout / find_hls4ml_files on small files
written in exactly that layout (synthetic jets, and a few generated 1 TeV jets)."""

import os

import h5py
import numpy as np
import pytest

from hepnb.data import highpt
from hepnb.data.highpt import HighPtSample
from hepnb.data.hls4ml import (
    CONSTITUENT_FEATURES,
    JET_FEATURES,
    LABEL_COLUMNS,
    N_PARTICLES,
    find_hls4ml_files,
    load_hls4ml,
    write_hls4ml_layout,
)
from hepnb.errors import DataFileError, SampleError
from hepnb.physics.kinematics import delta_r, mass, pt_eta_phi, wrap_phi

N, C = 25, 12
F = {name: i for i, name in enumerate(CONSTITUENT_FEATURES)}
J = {name: i for i, name in enumerate(JET_FEATURES)}


def make_sample(n=N, c=C, seed=0):
    """Jets of pT ~ 1 TeV with 1..c real, pT-ordered constituents (jet_p4 = their sum); every class present, some
    jets across phi = +-pi."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 5).astype(np.int8)
    n_real = rng.integers(1, c + 1, size=n)
    n_real[0] = c
    mask = np.arange(c)[None, :] < n_real[:, None]
    jet_eta = rng.normal(0, 1, size=(n, 1))
    jet_phi = rng.uniform(-np.pi, np.pi, size=(n, 1))
    jet_phi[:3] = np.pi - 0.02
    pt = -np.sort(-rng.exponential(80, size=(n, c)), axis=-1) + 0.5
    eta = jet_eta + rng.normal(0, 0.2, size=(n, c))
    phi = (jet_phi + rng.normal(0, 0.2, size=(n, c)) + np.pi) % (2 * np.pi) - np.pi
    m = np.where(rng.random((n, c)) < 0.6, 0.13957, 0.0)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    p4 = np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)], axis=-1)
    p4 = np.where(mask[..., None], p4, 0).astype(np.float32)
    return HighPtSample(p4, mask, None, None, n_real.astype(np.int32), p4.astype(np.float64).sum(axis=1), label,
                        np.arange(n, dtype=np.int64) * 3 + 1, sources=("synthetic",))


@pytest.fixture(scope="module")
def sample():
    return make_sample()


@pytest.fixture
def written(sample, tmp_path):
    path = tmp_path / "jetImage_0_150p_0_25.h5"
    assert write_hls4ml_layout(sample, path) == path
    return path


def arrays(path):
    with h5py.File(path, "r") as f:
        return f["jetConstituentList"][()], f["jets"][()]


def write_by_hand(path, cands, jets, **extra):
    with h5py.File(path, "w") as f:
        f.create_dataset("jetConstituentList", data=cands)
        f.create_dataset("jets", data=jets)
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return path


# -- round trip ------------------------------------------------------------------------------------------------


def test_round_trip_reproduces_the_sample(sample, written):
    got = load_hls4ml(written, max_constituents=C)
    assert got.p4.dtype == np.float32 and got.jet_p4.dtype == np.float64 and got.label.dtype == np.int8
    np.testing.assert_array_equal(got.p4, sample.p4)  # float32 in, float32 out
    np.testing.assert_array_equal(got.mask, sample.mask)
    np.testing.assert_array_equal(got.label, sample.label)
    np.testing.assert_array_equal(got.n_constituents, sample.n_constituents)
    np.testing.assert_allclose(got.jet_p4, sample.jet_p4, rtol=1e-12)
    np.testing.assert_array_equal(got.event_id, np.arange(N))  # rows are re-numbered
    assert got.pid is None and got.charge is None and got.origin_p4 is None and got.decay_pid is None
    assert got.sources == (str(written),) and got.attrs["format"] == "hls4ml-public"


def test_the_layout_is_that_of_the_public_files(sample, written):
    with h5py.File(written, "r") as f:
        assert f["jetConstituentList"].shape == (N, N_PARTICLES, 16) and f["jets"].shape == (N, 59)
        assert f["jetConstituentList"].dtype == np.float32 and f["jets"].dtype == np.float32
        names = [x.decode() for x in f["particleFeatureNames"][()]]
        assert names[:16] == [f"j1_{k}" for k in CONSTITUENT_FEATURES] and names[16] == "j1_pdgid"
        assert [x.decode() for x in f["jetFeatureNames"][()]][-6:] == list(LABEL_COLUMNS)
    cands, jets = arrays(written)
    onehot = jets[:, -6:]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1)
    np.testing.assert_array_equal(np.argmax(onehot, axis=1), sample.label)
    assert np.all(cands[:, C:] == 0) and np.all(cands[:, :C][~sample.mask] == 0)  # zero padding


def test_every_feature_follows_from_the_four_vectors(sample, written):
    cands, jets = arrays(written)
    x = cands[:, :C].astype(np.float64)
    m = sample.mask
    p4 = sample.p4.astype(np.float64)
    pt, eta, phi = pt_eta_phi(p4)
    jpt, jeta, jphi = pt_eta_phi(sample.jet_p4)
    close = dict(rtol=2e-6, atol=2e-6)

    def check(name, expected):
        np.testing.assert_allclose(x[..., F[name]][m], np.broadcast_to(expected, m.shape)[m], **close, err_msg=name)

    for k, name in enumerate(("px", "py", "pz", "e")):
        check(name, p4[..., k])
    check("pt", pt)
    check("eta", eta)
    check("phi", phi)
    check("erel", p4[..., 3] / sample.jet_p4[:, 3:])
    check("ptrel", pt / jpt[:, None])
    check("etarel", eta - jeta[:, None])
    check("phirel", wrap_phi(phi - jphi[:, None]))
    check("deltaR", delta_r(eta, phi, jeta[:, None], jphi[:, None]))
    p = np.where(m, np.linalg.norm(p4[..., :3], axis=-1), 1.0)  # padding: no division by 0
    check("costheta", p4[..., 2] / p)
    unit = sample.jet_p4[:, None, :3] / np.linalg.norm(sample.jet_p4[:, :3], axis=-1)[:, None, None]
    check("costhetarel", (p4[..., :3] * unit).sum(-1) / p)
    # the rotation keeps distances to the axis; across phi = +-pi the relative azimuth is small
    check("deltaR", np.hypot(x[..., F["etarot"]], x[..., F["phirot"]]))
    assert np.all(np.abs(x[:3, :, F["phirel"]][m[:3]]) < 1.5)
    np.testing.assert_allclose(jets[:, J["j_pt"]], jpt, rtol=1e-6)
    np.testing.assert_allclose(jets[:, J["j_eta"]], jeta, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jets[:, J["j_mass"]], mass(sample.jet_p4), rtol=1e-5)
    np.testing.assert_array_equal(jets[:, J["j_multiplicity"]], sample.n_constituents)


def test_generated_jets_round_trip(tmp_path):
    jets = highpt.load_or_generate("z", 20, seed=0, folder=tmp_path / "cache", progress=False)
    path = write_hls4ml_layout(jets, tmp_path / "z.h5")
    got = load_hls4ml(path, max_constituents=32)
    np.testing.assert_array_equal(got.p4, jets.p4)
    np.testing.assert_array_equal(got.mask, jets.mask)
    np.testing.assert_array_equal(got.label, jets.label)
    np.testing.assert_array_equal(got.n_constituents, np.minimum(jets.n_constituents, 32))  # the file holds 32
    whole = jets.n_constituents <= 32  # only there is the sum of the written constituents the whole jet
    np.testing.assert_allclose(got.jet_p4[whole], jets.jet_p4[whole], rtol=1e-6, atol=1e-3)
    assert np.all(got.jet_p4[:, 3] <= jets.jet_p4[:, 3] * (1 + 1e-6))


# -- reading: order, truncation, slices, classes ---------------------------------------------------------------


def test_constituents_are_resorted_by_pt_and_truncated(sample, written, tmp_path):
    cands, jets = arrays(written)
    rng = np.random.default_rng(1)
    shuffled = cands.copy()
    for i in range(N):
        shuffled[i] = cands[i, rng.permutation(N_PARTICLES)]  # padding scattered between real constituents
    path = write_by_hand(tmp_path / "shuffled.h5", shuffled, jets)
    got = load_hls4ml(path, max_constituents=C)
    np.testing.assert_array_equal(got.p4, sample.p4)
    np.testing.assert_array_equal(got.mask, sample.mask)
    np.testing.assert_allclose(got.jet_p4, sample.jet_p4, rtol=1e-12)
    short = load_hls4ml(path, max_constituents=4)
    np.testing.assert_array_equal(short.p4, sample.p4[:, :4])
    np.testing.assert_array_equal(short.n_constituents, sample.n_constituents)  # counted before truncation
    wide = load_hls4ml(written, max_constituents=200)  # more slots than the file: zero-padded
    assert wide.p4.shape == (N, 200, 4) and np.all(wide.p4[:, C:] == 0)


def test_max_rows_start_and_classes_select_rows(sample, written):
    part = load_hls4ml(written, max_rows=6, start=7, max_constituents=C)
    np.testing.assert_array_equal(part.event_id, np.arange(7, 13))
    np.testing.assert_array_equal(part.p4, sample.p4[7:13])
    tail = load_hls4ml(written, max_rows=1000, start=N - 2)  # max_rows is an upper bound
    assert tail.event_id.tolist() == [N - 2, N - 1]
    tops = load_hls4ml(written, classes=["t", "w"], max_constituents=C)
    keep = np.isin(sample.label, [2, 4])
    np.testing.assert_array_equal(tops.label, sample.label[keep])
    np.testing.assert_array_equal(tops.event_id, np.flatnonzero(keep))
    np.testing.assert_array_equal(tops.p4, sample.p4[keep])
    assert np.all(load_hls4ml(written, classes="g").label == 0)  # a string is one class name
    with pytest.raises(SampleError, match="no jets of classes"):
        load_hls4ml(written, classes=["t"], max_rows=3)  # rows 0-2 are g, q, W


@pytest.mark.parametrize("kwargs", [{"max_rows": 0}, {"start": -1}, {"start": N}, {"max_constituents": 0},
                                    {"max_rows": 2.5}, {"start": True}, {"classes": []}])
def test_nonsense_arguments_raise_value_error(written, kwargs):
    with pytest.raises(ValueError) as info:
        load_hls4ml(written, **kwargs)
    assert not isinstance(info.value, DataFileError)
    assert next(iter(kwargs)) in str(info.value)


def test_an_unknown_class_is_a_key_error(written):
    with pytest.raises(KeyError, match="known: g, q, w, z, t"):
        load_hls4ml(written, classes=["top"])


# -- bad files ---------------------------------------------------------------------------------------------------


def test_missing_file_says_where_the_files_go(tmp_path):
    with pytest.raises(DataFileError, match=r"no such file.*hls4ml") as info:
        load_hls4ml(tmp_path / "nothing.h5")
    assert "nothing.h5" in str(info.value)


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("jetConstituentList,jets\n1,2\n")
    with pytest.raises(DataFileError, match="HDF5") as info:
        load_hls4ml(path)
    assert str(path) in str(info.value)


def test_truncated_file(written):
    data = written.read_bytes()
    written.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="truncated") as info:
        load_hls4ml(written)
    assert str(written) in str(info.value)


def test_missing_dataset(written, tmp_path):
    cands, jets = arrays(written)
    path = tmp_path / "nojets.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("jetConstituentList", data=cands)
    with pytest.raises(DataFileError, match=r"no dataset 'jets'.*jetConstituentList") as info:
        load_hls4ml(path)
    assert str(path) in str(info.value)


def test_foreign_files_are_sent_to_their_reader(tmp_path):
    native = tmp_path / "native"
    highpt.load_or_generate("w", 5, seed=2, folder=native, progress=False)
    path = highpt.cache_path("w", 2, folder=native)
    with pytest.raises(DataFileError, match=r"not an hls4ml jet file.*1 TeV jets.*read_highpt") as info:
        load_hls4ml(path)
    assert str(path) in str(info.value)
    rs3l = write_by_hand(tmp_path / "rs3l.h5", np.zeros((2, 5, 13)), np.zeros((2, 5, 11, 4)))
    with h5py.File(rs3l, "r+") as f:
        f.move("jetConstituentList", "singletons")
        f.move("jets", "jet_pflow_cands")
    with pytest.raises(DataFileError, match=r"RS3L.*load_rs3l"):
        load_hls4ml(rs3l)


def test_a_public_file_given_to_the_native_reader_is_sent_here(written):
    with pytest.raises(DataFileError, match=r"hls4ml jet file.*load_hls4ml"):
        highpt.read_highpt(written)


@pytest.mark.parametrize("cands_shape, jets_shape, match", [
    ((N, N_PARTICLES, 15), (N, 59), r"'jetConstituentList' has shape \(25, 150, 15\)"),
    ((N, N_PARTICLES * 16), (N, 59), "'jetConstituentList' has shape"),
    ((N, 0, 16), (N, 59), "'jetConstituentList' has shape"),
    ((N, N_PARTICLES, 16), (N, 58), r"'jets' has shape \(25, 58\), expected \(N, 59\)"),
    ((N, N_PARTICLES, 16), (N, 59, 1), "'jets' has shape"),
    ((N, N_PARTICLES, 16), (N - 1, 59), "row counts differ: jetConstituentList has 25 rows, jets has 24"),
])
def test_wrong_shapes(tmp_path, cands_shape, jets_shape, match):
    path = write_by_hand(tmp_path / "shape.h5", np.ones(cands_shape, np.float32), np.ones(jets_shape, np.float32))
    with pytest.raises(DataFileError, match=match) as info:
        load_hls4ml(path)
    assert str(path) in str(info.value)


def test_text_columns_are_refused(tmp_path):
    path = write_by_hand(tmp_path / "text.h5", np.full((2, 3, 16), b"x", "S1"), np.zeros((2, 59), np.float32))
    with pytest.raises(DataFileError, match="expected numbers"):
        load_hls4ml(path)


def one_hot_edit(row, values):
    def edit(jets):
        jets[row, -6:] = values
    return edit


@pytest.mark.parametrize("edit, match", [
    (one_hot_edit(13, 0), r"row 13 has no one-hot label"),
    (one_hot_edit(9, [1, 0, 0, 1, 0, 0]), r"row 9 has 2 one-hot labels \(j_g, j_z\)"),
    (one_hot_edit(4, [0, 0, 0, 0, 0, 1]), r"row 4 has the label j_undef"),
    (one_hot_edit(2, [0, 0, 0.5, 0, 0, 0]), r"row 2 has label columns"),
])
def test_rows_without_exactly_one_label_are_named(written, tmp_path, edit, match):
    cands, jets = arrays(written)
    edit(jets)
    path = write_by_hand(tmp_path / "labels.h5", cands, jets)
    with pytest.raises(DataFileError, match=match) as info:
        load_hls4ml(path)
    assert str(path) in str(info.value)
    row = int(match.split()[1])
    assert len(load_hls4ml(path, max_rows=row)) == row  # the rows before it are fine
    with pytest.raises(DataFileError, match=f"row {row} "):
        load_hls4ml(path, start=row - 1)  # the row is the file's, not the slice's


def test_bad_constituents_are_named_by_row(written, tmp_path):
    cands, jets = arrays(written)
    bad = cands.copy()
    bad[6, 0, F["px"]] = np.nan
    with pytest.raises(DataFileError, match="row 6 has a constituent that is not finite and time-like"):
        load_hls4ml(write_by_hand(tmp_path / "nan.h5", bad, jets))
    bad = cands.copy()
    bad[8, 0, F["e"]] = 0.5 * bad[8, 0, F["pt"]]  # E < |p|: columns out of order
    with pytest.raises(DataFileError, match="row 8 has a constituent"):
        load_hls4ml(write_by_hand(tmp_path / "spacelike.h5", bad, jets))
    bad = cands.copy()
    bad[11] = 0
    with pytest.raises(DataFileError, match="row 11 has no constituents"):
        load_hls4ml(write_by_hand(tmp_path / "empty.h5", bad, jets))


def test_column_names_are_checked_when_present(written, tmp_path):
    cands, jets = arrays(written)
    names = np.array([f"j1_{k}" for k in CONSTITUENT_FEATURES], dtype="S")
    swapped = names.copy()
    swapped[[0, 3]] = swapped[[3, 0]]
    with pytest.raises(DataFileError, match="particleFeatureNames"):
        load_hls4ml(write_by_hand(tmp_path / "p.h5", cands, jets, particleFeatureNames=swapped))
    labels = np.array(JET_FEATURES, dtype="S")
    labels[-2], labels[-3] = labels[-3], labels[-2]
    with pytest.raises(DataFileError, match="jetFeatureNames"):
        load_hls4ml(write_by_hand(tmp_path / "j.h5", cands, jets, jetFeatureNames=labels))
    assert len(load_hls4ml(write_by_hand(tmp_path / "ok.h5", cands, jets, particleFeatureNames=names))) == N


# -- writing and finding files -----------------------------------------------------------------------------------


def test_failed_write_leaves_nothing_and_keeps_the_previous_file(sample, written, monkeypatch):
    before = written.read_bytes()

    def failing(self, *args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="simulated"):
        write_hls4ml_layout(make_sample(seed=9), written)
    with pytest.raises(OSError):
        write_hls4ml_layout(sample, written.parent / "new.h5")
    assert written.read_bytes() == before
    assert os.listdir(written.parent) == [written.name]
    with pytest.raises(TypeError):
        write_hls4ml_layout({"p4": sample.p4}, written.parent / "other.h5")


def test_find_hls4ml_files(tmp_path, monkeypatch):
    root = tmp_path / "public"
    assert find_hls4ml_files(root / "hls4ml") == []  # no folder
    (root / "hls4ml" / "val").mkdir(parents=True)
    for name in ("b.h5", "a.hdf5", "val/c.h5", "notes.txt", ".b.h5.tmp-1", ".hidden.h5"):
        (root / "hls4ml" / name).write_bytes(b"")
    expect = [root / "hls4ml" / n for n in ("a.hdf5", "b.h5", "val/c.h5")]
    assert find_hls4ml_files(root / "hls4ml") == expect
    monkeypatch.setenv("HEPNB_PUBLIC_DATA", str(root))
    assert find_hls4ml_files() == expect
