"""The soft Lorentz-symmetry loss of Glowacki's chapter (``book/simplicity/simplicity.ipynb``): the boost law, features
recomputed from boosted 4-vectors (checked against an independent computation), padding untouched, the SEAL loss
against an explicit two-pass computation, lambda = 0 is BCE, the augmentation control, the distillation loss on known
inputs, the student's parameter count, and boost composition."""

import numpy as np
import pytest
import torch
from torch import nn

from hepnb.data.features import KINEMATIC_FEATURES, BoostInputs, JetBoost, boosted_features, kinematic_features
from hepnb.physics.kinematics import boost, mass, minkowski_dot, random_velocities
from hepnb.training.tasks import AugmentedTask, BinaryTask, DistillationTask, InvariancePenaltyTask


def jets(n=64, c=12, seed=0):
    """``n`` jets of up to ``c`` massless-ish constituents near (eta, phi) = (0.5, 1.0), random padding."""
    rng = np.random.default_rng(seed)
    count = rng.integers(2, c + 1, n)
    mask = np.arange(c) < count[:, None]
    pt = rng.exponential(80.0, (n, c)) + 1.0
    eta = 0.5 + rng.normal(0, 0.3, (n, c))
    phi = 1.0 + rng.normal(0, 0.3, (n, c))
    m = rng.uniform(0.0, 0.5, (n, c))
    p = pt * np.cosh(eta)
    p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), np.sqrt(p * p + m * m)], -1)
    return np.where(mask[..., None], p4, 0.0), mask


def independent_features(p4, mask):
    """The seven features written out per jet with plain numpy, from the definitions in the paper (Sec. 3.1)."""
    out = np.zeros(p4.shape[:2] + (7,))
    for i in range(len(p4)):
        real = p4[i][mask[i]]
        jet = real.sum(0)
        jpt, jeta, jphi = np.hypot(*jet[:2]), np.arcsinh(jet[2] / np.hypot(*jet[:2])), np.arctan2(jet[1], jet[0])
        pt = np.hypot(real[:, 0], real[:, 1])
        eta, phi = np.arcsinh(real[:, 2] / pt), np.arctan2(real[:, 1], real[:, 0])
        deta, dphi = eta - jeta, (phi - jphi + np.pi) % (2 * np.pi) - np.pi
        cols = [np.log(pt), np.log(pt / jpt), np.log(real[:, 3]), np.log(real[:, 3] / jet[3]), deta, dphi,
                np.hypot(deta, dphi)]
        out[i, : len(real)] = np.stack(cols, -1)
    return out


def test_kinematic_features_are_the_papers_seven_and_the_first_columns_of_the_full_set():
    from hepnb.data.features import FEATURE_NAMES, constituent_features

    assert set(KINEMATIC_FEATURES) == {"log_pt", "log_pt_rel", "log_e", "log_e_rel", "deta", "dphi", "dr"}
    p4, mask = jets()
    zeros = np.zeros(mask.shape)
    full = constituent_features(p4, zeros, zeros, zeros, zeros, mask)
    assert full.shape[-1] == len(FEATURE_NAMES)
    np.testing.assert_array_equal(kinematic_features(p4, mask), full[..., :7])
    np.testing.assert_allclose(kinematic_features(p4, mask), independent_features(p4, mask), atol=2e-6)


def test_random_velocities_follow_the_seal_law():
    beta = random_velocities(200_000, 0.95, 1)
    b2 = (beta**2).sum(1)
    assert b2.max() < 0.95 and b2.min() >= 0
    # |beta|^2 uniform on [0, 0.95): mean 0.475, and deciles evenly spaced
    assert abs(b2.mean() - 0.475) < 0.003
    np.testing.assert_allclose(np.quantile(b2, np.linspace(0.1, 0.9, 9)), 0.095 * np.arange(1, 10), atol=0.005)
    # directions uniform on the sphere: each component's mean ~0 and cos(theta) uniform (mean of z^2 = 1/3)
    unit = beta / np.linalg.norm(beta, axis=1, keepdims=True)
    assert np.all(np.abs(unit.mean(0)) < 0.01) and np.all(np.abs((unit**2).mean(0) - 1 / 3) < 0.01)
    np.testing.assert_array_equal(random_velocities(5, 0.95, 7), random_velocities(5, 0.95, 7))
    with pytest.raises(ValueError, match="beta2_max"):
        random_velocities(3, 1.0)
    assert random_velocities(0).shape == (0, 3)


