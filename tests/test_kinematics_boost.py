"""hepnb.physics.kinematics.boost and minkowski_dot: Lorentz boosts keep masses and Minkowski products (NumPy and
torch), beta = 0 is the identity, a particle at rest acquires the boost's velocity, collinear boosts add their
rapidities, |beta| >= 1 is refused, and minkowski_dot(p, p) is the squared mass."""

import numpy as np
import pytest
import torch

from hepnb.physics import kinematics
from hepnb.physics.kinematics import boost, mass, minkowski_dot


def random_p4(n, rng):
    """``n`` massive 4-vectors: momenta ~ N(0, 30 GeV) per component, masses 0.5-50 GeV (no cancellation in m^2 at
    the 1e-9 level)."""
    p = rng.normal(0, 30, size=(n, 3))
    m = rng.uniform(0.5, 50, size=n)
    return np.concatenate([p, np.sqrt((p * p).sum(-1) + m * m)[:, None]], axis=-1)


def random_beta(n, rng, beta_max=0.95):
    """``n`` velocities in random directions, |beta| uniform in [0, beta_max)."""
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return d * rng.uniform(0, beta_max, size=(n, 1))


def lorentz_scale(a, b):
    """The size of the terms that cancel in a . b (what rounding errors are relative to)."""
    return np.abs(a[..., 3] * b[..., 3]) + np.abs((a[..., :3] * b[..., :3]).sum(-1))


# -- invariants ----------------------------------------------------------------------------------------------------


def test_boost_keeps_masses_and_minkowski_products_numpy():
    rng = np.random.default_rng(1)
    a, b = random_p4(5000, rng), random_p4(5000, rng)
    beta = random_beta(5000, rng)
    a2, b2 = boost(a, beta), boost(b, beta)
    assert a2.dtype == np.float64 and a2.shape == a.shape
    np.testing.assert_allclose(mass(a2), mass(a), rtol=1e-9)
    np.testing.assert_allclose(mass(a + b), mass(a2 + b2), rtol=1e-9)
    err = np.abs(minkowski_dot(a2, b2) - minkowski_dot(a, b))
    assert np.all(err <= 1e-12 * lorentz_scale(a2, b2))
    # and the boost really changes the vectors (the test above is not about the identity)
    assert np.median(np.abs(a2[:, 3] - a[:, 3]) / a[:, 3]) > 0.05


def test_boost_keeps_masses_and_minkowski_products_torch():
    rng = np.random.default_rng(2)
    a, b = random_p4(2000, rng), random_p4(2000, rng)
    beta = random_beta(2000, rng)
    ta, tb, tbeta = (torch.tensor(x) for x in (a, b, beta))
    ta2, tb2 = boost(ta, tbeta), boost(tb, tbeta)
    assert torch.is_tensor(ta2) and ta2.dtype == torch.float64
    np.testing.assert_allclose(mass(ta2).numpy(), mass(a), rtol=1e-9)
    err = (minkowski_dot(ta2, tb2) - minkowski_dot(ta, tb)).abs().numpy()
    assert np.all(err <= 1e-12 * lorentz_scale(a, b) * 10)
    # the same numbers as the NumPy implementation
    np.testing.assert_allclose(ta2.numpy(), boost(a, beta), rtol=1e-13, atol=1e-11)


def test_boost_broadcasts_one_velocity_over_both_muons_of_an_event():
    rng = np.random.default_rng(3)
    pairs = random_p4(600, rng).reshape(300, 2, 4)
    beta = random_beta(300, rng)[:, None, :]  # (B, 1, 3): one boost per event
    boosted = boost(pairs, beta)
    assert boosted.shape == pairs.shape
    np.testing.assert_allclose(boosted[:, 1], boost(pairs[:, 1], beta[:, 0]), rtol=1e-15)
    np.testing.assert_allclose(mass(boosted.sum(axis=1)), mass(pairs.sum(axis=1)), rtol=1e-9)


