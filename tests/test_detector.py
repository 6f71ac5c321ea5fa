"""hepnb.physics.detector.smear_muons (the Gaussian pT smearing of Nabat et al.) and hepnb.data.reweighting (the
background reweighting in bins of one variable).

Smearing: the relative pT width is sigma within statistics, the two muons' draws are independent (the paper's
text) or one shared shift (its code, ``shared=True``), eta, phi and mass are kept, sigma = 0 is an exact copy,
seeds reproduce, bad input is refused. Reweighting: the weighted background histogram equals the signal's on the
fitted sample and matches it within statistics on an independent one; signal weights 1, background weights summing
to the signal count; a missing class is refused. All inputs are synthetic (no generator).
"""

import numpy as np
import pytest

from hepnb.data.reweighting import Reweighting, fit_reweighting
from hepnb.errors import SampleError
from hepnb.physics.detector import PT_FLOOR, smear_muons
from hepnb.physics.kinematics import boost, mass, p4_from_pt_eta_phi, pt_eta_phi

MUON_MASS = 0.10566  # GeV


def make_muons(n, seed=0, pt_ratio=(0.2, 1.0)):
    """``n`` events of two massive muons (N, 2, 4): leading pT 10-100 GeV, the second a fraction ``pt_ratio`` of it,
    |eta| < 2.5, any phi."""
    rng = np.random.default_rng(seed)
    lead = rng.uniform(10, 100, size=n)
    pt = np.stack([lead, lead * rng.uniform(*pt_ratio, size=n)], axis=1)
    eta = rng.uniform(-2.5, 2.5, size=(n, 2))
    phi = rng.uniform(-np.pi, np.pi, size=(n, 2))
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + MUON_MASS**2)
    return p4_from_pt_eta_phi(pt, eta, phi, energy)


@pytest.fixture(scope="module")
def muons():
    return make_muons(200_000)


def relative_shift(smeared, true):
    return pt_eta_phi(smeared)[0] / pt_eta_phi(true)[0] - 1


# -- smearing: widths and correlations -----------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.2])
def test_relative_pt_width_is_sigma(muons, sigma):
    rel = relative_shift(smear_muons(muons, sigma, seed=1), muons)
    n = rel.size
    # standard errors of a Gaussian sample's mean and standard deviation: sigma / sqrt(n), sigma / sqrt(2 n)
    assert abs(rel.std() - sigma) < 3 * sigma / np.sqrt(2 * n)
    assert abs(rel.mean()) < 3 * sigma / np.sqrt(n)
    # each muon on its own has the width too (not just the two together)
    for k in range(2):
        assert abs(rel[:, k].std() - sigma) < 3 * sigma / np.sqrt(n)
    # Gaussian, not merely of the right width: 68.3% within one sigma
    inside = np.mean(np.abs(rel) < sigma)
    assert abs(inside - 0.6827) < 3 * np.sqrt(0.6827 * 0.3173 / n)


def test_the_two_muons_are_smeared_independently(muons):
    rel = relative_shift(smear_muons(muons, 0.1, seed=2), muons)
    r = np.corrcoef(rel[:, 0], rel[:, 1])[0, 1]
    assert abs(r) < 4 / np.sqrt(len(rel))  # 4 standard errors of a correlation coefficient around 0


def test_shared_mode_shifts_both_muons_by_the_same_amount():
    true = make_muons(50_000, seed=3, pt_ratio=(0.8, 1.0))  # the floor is never reached (8 sigma away)
    sigma = 0.1
    smeared = smear_muons(true, sigma, seed=4, shared=True)
    pt_true, pt_meas = pt_eta_phi(true)[0], pt_eta_phi(smeared)[0]
    shift = pt_meas - pt_true
    np.testing.assert_allclose(shift[:, 1], shift[:, 0], rtol=0, atol=1e-9)
    # the shift is N(0, sigma * pT of muon 0)
    scaled = shift[:, 0] / pt_true[:, 0]
    assert abs(scaled.std() - sigma) < 3 * sigma / np.sqrt(2 * len(scaled))
    # so the relative shifts are strongly correlated, unlike the independent mode
    assert np.corrcoef(shift[:, 0] / pt_true[:, 0], shift[:, 1] / pt_true[:, 1])[0, 1] > 0.95


def test_smeared_pt_stays_above_the_floor_and_finite():
    true = make_muons(20_000, seed=5)
    smeared = smear_muons(true, 3.0, seed=6)  # absurdly wide: a third of the draws are below -1
    pt_true, pt_meas = pt_eta_phi(true)[0], pt_eta_phi(smeared)[0]
    assert np.all(np.isfinite(smeared))
    assert np.all(pt_meas >= PT_FLOOR * pt_true * (1 - 1e-12))
    assert np.mean(np.isclose(pt_meas, PT_FLOOR * pt_true, rtol=1e-9)) > 0.3


