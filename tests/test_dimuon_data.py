"""hepnb.generate.dimuon and hepnb.data.dimuon: Drell-Yan dimuons from Pythia (Z signal, gamma* background) and
their native ``hepnb-dimuon`` file and cache.

Reproducible bytes (seed, folder, worker count), the physics of the two samples (the Z peak and width, the falling
gamma* spectrum, the 60-120 GeV window), the muons themselves (PDG id, opposite charges, leading first, the
acceptance), the cache (a smaller request served from a bigger file, a bigger one regenerating it, the recorded
attributes), and the errors of the reader. Generation runs on small samples (200-2000 events, ~1 s each) in
temporary folders.
"""

import hashlib
import shutil

import h5py
import numpy as np
import pytest

from hepnb.data import dimuon, store
from hepnb.errors import DataFileError, SampleError
from hepnb.generate import dimuon as gen
from hepnb.physics.kinematics import mass, pt_eta_phi

Z_MASS, Z_WIDTH = 91.1876, 2.4952  # GeV (PDG; Pythia's defaults)
N = 2000


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pair_mass(sample):
    return mass(sample.muons.sum(axis=1))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("dimuon")


@pytest.fixture(scope="module")
def z(folder):
    return dimuon.load_or_generate("z", N, seed=0, folder=folder, progress=False)


@pytest.fixture(scope="module")
def gamma(folder):
    return dimuon.load_or_generate("gamma", N, seed=0, folder=folder, progress=False)


def copy_of(path, tmp_path, name="copy.h5"):
    target = tmp_path / name
    shutil.copyfile(path, target)
    return target


# -- reproducibility -----------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_other_seed_other_muons(tmp_path):
    a = dimuon.load_or_generate("gamma", 300, seed=3, folder=tmp_path / "a", progress=False)
    b = dimuon.load_or_generate("gamma", 300, seed=3, folder=tmp_path / "b", progress=False)
    c = dimuon.load_or_generate("gamma", 300, seed=4, folder=tmp_path / "c", progress=False)
    path_a = dimuon.cache_path("gamma", 3, folder=tmp_path / "a")
    path_b = dimuon.cache_path("gamma", 3, folder=tmp_path / "b")
    assert path_a.name == path_b.name != dimuon.cache_path("gamma", 4, folder=tmp_path / "c").name
    assert sha256(path_a) == sha256(path_b)
    assert np.array_equal(a.muons, b.muons)
    assert not np.array_equal(a.muons[:100], c.muons[:100])
    assert a.attrs["seed"] == 3 and c.attrs["seed"] == 4


def test_one_or_two_workers_write_the_same_bytes(tmp_path):
    # 1500 Z events span three shards (500 + 1000 + 2000 tried), so the merge order matters
    info1 = dimuon.generate_file(tmp_path / "w1.h5", "z", 1500, seed=1, workers=1, progress=False)
    info2 = dimuon.generate_file(tmp_path / "w2.h5", "z", 1500, seed=1, workers=2, progress=False)
    assert info1["shards"] == info2["shards"] >= 2
    assert sha256(tmp_path / "w1.h5") == sha256(tmp_path / "w2.h5")


# -- physics -------------------------------------------------------------------------------------------------------


def test_z_sample_peaks_at_the_z_mass_with_the_z_width(z):
    m = pair_mass(z)
    assert np.all((m >= 60) & (m <= 120))
    q25, q50, q75 = np.percentile(m, [25, 50, 75])
    # a Breit-Wigner's median is its mass and its quartiles lie at +-Gamma/2 (1.25 GeV); the falling parton
    # luminosity narrows it a little. Statistical error of the median with 2000 events ~0.05 GeV, of the
    # interquartile half-range ~0.05 GeV
    assert abs(q50 - Z_MASS) < 0.5
    assert 0.9 < (q75 - q25) / 2 < 1.6
    assert abs((q75 - q25) / 2 - Z_WIDTH / 2) < 0.3
    # most events lie within a few widths of the peak, unlike the gamma* sample
    assert np.mean(np.abs(m - Z_MASS) < 2 * Z_WIDTH) > 0.8


def test_gamma_star_spectrum_falls_across_the_window(gamma):
    m = pair_mass(gamma)
    assert np.all((m >= 60) & (m <= 120))
    counts, _ = np.histogram(m, bins=np.arange(60, 121, 10))
    assert np.all(np.diff(counts) < 0), counts
    assert np.mean(np.abs(m - Z_MASS) < 2 * Z_WIDTH) < 0.25  # no Z peak (no interference, photon only)


