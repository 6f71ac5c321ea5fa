"""The re-simulation pipeline (hepnb.generate.resim, one shard; hepnb.generate.shards, many): pairing, cuts, seeds,
workers, physics properties."""

from pathlib import Path

import numpy as np
import pytest

from hepnb.data import cache, store
from hepnb.data.features import impact_parameters
from hepnb.generate import resim
from hepnb.generate.catalogue import CLASS_NAMES, VARIATION_NAMES
from hepnb.generate.shards import generate_class
from hepnb.physics import kinematics

N_HARD = 150


def _delta_r(a, b):
    _, eta_a, phi_a = kinematics.pt_eta_phi(a)
    _, eta_b, phi_b = kinematics.pt_eta_phi(b)
    return kinematics.delta_r(eta_a, phi_a, eta_b, phi_b)


@pytest.fixture(scope="module")
def shards():
    return {c: resim.simulate_shard(c, seed=5, shard=0, n_hard=N_HARD) for c in ("hbb", "qcd")}


def test_arrays_are_plain_numpy(shards):
    for out in shards.values():
        for key, value in out.items():
            if key != "stats":
                assert type(value) is np.ndarray, key


def test_every_row_is_one_hard_event_in_all_five_variations(shards):
    for name, out in shards.items():
        jet = out["jet"]
        assert jet.shape[1] == len(resim.VARIATIONS) == 5
        assert len(out["event_id"]) > 10, name
        # every variation's jet is within dR < 0.8 of the nominal jet and of the hard object it was matched to
        for v in range(1, 5):
            assert np.all(_delta_r(jet[:, v], jet[:, 0]) < 0.8), (name, v)
        for v in range(5):
            assert np.all(_delta_r(jet[:, v], out["hard_p4"]) < 0.8), (name, v)
        assert len(np.unique(out["event_id"])) == len(out["event_id"])


def test_jets_pass_the_selection_in_every_variation(shards):
    sel = resim.Selection()
    for out in shards.values():
        pt, eta, _ = kinematics.pt_eta_phi(out["jet"])
        mass = kinematics.mass(out["jet"])
        assert np.all((pt > sel.jet_pt_min) & (pt < sel.jet_pt_max))
        assert np.all(np.abs(eta) < sel.jet_eta_max)
        assert np.all(mass > sel.jet_mass_min)
        hard_pt, hard_eta, _ = kinematics.pt_eta_phi(out["hard_p4"])
        assert np.all(np.abs(hard_eta) < sel.hard_eta_max) and np.all(hard_pt > sel.hard_pt_min)


def test_constituents_are_pt_ordered_padded_and_sum_to_the_jet(shards):
    for out in shards.values():
        cands, pid, n = out["cands"], out["pid"], out["n_constituents"]
        pt = kinematics.pt(cands[..., :4])
        C = cands.shape[2]
        real = np.arange(C) < np.minimum(n, C)[..., None]
        assert np.array_equal(pid != 0, real)
        assert np.all(cands[~real] == 0)
        assert np.all(np.diff(np.where(real, pt, 0), axis=-1) <= 1e-4)  # descending, then zeros
        whole = n <= C  # jets not truncated: constituents add up to the jet 4-vector
        total = cands[..., :4].astype(np.float64).sum(axis=2)
        assert np.allclose(total[whole], out["jet"][whole], rtol=1e-5, atol=1e-3)


def test_labels_of_the_hard_process(shards):
    assert np.all(shards["hbb"]["parton"] == 25)
    partons = np.abs(shards["qcd"]["parton"])
    assert np.all(np.isin(partons, [1, 2, 3, 4, 5, 21]))
    assert (partons == 21).any() and (partons < 6).any()  # both quark and gluon jets


def test_hbb_has_more_displaced_tracks_than_qcd(shards):
    """B hadrons fly millimetres: H->bb jets carry many more tracks with |d0| > 0.1 mm than light QCD jets."""
    fractions = {}
    for name, out in shards.items():
        cands, charge = out["cands"][:, 0], out["charge"][:, 0]
        d0, _ = impact_parameters(cands[..., :4], cands[..., 4:], charge)
        charged = charge != 0
        fractions[name] = np.mean(np.abs(np.asarray(d0))[charged] > 0.1)
    assert fractions["hbb"] > 3 * fractions["qcd"], fractions
    assert fractions["hbb"] > 0.1, fractions