# -- smearing: what is kept ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
def test_eta_phi_and_mass_are_kept(shared):
    true = make_muons(20_000, seed=7)
    smeared = smear_muons(true, 0.2, seed=8, shared=shared)
    _, eta0, phi0 = pt_eta_phi(true)
    pt1, eta1, phi1 = pt_eta_phi(smeared)
    np.testing.assert_allclose(eta1, eta0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(phi1, phi0, rtol=1e-9, atol=1e-12)
    # m^2 = E^2 - p^2 cancels from E^2 ~ 4e5 GeV^2 to 0.011 GeV^2: recomputing the mass from the 4-vector costs ~1e-8
    # relative in float64, so the mass is compared at 1e-6 (a massless or wrong energy would be off by O(1))
    np.testing.assert_allclose(mass(smeared), MUON_MASS, rtol=1e-6)
    # the energy is recomputed from the kept mass (not scaled with pT); 1e-9: muons at the pT floor have E ~ m
    p = pt1 * np.cosh(eta1)
    np.testing.assert_allclose(smeared[..., 3], np.sqrt(p * p + MUON_MASS**2), rtol=1e-9)


def test_zero_width_is_an_exact_copy(muons):
    out = smear_muons(muons, 0.0, seed=9)
    assert np.array_equal(out, muons)
    assert out is not muons and not np.shares_memory(out, muons)
    out[0, 0, 0] += 1.0
    assert out[0, 0, 0] != muons[0, 0, 0]  # the caller's array is untouched


def test_input_is_not_modified():
    true = make_muons(1000, seed=10)
    before = true.copy()
    smear_muons(true, 0.1, seed=11)
    smear_muons(true, 0.1, seed=11, shared=True)
    assert np.array_equal(true, before)


def test_relative_smearing_of_massless_muons_commutes_with_boosts():
    """What the symmetry chapter says of the paper's detector model: smearing pT by a factor 1 + eps (eta, phi kept)
    scales a massless 4-vector by 1 + eps, and a boost is linear, so smearing then boosting equals boosting then
    smearing with the same draws. (With shared=True, the shift depends on muon 0's pT, which a boost changes.)"""
    rng = np.random.default_rng(3)
    pt_true = rng.uniform(10, 100, size=(500, 2))
    eta_true, phi_true = rng.uniform(-2.5, 2.5, size=(500, 2)), rng.uniform(-np.pi, np.pi, size=(500, 2))
    massless = p4_from_pt_eta_phi(pt_true, eta_true, phi_true, pt_true * np.cosh(eta_true))
    beta = rng.normal(size=(500, 1, 3))
    beta *= rng.uniform(0.1, 0.8, size=(500, 1, 1)) / np.linalg.norm(beta, axis=-1, keepdims=True)
    one = boost(smear_muons(massless, 0.1, seed=5), beta)
    other = smear_muons(boost(massless, beta), 0.1, seed=5)
    np.testing.assert_allclose(one, other, rtol=1e-9, atol=1e-9)
    shared = smear_muons(boost(massless, beta), 0.1, seed=5, shared=True)
    assert np.abs(boost(smear_muons(massless, 0.1, seed=5, shared=True), beta) - shared).max() > 1e-3


def test_same_seed_same_smearing_other_seed_other_smearing():
    true = make_muons(1000, seed=12)
    a, b = smear_muons(true, 0.1, seed=13), smear_muons(true, 0.1, seed=13)
    assert np.array_equal(a, b)
    c = smear_muons(true, 0.1, seed=14)
    assert not np.allclose(a, c)
    assert np.array_equal(smear_muons(true, 0.1, seed=13, shared=True), smear_muons(true, 0.1, seed=13, shared=True))


# -- smearing: bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf"), True])
def test_bad_sigma_is_refused(sigma):
    with pytest.raises(ValueError, match="sigma"):
        smear_muons(make_muons(10), sigma, seed=0)


@pytest.mark.parametrize("shape", [(0, 2, 4), (10, 2, 3), (10, 4), (10, 2, 4, 1)])
def test_bad_shape_is_refused(shape):
    with pytest.raises(ValueError, match=r"shape \(" + ", ".join(map(str, shape))):
        smear_muons(np.ones(shape), 0.1, seed=0)


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="seed"):
        smear_muons(make_muons(10), 0.1, seed=-1)


# -- reweighting ---------------------------------------------------------------------------------------------------