def test_the_two_classes_differ(z, gamma):
    assert np.all(z.label == 1) and np.all(gamma.label == 0)
    assert np.median(pair_mass(gamma)) < 80 < np.median(pair_mass(z))


@pytest.mark.parametrize("name", ["z", "gamma"])
def test_two_opposite_charge_muons_leading_first_within_the_acceptance(name, folder, z, gamma):
    sample = {"z": z, "gamma": gamma}[name]
    with h5py.File(dimuon.cache_path(name, 0, folder=folder)) as f:
        pid = f["pid"][:N]
    assert np.all(np.abs(pid) == 13)
    np.testing.assert_array_equal(np.sort(sample.charge, axis=1), np.tile([-1, 1], (N, 1)))
    assert np.all(np.sign(pid) == -sample.charge)  # mu- is PDG +13
    pt, eta, _ = pt_eta_phi(sample.muons)
    assert np.all(pt[:, 0] >= pt[:, 1])
    acc = gen.Acceptance()
    assert np.all(pt > acc.pt_min) and np.all(np.abs(eta) < acc.eta_max)
    np.testing.assert_allclose(mass(sample.muons), 0.10566, rtol=1e-3)  # true (unsmeared) muons
    assert len(np.unique(sample.event_id)) == N and np.all(np.diff(sample.event_id) > 0)


def test_the_pair_recoils_against_initial_state_radiation(z):
    pt_pair = pt_eta_phi(z.muons.sum(axis=1))[0]
    assert np.median(pt_pair) > 1.0  # a pure 2 -> 1 would give exactly 0


# -- the cache -----------------------------------------------------------------------------------------------------


def test_the_file_records_its_settings(folder, z):
    with h5py.File(dimuon.cache_path("z", 0, folder=folder)) as f:
        raw = dict(f.attrs)
        assert list(f) == ["muons", "charge", "pid", "event_id", "label"]
    assert raw["format"] == dimuon.FORMAT and raw["class_name"] == "z"
    attrs = z.attrs
    assert attrs["n_events"] == N and attrs["seed"] == 0 and attrs["label"] == 1
    assert attrs["settings"] == gen.dimuon_settings("z")
    assert "WeakZ0:gmZmode = 2" in attrs["settings"]  # Z only (no photon, no interference)
    assert "WeakZ0:gmZmode = 1" in gen.dimuon_settings("gamma")  # photon only
    assert "23:onIfAny = 13" in attrs["settings"] and "PartonLevel:ISR = on" in attrs["settings"]
    assert "PhaseSpace:mHatMin = 60" in attrs["settings"] and "PhaseSpace:mHatMax = 120" in attrs["settings"]
    assert attrs["acceptance"] == {"mass_min": 60.0, "mass_max": 120.0, "pt_min": 10.0, "eta_max": 2.5}
    assert attrs["tried"] >= N and len(attrs["shard_seeds"]) == attrs["shards_used"]


