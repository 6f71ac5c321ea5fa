"""hepnb.data.features: the 15 constituent features and 2 jet features, checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import vector

from hepnb.data.features import (
    FEATURE_LABELS,
    FEATURE_NAMES,
    FEATURE_UNITS,
    JET_FEATURE_NAMES,
    JET_FLOOR_GEV,
    constituent_features,
    impact_parameters,
    jet_features,
    particle_flags,
    sample_features,
)
from hepnb.data.sample import VARIATION_NAMES, JetSample, SampleError

F = {name: i for i, name in enumerate(FEATURE_NAMES)}
FLAGS = ("is_photon", "is_muon", "is_electron", "is_ch", "is_nh")
# (pid, charge) of visible final-state particles, and which flag each must get.
PARTICLES = [(22, 0, "is_photon"), (11, -1, "is_electron"), (-11, 1, "is_electron"), (13, -1, "is_muon"),
             (-13, 1, "is_muon"), (211, 1, "is_ch"), (-211, -1, "is_ch"), (321, 1, "is_ch"), (-321, -1, "is_ch"),
             (2212, 1, "is_ch"), (-2212, -1, "is_ch"), (3222, 1, "is_ch"), (3112, -1, "is_ch"), (2112, 0, "is_nh"),
             (-2112, 0, "is_nh"), (130, 0, "is_nh"), (310, 0, "is_nh"), (3122, 0, "is_nh"), (-3122, 0, "is_nh"),
             (3322, 0, "is_nh")]
MASSES = {22: 0.0, 11: 0.000511, 13: 0.1057, 211: 0.1396, 321: 0.4937, 2212: 0.9383, 3222: 1.1894, 3112: 1.1974,
          2112: 0.9396, 130: 0.4976, 310: 0.4976, 3122: 1.1157, 3322: 1.3149}


def random_jets(shape: tuple[int, ...], C: int, seed: int = 0, phi_center: float | None = None) -> dict:
    """Jets of up to ``C`` pT-ordered constituents around a random axis, zero-padded; float64 4-vectors."""
    rng = np.random.default_rng(seed)
    n_real = rng.integers(1, C + 1, size=shape)
    mask = np.arange(C) < n_real[..., None]
    eta0 = rng.uniform(-2, 2, size=shape + (1,))
    phi0 = rng.uniform(-math.pi, math.pi, size=shape + (1,)) if phi_center is None else phi_center
    pt = np.sort(rng.exponential(20.0, size=shape + (C,)) + 0.5, axis=-1)[..., ::-1]
    eta = eta0 + rng.normal(0, 0.3, size=shape + (C,))
    phi = phi0 + rng.normal(0, 0.3, size=shape + (C,))
    kind = rng.integers(0, len(PARTICLES), size=shape + (C,))
    pid = np.array([p[0] for p in PARTICLES])[kind]
    charge = np.array([p[1] for p in PARTICLES])[kind]
    mass = np.array([MASSES[abs(p)] for p in pid.ravel()]).reshape(pid.shape)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    p4 = np.where(mask[..., None], np.stack([px, py, pz, e], axis=-1), 0.0)
    d0 = np.where(mask & (charge != 0), rng.normal(0, 0.5, size=mask.shape), 0.0)
    dz = np.where(mask & (charge != 0), rng.normal(0, 2.0, size=mask.shape), 0.0)
    return {"p4": p4, "charge": (charge * mask).astype(np.int8), "pid": (pid * mask).astype(np.int32),
            "d0": d0.astype(np.float32), "dz": dz.astype(np.float32), "mask": mask}


def reference_features(p4, charge, pid, d0, dz, mask, jet) -> list[float]:
    """One constituent's 15 features with plain ``math`` (the independent computation)."""
    if not mask:
        return [0.0] * 15
    px, py, pz, e = map(float, p4)
    jpx, jpy, jpz, je = map(float, jet)
    pt, jpt = math.hypot(px, py), math.hypot(jpx, jpy)
    deta = math.asinh(pz / pt) - math.asinh(jpz / jpt)
    dphi = math.atan2(py, px) - math.atan2(jpy, jpx)
    while dphi > math.pi:
        dphi -= 2 * math.pi
    while dphi <= -math.pi:
        dphi += 2 * math.pi
    apid = abs(int(pid))
    flags = {"is_photon": pid == 22, "is_electron": apid == 11, "is_muon": apid == 13,
             "is_ch": charge != 0 and apid not in (11, 13), "is_nh": charge == 0 and pid != 22}
    return [math.log(pt), math.log(pt / jpt), math.log(e), math.log(e / je), deta, dphi, math.hypot(deta, dphi),
            float(charge), math.tanh(float(d0)), math.tanh(float(dz)), *(float(flags[f]) for f in FLAGS)]


