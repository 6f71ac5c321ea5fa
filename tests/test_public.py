"""The public RS3L layout: hepnb.data.public.load_rs3l / write_rs3l_layout / find_rs3l_files on small synthetic files."""

import os

import h5py
import numpy as np
import pytest

from hepnb.data.public import CAND_FEATURES, RS3L_JETTYPES, find_rs3l_files, load_rs3l, write_rs3l_layout
from hepnb.data.sample import CLASS_NAMES, VARIATION_NAMES, JetSample
from hepnb.errors import DataFileError

N, V, C = 20, len(VARIATION_NAMES), 12
F = {name: i for i, name in enumerate(CAND_FEATURES)}
PARTONS = {"qcd": (1, 2, 3, 4, 5, 21), "hbb": (25,), "wqq": (24,), "zqq": (23,)}


def make_sample(n=N, c=C, seed=0):
    """Jets of pT ~ 500 GeV with 1..c real, pT-ordered constituents; some jets sit across phi = +-pi."""
    rng = np.random.default_rng(seed)
    label = np.arange(n, dtype=np.int8) % len(CLASS_NAMES)  # every class present
    parton = np.array([rng.choice(PARTONS[CLASS_NAMES[k]]) for k in label], np.int32)
    parton[:9:4] = (21, 4, -5)  # a gluon, a c and an anti-b among the QCD rows for sure
    quark = (label == 0) & (parton != 21)
    parton[quark] *= rng.choice([-1, 1], size=int(quark.sum())).astype(np.int32)  # anti-quarks too
    n_real = rng.integers(1, c + 1, size=(n, V))
    n_real[0, :] = c  # full jets
    mask = np.arange(c)[None, None, :] < n_real[..., None]
    jet_eta = rng.normal(0, 1, size=(n, 1, 1))
    jet_phi = rng.uniform(-np.pi, np.pi, size=(n, 1, 1))
    jet_phi[:3] = np.pi - 0.02  # constituents straddle phi = +-pi
    pt = -np.sort(-rng.exponential(40, size=(n, V, c)), axis=-1) + 0.5
    eta = jet_eta + rng.normal(0, 0.2, size=(n, V, c))
    phi = (jet_phi + rng.normal(0, 0.2, size=(n, V, c)) + np.pi) % (2 * np.pi) - np.pi
    charged = rng.random((n, V, c)) < 0.6
    charge = np.where(charged, rng.choice([-1, 1], size=(n, V, c)), 0).astype(np.int8)
    pid = np.where(charged, 211 * charge.astype(np.int32), rng.choice([22, 130], size=(n, V, c))).astype(np.int32)
    mass = np.where(charged, 0.13957, 0.0)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    p4 = np.where(mask[..., None], np.stack([px, py, pz, e], axis=-1), 0).astype(np.float32)
    d0 = np.where(mask & charged, rng.normal(0, 0.05, size=(n, V, c)), 0).astype(np.float32)
    dz = np.where(mask & charged, rng.normal(0, 0.1, size=(n, V, c)), 0).astype(np.float32)
    return JetSample(p4=p4, charge=np.where(mask, charge, 0).astype(np.int8), pid=np.where(mask, pid, 0),
                     d0=d0, dz=dz, mask=mask, jet_p4=p4.astype(np.float64).sum(axis=2),
                     n_constituents=n_real.astype(np.int32), label=label, parton=parton,
                     event_id=np.arange(n, dtype=np.int64) * 7 + 3, source="synthetic")


def parton_class(parton):
    """Light quark (u/d/s) / c / b / gluon / boson: what the RS3L jet type keeps of the parton."""
    p = np.abs(np.asarray(parton))
    return np.where(np.isin(p, (1, 2, 3)), 1, p)


def write_by_hand(path, singletons, cands, **extra):
    with h5py.File(path, "w") as f:
        f.create_dataset("singletons", data=singletons)
        f.create_dataset("jet_pflow_cands", data=cands)
        for key, value in extra.items():
            f.create_dataset(key, data=value)


