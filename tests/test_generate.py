"""The Pythia -> visible final state -> FastJet chain of the getting-started page."""

import awkward as ak
import numpy as np
import pytest

from hepnb.generate import (
    GeneratorError,
    derive_seed,
    generate_events,
    make_pythia,
    process_settings,
    visible_final_state,
)
from hepnb.generate.pythia import MAX_PYTHIA_SEED
from hepnb.physics.jets import cluster, constituent_residuals

N = 40


@pytest.fixture(scope="module")
def sample():
    pythia = make_pythia(process_settings("hz_bb"), seed=derive_seed(0, "tests"))
    events = generate_events(pythia, N, batch_size=16, progress=False)
    particles = visible_final_state(events, pythia.particleData)
    jets, constituents = cluster(particles, R=0.8, ptmin=20.0)
    return events, particles, jets, constituents


def _first_px(seed):
    pythia = make_pythia(process_settings("zj_qcd"), seed=seed)
    return ak.to_numpy(ak.flatten(generate_events(pythia, 5, progress=False).prt.p.px))


def test_same_seed_same_events_different_seed_different_events():
    a, b, c = _first_px(11), _first_px(11), _first_px(12)
    assert np.array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_derive_seed_is_stable_in_range_and_distinct():
    seeds = {derive_seed(s, name, shard) for s in range(3) for name in ("hz_bb", "zj_qcd") for shard in range(50)}
    assert len(seeds) == 300
    assert all(1 <= s <= MAX_PYTHIA_SEED for s in seeds)
    assert derive_seed(0, "hz_bb", 3) == derive_seed(0, "hz_bb", 3)


def test_bad_setting_and_clock_seed_are_refused():
    with pytest.raises(GeneratorError, match="Foo:bar"):
        make_pythia(["Foo:bar = 1"], seed=1)
    with pytest.raises(GeneratorError, match="clock"):
        make_pythia(process_settings("hz_bb"), seed=0)
    with pytest.raises(KeyError, match="unknown process"):
        process_settings("ttbar_typo")


def test_event_count_validation():
    pythia = make_pythia(process_settings("hz_bb"), seed=3)
    with pytest.raises(GeneratorError, match="n_events"):
        generate_events(pythia, 0)


def test_events_are_complete(sample):
    events, particles, _, _ = sample
    assert len(events) == N and not ak.any(ak.is_none(events, axis=0))
    assert ak.all(ak.num(particles) > 10)


def test_visible_final_state_has_no_neutrinos_and_right_charges(sample):
    _, particles, _, _ = sample
    pid = ak.to_numpy(ak.flatten(particles.pid))
    charge = ak.to_numpy(ak.flatten(particles.charge))
    assert not np.isin(np.abs(pid), [12, 14, 16]).any()
    expected = {211: 1, -211: -1, 321: 1, 22: 0, 11: -1, -11: 1, 13: -1, 2212: 1, 2112: 0, 130: 0}
    for species, q in expected.items():
        assert np.all(charge[pid == species] == q), species


def test_visible_momentum_balances_the_invisible_z(sample):
    """Transverse momentum is conserved: visible pT sum = minus the neutrinos' pT sum, event by event."""
    events, particles, _, _ = sample
    prt = events.prt
    nu = prt[(prt.status > 0) & ((abs(prt.id) == 12) | (abs(prt.id) == 14) | (abs(prt.id) == 16))]
    for comp in ("px", "py"):
        visible = ak.to_numpy(ak.sum(particles[comp], axis=1))
        invisible = ak.to_numpy(ak.sum(nu.p[comp], axis=1))
        np.testing.assert_allclose(visible, -invisible, atol=1e-6)


def test_jets_are_pt_ordered_and_sum_their_constituents(sample):
    _, particles, jets, constituents = sample
    for i in range(N):
        pt = ak.to_numpy(jets[i].pt)
        assert np.all(np.diff(pt) <= 0) and np.all(pt >= 20.0)
        used = ak.to_numpy(ak.flatten(constituents[i]))
        assert len(used) == len(np.unique(used))  # a particle is in at most one jet
        for j in range(len(jets[i])):
            members = particles[i][constituents[i][j]]
            for comp in ("px", "py", "pz", "E"):
                assert abs(ak.sum(members[comp]) - jets[i][j][comp]) < 1e-8 * max(1.0, float(jets[i][j].E))


def test_constituent_residuals_are_rounding_and_see_a_missing_particle(sample):
    _, particles, jets, constituents = sample
    for i in range(5):
        residual = constituent_residuals(particles[i], jets[i], constituents[i])
        assert residual.shape == (len(jets[i]),)
        assert np.all(residual < 1e-8 * np.maximum(1.0, ak.to_numpy(jets[i].E)))
    # drop the first constituent of the hardest jet: its residual becomes that particle's largest |component|
    dropped = constituents[0][0][0]
    short = ak.concatenate([constituents[0][:1, 1:], constituents[0][1:]])
    lost = max(abs(float(particles[0][dropped][k])) for k in ("px", "py", "pz", "E"))
    assert constituent_residuals(particles[0], jets[0], short)[0] == pytest.approx(lost, rel=1e-9)
    assert constituent_residuals(particles[0], jets[0][:0], constituents[0][:0]).shape == (0,)


def test_hardest_jet_carries_the_higgs(sample):
    """With pTHat > 400 GeV the Higgs is boosted: most hardest jets sit near m_H (loose: 40 events)."""
    _, _, jets, _ = sample
    mass = ak.to_numpy(ak.fill_none(ak.firsts(jets.mass), 0.0))
    assert np.median(mass) > 90 and np.mean((mass > 100) & (mass < 145)) > 0.35


def test_cluster_validates_arguments(sample):
    _, particles, _, _ = sample
    with pytest.raises(ValueError, match="radius"):
        cluster(particles, R=0.0)
    with pytest.raises(ValueError, match="algorithm"):
        cluster(particles, algorithm="siscone")


def test_kt_and_antikt_agree_on_total_clustered_momentum(sample):
    """With ptmin=0 every particle ends in some jet, whatever the algorithm: the jets' sum is the event's sum."""
    _, particles, _, _ = sample
    event = particles[:3]
    for algorithm in ("antikt", "kt", "cambridge"):
        jets, _ = cluster(event, R=0.8, ptmin=0.0, algorithm=algorithm)
        np.testing.assert_allclose(ak.to_numpy(ak.sum(jets.px, axis=1)), ak.to_numpy(ak.sum(event.px, axis=1)),
                                   atol=1e-8)
