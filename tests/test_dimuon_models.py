"""hepnb.models.dimuon: the PFN, invariant and hybrid networks of Nabat et al. (App. B) and the variants of App. A/C.

Sizes against the paper's layer widths (1,152 hidden neurons each, parameters counted here from the widths),
``Linear -> BatchNorm1d -> ReLU`` everywhere but the output layers, the invariant network's output unchanged by
Lorentz boosts and rotations of both muons (and the PFN's changed: the test can fail), muon-swap symmetry, the
hybrid's weight in [0, 1], every pooling, and refused input. Models are freshly initialised and in eval mode
(BatchNorm's default running statistics); nothing is trained.
"""

import numpy as np
import pytest
import torch
from torch import nn

from hepnb.models import n_parameters
from hepnb.models.dimuon import (
    GEV_SCALE,
    PFN,
    POOLINGS,
    HybridNet,
    InvariantNet,
    invariants,
    leading_pt,
    mlp,
)
from hepnb.physics.kinematics import boost, p4_from_pt_eta_phi

MUON_MASS = 0.10566  # GeV


def linear(a, b):
    return a * b + b


def batchnorm(b):
    return 2 * b  # affine weight and bias (running statistics are buffers)


def hidden_stack(sizes):
    """Parameters of Linear + BatchNorm1d for each step of ``sizes``."""
    return sum(linear(a, b) + batchnorm(b) for a, b in zip(sizes[:-1], sizes[1:]))


# the paper's widths (App. B), written out independently of the model code
PAPER_PARAMETERS = {
    "PFN": hidden_stack([4, 128, 128, 16]) + hidden_stack([16, 512, 256, 128]) + linear(128, 1),
    "InvariantNet": hidden_stack([3, 512, 256, 256, 128]) + linear(128, 1),
    "HybridNet": (hidden_stack([4, 64, 16]) + hidden_stack([3, 64, 16]) + hidden_stack([1, 64, 64]) + linear(64, 2)
                  + hidden_stack([16, 512, 256, 128]) + linear(128, 1)),
}
MODELS = {"PFN": PFN, "InvariantNet": InvariantNet, "HybridNet": HybridNet}


def make_muons(n, seed=0, dtype=torch.float64):
    """``n`` events of two physical muons (B, 2, 4): mass 0.10566 GeV, pT 10-100 GeV, |eta| < 2.5."""
    rng = np.random.default_rng(seed)
    pt = rng.uniform(10, 100, size=(n, 2))
    eta = rng.uniform(-2.5, 2.5, size=(n, 2))
    phi = rng.uniform(-np.pi, np.pi, size=(n, 2))
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + MUON_MASS**2)
    return torch.tensor(p4_from_pt_eta_phi(pt, eta, phi, energy), dtype=dtype)


def random_boosts(n, rng, beta_max=0.9):
    """(B, 1, 3) velocities in random directions, |beta| < beta_max: one boost for both muons of an event."""
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return (d * rng.uniform(0, beta_max, size=(n, 1)))[:, None, :]