def test_smaller_requests_are_served_from_a_bigger_file_and_bigger_ones_regenerate(tmp_path):
    path = dimuon.cache_path("gamma", 5, folder=tmp_path)
    small = dimuon.load_or_generate("gamma", 150, seed=5, folder=tmp_path, progress=False)
    assert small.attrs["n_events"] == 150
    big = dimuon.load_or_generate("gamma", 400, seed=5, folder=tmp_path, progress=False)  # regenerates
    assert big.attrs["n_events"] == 400 and len(big) == 400
    np.testing.assert_array_equal(big.muons[:150], small.muons)  # the smaller sample is the bigger's start
    np.testing.assert_array_equal(big.event_id[:150], small.event_id)
    stamp, digest = path.stat().st_mtime_ns, sha256(path)
    again = dimuon.load_or_generate("gamma", 250, seed=5, folder=tmp_path, progress=False)
    assert path.stat().st_mtime_ns == stamp and sha256(path) == digest  # served, not rewritten
    assert len(again) == 250 and again.attrs["n_events"] == 400
    np.testing.assert_array_equal(again.muons, big.muons[:250])
    np.testing.assert_array_equal(again.charge, big.charge[:250])
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_a_corrupt_cache_file_is_regenerated(tmp_path):
    path = dimuon.cache_path("gamma", 6, folder=tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an HDF5 file")
    sample = dimuon.load_or_generate("gamma", 100, seed=6, folder=tmp_path, progress=False)
    assert len(sample) == 100 and sample.attrs["n_events"] == 100


def test_load_dimuons_concatenates_background_then_signal(folder, z, gamma):
    both = dimuon.load_dimuons(300, seed=0, folder=folder, progress=False)
    assert len(both) == 600
    np.testing.assert_array_equal(both.label, np.repeat([0, 1], 300))
    np.testing.assert_array_equal(both.muons[:300], gamma.muons[:300])
    np.testing.assert_array_equal(both.muons[300:], z.muons[:300])


# -- errors --------------------------------------------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        dimuon.read_dimuons(tmp_path / "absent.h5")


def test_a_truncated_file_is_refused(folder, z, tmp_path):
    path = copy_of(dimuon.cache_path("z", 0, folder=folder), tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        dimuon.read_dimuons(path)


def test_a_jet_file_is_sent_to_read_resim(tmp_path):
    path = tmp_path / "jets.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = store.FORMAT  # "hepnb-resim"
        f.attrs["schema_version"] = 1
    with pytest.raises(DataFileError, match=r"re-simulated jets.*read_resim"):
        dimuon.read_dimuons(path)


def test_a_dimuon_file_is_sent_to_read_dimuons(folder, z):
    with pytest.raises(DataFileError, match=r"dimuon file.*read_dimuons"):
        store.read_resim(dimuon.cache_path("z", 0, folder=folder))


def edited(path, tmp_path, edit):
    target = copy_of(path, tmp_path)
    with h5py.File(target, "r+") as f:
        edit(f)
    return target


@pytest.mark.parametrize("what, edit, message", [
    ("equal charges", lambda f: f["charge"].__setitem__((slice(None), 1), f["charge"][:, 0]), "opposite charges"),
    ("charge 2", lambda f: f["charge"].__setitem__((slice(None), slice(None)), 2 * f["charge"][:]),
     "opposite charges"),
    ("an electron", lambda f: f["pid"].__setitem__((0, 0), 11), "muon"),
    ("a gamma* label in a Z file", lambda f: f["label"].__setitem__(0, 0), "labels disagree"),
    ("a space-like muon", lambda f: f["muons"].__setitem__((0, 0, 3), 0.0), "time-like"),
    ("a NaN", lambda f: f["muons"].__setitem__((1, 1, 0), np.nan), "finite"),
    ("schema 2", lambda f: f.attrs.__setitem__("schema_version", 2), "schema version 2"),
    ("no seed", lambda f: f.attrs.__delitem__("seed"), "'seed' is missing"),
    ("no charge", lambda f: f.__delitem__("charge"), "'charge' is missing"),
])
def test_inconsistent_files_are_refused(folder, z, tmp_path, what, edit, message):
    path = edited(dimuon.cache_path("z", 0, folder=folder), tmp_path, edit)
    with pytest.raises(DataFileError, match=message):
        dimuon.read_dimuons(path)


def test_more_rows_than_the_file_holds_is_refused(folder, z):
    with pytest.raises(DataFileError, match=f"asked for {N + 1} events, the file holds {N}"):
        dimuon.read_dimuons(dimuon.cache_path("z", 0, folder=folder), n_rows=N + 1)


def test_an_empty_sample_is_refused():
    with pytest.raises(SampleError, match="at least one event"):
        dimuon.DimuonSample(np.zeros((0, 2, 4)), np.zeros((0, 2), np.int8), np.zeros(0, np.int8),
                            np.zeros(0, np.int64))
    with pytest.raises(SampleError, match=r"\(N, 2, 4\)"):
        dimuon.DimuonSample(np.zeros((3, 2, 3)), np.zeros((3, 2), np.int8), np.zeros(3, np.int8),
                            np.zeros(3, np.int64))
    with pytest.raises(SampleError, match="nothing to concatenate"):
        dimuon.DimuonSample.concatenate([])


def test_an_unknown_class_is_a_key_error(tmp_path):
    with pytest.raises(KeyError, match="unknown dimuon class 'w'"):
        gen.dimuon_class("w")
    with pytest.raises(KeyError, match="known: gamma, z"):
        dimuon.load_or_generate("w", 10, folder=tmp_path, progress=False)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


@pytest.mark.parametrize("n", [0, -5, 2.5])
def test_a_non_positive_event_count_is_a_value_error(n, tmp_path):
    with pytest.raises(ValueError, match="n_events") as err:
        dimuon.load_or_generate("z", n, folder=tmp_path, progress=False)
    assert type(err.value) is ValueError  # the argument is wrong, not a file
    assert not any(tmp_path.iterdir())


def test_an_empty_acceptance_window_is_refused():
    with pytest.raises(ValueError, match="mass_max"):
        gen.Acceptance(mass_min=120.0, mass_max=60.0)
    with pytest.raises(ValueError):
        gen.Acceptance(pt_min=-1.0)