@pytest.fixture(scope="module")
def sample():
    return make_sample()


@pytest.fixture
def written(sample, tmp_path):
    path = tmp_path / "rs3l.h5"
    write_rs3l_layout(sample, path)
    return path


# -- round trip ------------------------------------------------------------------------------------------------


def test_round_trip_reproduces_the_sample(sample, written):
    got = load_rs3l(written, max_constituents=C)
    scale = np.abs(sample.p4).max()
    np.testing.assert_allclose(got.p4, sample.p4, rtol=1e-4, atol=1e-6 * scale)
    np.testing.assert_allclose(got.jet_p4, sample.jet_p4, rtol=1e-4, atol=1e-6 * np.abs(sample.jet_p4).max())
    for name in ("charge", "pid", "mask", "n_constituents", "label"):
        np.testing.assert_array_equal(getattr(got, name), getattr(sample, name), err_msg=name)
    np.testing.assert_array_equal(got.d0, sample.d0)
    np.testing.assert_array_equal(got.dz, sample.dz)
    np.testing.assert_array_equal(parton_class(got.parton), parton_class(sample.parton))
    assert got.p4.dtype == np.float32 and got.jet_p4.dtype == np.float64
    assert got.charge.dtype == np.int8 and got.pid.dtype == np.int32 and got.mask.dtype == bool
    assert got.d0.dtype == np.float32 and got.label.dtype == np.int8 and got.parton.dtype == np.int32
    np.testing.assert_array_equal(got.event_id, np.arange(N))  # rows of the file, not the sample's ids
    assert got.variations == VARIATION_NAMES
    assert got.source == str(written)
    assert got.attrs["format"] == "rs3l-public"
    np.testing.assert_array_equal(got.attrs["jettype"], written_jettypes(written))


def written_jettypes(path):
    with h5py.File(path, "r") as f:
        return f["singletons"][:, 0, 0].astype(int)


def test_writer_layout_and_derived_features(sample, written):
    with h5py.File(written, "r") as f:
        singletons, cands = f["singletons"][()], f["jet_pflow_cands"][()]
    assert singletons.shape == (N, V, 13) and singletons.dtype == np.float32
    assert cands.shape == (N, V, 11, C) and cands.dtype == np.float32
    # jet type: same in every variation, and it maps back to the sample's class and parton flavour
    assert (singletons[:, :, 0] == singletons[:, :1, 0]).all()
    jettype = singletons[:, 0, 0].astype(int)
    for t, lab, par in zip(jettype, sample.label, sample.parton):
        name, parton = RS3L_JETTYPES[t]
        assert name == CLASS_NAMES[lab] and parton == parton_class(par)
    gluon = (sample.label == CLASS_NAMES.index("qcd")) & (sample.parton == 21)
    assert gluon.any() and (jettype[gluon] == 8).all()
    assert (singletons[:, :, [*range(1, 9)]] == 0).all()
    # derived candidate features: relpt = pt / jet pt; rele sums to 1 when every constituent is stored; dr is the
    # real distance to the jet axis, also for jets across phi = +-pi; padding is zero everywhere
    full = sample.n_constituents == C
    jet_pt = np.hypot(sample.jet_p4[..., 0], sample.jet_p4[..., 1])
    np.testing.assert_allclose(cands[:, :, F["relpt"]], cands[:, :, F["pt"]] / jet_pt[..., None], rtol=1e-5)
    np.testing.assert_allclose(cands[:, :, F["rele"]].sum(-1)[full], 1, rtol=1e-5)
    p4, jet = sample.p4.astype(np.float64), sample.jet_p4
    with np.errstate(invalid="ignore"):  # padding: 0 / 0
        deta = np.arcsinh(p4[..., 2] / np.hypot(p4[..., 0], p4[..., 1])) - np.arcsinh(
            jet[..., 2] / np.hypot(jet[..., 0], jet[..., 1]))[..., None]
    phi, jet_phi = np.arctan2(p4[..., 1], p4[..., 0]), np.arctan2(jet[..., 1], jet[..., 0])
    dphi = np.angle(np.exp(1j * (phi - jet_phi[..., None])))  # wrapped another way than the writer does
    np.testing.assert_allclose(cands[:, :, F["dr"]][sample.mask], np.hypot(deta, dphi)[sample.mask], atol=1e-5)
    assert (cands.transpose(0, 1, 3, 2)[~sample.mask] == 0).all()
    np.testing.assert_allclose(cands[:, :, F["pt"]], np.hypot(sample.p4[..., 0], sample.p4[..., 1]), rtol=1e-6)


