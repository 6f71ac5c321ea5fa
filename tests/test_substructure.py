"""N2 from FastJet-contrib agrees with an explicit triplet sum."""

import itertools

import numpy as np
import pytest

from hepnb.physics.substructure import n2


def _n2_by_hand(p4, beta=1.0):
    pt = np.hypot(p4[:, 0], p4[:, 1])
    rap = 0.5 * np.log((p4[:, 3] + p4[:, 2]) / (p4[:, 3] - p4[:, 2]))
    phi = np.arctan2(p4[:, 1], p4[:, 0])
    z = pt / pt.sum()

    def dr(a, b):
        return np.hypot(rap[a] - rap[b], (phi[a] - phi[b] + np.pi) % (2 * np.pi) - np.pi) ** beta

    n = len(pt)
    e2 = sum(z[a] * z[b] * dr(a, b) for a, b in itertools.combinations(range(n), 2))
    e3 = sum(z[a] * z[b] * z[c] * np.prod(sorted([dr(a, b), dr(a, c), dr(b, c)])[:2])
             for a, b, c in itertools.combinations(range(n), 3))
    return e3 / e2**2


def _jets(rng, sizes, C=15):
    p4 = np.zeros((len(sizes), C, 4))
    mask = np.zeros((len(sizes), C), bool)
    for i, n in enumerate(sizes):
        pt = rng.exponential(40, n) + 1
        eta, phi = rng.normal(0, 0.3, n), rng.normal(3.0, 0.3, n)  # straddles phi = pi
        m = rng.uniform(0, 1.0, n)
        pz = pt * np.sinh(eta)
        p4[i, :n] = np.stack([pt * np.cos(phi), pt * np.sin(phi), pz, np.sqrt(pt**2 + pz**2 + m**2)], -1)
        mask[i, :n] = True
    return p4, mask


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_n2_matches_the_triplet_sum(beta):
    p4, mask = _jets(np.random.default_rng(3), [3, 6, 11, 15])
    values = n2(p4, mask, beta=beta)
    expect = [_n2_by_hand(p4[i][mask[i]], beta) for i in range(len(p4))]
    assert np.allclose(values, expect, rtol=1e-10)


def test_n2_needs_three_constituents_and_valid_shapes():
    p4, mask = _jets(np.random.default_rng(4), [1, 2, 5])
    values = n2(p4, mask)
    assert np.isnan(values[:2]).all() and np.isfinite(values[2])
    with pytest.raises(ValueError, match="n2 needs"):
        n2(p4[0], mask[0])


def test_two_prong_jets_have_smaller_n2_than_diffuse_ones():
    rng = np.random.default_rng(5)
    C = 40
    p4 = np.zeros((2, C, 4))
    # jet 0: two tight prongs; jet 1: particles spread uniformly over the cone
    prong = np.concatenate([rng.normal(-0.3, 0.01, 20), rng.normal(0.3, 0.01, 20)])
    for i, eta in enumerate([prong, rng.uniform(-0.6, 0.6, C)]):
        phi = rng.uniform(-0.01, 0.01, C) if i == 0 else rng.uniform(-0.6, 0.6, C)
        pt = np.full(C, 10.0)
        p4[i] = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], -1)
    values = n2(p4, np.ones((2, C), bool))
    assert values[0] < 0.5 * values[1]