def random_rotations(n, rng):
    """(B, 3, 3) uniformly random proper rotations (QR of Gaussian matrices, signs fixed, det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def rotate(p4, rotations):
    p = p4.numpy()
    space = np.einsum("bij,bmj->bmi", rotations, p[..., :3])
    return torch.tensor(np.concatenate([space, p[..., 3:]], axis=-1))


def fresh(cls, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls(**kwargs).eval()


@torch.no_grad()
def outputs(model, p4):
    return model(p4).double()


# -- sizes and structure -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_1152_hidden_neurons_and_the_papers_parameter_count(name):
    model = MODELS[name]()
    assert sum(model.hidden) == 1152
    assert n_parameters(model) == PAPER_PARAMETERS[name]


def leaf_layers(model):
    return [m for m in model.modules() if not list(m.children())]


@pytest.mark.parametrize("name", list(MODELS))
def test_every_hidden_linear_is_followed_by_batchnorm_and_relu(name):
    model = MODELS[name]()
    leaves = leaf_layers(model)
    bare = []
    for i, layer in enumerate(leaves):
        if not isinstance(layer, nn.Linear):
            continue
        nxt = leaves[i + 1:i + 3]
        if len(nxt) == 2 and isinstance(nxt[0], nn.BatchNorm1d) and isinstance(nxt[1], nn.ReLU):
            assert nxt[0].num_features == layer.out_features
        else:
            bare.append(layer)
    # only the output layers are bare: the classifier's logit (and the hybrid's two weight outputs)
    expected = [model.classifier[-1]] if hasattr(model, "classifier") else [model.net[-1]]
    if name == "HybridNet":
        expected = [model.weight_net[-1], model.classifier[-1]]
    assert {id(m) for m in bare} == {id(m) for m in expected}
    assert all(m.out_features in (1, 2) for m in bare)
    # every BatchNorm and ReLU belongs to a Linear (none stray)
    n_linear = sum(isinstance(m, nn.Linear) for m in leaves)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in leaves) == n_linear - len(bare)
    assert sum(isinstance(m, nn.ReLU) for m in leaves) == n_linear - len(bare)


def test_enlarged_hybrid_has_a_general_map_of_the_pfns_size():
    big = HybridNet(general_hidden=(128, 128))
    assert n_parameters(big.general) == n_parameters(PFN().phi) == hidden_stack([4, 128, 128, 16])
    assert n_parameters(HybridNet().general) == hidden_stack([4, 64, 16])


def test_mlp_refuses_degenerate_sizes():
    for sizes in ([4], [4, 0], []):
        with pytest.raises(ValueError, match="MLP"):
            mlp(sizes)


# -- symmetries ----------------------------------------------------------------------------------------------------


def test_invariant_net_is_unchanged_by_boosts_and_rotations():
    rng = np.random.default_rng(1)
    p4 = make_muons(512, seed=1)
    model = fresh(InvariantNet, seed=1)
    before = outputs(model, p4)
    boosted = boost(p4, torch.tensor(random_boosts(512, rng)))
    rotated = rotate(p4, random_rotations(512, rng))
    both = boost(rotate(p4, random_rotations(512, rng)), torch.tensor(random_boosts(512, rng)))
    for moved in (boosted, rotated, both):
        assert (moved - p4).abs().max() > 10  # the muons really moved (GeV)
        torch.testing.assert_close(outputs(model, moved), before, rtol=0, atol=1e-4)
    # the invariants themselves, in float64, agree to rounding
    torch.testing.assert_close(invariants(boosted), invariants(p4), rtol=0, atol=1e-8)


def test_float32_muons_lose_the_squared_masses_to_rounding():
    """Why the invariant test feeds float64: from float32 components m^2 = E^2 - |p|^2 of a muon (0.011 GeV^2) is
    mostly rounding noise, which a boost changes. (Documents the models' dtype rule; not a model property.)"""
    p4 = make_muons(512, seed=2)
    boosted = boost(p4, torch.tensor(random_boosts(512, np.random.default_rng(2))))
    inv32, boosted32 = invariants(p4.float()), invariants(boosted.float())
    true_m2 = np.log1p(MUON_MASS**2)
    assert (inv32[:, :2] - boosted32[:, :2]).abs().max() > true_m2  # noise bigger than the value itself
    assert (inv32[:, 2] - boosted32[:, 2]).abs().max() < 1e-3  # the pair's product survives
    # float64 and float32 inputs give the same outputs where no cancellation happens (the PFN)
    model = fresh(PFN, seed=2)
    torch.testing.assert_close(outputs(model, p4), outputs(model, p4.float()), rtol=0, atol=1e-5)


def test_pfn_is_not_boost_invariant():
    """The general network sees the 4-vectors: a transverse boost of beta 0.5 changes its output (this is what the
    invariance test above would catch in a network that is not invariant)."""
    rng = np.random.default_rng(3)
    p4 = make_muons(512, seed=3)
    phi = rng.uniform(-np.pi, np.pi, size=512)
    beta = torch.tensor(0.5 * np.stack([np.cos(phi), np.sin(phi), np.zeros(512)], axis=-1)[:, None, :])
    for cls in (PFN, HybridNet):
        model = fresh(cls, seed=3)
        before, after = outputs(model, p4), outputs(model, boost(p4, beta))
        assert (after - before).abs().max() > 1e-3, cls.__name__  # 10x the invariance tolerance
        with pytest.raises(AssertionError):
            torch.testing.assert_close(after, before, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", list(MODELS))
def test_swapping_the_two_muons_changes_nothing(name):
    p4 = make_muons(256, seed=4)
    model = fresh(MODELS[name], seed=4)
    swapped = p4.flip(1)
    assert not torch.equal(swapped, p4)
    torch.testing.assert_close(outputs(model, swapped), outputs(model, p4), rtol=0, atol=1e-6)


def test_pfn_swap_symmetry_holds_for_any_vectors():
    # not only for two muons of one mass: the PFN sums a per-particle map
    p4 = torch.randn(128, 2, 4, dtype=torch.float64) * 50
    model = fresh(PFN, seed=5)
    torch.testing.assert_close(outputs(model, p4.flip(1)), outputs(model, p4), rtol=0, atol=1e-6)


def test_leading_pt_is_the_larger_pt_in_either_order():
    p4 = make_muons(100, seed=6)
    pts = torch.hypot(p4[..., 0], p4[..., 1])
    torch.testing.assert_close(leading_pt(p4), pts.max(dim=1).values)
    torch.testing.assert_close(leading_pt(p4.flip(1)), leading_pt(p4))


# -- the hybrid's weight and poolings ------------------------------------------------------------------------------


def test_general_weight_is_a_softmax_share_in_0_1():
    model = fresh(HybridNet, seed=7)
    lead = torch.tensor([0.0, 1.0, 10.0, 45.0, 100.0, 300.0, 1e4])
    with torch.no_grad():
        w = model.general_weight(lead)
        both = torch.softmax(model.weight_net((lead / GEV_SCALE).reshape(-1, 1)), dim=-1)
    assert w.shape == (7,)
    assert torch.all((w >= 0) & (w <= 1))
    torch.testing.assert_close(both.sum(dim=1), torch.ones(7))
    torch.testing.assert_close(w, both[:, 0])
    assert w.std() > 0  # a function of pT, not a constant


def test_the_hybrid_weighs_by_the_leading_muons_pt():
    p4 = make_muons(64, seed=8)
    model = fresh(HybridNet, seed=8)
    seen = []
    weight = model.general_weight
    model.general_weight = lambda lead: (seen.append(lead), weight(lead))[1]
    with torch.no_grad():
        model(p4.flip(1))
    torch.testing.assert_close(seen[0], leading_pt(p4).float())


def test_the_hybrid_mixes_its_subnets_with_the_learned_weight():
    # replacing the weight network by one that returns a known w: w = 1 gives the general subnet's latent alone,
    # w = 0 the invariant one's
    p4 = make_muons(64, seed=8)
    model = fresh(HybridNet, seed=8)
    with torch.no_grad():
        g, s = model.general(p4), model.invariant(invariants(p4, torch.float32))
        for share, latent in ((1.0, g), (0.0, s)):
            logit = torch.log(torch.tensor([share, 1 - share]).clamp_min(1e-30))
            model.weight_net = nn.Linear(1, 2)
            model.weight_net.weight.zero_()
            model.weight_net.bias.copy_(logit)
            torch.testing.assert_close(model(p4), model.classifier(latent).squeeze(-1))


@pytest.mark.parametrize("pooling", list(POOLINGS))
def test_every_pooling_gives_one_logit_per_event(pooling):
    p4 = make_muons(32, seed=9, dtype=torch.float32)
    model = HybridNet(pooling=pooling)
    assert sum(model.hidden) == 1152
    for training in (False, True):
        model.train(training)
        out = model(p4)
        assert out.shape == (32,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    unused = {"concat_pt": "weight_net."}.get(pooling)  # [g, s, pT] does not use the learned weight
    for name, param in model.named_parameters():
        if unused is None or not name.startswith(unused):
            assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_concatenating_poolings_widen_the_classifier_input():
    widths = {p: HybridNet(pooling=p).classifier[0].in_features for p in POOLINGS}
    assert widths == {"sum": 16, "concat_weighted": 32, "concat_weight": 33, "concat_pt": 33}


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="pooling 'max'"):
        HybridNet(pooling="max")


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape", [(8, 3, 4), (8, 2, 3), (8, 4), (2, 8, 2, 4)])
def test_wrong_input_shape_is_refused(name, shape):
    model = MODELS[name]().eval()
    with pytest.raises(ValueError, match=r"\(B, 2, 4\)"):
        model(torch.zeros(shape))