def features_of(jets: dict, jet_p4=None):
    return constituent_features(jets["p4"], jets["charge"], jets["pid"], jets["d0"], jets["dz"], jets["mask"],
                                jet_p4=jet_p4)


def make_sample(n: int = 6, V: int = 3, C: int = 12, seed: int = 0) -> JetSample:
    jets = random_jets((n, V), C, seed=seed)
    jet_p4 = jets["p4"].sum(axis=-2) * 1.05  # "all constituents before truncation": not the stored ones' sum
    jet_p4[..., 3] = np.sqrt((jet_p4[..., :3] ** 2).sum(-1) + 30.0**2)
    return JetSample(p4=jets["p4"].astype(np.float32), charge=jets["charge"], pid=jets["pid"], d0=jets["d0"],
                     dz=jets["dz"], mask=jets["mask"], jet_p4=jet_p4, n_constituents=jets["mask"].sum(-1).astype(
                         np.int32), label=np.zeros(n, np.int8), parton=np.full(n, 21, np.int32),
                     event_id=np.arange(n, dtype=np.int64), variations=VARIATION_NAMES[:V])


# ---------------------------------------------------------------------------------------------------------------
# names


def test_names_labels_and_units_cover_every_feature():
    assert FEATURE_NAMES == ("log_pt", "log_pt_rel", "log_e", "log_e_rel", "deta", "dphi", "dr", "charge",
                             "tanh_d0", "tanh_dz", "is_photon", "is_muon", "is_electron", "is_ch", "is_nh")
    assert set(FEATURE_LABELS) == set(FEATURE_NAMES) == set(FEATURE_UNITS)
    assert JET_FEATURE_NAMES == ("log_pt", "log_m")
    assert FEATURE_UNITS["log_pt"] == "log(GeV)" and FEATURE_UNITS["tanh_d0"] == "tanh(mm)"


# ---------------------------------------------------------------------------------------------------------------
# agreement with independent computations


def test_matches_a_plain_math_loop_particle_by_particle():
    jets = random_jets((4, 2), C=9, seed=1)
    jet_p4 = jets["p4"].sum(axis=-2)
    x = features_of(jets, jet_p4)
    assert x.shape == (4, 2, 9, 15) and x.dtype == np.float32
    for idx in np.ndindex(*jets["mask"].shape):
        ref = reference_features(jets["p4"][idx], jets["charge"][idx], jets["pid"][idx], jets["d0"][idx],
                                 jets["dz"][idx], jets["mask"][idx], jet_p4[idx[:-1]])
        np.testing.assert_allclose(x[idx], ref, rtol=1e-5, atol=1e-5, err_msg=str(idx))


def test_angles_match_the_vector_library():
    jets = random_jets((20,), C=15, seed=2)
    jet_p4 = jets["p4"].sum(axis=-2)
    x = features_of(jets, jet_p4)
    for j in range(20):
        axis = vector.obj(px=jet_p4[j, 0], py=jet_p4[j, 1], pz=jet_p4[j, 2], E=jet_p4[j, 3])
        for c in np.flatnonzero(jets["mask"][j]):
            px, py, pz, e = jets["p4"][j, c]
            p = vector.obj(px=px, py=py, pz=pz, E=e)
            assert x[j, c, F["deta"]] == pytest.approx(p.eta - axis.eta, abs=1e-5)
            assert x[j, c, F["dphi"]] == pytest.approx(p.deltaphi(axis), abs=1e-5)
            assert x[j, c, F["dr"]] == pytest.approx(p.deltaR(axis), abs=1e-5)
            assert x[j, c, F["log_pt"]] == pytest.approx(math.log(p.pt), abs=1e-5)