def make_classes(n_sig, n_bkg, seed):
    """Signal pT ~ Gamma(10, 5 GeV) (peaked at 45 GeV), background ~ Gamma(2, 25 GeV) (peaked at 25 GeV, falling
    far beyond): values, labels (1 signal, 0 background)."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.gamma(10, 5, size=n_sig), rng.gamma(2, 25, size=n_bkg)])
    labels = np.concatenate([np.ones(n_sig, int), np.zeros(n_bkg, int)])
    return values, labels


def histograms(rw, values, labels, weights):
    """Signal and weighted background histograms in the fitted bins, under- and overflow folded into the first and
    last bins (as the fit does), with the weighted background's sum of squared weights."""
    clipped = np.clip(values, rw.edges[0], rw.edges[-1])
    sig, bkg = labels == 1, labels == 0
    s, _ = np.histogram(clipped[sig], bins=rw.edges)
    b, _ = np.histogram(clipped[bkg], bins=rw.edges, weights=weights[bkg])
    b2, _ = np.histogram(clipped[bkg], bins=rw.edges, weights=weights[bkg] ** 2)
    return s, b, b2


def chi2_per_bin(s, b, var, used):
    return float(((s - b)[used] ** 2 / var[used]).sum() / used.sum())


def test_weighted_background_equals_the_signal_histogram_on_the_fitted_sample():
    values, labels = make_classes(50_000, 80_000, seed=20)  # unequal: the scale matters
    rw = fit_reweighting(values, labels, bins=100)
    assert len(rw.edges) == 101 and len(rw.ratio) == 100
    w = rw.weights(values, labels)
    s, b, _ = histograms(rw, values, labels, w)
    np.testing.assert_allclose(b, s, rtol=1e-9, atol=1e-9)
    assert np.all(w[labels == 1] == 1.0)
    np.testing.assert_allclose(w[labels == 0].sum(), (labels == 1).sum(), rtol=1e-12)
    assert np.all(w >= 0)


def test_weighted_background_matches_the_signal_within_statistics_on_a_new_sample():
    # fit on a big sample so that the weights' own noise (1/4 of the test sample's) hardly adds to the chi2
    values, labels = make_classes(200_000, 320_000, seed=21)
    rw = fit_reweighting(values, labels, bins=100)
    test_values, test_labels = make_classes(50_000, 80_000, seed=22)
    w = rw.weights(test_values, test_labels)
    s, b, b2 = histograms(rw, test_values, test_labels, w)
    n_b, _ = np.histogram(np.clip(test_values[test_labels == 0], rw.edges[0], rw.edges[-1]), bins=rw.edges)
    # Gaussian errors need counts: the bins with >= 20 events of each class, which hold nearly all the signal
    used = (s >= 20) & (n_b >= 20)
    assert used.sum() >= 40 and s[used].sum() > 0.99 * s.sum()
    chi2 = chi2_per_bin(s, b, s + b2, used)  # Poisson errors of the signal, sum of squared weights of the background
    assert chi2 < 2.0
    np.testing.assert_allclose(w[test_labels == 0].sum(), (test_labels == 1).sum(), rtol=0.02)
    # without the weights the two histograms are far apart: the chi2 above can fail
    s, b, b2 = histograms(rw, test_values, test_labels, np.ones_like(w))
    assert chi2_per_bin(s, b, s + b2, used) > 100


def test_bins_span_the_smallest_value_to_the_quantile_and_fold_the_tails():
    values, labels = make_classes(5_000, 5_000, seed=23)
    rw = fit_reweighting(values, labels, bins=20, quantile=0.99)
    assert rw.edges[0] == values.min()
    np.testing.assert_allclose(rw.edges[-1], np.quantile(values, 0.99))
    np.testing.assert_array_equal(rw.bin(np.array([-1e9, values.min(), rw.edges[-1] + 1, 1e9])), [0, 0, 19, 19])
    # a background event far beyond the range gets the weight of the last bin
    w = rw.weights(np.array([1e6, rw.edges[-1] - 1e-9]), np.array([0, 0]))
    assert w[0] == w[1] == rw.scale * rw.ratio[-1]


def test_reweighting_needs_both_classes():
    values = np.linspace(0, 100, 1000)
    for labels in (np.ones(1000, int), np.zeros(1000, int)):
        with pytest.raises(SampleError, match="both classes"):
            fit_reweighting(values, labels)
    with pytest.raises(SampleError):
        fit_reweighting(values, np.ones(999, int))
    rw = Reweighting(np.linspace(0, 1, 3), np.ones(2), 1.0)
    with pytest.raises(SampleError):
        rw.weights(np.zeros(3), np.zeros(4))