def test_minkowski_dot_of_a_vector_with_itself_is_its_squared_mass():
    rng = np.random.default_rng(4)
    p = random_p4(1000, rng)
    expected = p[:, 3] ** 2 - (p[:, :3] ** 2).sum(-1)
    np.testing.assert_allclose(minkowski_dot(p, p), expected, rtol=1e-12)
    np.testing.assert_allclose(np.sqrt(minkowski_dot(p, p)), mass(p), rtol=1e-9)
    # metric (+, -, -, -) on simple vectors, and broadcasting of one vector against many
    assert minkowski_dot(np.array([1.0, 2, 3, 10]), np.array([4.0, 5, 6, 7])) == 70 - 32
    assert minkowski_dot(p, np.array([0.0, 0, 0, 1])).shape == (1000,)
    np.testing.assert_array_equal(minkowski_dot(p, np.array([0.0, 0, 0, 1])), p[:, 3])


# -- special boosts ------------------------------------------------------------------------------------------------


def test_zero_velocity_is_the_identity():
    rng = np.random.default_rng(5)
    p = random_p4(500, rng)
    np.testing.assert_array_equal(boost(p, np.zeros(3)), p)
    np.testing.assert_array_equal(boost(torch.tensor(p), torch.zeros(3, dtype=torch.float64)).numpy(), p)
    # and continuous there: a tiny velocity changes the vectors by about beta * E
    tiny = boost(p, np.array([1e-12, -2e-12, 3e-12]))
    np.testing.assert_allclose(tiny, p, rtol=0, atol=1e-9)


@pytest.mark.parametrize("beta", [[0.0, 0.0, 0.6], [0.3, -0.4, 0.5], [-0.99, 0.0, 0.0]])
def test_a_particle_at_rest_acquires_the_velocity_beta(beta):
    beta = np.array(beta)
    m = 3.7
    moving = boost(np.array([0.0, 0.0, 0.0, m]), beta)
    gamma = 1 / np.sqrt(1 - beta @ beta)
    np.testing.assert_allclose(moving[:3] / moving[3], beta, rtol=1e-12, atol=1e-15)  # velocity p / E
    np.testing.assert_allclose(moving[3], gamma * m, rtol=1e-12)
    np.testing.assert_allclose(mass(moving), m, rtol=1e-9)


def test_collinear_boosts_add_rapidities():
    rng = np.random.default_rng(6)
    p = random_p4(400, rng)
    for _ in range(5):
        n = rng.normal(size=3)
        n /= np.linalg.norm(n)
        y1, y2 = rng.uniform(-1.2, 1.2, size=2)
        twice = boost(boost(p, np.tanh(y1) * n), np.tanh(y2) * n)
        once = boost(p, np.tanh(y1 + y2) * n)
        np.testing.assert_allclose(twice, once, rtol=1e-10, atol=1e-10 * np.abs(p).max())
    # collinear boosts commute; non-collinear ones do not (their product is a boost and a Wigner rotation)
    b1, b2 = np.array([0.6, 0.0, 0.0]), np.array([0.0, 0.6, 0.0])
    np.testing.assert_allclose(boost(boost(p, 0.3 * b1), b1), boost(boost(p, b1), 0.3 * b1), rtol=1e-12)
    assert np.abs(boost(boost(p, b1), b2) - boost(boost(p, b2), b1)).max() > 1.0


def test_velocity_of_light_or_more_is_refused():
    p = np.array([[1.0, 2.0, 3.0, 10.0]])
    for beta in ([1.0, 0.0, 0.0], [0.8, 0.8, 0.0], [0.0, 0.0, -1.5]):
        with pytest.raises(ValueError, match=r"\|beta\| < 1"):
            boost(p, np.array(beta))
    with pytest.raises(ValueError, match=r"\|beta\| < 1"):
        boost(torch.tensor(p), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    # one bad velocity among good ones is enough
    with pytest.raises(ValueError):
        boost(np.repeat(p, 3, axis=0), np.array([[0.1, 0, 0], [0.2, 0, 0], [0, 0, 1.0]]))


def test_boost_is_exported():
    assert "boost" in kinematics.__all__ and "minkowski_dot" in kinematics.__all__