def test_jet_features_match_math():
    jets = random_jets((10,), C=20, seed=3)
    jet_p4 = jets["p4"].sum(axis=-2)
    out = jet_features(jet_p4)
    assert out.shape == (10, 2) and out.dtype == np.float32
    for j in range(10):
        v = vector.obj(px=jet_p4[j, 0], py=jet_p4[j, 1], pz=jet_p4[j, 2], E=jet_p4[j, 3])
        np.testing.assert_allclose(out[j], [math.log(v.pt), math.log(v.mass)], rtol=1e-5)


def test_jet_mass_is_clipped_for_massless_and_empty_jets():
    photon = np.array([[30.0, 40.0, 0.0, 50.0], [0.0, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 4.999999]])
    out = jet_features(photon)
    assert np.isfinite(out).all()
    assert out[0, 0] == pytest.approx(math.log(50.0))
    assert out[0, 1] == pytest.approx(math.log(JET_FLOOR_GEV))
    np.testing.assert_allclose(out[1], math.log(JET_FLOOR_GEV), rtol=1e-6)
    assert out[2, 1] == pytest.approx(math.log(JET_FLOOR_GEV))  # m^2 < 0 from rounding


# ---------------------------------------------------------------------------------------------------------------
# properties


@pytest.mark.parametrize("jet_phi, particle_phi, expected", [(math.pi - 0.05, -math.pi + 0.05, 0.1),
                                                              (-math.pi + 0.05, math.pi - 0.05, -0.1),
                                                              (3.0, -3.0, 2 * math.pi - 6.0)])
def test_dphi_wraps_across_pi(jet_phi, particle_phi, expected):
    def p4(phi, pt):
        return [pt * math.cos(phi), pt * math.sin(phi), 0.0, pt]

    x = constituent_features(np.array([[p4(particle_phi, 10.0)]]), np.zeros((1, 1)), np.full((1, 1), 22),
                             np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1), bool),
                             jet_p4=np.array([p4(jet_phi, 100.0)]))
    assert x[0, 0, F["dphi"]] == pytest.approx(expected, abs=1e-6)
    assert x[0, 0, F["dr"]] == pytest.approx(abs(expected), abs=1e-6)


def test_dphi_lies_in_minus_pi_to_pi_for_jets_on_the_seam():
    jets = random_jets((50,), C=20, seed=4, phi_center=math.pi)
    x = features_of(jets)
    dphi = x[..., F["dphi"]][jets["mask"]]
    assert (dphi > -math.pi).all() and (dphi <= math.pi).all()
    assert np.abs(dphi).max() < 2.5  # constituents lie near the axis even though their phi straddles +-pi


def test_padding_is_exactly_zero_and_nothing_is_nan():
    jets = random_jets((5, 2), C=10, seed=5)
    jets["mask"][0, 0] = False  # a fully padded jet: zero jet 4-vector
    jets["p4"][0, 0] = 0.0
    garbage = jets["p4"].copy()
    garbage[~jets["mask"]] = 7.0  # padding need not be zero in the inputs for the features to be
    for p4, jet_p4 in ((jets["p4"], None), (garbage, None), (jets["p4"], np.zeros((5, 2, 4)))):
        x = features_of({**jets, "p4": p4}, jet_p4)
        assert np.isfinite(x).all()
        assert (x[~jets["mask"]] == 0).all()
        assert not np.signbit(x[~jets["mask"]]).any()  # +0, not -0