def test_boosted_features_equal_features_computed_independently_from_the_boosted_vectors():
    p4, mask = jets(seed=2)
    beta = random_velocities(len(p4), 0.95, 3)
    moved = boost(p4, beta[:, None, :])
    x = boosted_features(p4, mask, beta)
    np.testing.assert_allclose(x, independent_features(moved, mask), atol=5e-6)
    # padding untouched: zero 4-vectors stay zero and their features are exactly zero
    assert np.all(moved[~mask] == 0) and np.all(x[~mask] == 0)
    # the invariants of each jet are kept, the frame-dependent features are not
    jet0, jet1 = np.where(mask[..., None], p4, 0).sum(1), np.where(mask[..., None], moved, 0).sum(1)
    np.testing.assert_allclose(mass(jet1), mass(jet0), rtol=1e-8)
    np.testing.assert_allclose(minkowski_dot(moved[:, 0], moved[:, 1]), minkowski_dot(p4[:, 0], p4[:, 1]),
                               rtol=1e-8, atol=1e-8)
    assert np.abs(x[..., 2] - kinematic_features(p4, mask)[..., 2])[mask].mean() > 0.1  # log E moved
    # torch gives the same numbers on the same velocities
    xt = boosted_features(torch.as_tensor(p4), torch.as_tensor(mask), beta)
    np.testing.assert_allclose(xt.numpy(), x, atol=1e-6)


def test_composed_boosts_and_the_identity():
    p4, mask = jets(seed=4)
    beta = random_velocities(len(p4), 0.9, 5)[:, None, :]
    np.testing.assert_allclose(boost(boost(p4, beta), -beta), p4, atol=1e-9)  # a boost undone by its inverse
    np.testing.assert_allclose(boosted_features(p4, mask, np.zeros((len(p4), 3))), kinematic_features(p4, mask),
                               atol=1e-6)  # beta = 0: the identity
    # two boosts along one axis compose to one with the relativistic sum of the velocities
    n = np.array([0.0, 0.6, 0.8])
    b1, b2 = 0.5, 0.7
    np.testing.assert_allclose(boost(boost(p4, b1 * n), b2 * n), boost(p4, (b1 + b2) / (1 + b1 * b2) * n),
                               rtol=1e-10, atol=1e-9)


def test_jet_boost_transform_is_seeded_and_replaces_only_the_features():
    p4, mask = jets(seed=6)
    batch = {"x": torch.as_tensor(kinematic_features(p4, mask)), "mask": torch.as_tensor(mask),
             "p4": torch.as_tensor(p4), "y": torch.zeros(len(p4))}
    a, b = JetBoost(seed=3)(batch), JetBoost(seed=3)(batch)
    assert torch.equal(a["x"], b["x"]) and a["p4"] is batch["p4"] and a["y"] is batch["y"]
    g = JetBoost(seed=3)
    first, second = g(batch), g(batch)
    assert not torch.equal(first["x"], second["x"])  # a fresh boost per call
    expected = boosted_features(p4, mask, JetBoost(seed=3).velocities(len(p4)))
    np.testing.assert_allclose(first["x"].numpy(), expected, atol=1e-6)
    fixed = BoostInputs(batch["p4"], JetBoost(seed=3).velocities(len(p4)))
    gx, gmask = fixed((batch["x"], batch["mask"]))
    assert torch.equal(gx, first["x"]) and gmask is batch["mask"]


class Tiny(nn.Module):
    """A small set model f(x, mask) -> logit for the loss tests."""

    def __init__(self):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(7, 8), nn.Tanh())
        self.out = nn.Linear(8, 1)

    def forward(self, x, mask):
        return self.out((self.phi(x) * mask[..., None]).sum(1)).squeeze(-1)