def test_same_seed_same_arrays_different_seed_different():
    a = resim.simulate_shard("qcd", seed=11, shard=0, n_hard=40)
    b = resim.simulate_shard("qcd", seed=11, shard=0, n_hard=40)
    c = resim.simulate_shard("qcd", seed=12, shard=0, n_hard=40)
    for key in ("cands", "pid", "charge", "jet", "event_id", "hard_p4"):
        assert np.array_equal(a[key], b[key]), key
    assert len(a["event_id"]) != len(c["event_id"]) or not np.array_equal(a["cands"], c["cands"])


def test_worker_count_does_not_change_the_file(tmp_path: Path):
    kw = dict(n_events=25, seed=2, n_hard=50, progress=False)
    one, info_one = generate_class("qcd", workers=1, **kw)
    two, info_two = generate_class("qcd", workers=2, **kw)
    assert info_one["shards"] == info_two["shards"] >= 1
    for key in one:
        assert one[key].tobytes() == two[key].tobytes(), key
    assert len(one["event_id"]) == 25
    # ... and so the merged file, written the way hepnb.data.cache.generate_file writes it, is byte-identical
    attrs = {**cache.generation_record("qcd", 2), "n_events": 25, "variations": list(VARIATION_NAMES),
             "cand_fields": list(resim.CAND_FIELDS), "showered": info_one["showered"], "passed": info_one["passed"]}
    label = np.full(25, CLASS_NAMES.index("qcd"), np.int8)
    paths = [store.write_resim(tmp_path / f"w{k}.h5", {**arrays, "label": label}, attrs) for k, arrays in ((1, one), (2, two))]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert info_two["showered"] == info_one["showered"] and info_two["passed"] == info_one["passed"]


def test_a_smaller_sample_is_the_start_of_a_bigger_one():
    small, _ = generate_class("hbb", 8, seed=4, n_hard=30, progress=False)
    big, _ = generate_class("hbb", 20, seed=4, n_hard=30, progress=False)
    for key in small:
        assert np.array_equal(small[key], big[key][:8]), key


def test_pruning_far_particles_does_not_change_the_matched_jets(tmp_path: Path):
    cls, sel = resim.jet_class("qcd"), resim.Selection()
    lhe = tmp_path / "events.lhe"
    n = 120
    resim._write_hard_events(cls, 0, 0, n, sel, lhe)
    for variation in (resim.VARIATIONS[0], resim.VARIATIONS[4]):
        results = [resim._shower_variation(cls, variation, lhe, n, 0, 0, sel, prune=p) for p in (True, False)]
        (pass_a, arr_a, _), (pass_b, arr_b, _) = results
        assert np.array_equal(pass_a, pass_b) and pass_a.sum() > n // 4
        for key in arr_a:
            assert np.array_equal(arr_a[key], arr_b[key]), (variation.name, key)


def test_bad_requests_are_refused():
    with pytest.raises(KeyError, match="unknown jet class"):
        resim.simulate_shard("ttbar", 0, 0, n_hard=10)
    with pytest.raises(KeyError, match="only the public RS3L files"):
        resim.simulate_shard("zqq", 0, 0, n_hard=10)
    with pytest.raises(ValueError, match="n_events"):
        generate_class("hbb", 0)
    with pytest.raises(ValueError, match="workers"):
        generate_class("hbb", 10, workers=0)
    with pytest.raises(ValueError, match="jet_pt_max"):
        resim.Selection(jet_pt_min=500, jet_pt_max=400)
    with pytest.raises(ValueError, match="match_dr must be a finite number > 0"):
        resim.Selection(match_dr=-1)
    with pytest.raises(ValueError, match="n_hard"):
        resim.simulate_shard("hbb", 0, 0, n_hard=0)


def test_settings_record_names_every_variation():
    record = resim.settings_record(resim.jet_class("hbb"))
    assert list(record) == ["hard", *(v.name for v in resim.VARIATIONS)]
    assert "PartonLevel:all = off" in record["hard"]
    assert "TimeShower:renormMultFac = 0.5" in record["fsr_down"]
    assert "TimeShower:renormMultFac = 2.0" in record["fsr_up"]
    assert "PartonShowers:model = 2" in record["alt_shower"]
    for name, settings in record.items():
        if name != "hard":  # ISR on and MPI off in every shower (DESIGN section 4)
            assert "PartonLevel:ISR = on" in settings and "PartonLevel:MPI = off" in settings