def test_flags_are_one_hot_for_every_visible_particle():
    pid = np.array([p[0] for p in PARTICLES] + [0, 0])
    charge = np.array([p[1] for p in PARTICLES] + [0, 0])
    mask = np.arange(len(pid)) < len(PARTICLES)
    flags = particle_flags(pid, charge, mask)
    assert flags.shape == (len(pid), 5)
    np.testing.assert_array_equal(flags[mask].sum(axis=1), 1)
    np.testing.assert_array_equal(flags[~mask], 0)
    for (p, q, name), row in zip(PARTICLES, flags):
        assert row[FLAGS.index(name)] == 1, (p, q, name)
    jets = random_jets((8,), C=12, seed=6)
    x = features_of(jets)
    sums = x[..., F["is_photon"]:].sum(axis=-1)
    np.testing.assert_array_equal(sums, jets["mask"].astype(np.float32))


def test_jet_axis_none_is_the_masked_constituent_sum():
    jets = random_jets((6, 3), C=8, seed=7)
    garbage = jets["p4"].copy()
    garbage[~jets["mask"]] = 5.0  # must not enter the sum
    summed = np.where(jets["mask"][..., None], jets["p4"], 0).sum(axis=-2)
    np.testing.assert_array_equal(features_of({**jets, "p4": garbage}), features_of(jets, summed))


def test_relative_features_are_invariant_under_rotations_about_the_beam():
    jets = random_jets((10,), C=15, seed=8)
    jet_p4 = jets["p4"].sum(axis=-2)

    def rotate(p4, angle):
        c, s = math.cos(angle), math.sin(angle)
        out = p4.copy()
        out[..., 0], out[..., 1] = c * p4[..., 0] - s * p4[..., 1], s * p4[..., 0] + c * p4[..., 1]
        return out

    base = features_of(jets, jet_p4)
    for angle in (0.3, 2.0, -2.9):
        turned = features_of({**jets, "p4": rotate(jets["p4"], angle)}, rotate(jet_p4, angle))
        for name in ("deta", "dphi", "dr", "log_pt_rel", "log_pt", "log_e_rel"):
            np.testing.assert_allclose(turned[..., F[name]], base[..., F[name]], atol=1e-5, err_msg=name)


# ---------------------------------------------------------------------------------------------------------------
# torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_and_torch_give_the_same_numbers(dtype):
    jets = random_jets((4, 3), C=10, seed=9)
    jet_p4 = jets["p4"].sum(axis=-2)
    ref = features_of(jets, jet_p4)
    tensors = {k: torch.as_tensor(v) for k, v in jets.items()}
    tensors["p4"] = tensors["p4"].to(dtype)
    out = features_of(tensors, torch.as_tensor(jet_p4, dtype=dtype))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5, rtol=1e-5)
    out_none = features_of(tensors)  # jet axis from the tensors themselves
    np.testing.assert_allclose(out_none.numpy(), features_of(jets), atol=1e-5, rtol=1e-5)
    jet = jet_features(torch.as_tensor(jet_p4, dtype=dtype))
    assert isinstance(jet, torch.Tensor) and jet.dtype == torch.float32
    np.testing.assert_allclose(jet.numpy(), jet_features(jet_p4), atol=1e-5)


def test_torch_gradients_are_finite_through_padding_and_degenerate_jets():
    jets = random_jets((4,), C=6, seed=10)
    jets["mask"][1] = False  # empty jet
    jets["mask"][2] = np.arange(6) < 1  # single constituent: dR = 0 exactly, massless jet for a photon
    jets["p4"][~jets["mask"]] = 0.0
    jets["pid"][2, 0], jets["charge"][2, 0] = 22, 0
    jets["p4"][2, 0] = [3.0, 4.0, 0.0, 5.0]
    p4 = torch.tensor(jets["p4"], requires_grad=True)
    x = constituent_features(p4, jets["charge"], jets["pid"], jets["d0"], jets["dz"], jets["mask"])
    jet = jet_features(torch.where(torch.as_tensor(jets["mask"])[..., None], p4, 0).sum(dim=-2))
    assert torch.isfinite(x).all() and torch.isfinite(jet).all()
    assert x[2, 0, F["dr"]] == 0
    (x.square().sum() + jet.square().sum()).backward()
    assert torch.isfinite(p4.grad).all()
    assert (p4.grad[~torch.as_tensor(jets["mask"])] == 0).all()
    assert p4.grad[0].abs().sum() > 0


