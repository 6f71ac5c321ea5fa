"""The paper-002 jet transformer: size, padding, permutation invariance, shapes, double backward."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from hepnb.models import JetTransformer, n_parameters
from hepnb.models.transformer import PAPER_PARAMETERS


def batch(n_jets=6, n_constituents=32, n_features=15, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_jets, n_constituents, n_features, generator=gen)
    n_real = torch.randint(1, n_constituents + 1, (n_jets,), generator=gen)
    n_real[0] = n_constituents  # one full jet
    mask = torch.arange(n_constituents) < n_real[:, None]
    x[~mask] = 0.0
    return x, mask


def small(**kwargs):
    torch.manual_seed(0)
    return JetTransformer(d_model=32, n_heads=4, dim_feedforward=32, head=(16, 16, 16), **kwargs).eval()


def test_parameter_count_is_the_papers():
    n = n_parameters(JetTransformer())
    assert n == 1_257_473
    assert abs(n - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.02
    assert abs(n_parameters(JetTransformer(n_features=7)) - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.02


def test_output_shape():
    x, mask = batch()
    assert JetTransformer().eval()(x, mask).shape == (6,)
    assert small(n_classes=3)(x, mask).shape == (6, 3)
    jet = torch.randn(6, 2)
    torch.testing.assert_close(small()(x, jet, mask), small()(x, mask))  # the train loop's signature


def test_padding_does_not_change_the_output():
    model = JetTransformer().eval()
    x, mask = batch()
    junk = x.clone()
    junk[~mask] = 1e3 * torch.randn(int((~mask).sum()), x.shape[-1])
    with torch.no_grad():
        a, b = model(x, mask), model(junk, mask)
    assert torch.equal(a, b)
    # with gradients on (no inference fast path) as well
    torch.testing.assert_close(model(x, mask), model(junk, mask), rtol=0, atol=1e-6)


def test_an_empty_jet_gives_a_finite_output():
    x, mask = batch()
    mask[1] = False
    assert torch.isfinite(small()(x, mask)).all()


def test_permutation_invariance_over_constituents():
    model = JetTransformer().eval()
    x, mask = batch()
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x[:, perm], mask[:, perm]), model(x, mask), rtol=1e-5, atol=1e-5)


def test_double_backward_gives_a_finite_hessian_vector_product():
    torch.manual_seed(0)
    model = JetTransformer().train()
    x, mask = batch()
    y = torch.randint(0, 2, (len(x),)).float()
    params = [p for p in model.parameters() if p.requires_grad]
    with sdpa_kernel(SDPBackend.MATH):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x, mask), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        v = [torch.randn_like(p) for p in params]
        hv = torch.autograd.grad(grads, params, grad_outputs=v)
    assert all(torch.isfinite(h).all() for h in hv)
    assert any(h.abs().max() > 0 for h in hv)


def test_nonsense_sizes_are_rejected():
    with pytest.raises(ValueError):
        JetTransformer(d_model=30, n_heads=4)
    with pytest.raises(ValueError):
        JetTransformer().eval()(torch.zeros(2, 5, 7), torch.ones(2, 5, dtype=torch.bool))