def _batch(seed=0):
    p4, mask = jets(seed=seed)
    return {"x": torch.as_tensor(kinematic_features(p4, mask)), "mask": torch.as_tensor(mask),
            "p4": torch.as_tensor(p4), "y": torch.as_tensor((np.arange(len(p4)) % 2).astype(np.float32))}


def test_seal_loss_equals_an_explicit_two_pass_computation_and_lambda_zero_is_bce():
    torch.manual_seed(0)
    model, batch = Tiny(), _batch(1)
    base = BinaryTask(input_keys=("x", "mask"))
    task = InvariancePenaltyTask(base, JetBoost(seed=9), weight=0.1)
    loss = task.loss(model, batch)
    # the same boosts, written out: BCE on x, plus 0.1 * mean((sigmoid f(x) - sigmoid f(boosted x))^2)
    gx = boosted_features(batch["p4"], batch["mask"], JetBoost(seed=9).velocities(len(batch["y"])))
    f_x, f_gx = model(batch["x"], batch["mask"]), model(gx, batch["mask"])
    explicit = nn.functional.binary_cross_entropy_with_logits(f_x, batch["y"]) + 0.1 * (
        (torch.sigmoid(f_x) - torch.sigmoid(f_gx)) ** 2).mean()
    assert torch.allclose(loss, explicit, atol=1e-7)
    assert float((explicit - base.loss(model, batch)).detach()) > 0  # the penalty is really there
    # gradients flow through both views (as in the SEAL code: no detach)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = torch.autograd.grad(explicit, list(model.parameters()))
    assert all(torch.allclose(g, e, atol=1e-7) for g, e in zip(grads, expected))
    zero = InvariancePenaltyTask(base, JetBoost(seed=9), weight=0.0)
    assert torch.equal(zero.loss(model, batch), base.loss(model, batch))


def test_augmentation_control_averages_the_bce_of_both_views():
    torch.manual_seed(1)
    model, batch = Tiny(), _batch(2)
    base = BinaryTask(input_keys=("x", "mask"))
    task = AugmentedTask(base, JetBoost(seed=4))
    gx = boosted_features(batch["p4"], batch["mask"], JetBoost(seed=4).velocities(len(batch["y"])))
    expected = 0.5 * (base.loss(model, batch) + base.loss(model, {**batch, "x": gx}))
    assert torch.allclose(task.loss(model, batch), expected, atol=1e-7)
    p, y = task.predict(model, batch)  # predictions are on the untransformed jets
    assert torch.allclose(p, torch.sigmoid(model(batch["x"], batch["mask"]))) and torch.equal(y, batch["y"])


def test_distillation_loss_on_known_inputs():
    class Constant(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = nn.Parameter(torch.tensor(float(value)))

        def forward(self, x, mask):
            return self.value * torch.ones(len(x)) + x[:, 0, 0]

    batch = _batch(3)
    teacher, student = Constant(2.0), Constant(-1.0)
    task = DistillationTask(BinaryTask(input_keys=("x", "mask")), teacher)
    # student - teacher = -3 for every jet: MSE 9, whatever the shared x term
    assert torch.isclose(task.loss(student, batch), torch.tensor(9.0))
    assert torch.isclose(task.loss(teacher, batch), torch.tensor(0.0))
    task.loss(student, batch).backward()
    assert teacher.value.grad is None and torch.isclose(student.value.grad, torch.tensor(-6.0))


def test_teacher_and_student_sizes():
    from hepnb.models import n_parameters
    from hepnb.studies.simplicity import GLOWACKI, make_student, make_teacher

    assert n_parameters(make_student(256)) == GLOWACKI["student_parameters"] == 487_665
    assert n_parameters(make_teacher(256)) == 1_255_425  # the paper: 1,256,356 (see hepnb.models.transformer)
    x, mask = torch.randn(3, 32, 7), torch.ones(3, 32, dtype=torch.bool)
    assert make_student(64)(x, mask).shape == (3,) and make_teacher(64)(x, mask).shape == (3,)