def test_torch_keeps_the_device_of_p4_with_numpy_side_inputs():
    jets = random_jets((2,), C=4, seed=11)
    out = features_of({**jets, "p4": torch.as_tensor(jets["p4"], dtype=torch.float32)})
    assert out.device == torch.zeros(1).device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_give_the_cpu_numbers():
    jets = random_jets((3, 2), C=7, seed=14)
    p4 = torch.tensor(jets["p4"], dtype=torch.float32, device="cuda", requires_grad=True)
    out = features_of({**jets, "p4": p4})
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.detach().cpu().numpy(), features_of(jets), atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert torch.isfinite(p4.grad).all()


# ---------------------------------------------------------------------------------------------------------------
# impact parameters


def _track(p, vertex, charge=1):
    p = np.asarray(p, float)
    p4 = np.array([[*p, math.sqrt(p @ p + 0.1396**2)]])
    return impact_parameters(p4, np.array([vertex], float), np.array([charge]))


def test_track_from_the_origin_has_zero_impact_parameters():
    d0, dz = _track([3.0, -4.0, 12.0], [0, 0, 0])
    assert d0[0] == 0 and dz[0] == 0


def test_displacement_along_the_momentum_does_not_change_the_closest_approach():
    p = np.array([3.0, -4.0, 12.0])
    for t in (0.01, 0.5, 7.0):
        d0, dz = _track(p, t * p)
        assert d0[0] == pytest.approx(0, abs=1e-6) and dz[0] == pytest.approx(0, abs=1e-5)


def test_transverse_displacement_perpendicular_to_p_is_d0():
    p = np.array([3.0, -4.0, 12.0])
    perp = np.array([-p[1], p[0], 0.0]) / math.hypot(p[0], p[1])
    for s in (0.05, 1.0, 3.0):
        d0, dz = _track(p, s * perp)
        assert abs(d0[0]) == pytest.approx(s, rel=1e-6) and dz[0] == pytest.approx(0, abs=1e-6)
        d0_flip, _ = _track(p, -s * perp)
        assert d0_flip[0] == pytest.approx(-d0[0])  # d0 is signed
    d0, dz = _track(p, [0.0, 0.0, 2.5])  # a longitudinal shift is all dz
    assert d0[0] == 0 and dz[0] == pytest.approx(2.5)


def test_impact_parameters_vanish_for_neutrals_and_zero_pt():
    d0, dz = impact_parameters(np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 5.0, 5.0]]),
                               np.array([[1.0, -1.0, 2.0], [1.0, -1.0, 2.0]]), np.array([0, 1]))
    np.testing.assert_array_equal(d0, 0)
    np.testing.assert_array_equal(dz, 0)