def test_dr_straddling_phi_pi_is_small(sample, written):
    with h5py.File(written, "r") as f:
        cands = f["jet_pflow_cands"][:3]
    phi, dr = cands[:, :, F["phi"]], cands[:, :, F["dr"]]
    mask = sample.mask[:3]
    assert (phi[mask] < 0).any() and (phi[mask] > 0).any()  # the constituents do straddle the wrap
    assert dr[mask].max() < 1.5


def test_truncation_and_padding(sample, written):
    short = load_rs3l(written, max_constituents=5)
    assert short.max_constituents == 5
    np.testing.assert_array_equal(short.n_constituents, sample.n_constituents)  # counted before truncation
    np.testing.assert_allclose(short.p4, sample.p4[:, :, :5], rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(short.mask, sample.mask[:, :, :5])
    long = load_rs3l(written, max_constituents=C + 8)
    assert long.max_constituents == C + 8
    assert not long.mask[:, :, C:].any() and (long.p4[:, :, C:] == 0).all() and (long.pid[:, :, C:] == 0).all()
    np.testing.assert_array_equal(long.mask[:, :, :C], sample.mask)


# -- ordering ----------------------------------------------------------------------------------------------------


def test_unordered_candidates_come_back_pt_ordered(sample, tmp_path):
    write_rs3l_layout(sample, tmp_path / "ours.h5")
    with h5py.File(tmp_path / "ours.h5", "r") as f:
        singletons, cands = f["singletons"][()], f["jet_pflow_cands"][()]
    # the public files' F and feature axes are wider than ours: pad both with junk the loader must ignore
    rng = np.random.default_rng(5)
    singletons = np.concatenate([singletons, rng.normal(size=(N, V, 4)).astype(np.float32)], axis=2)
    cands = np.concatenate([cands, rng.normal(size=(N, V, 3, C)).astype(np.float32)], axis=2)
    # a pT tie in row 0, nominal: candidate 3 becomes a copy of 2 with another pid (still pT-ordered)
    assert sample.n_constituents[0, 0] == C
    cands[0, 0, :, 3] = cands[0, 0, :, 2]
    cands[0, 0, F["pdgid"], 3] = 999
    ordered = tmp_path / "ordered.h5"
    write_by_hand(ordered, singletons, cands)
    # shuffle the candidates of every jet, padding interleaved with real ones
    perm = rng.permuted(np.broadcast_to(np.arange(C), (N, V, C)), axis=-1)
    shuffled = np.take_along_axis(cands, perm[:, :, None, :], axis=-1)
    assert not (np.diff(shuffled[:, :, F["pt"]], axis=-1) <= 0).all()  # really unordered
    path = tmp_path / "shuffled.h5"
    write_by_hand(path, singletons, shuffled)

    got, ref = load_rs3l(path, max_constituents=C), load_rs3l(ordered, max_constituents=C)
    pt = np.hypot(got.p4[..., 0], got.p4[..., 1])
    assert (np.diff(pt, axis=-1) <= 1e-5 * pt[..., :1]).all()  # decreasing pT
    np.testing.assert_array_equal(got.mask, sample.mask)  # real ones first, padding last
    for name in ("p4", "mask", "charge", "d0", "dz", "n_constituents", "jet_p4", "label"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
    others = np.ones((N, V, C), bool)
    others[0, 0, 2:4] = False
    np.testing.assert_array_equal(got.pid[others], ref.pid[others])
    # the tied pair keeps the order it has in the shuffled file (stable sort)
    file_order = [int(shuffled[0, 0, F["pdgid"], k]) for k in range(C) if perm[0, 0, k] in (2, 3)]
    assert 999 in file_order and got.pid[0, 0, 2:4].tolist() == file_order


# -- slicing -----------------------------------------------------------------------------------------------------


def test_max_rows_and_start_read_only_that_slice(sample, written, monkeypatch):
    full = load_rs3l(written, max_constituents=C)
    selections = []
    original = h5py.Dataset.__getitem__

    def spy(self, args, *rest, **kw):
        selections.append((self.name, args))
        return original(self, args, *rest, **kw)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    part = load_rs3l(written, max_rows=6, start=7, max_constituents=C)
    monkeypatch.undo()

    assert len(part) == 6
    np.testing.assert_array_equal(part.event_id, np.arange(7, 13))
    for name in ("p4", "jet_p4", "pid", "mask", "label", "parton", "n_constituents"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[7:13], err_msg=name)
    assert selections, "the loader did not read through h5py.Dataset slicing"
    for name, args in selections:
        rows = args[0] if isinstance(args, tuple) else args
        assert isinstance(rows, slice) and rows.start >= 7 and rows.stop <= 13, (name, args)

    tail = load_rs3l(written, max_rows=1000, start=N - 3)  # max_rows is an upper bound
    assert len(tail) == 3 and tail.event_id.tolist() == [N - 3, N - 2, N - 1]


@pytest.mark.parametrize("kwargs", [{"max_rows": 0}, {"start": -1}, {"start": N}, {"start": N + 5},
                                    {"max_constituents": 0}, {"max_rows": 2.5}, {"start": True}])
def test_nonsense_arguments_raise_value_error(written, kwargs):
    with pytest.raises(ValueError) as info:
        load_rs3l(written, **kwargs)
    assert not isinstance(info.value, DataFileError)
    assert next(iter(kwargs)) in str(info.value)


# -- bad files ---------------------------------------------------------------------------------------------------


def test_unknown_jettype_names_value_and_row(written, tmp_path):
    with h5py.File(written, "r") as f:
        singletons, cands = f["singletons"][()], f["jet_pflow_cands"][()]
    singletons[13, :, 0] = 12
    path = tmp_path / "bad_type.h5"
    write_by_hand(path, singletons, cands)
    with pytest.raises(DataFileError, match=r"unknown jettype 12 .*row 13") as info:
        load_rs3l(path)
    assert str(path) in str(info.value)
    with pytest.raises(DataFileError, match=r"row 13"):
        load_rs3l(path, start=10)  # the row is the file's, not the slice's
    assert len(load_rs3l(path, max_rows=13)) == 13  # rows before it are fine


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file") as info:
        load_rs3l(tmp_path / "nothing.h5")
    assert "nothing.h5" in str(info.value)


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("singletons,jet_pflow_cands\n1,2\n")
    with pytest.raises(DataFileError, match="HDF5") as info:
        load_rs3l(path)
    assert str(path) in str(info.value)


def test_truncated_file(written):
    data = written.read_bytes()
    written.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="truncated") as info:
        load_rs3l(written)
    assert str(written) in str(info.value)


def test_foreign_hdf5_names_the_missing_key(tmp_path):
    path = tmp_path / "hls4ml.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("jetConstituentList", data=np.zeros((4, 150, 16), np.float32))
        f.create_dataset("jets", data=np.zeros((4, 59), np.float32))
    with pytest.raises(DataFileError, match="'singletons'") as info:
        load_rs3l(path)
    assert str(path) in str(info.value) and "jetConstituentList" in str(info.value)

    half = tmp_path / "half.h5"
    with h5py.File(half, "w") as f:
        f.create_dataset("singletons", data=np.ones((4, 5, 13), np.float32))
    with pytest.raises(DataFileError, match="'jet_pflow_cands'"):
        load_rs3l(half)


@pytest.mark.parametrize("singletons_shape, cands_shape, match", [
    ((N, 4, 13), (N, 5, 11, C), "axis 1"),
    ((N, 5, 13), (N, 3, 11, C), "axis 1"),
    ((N, 5, 12), (N, 5, 11, C), "axis 2"),
    ((N, 5, 13), (N, 5, 10, C), "axis 2"),
    ((N, 5), (N, 5, 11, C), "shape"),
    ((N, 5, 13), (N, 5, 11 * C), "shape"),
    ((N, 5, 13), (N - 1, 5, 11, C), "row counts differ"),
])
def test_wrong_shapes(tmp_path, singletons_shape, cands_shape, match):
    singletons = np.ones(singletons_shape, np.float32)
    path = tmp_path / "shape.h5"
    write_by_hand(path, singletons, np.ones(cands_shape, np.float32))
    with pytest.raises(DataFileError, match=match) as info:
        load_rs3l(path)
    assert str(path) in str(info.value)


# -- atomic writing ----------------------------------------------------------------------------------------------


def test_failed_write_leaves_nothing(sample, tmp_path, monkeypatch):
    path = tmp_path / "out.h5"
    original = h5py.Group.create_dataset
    calls = []

    def failing(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:  # the first dataset is already on disk
            raise OSError("disk full (simulated)")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="simulated"):
        write_rs3l_layout(sample, path)
    assert calls == ["singletons", "jet_pflow_cands"]
    assert os.listdir(tmp_path) == []  # neither the file nor a temporary one


def test_failed_write_keeps_the_previous_file(sample, written, monkeypatch):
    before = written.read_bytes()

    def failing(self, *args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError):
        write_rs3l_layout(make_sample(seed=9), written)
    assert written.read_bytes() == before
    assert os.listdir(written.parent) == [written.name]


def test_unwritable_sample_writes_nothing(sample, tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(ValueError, match="variations"):
        write_rs3l_layout(sample.select_variations(["nominal", "seed"]), path)
    odd = sample.rows(slice(0, 4))
    odd = JetSample(**{**{k: getattr(odd, k) for k in ("p4", "charge", "pid", "d0", "dz", "mask", "jet_p4",
                                                       "n_constituents", "event_id")},
                       "label": np.zeros(4, np.int8), "parton": np.array([21, 5, 2, 0], np.int32)})
    with pytest.raises(ValueError, match="parton 0"):
        write_rs3l_layout(odd, path)
    with pytest.raises(TypeError):
        write_rs3l_layout({"p4": sample.p4}, path)
    assert os.listdir(tmp_path) == []


# -- finding files -----------------------------------------------------------------------------------------------


def test_find_rs3l_files(tmp_path, monkeypatch):
    root = tmp_path / "public"
    assert find_rs3l_files(root) == []  # no folder
    (root / "rs3l" / "test").mkdir(parents=True)
    for name in ("b.h5", "a.hdf5", "test/c.h5", "notes.txt", ".b.h5.x1.tmp", ".hidden.h5"):
        (root / "rs3l" / name).write_bytes(b"")
    expect = [root / "rs3l" / n for n in ("a.hdf5", "b.h5", "test/c.h5")]
    assert find_rs3l_files(root / "rs3l") == expect
    monkeypatch.setenv("HEPNB_PUBLIC_DATA", str(root))
    assert find_rs3l_files() == expect
    monkeypatch.setenv("HEPNB_PUBLIC_DATA", str(tmp_path / "elsewhere"))
    assert find_rs3l_files() == []
