"""Adversarial training strategies of Rothen et al.: attacks stay where they must, SAM and SSAM-D equal their
definitions."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from hepnb.data.features import FEATURE_NAMES
from hepnb.models.dense import DenseTagger
from hepnb.training.adversarial import (CONTINUOUS_FEATURES, METHODS, SAM, SSAMD, FeatureAttack, SparseMask,
                                       attack_region, batch_attack_region, fgsm, leading_constituents,
                                       make_strategy, pgd, sam_perturbation, supervised_objective)
from hepnb.training.loop import Strategy, fit, predict
from hepnb.training.tasks import BinaryTask


def batch(n=16, c=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, 15, generator=g)
    n_real = torch.randint(1, c + 1, (n,), generator=g)
    mask = torch.arange(c) < n_real[:, None]
    x[~mask] = 0.0
    x[..., FEATURE_NAMES.index("is_ch")] = (x[..., 0] > 0).float() * mask  # a flag feature: 0 or 1
    jet = torch.randn(n, 2, generator=g)
    y = (torch.rand(n, generator=g) < 0.5).float()
    return (x, jet, mask), y


def model(c=6, seed=0):
    torch.manual_seed(seed)
    m = DenseTagger(n_constituents=c, hidden=(16, 8))
    # a few train-mode passes so that BatchNorm has non-trivial running statistics
    with torch.no_grad():
        for s in range(3):
            m(*batch(seed=10 + s)[0])
    return m


LOSS = nn.BCEWithLogitsLoss()
TASK = BinaryTask()


def as_batch(inputs, y):
    """The dict batch a training step receives."""
    return dict(zip(("x", "jet", "mask"), inputs), y=y)


def test_pgd_stays_in_its_ball_and_touches_only_declared_entries():
    net = model()
    inputs, y = batch()
    eps = 0.05
    out = pgd(net, supervised_objective(net, LOSS, y), inputs, eps=eps, step=0.03, n_steps=7)
    dx, djet = out[0] - inputs[0], out[1] - inputs[1]
    tol = 4 * torch.finfo(torch.float32).eps * max(inputs[0].abs().max(), inputs[1].abs().max())  # rounding of x + d
    assert dx.abs().max() <= eps + tol and djet.abs().max() <= eps + tol
    region, _ = attack_region(inputs)
    assert torch.all(dx[~region] == 0)  # flags, charge, padding untouched
    assert dx[region].abs().max() > 0.5 * eps  # and the allowed ones did move
    assert torch.equal(out[2], inputs[2])
    # the flag feature and the padding slots in particular
    assert torch.equal(out[0][..., FEATURE_NAMES.index("is_ch")], inputs[0][..., FEATURE_NAMES.index("is_ch")])
    assert torch.all(out[0][~inputs[2]] == 0)
    # a narrower declaration is honoured
    only_deta = attack_region(inputs, features=("deta",), jet_features=False)
    out = pgd(net, supervised_objective(net, LOSS, y), inputs, eps=eps, step=0.03, n_steps=3, region=only_deta)
    moved = (out[0] != inputs[0]).any(dim=(0, 1))
    assert moved.nonzero().flatten().tolist() == [FEATURE_NAMES.index("deta")]
    assert torch.equal(out[1], inputs[1])


def test_pgd_increases_the_loss_and_leaves_model_untouched():
    net = model()
    net.train()
    before = copy.deepcopy(net.state_dict())
    inputs, y = batch()
    out = pgd(net, supervised_objective(net, LOSS, y), inputs, eps=0.1, step=0.04, n_steps=5)
    net.eval()
    assert LOSS(net(*out), y) > LOSS(net(*inputs), y)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN statistics untouched
    assert all(p.grad is None for p in net.parameters())


def test_fgsm_is_eq7_and_equals_pgd_with_one_step_of_eps():
    net = model()
    inputs, y = batch()
    eps = 0.02
    out = fgsm(net, supervised_objective(net, LOSS, y), inputs, eps)
    # eq. 7 by hand
    x = inputs[0].clone().requires_grad_(True)
    jet = inputs[1].clone().requires_grad_(True)
    net.eval()
    gx, gjet = torch.autograd.grad(LOSS(net(x, jet, inputs[2]), y), (x, jet))
    region = attack_region(inputs)
    assert torch.allclose(out[0], inputs[0] + eps * gx.sign() * region[0])
    assert torch.allclose(out[1], inputs[1] + eps * gjet.sign())
    same = pgd(net, supervised_objective(net, LOSS, y), inputs, eps=eps, step=eps, n_steps=1)
    assert torch.equal(out[0], same[0]) and torch.equal(out[1], same[1])


def test_attack_arguments_are_checked():
    net = model()
    inputs, y = batch()
    with pytest.raises(ValueError, match="eps"):
        pgd(net, supervised_objective(net, LOSS, y), inputs, eps=0.0, step=0.1, n_steps=2)
    with pytest.raises(ValueError, match="n_steps"):
        pgd(net, supervised_objective(net, LOSS, y), inputs, eps=0.1, step=0.1, n_steps=0)
    with pytest.raises(ValueError, match="unknown features"):
        attack_region(inputs, features=("log_ptt",))
    assert set(CONTINUOUS_FEATURES) <= set(FEATURE_NAMES)


def _sgd_update_by_hand(net, inputs, y, perturb, lr):
    """Explicit two-pass SAM-type update with SGD: gradient at w, e, gradient at w + e, applied at w."""
    ref = copy.deepcopy(net)
    ref.train()
    params = list(ref.parameters())
    g1 = torch.autograd.grad(LOSS(ref(*inputs), y), params)
    e = perturb(g1)
    stats = {k: v.clone() for k, v in ref.state_dict().items() if "running" in k}
    with torch.no_grad():
        for p, d in zip(params, e):
            p.add_(d)
    g2 = torch.autograd.grad(LOSS(ref(*inputs), y), params)
    with torch.no_grad():
        for p, d, g in zip(params, e, g2):
            p.sub_(d)
            p.sub_(lr * g)
    ref.load_state_dict({**ref.state_dict(), **{k: v for k, v in _after_one_pass(net, inputs).items()}})
    return ref, e, stats


def _after_one_pass(net, inputs):
    """BatchNorm running statistics after exactly one train-mode forward pass."""
    m = copy.deepcopy(net).train()
    with torch.no_grad():
        m(*inputs)
    return {k: v for k, v in m.state_dict().items() if "running" in k or "num_batches" in k}


def test_one_sam_step_equals_the_explicit_two_pass_computation():
    net = model()
    inputs, y = batch()
    rho, lr = 0.3, 0.1
    ref, e, _ = _sgd_update_by_hand(net, inputs, y, lambda g: sam_perturbation(g, rho), lr)
    total = torch.sqrt(sum((d ** 2).sum() for d in e))
    assert torch.isclose(total, torch.tensor(rho))  # e = rho g / ||g||
    net.train()
    SAM(rho=rho).step(net, torch.optim.SGD(net.parameters(), lr=lr), TASK, as_batch(inputs, y))
    got, want = net.state_dict(), ref.state_dict()
    for k in want:
        if k.endswith("num_batches_tracked"):
            continue
        assert torch.allclose(got[k], want[k], atol=1e-6), k  # weights and running statistics counted once


def test_sam_sign_version_is_eq8():
    g = [torch.tensor([0.5, -2.0, 0.0]), torch.tensor([[3.0]])]
    e = sam_perturbation(g, 0.7, kind="sign")
    assert torch.equal(e[0], torch.tensor([0.7, -0.7, 0.0])) and torch.equal(e[1], torch.tensor([[0.7]]))
    assert all(torch.equal(d, torch.zeros_like(d)) for d in sam_perturbation([torch.zeros(3)], 0.5))


def test_sparse_mask_keeps_its_size_and_follows_b3_b4():
    shapes = [torch.Size([10, 4]), torch.Size([7])]
    mask = SparseMask(shapes, sparsity=0.5, seed=3)
    assert int(mask.flat.sum()) == mask.n_masked == round(0.5 * 47)
    g = torch.Generator().manual_seed(0)
    for step in range(6):
        grads = [torch.randn(s, generator=g) for s in shapes]
        flat_g = torch.cat([t.reshape(-1) for t in grads]).abs()
        old = mask.flat.clone()
        n = mask.update(grads, drop_rate=0.5)
        assert int(mask.flat.sum()) == mask.n_masked  # sparsity constant
        dropped = old & ~mask.flat
        grown = ~old & mask.flat
        assert int(dropped.sum()) == int(grown.sum()) == n == round(0.5 * mask.n_masked)
        # the dropped were the flattest (smallest |g|) of the old mask
        kept = old & mask.flat
        assert flat_g[dropped].max() <= flat_g[kept].min()
    with pytest.raises(ValueError, match="sparsity"):
        SparseMask(shapes, sparsity=1.0)


def test_ssamd_perturbs_only_masked_weights_and_equals_its_definition():
    net = model()
    inputs, y = batch()
    rho, lr = 0.2, 0.05
    strategy = SSAMD(rho=rho, sparsity=0.7, update_every=1, drop_rate=0.5, seed=1)
    # the mask is created on the first step; build the same one to compute the reference
    shapes = [p.shape for p in net.parameters()]
    twin = SparseMask(shapes, 0.7, seed=1)
    masks = twin.masks()

    def perturb(g):
        return sam_perturbation([gi * m for gi, m in zip(g, masks)], rho)

    ref, e, _ = _sgd_update_by_hand(net, inputs, y, perturb, lr)
    assert all(torch.all(d[~m] == 0) for d, m in zip(e, masks))  # only masked weights are perturbed
    assert sum(int((d != 0).sum()) for d in e) <= twin.n_masked
    net.train()
    strategy.start_epoch(0)
    strategy.step(net, torch.optim.SGD(net.parameters(), lr=lr), TASK, as_batch(inputs, y))
    assert torch.equal(strategy.mask.flat, twin.flat)
    for k, v in ref.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.allclose(net.state_dict()[k], v, atol=1e-6), k
    # an epoch that refreshes the mask: same size, some weights swapped
    before = strategy.mask.flat.clone()
    strategy.start_epoch(1)
    strategy.step(net, torch.optim.SGD(net.parameters(), lr=lr), TASK, as_batch(inputs, y))
    assert strategy.updates == 1 and int(strategy.mask.flat.sum()) == twin.n_masked
    assert not torch.equal(before, strategy.mask.flat)


def test_make_strategy_uses_table_viii_and_checks_overrides():
    assert isinstance(make_strategy("default"), Strategy)
    f = make_strategy("fgsm")
    assert isinstance(f, FeatureAttack) and f.n_steps == 1 and f.step_size == f.eps == 0.007
    p = make_strategy("pgd", step_size=0.01)
    assert (p.eps, p.n_steps, p.step_size) == (0.007, 5, 0.01)
    assert make_strategy("sam").rho == 0.7 and make_strategy("ssamd").sparsity == 0.5
    assert set(METHODS) == {"default", "fgsm", "pgd", "sam", "ssamd"}
    with pytest.raises(ValueError, match="unknown method"):
        make_strategy("adam")
    with pytest.raises(ValueError, match="no hyperparameters"):
        make_strategy("sam", eps=0.1)


@pytest.mark.parametrize("method", ["fgsm", "pgd", "sam", "ssamd"])
def test_every_method_trains_a_separable_problem(method):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(512, generator=g) < 0.5).float()
    x = torch.randn(512, 6, 15, generator=g) + 1.5 * y[:, None, None]
    jet = torch.randn(512, 2, generator=g)
    mask = torch.ones(512, 6, dtype=torch.bool)
    batches = [{"x": x[i:i + 64], "jet": jet[i:i + 64], "mask": mask[i:i + 64], "y": y[i:i + 64]}
               for i in range(0, 512, 64)]
    net = DenseTagger(n_constituents=6, hidden=(16, 8))
    # a 16-8 net is small: Table VIII's rho (tuned for 88k weights) is scaled down for SAM here
    overrides = {"ssamd": {"update_every": 2}, "sam": {"rho": 0.05}}.get(method, {})
    history = fit(net, batches[:6], batches[6:], epochs=10, lr=3e-3, progress=False,
                  strategy=make_strategy(method, **overrides))
    scores, labels = predict(net, batches[6:])
    assert np.mean((scores > 0.5) == labels) > 0.85
    assert len(history.epoch_seconds) == 10 and all(t > 0 for t in history.epoch_seconds)
    assert all(p.grad is None for p in net.parameters())


def test_the_regions_of_the_sharpness_measures():
    """Feature-space paths move what the attacks move; the reduced Hessian spans the 5 leading constituents."""
    inputs, y = batch(c=7)
    assert torch.equal(batch_attack_region((inputs, y)), attack_region(inputs)[0])
    lead = leading_constituents(inputs[0])
    assert lead.shape == (1, 7, 15) and int(lead.sum()) == 75
    assert lead[0, :5].all() and not lead[0, 5:].any()
    with pytest.raises(ValueError, match="n must be"):
        leading_constituents(inputs[0], n=0)