def test_impact_parameters_are_rotation_invariant_and_agree_with_torch():
    rng = np.random.default_rng(12)
    p4 = rng.normal(0, 10, size=(3, 7, 4))
    vertex = rng.normal(0, 1, size=(3, 7, 3))
    charge = rng.integers(-1, 2, size=(3, 7))
    d0, dz = impact_parameters(p4, vertex, charge)
    angle = 1.1
    rot = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    p4_r = p4.copy()
    p4_r[..., :3] = p4[..., :3] @ rot.T
    d0_r, dz_r = impact_parameters(p4_r, vertex @ rot.T, charge)
    np.testing.assert_allclose(d0_r, d0, atol=1e-5)
    np.testing.assert_allclose(dz_r, dz, atol=1e-5)
    d0_t, dz_t = impact_parameters(torch.as_tensor(p4), torch.as_tensor(vertex), torch.as_tensor(charge))
    np.testing.assert_allclose(d0_t.numpy(), d0, atol=1e-6)
    np.testing.assert_allclose(dz_t.numpy(), dz, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# whole samples and errors


def test_sample_features_use_the_stored_jet_axis():
    sample = make_sample(n=5, V=3, C=12)
    x, jet, mask = sample_features(sample, variations=["fsr_down", 0], max_constituents=7)
    assert x.shape == (5, 2, 7, 15) and jet.shape == (5, 2, 2) and mask.shape == (5, 2, 7)
    assert x.dtype == np.float32 and jet.dtype == np.float32 and mask.dtype == bool
    for k, v in enumerate((2, 0)):
        expect = constituent_features(sample.p4[:, v, :7], sample.charge[:, v, :7], sample.pid[:, v, :7],
                                      sample.d0[:, v, :7], sample.dz[:, v, :7], sample.mask[:, v, :7],
                                      jet_p4=sample.jet_p4[:, v])
        np.testing.assert_array_equal(x[:, k], expect)
        np.testing.assert_array_equal(jet[:, k], jet_features(sample.jet_p4[:, v]))
        np.testing.assert_array_equal(mask[:, k], sample.mask[:, v, :7])
    full, _, _ = sample_features(sample)
    assert full.shape == (5, 3, 12, 15)
    assert not np.allclose(full[..., F["log_pt_rel"]][sample.mask],
                           features_of({"p4": sample.p4, "charge": sample.charge, "pid": sample.pid, "d0": sample.d0,
                                        "dz": sample.dz, "mask": sample.mask})[..., F["log_pt_rel"]][sample.mask])


def test_sample_features_reject_unknown_variations():
    sample = make_sample(n=2, V=2, C=4)
    with pytest.raises(SampleError, match="alt_shower"):
        sample_features(sample, variations=["alt_shower"])
    with pytest.raises(SampleError, match="empty"):
        sample_features(sample, variations=[])


def test_mismatched_shapes_raise_clear_errors():
    jets = random_jets((3,), C=5, seed=13)
    with pytest.raises(ValueError, match="p4 must end in an axis of 4"):
        constituent_features(jets["p4"][..., :3], jets["charge"], jets["pid"], jets["d0"], jets["dz"], jets["mask"])
    with pytest.raises(ValueError, match="mask must have shape"):
        constituent_features(jets["p4"], jets["charge"], jets["pid"], jets["d0"], jets["dz"], jets["mask"][:, :4])
    with pytest.raises(ValueError, match="jet_p4 must have shape"):
        features_of(jets, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="vertex must have shape"):
        impact_parameters(jets["p4"], np.zeros((3, 5, 2)), jets["charge"])


def test_rotation_in_eta_phi_keeps_dr_and_is_a_rotation():
    import torch

    from hepnb.data.features import FEATURE_NAMES, rotate_eta_phi

    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 6, len(FEATURE_NAMES)))
    x[:, 4:] = 0.0  # padding
    angle = rng.uniform(0, 2 * np.pi, 4)
    i, j, r = FEATURE_NAMES.index("deta"), FEATURE_NAMES.index("dphi"), FEATURE_NAMES.index("dr")
    out = rotate_eta_phi(x, angle)
    assert np.allclose(np.hypot(out[..., i], out[..., j]), np.hypot(x[..., i], x[..., j]))
    assert np.all(out[:, 4:] == 0)
    others = [k for k in range(len(FEATURE_NAMES)) if k not in (i, j)]
    assert np.array_equal(out[..., others], x[..., others]) and r in others
    back = rotate_eta_phi(out, -angle)
    assert np.allclose(back, x)
    assert np.allclose(rotate_eta_phi(torch.tensor(x), torch.tensor(angle)).numpy(), out)


def test_eta_phi_rotation_acts_on_the_first_model_input_only():
    import torch

    from hepnb.data.features import EtaPhiRotation, rotate_eta_phi

    x, jet, mask = torch.randn(3, 5, 15), torch.randn(3, 2), torch.ones(3, 5, dtype=torch.bool)
    angle = torch.tensor([0.1, 1.0, 2.0])
    g = EtaPhiRotation(angle)
    gx, gjet, gmask = g((x, jet, mask))
    assert torch.equal(gx, rotate_eta_phi(x, angle)) and gjet is jet and gmask is mask
    assert torch.equal(g(x), gx)
