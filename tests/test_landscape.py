"""hepnb.landscape against dense Hessians from torch.autograd.functional.hessian, in float64 on small models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from hepnb import landscape as L

DT = torch.float64


def bce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(out.reshape(-1), y)


def make_data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen, dtype=DT)
    y = torch.bernoulli(torch.sigmoid(2 * x[:, 0] - x[:, 1]), generator=gen)  # noisy labels: a genuine minimum
    return x, y


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, iters: int = 100) -> nn.Module:
    opt = torch.optim.LBFGS(model.parameters(), max_iter=iters, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = bce(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    for p in model.parameters():
        p.grad = None
    return model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one thread is as fast, and two threads thrash when the 2-core machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x, y = make_data()
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)).to(DT)
    return train(model, x, y), x, y


def dense_param_hessian(model: nn.Module, x, y, names: list[str] | None = None) -> torch.Tensor:
    """Reference Hessian of the loss w.r.t. the named parameters (all if None), via functional_call."""
    params = dict(model.named_parameters())
    names = list(params) if names is None else names
    theta = torch.cat([params[n].detach().reshape(-1) for n in names])
    sizes = [params[n].numel() for n in names]
    xs = (x,) if isinstance(x, torch.Tensor) else tuple(x)

    def f(t: torch.Tensor) -> torch.Tensor:
        d = {n: p.detach() for n, p in params.items()}
        d.update({n: q.reshape(params[n].shape) for n, q in zip(names, t.split(sizes))})
        return bce(functional_call(model, d, xs), y)

    with L.eval_mode(model), sdpa_kernel(SDPBackend.MATH):
        return torch.autograd.functional.hessian(f, theta)


def dense_input_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with L.eval_mode(model):
        h = torch.autograd.functional.hessian(lambda z: bce(model(z.reshape(x.shape)), y), x.reshape(-1))
    return h


class Quadratic(nn.Module):
    """loss = 0.5 w^T A w with A = Q diag(lam) Q^T (the batch is ignored)."""

    def __init__(self, lam: np.ndarray, seed: int = 0, rotate: bool = True) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        n = len(lam)
        q = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=DT))[0] if rotate else torch.eye(n, dtype=DT)
        self.register_buffer("a", q @ torch.diag(torch.as_tensor(lam, dtype=DT)) @ q.T)
        self.w = nn.Parameter(torch.randn(n, generator=gen, dtype=DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.w @ self.a @ self.w


def quad_space(lam, rotate: bool = True) -> tuple[Quadratic, L.ParameterSpace]:
    model = Quadratic(np.asarray(lam, dtype=float), rotate=rotate)
    return model, L.ParameterSpace(model, lambda out, y: out, (torch.zeros(1, dtype=DT), torch.zeros(1, dtype=DT)))


def abs_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a @ b).abs() / (a.norm() * b.norm()))


# ---------------------------------------------------------------------------------------------------------------


def test_hvp_equals_dense_hessian_times_v(mlp):
    model, x, y = mlp
    h = dense_param_hessian(model, x, y)
    space = L.ParameterSpace(model, bce, (x, y))
    assert space.dim == 6 * 8 + 8 + 8 + 1 == h.shape[0]
    v = torch.randn(space.dim, dtype=DT, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(space.hvp(v), h @ v, rtol=0, atol=1e-10 * float(h.abs().max()))
    vs = torch.randn(5, space.dim, dtype=DT, generator=torch.Generator().manual_seed(2))
    batched = space.hvp(vs)
    assert batched.shape == (5, space.dim)
    torch.testing.assert_close(batched, vs @ h, rtol=0, atol=1e-10 * float(h.abs().max()))
    torch.testing.assert_close(L.dense_hessian(space, chunk=16), h, rtol=0, atol=1e-12)
    assert isinstance(space.vectorize, bool)  # chosen by timing on the first stacked call
    for vectorize in (True, False):
        forced = L.ParameterSpace(model, bce, (x, y), vectorize=vectorize)
        torch.testing.assert_close(forced.hvp(vs), batched, rtol=0, atol=1e-14)


def test_loader_average_is_size_weighted(mlp):
    model, x, y = mlp
    loader = [(x[:20], y[:20]), (x[20:30], y[20:30]), [x[30:], y[30:]]]  # uneven sizes, a list-shaped batch
    full = L.ParameterSpace(model, bce, (x, y))
    split = L.ParameterSpace(model, bce, loader)
    one_shot = L.ParameterSpace(model, bce, iter(loader))  # a single-use iterator is stored
    v = torch.randn(full.dim, dtype=DT, generator=torch.Generator().manual_seed(3))
    assert split.loss() == pytest.approx(full.loss(), rel=1e-12)
    torch.testing.assert_close(split.gradient(), full.gradient(), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(split.hvp(v), full.hvp(v), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(one_shot.hvp(v), full.hvp(v), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(one_shot.hvp(v), full.hvp(v), rtol=1e-10, atol=1e-14)  # re-iterable


def test_top3_eigenpairs_power_iteration_and_lanczos(mlp):
    model, x, y = mlp
    h = dense_param_hessian(model, x, y)
    evals, evecs = np.linalg.eigh(h.numpy())
    top, top_vecs = evals[::-1][:3], torch.as_tensor(evecs[:, ::-1][:, :3].T.copy())
    assert top[0] > abs(evals[0])  # at a minimum: power iteration's largest |lambda| are the largest lambda
    space = L.ParameterSpace(model, bce, (x, y))
    for result in (L.lanczos(space, k=3, tol=1e-8), L.power_iteration(space, k=3, tol=1e-10, max_iter=5000)):
        assert result.converged
        np.testing.assert_allclose(result.eigenvalues, top, rtol=1e-4)
        assert result.eigenvectors.shape == (3, space.dim)
        torch.testing.assert_close(result.eigenvectors.norm(dim=1), torch.ones(3, dtype=DT))
        for i in range(3):
            assert abs_cos(result.eigenvectors[i], top_vecs[i]) > 0.999
        shaped = result.as_params(space, 0)
        assert list(shaped) == space.names and shaped["0.weight"].shape == (8, 6)


def test_lanczos_is_cheaper_than_power_iteration(mlp):
    model, x, y = mlp
    space = L.ParameterSpace(model, bce, (x, y))
    assert L.lanczos(space, k=3, tol=1e-6).n_hvp < L.power_iteration(space, k=3, tol=1e-8).n_hvp


def test_quadratic_with_known_spectrum():
    lam = np.array([10.0, 7.0, 4.0, 2.5, 1.0, 0.5, 0.25, 0.1, -0.3, -8.0, 0.0, 0.05])
    model, space = quad_space(lam)
    torch.testing.assert_close(L.dense_hessian(space), model.a, rtol=0, atol=1e-13)
    la = L.lanczos(space, k=3, tol=1e-10)
    np.testing.assert_allclose(la.eigenvalues, [10.0, 7.0, 4.0], rtol=1e-10)
    lm = L.lanczos(space, k=3, tol=1e-10, which="LM")
    np.testing.assert_allclose(lm.eigenvalues, [10.0, 7.0, -8.0], rtol=1e-10)
    for i in range(3):  # A v = lambda v
        torch.testing.assert_close(model.a @ la.eigenvectors[i], la.eigenvalues[i] * la.eigenvectors[i],
                                   rtol=0, atol=1e-8)
    pi = L.power_iteration(space, k=2, tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(pi.eigenvalues, [10.0, -8.0], rtol=1e-6)  # largest magnitudes
    full = L.lanczos(space, k=len(lam), max_iter=100)  # exhausting the space gives every eigenvalue
    np.testing.assert_allclose(np.sort(full.eigenvalues), np.sort(lam), atol=1e-10)
    assert full.n_hvp == len(lam)


def test_lanczos_survives_repeated_eigenvalues():
    lam = np.array([5.0, 5.0, 5.0, 1.0, 1.0, 0.5])  # Krylov breakdown after 3 steps: restarts from a new vector
    _, space = quad_space(lam)
    result = L.lanczos(space, k=3, tol=1e-10)
    np.testing.assert_allclose(result.eigenvalues, [5.0, 5.0, 5.0], rtol=1e-10)
    gram = result.eigenvectors @ result.eigenvectors.T
    torch.testing.assert_close(gram, torch.eye(3, dtype=DT), rtol=0, atol=1e-8)


def test_hutchinson_trace_within_three_standard_errors(mlp):
    model, x, y = mlp
    exact = float(torch.trace(dense_param_hessian(model, x, y)))
    space = L.ParameterSpace(model, bce, (x, y))
    for batch_probes in (1, 8):
        est = L.hutchinson_trace(space, rel_error=0.05, min_probes=10, batch_probes=batch_probes, seed=4)
        assert est.converged and est.n_probes >= 10 and len(est.samples) == est.n_probes
        assert est.stderr < 0.05 * abs(est.trace)
        assert abs(est.trace - exact) < 3 * est.stderr


def test_deflated_hutchinson_is_unbiased_and_needs_fewer_probes():
    """A spiky spectrum (one outlier 100x the bulk): deflating the outlier makes the estimator far cheaper."""
    rng = np.random.default_rng(5)
    lam = np.concatenate([[400.0], rng.uniform(0.5, 2.0, 59)])
    _, space = quad_space(lam)
    exact = lam.sum()
    plain = L.hutchinson_trace(space, rel_error=0.03, seed=1)
    deflated = L.hutchinson_trace(space, rel_error=0.03, seed=1, deflate=1)
    for est in (plain, deflated):
        assert est.converged and abs(est.trace - exact) < 3 * est.stderr + 1e-9
    assert deflated.deflated == pytest.approx(400.0, rel=1e-6)
    assert deflated.n_hvp < plain.n_hvp / 10, (deflated.n_hvp, plain.n_hvp)
    assert plain.n_hvp == plain.n_probes


def test_hutchinson_never_stops_before_min_probes():
    lam = np.array([3.0, 2.0, 1.0, 0.5])
    _, space = quad_space(lam, rotate=False)  # diagonal: every Rademacher sample equals the trace, stderr 0
    est = L.hutchinson_trace(space, rel_error=0.5, min_probes=7)
    assert est.n_probes == 7 and est.trace == pytest.approx(6.5) and est.stderr == 0.0
    capped = L.hutchinson_trace(quad_space([1.0, -1.0, 2.0, -2.0])[1], rel_error=1e-9, min_probes=3, max_probes=9)
    assert capped.n_probes == 9 and not capped.converged


def test_slq_density_weights_and_moments():
    lam = np.array([4.0, 3.0, 1.0, 0.5, -1.0, 2.0])
    _, space = quad_space(lam, rotate=False)  # diagonal: z^T A^p z / dim = tr(A^p) / dim exactly
    nodes, weights = L.slq_density(space, n_probes=4, n_iter=50)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12) and nodes.shape == weights.shape
    assert (weights * nodes).sum() == pytest.approx(lam.mean(), rel=1e-10)
    assert (weights * nodes**2).sum() == pytest.approx((lam**2).mean(), rel=1e-10)
    grid = np.linspace(-3, 6, 2001)
    density = L.density_on_grid(nodes, weights, grid, sigma=0.1)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)


def test_slq_first_moment_is_trace_over_dim(mlp):
    model, x, y = mlp
    h = dense_param_hessian(model, x, y)
    space = L.ParameterSpace(model, bce, (x, y))
    n_probes = 12
    nodes, weights = L.slq_density(space, n_probes=n_probes, n_iter=10, seed=1)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12) and len(nodes) == 10 * n_probes
    evals = np.linalg.eigvalsh(h.numpy())
    assert nodes.min() >= evals[0] - 1e-9 and nodes.max() <= evals[-1] + 1e-9  # Ritz values lie in the spectrum
    # sum(w * nodes) = mean over probes of z^T H z / dim; a Rademacher sample has variance 2 sum_{i != j} H_ij^2
    off = h - torch.diag(torch.diag(h))
    stderr = float(torch.sqrt(2 * (off**2).sum() / n_probes)) / space.dim
    assert abs((weights * nodes).sum() - float(torch.trace(h)) / space.dim) < 3 * stderr


def test_reduced_hessians_per_sample(mlp):
    model, x, y = mlp
    select = torch.tensor([[True, True, True, False, False, False]])
    per_sample = L.reduced_hessians_per_sample(model, bce, (x[:3], y[:3]), select=select)
    assert len(per_sample) == 3
    for i, reduced in enumerate(per_sample):
        h = dense_input_hessian(model, x[i:i + 1], y[i:i + 1]).reshape(6, 6)[:3, :3]
        torch.testing.assert_close(reduced.matrix, h, rtol=0, atol=1e-12)
        assert reduced.max_abs_eigenvalue == pytest.approx(float(torch.linalg.eigvalsh(h).abs().max()))


def test_input_space_hvp_equals_dense_input_hessian(mlp):
    model, x, y = mlp
    xs, ys = x[:16], y[:16]
    h = dense_input_hessian(model, xs, ys)
    space = L.InputSpace(model, bce, (xs, ys))
    assert space.dim == xs.numel()
    torch.testing.assert_close(L.dense_hessian(space), h, rtol=0, atol=1e-12)
    v = torch.randn(space.dim, dtype=DT)
    torch.testing.assert_close(space.hvp(v), h @ v, rtol=0, atol=1e-12)
    torch.testing.assert_close(space.unflatten(v), v.reshape(xs.shape))
    with L.eval_mode(model), torch.no_grad():
        assert space.loss() == pytest.approx(float(bce(model(xs), ys)), rel=1e-14)


def test_selection_mask_restricts_dims(mlp):
    model, x, y = mlp
    xs, ys = x[:16], y[:16]
    h = dense_input_hessian(model, xs, ys)
    select = torch.zeros(16, 1, dtype=torch.bool)
    select[:5] = True  # first 5 samples ...
    select = select & torch.tensor([True, False, True, False, False, False])  # ... features 0 and 2
    space = L.InputSpace(model, bce, (xs, ys), select=select)
    assert space.dim == 10
    idx = select.reshape(-1).nonzero().reshape(-1)
    torch.testing.assert_close(L.dense_hessian(space), h[idx][:, idx], rtol=0, atol=1e-12)
    v = torch.arange(1.0, 11.0, dtype=DT)
    shaped = space.unflatten(v)
    assert shaped.shape == xs.shape and torch.equal(shaped[select.expand_as(xs)], v)
    assert torch.count_nonzero(shaped[~select.expand_as(xs)]) == 0
    torch.testing.assert_close(space.flatten(shaped), v)


def test_tuple_inputs_and_input_index():
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 1).to(DT)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.lin(torch.tanh(a) * b)

    torch.manual_seed(1)
    model = TwoInputs()
    a, b = torch.randn(8, 6, dtype=DT), torch.randn(8, 6, dtype=DT)
    y = torch.ones(8, dtype=DT)
    space = L.InputSpace(model, bce, ((a, b), y), input_index=1)
    h = torch.autograd.functional.hessian(lambda z: bce(model(a, z.reshape(b.shape)), y), b.reshape(-1))
    torch.testing.assert_close(L.dense_hessian(space), h, rtol=0, atol=1e-12)
    params = L.ParameterSpace(model, bce, ((a, b), y))
    torch.testing.assert_close(L.dense_hessian(params), dense_param_hessian(model, (a, b), y), rtol=0, atol=1e-12)


def test_parameter_subset_is_a_block_of_the_full_hessian(mlp):
    model, x, y = mlp
    h = dense_param_hessian(model, x, y)
    last = L.ParameterSpace(model, bce, (x, y), params=["2."])
    assert last.names == ["2.weight", "2.bias"] and last.dim == 9
    torch.testing.assert_close(L.dense_hessian(last), h[-9:, -9:], rtol=0, atol=1e-13)
    weight_only = L.ParameterSpace(model, bce, (x, y), params=["0.weight"])
    torch.testing.assert_close(L.dense_hessian(weight_only), h[:48, :48], rtol=0, atol=1e-13)
    torch.testing.assert_close(L.dense_hessian(last), dense_param_hessian(model, x, y, last.names), rtol=0,
                               atol=1e-13)


def test_batchnorm_in_eval_mode_equals_folded_linear():
    torch.manual_seed(2)
    x, y = make_data(64, seed=5)
    bn_model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1)).to(DT)
    opt = torch.optim.SGD(bn_model.parameters(), lr=0.3)
    for i in range(20):  # train mode: running statistics and the affine parameters move away from (0, 1)
        opt.zero_grad()
        bce(bn_model(x[(i % 4) * 16:(i % 4 + 1) * 16]), y[(i % 4) * 16:(i % 4 + 1) * 16]).backward()
        opt.step()
    for p in bn_model.parameters():
        p.grad = None
    lin, bn = bn_model[0], bn_model[1]
    assert bn.running_var.sub(1).abs().max() > 0.05 and bn.running_mean.abs().max() > 0.05
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)).to(DT)
    with torch.no_grad():
        folded[0].weight.copy_(scale[:, None] * lin.weight)
        folded[0].bias.copy_(scale * (lin.bias - bn.running_mean) + bn.bias)
        folded[2].load_state_dict(bn_model[3].state_dict())
    bn_model.train()  # the space must switch to eval (running statistics) itself
    v_head = torch.randn(9, dtype=DT)
    head_bn = L.ParameterSpace(bn_model, bce, (x, y), params=["3."])
    head_folded = L.ParameterSpace(folded, bce, (x, y), params=["2."])
    assert head_bn.loss() == pytest.approx(head_folded.loss(), rel=1e-12)
    torch.testing.assert_close(head_bn.hvp(v_head), head_folded.hvp(v_head), rtol=1e-10, atol=1e-13)
    assert bn_model.training
    # the first weight enters only through scale * W: H_bn = S H_folded S with S = diag(scale) per row
    v = torch.randn(8, 6, dtype=DT)
    w_bn = L.ParameterSpace(bn_model, bce, (x, y), params=["0.weight"])
    w_folded = L.ParameterSpace(folded, bce, (x, y), params=["0.weight"])
    expected = scale[:, None] * w_folded.hvp((scale[:, None] * v).reshape(-1)).reshape(8, 6)
    torch.testing.assert_close(w_bn.hvp(v.reshape(-1)).reshape(8, 6), expected, rtol=1e-9, atol=1e-13)
    inputs_bn, inputs_folded = L.InputSpace(bn_model, bce, (x, y)), L.InputSpace(folded, bce, (x, y))
    vx = torch.randn(x.numel(), dtype=DT)
    torch.testing.assert_close(inputs_bn.hvp(vx), inputs_folded.hvp(vx), rtol=1e-10, atol=1e-14)


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 16)
        layer = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1))


def test_transformer_attention_double_backward_matches_dense():
    torch.manual_seed(3)
    model = TinyTransformer().to(DT)
    x = torch.randn(6, 5, 3, dtype=DT)
    pad = torch.zeros(6, 5, dtype=torch.bool)
    pad[:3, 3:] = True
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0], dtype=DT)
    subset = ["encoder.layers.0.self_attn.in_proj_bias"]  # second derivatives through softmax attention
    space = L.ParameterSpace(model, bce, ((x, pad), y), params=subset)
    assert space.dim == 48
    h_ref = dense_param_hessian(model, (x, pad), y, space.names)
    h = L.dense_hessian(space, chunk=48)
    assert torch.isfinite(h).all() and float(h.abs().max()) > 0
    torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-10 * float(h_ref.abs().max()))
    full = L.ParameterSpace(model, bce, ((x, pad), y))
    assert torch.isfinite(full.hvp(torch.randn(full.dim, dtype=DT))).all()
    inputs = L.InputSpace(model, bce, ((x, pad), y), select=~pad.unsqueeze(-1))
    assert inputs.dim == 3 * (6 * 5 - 6) and torch.isfinite(inputs.hvp(torch.randn(inputs.dim, dtype=DT))).all()
    assert model.training and all(p.grad is None for p in model.parameters())


def test_no_grad_left_and_mode_restored_after_every_call(mlp):
    _, x, y = mlp
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.2), nn.Tanh(), nn.Linear(8, 1)).to(DT)
    model.train()
    model[1].eval()  # a mixed state must come back as it was
    modes = [m.training for m in model.modules()]
    space = L.ParameterSpace(model, bce, (x, y))
    inputs = L.InputSpace(model, bce, (x[:8], y[:8]), select=torch.tensor([True] * 3 + [False] * 3))
    eig = L.lanczos(space, k=1)
    calls = [
        space.loss, space.gradient, lambda: space.hvp(torch.ones(space.dim, dtype=DT)),
        lambda: space.hvp(torch.ones(2, space.dim, dtype=DT)), lambda: L.power_iteration(space, max_iter=20),
        lambda: L.lanczos(space, k=2), lambda: L.hutchinson_trace(space, max_probes=12),
        lambda: L.slq_density(space, n_probes=2, n_iter=5), lambda: L.reduced_hessian(space),
        lambda: L.ascent_path(space, steps=3), lambda: L.ascent_path(inputs, steps=3),
        lambda: L.ascent_path_over(model, bce, [(x[:32], y[:32]), (x[32:], y[32:])], steps=2),
        lambda: L.ascent_path_over(model, bce, [(x[:32], y[:32])], kind="features", steps=2),
        lambda: L.loss_profile(space, eig.eigenvectors[0], np.array([-0.1, 0.1])),
        lambda: L.output_ratio(model, x, lambda t: t * 1.1, eig.as_params(space), np.array([0.0, 0.1]), space),
        inputs.loss, inputs.gradient, lambda: L.dense_hessian(inputs),
    ]
    for call in calls:
        call()
        assert all(p.grad is None for p in model.parameters())
        assert [m.training for m in model.modules()] == modes


def test_perturbed_restores_parameters_bit_exactly(mlp):
    model, x, y = mlp
    space = L.ParameterSpace(model, bce, (x, y))
    before = [p.detach().clone() for p in model.parameters()]
    v = torch.randn(space.dim, dtype=DT)
    loss0 = space.loss()
    with space.perturbed(v, 0.37):
        moved = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        torch.testing.assert_close(moved, torch.cat([b.reshape(-1) for b in before]) + 0.37 * v)
        assert space.loss() != loss0  # the cached graph follows the parameters
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    with pytest.raises(KeyError), space.perturbed(space.unflatten(v), 1e3):
        raise KeyError("restored on errors too")
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert space.loss() == loss0
    inputs = L.InputSpace(model, bce, (x, y))
    with inputs.perturbed(torch.ones_like(x), 0.5):
        torch.testing.assert_close(inputs.x, x + 0.5)
    assert torch.equal(inputs.x, x)


def test_cached_graph_follows_parameter_updates(mlp):
    _, x, y = mlp
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 1)).to(DT)
    space = L.ParameterSpace(model, bce, (x, y))
    v = torch.randn(space.dim, dtype=DT)
    space.hvp(v)  # builds the cache
    with torch.no_grad():
        model[0].weight.mul_(1.5)
    torch.testing.assert_close(space.hvp(v), dense_param_hessian(model, x, y) @ v, rtol=1e-10, atol=1e-13)


def test_ascent_path_starts_at_zero_and_climbs(mlp):
    model, x, y = mlp
    before = [p.detach().clone() for p in model.parameters()]
    weights = L.ascent_path(L.ParameterSpace(model, bce, (x, y)), steps=15, step_size=0.01)
    assert weights.shape == (16,) and weights[0] == 0.0
    assert np.all(np.diff(weights) > 0)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    inputs = L.InputSpace(model, bce, (x, y), select=torch.tensor([True, True, False, False, False, False]))
    features = L.ascent_path(inputs, steps=15, step_size=0.01)
    assert features[0] == 0.0 and np.all(np.diff(features) > 0)
    assert torch.equal(inputs.x, x)
    first = L.ascent_path(L.ParameterSpace(model, bce, (x, y)), steps=1, step_size=1e-4)[1]
    assert first == pytest.approx(1e-4 * float(L.ParameterSpace(model, bce, (x, y)).gradient().norm()), rel=1e-2)
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    mean, std = L.ascent_path_over(model, bce, batches, kind="weights", steps=5)
    single = [L.ascent_path(L.ParameterSpace(model, bce, b), steps=5) for b in batches]
    np.testing.assert_allclose(mean, np.mean(single, 0), rtol=1e-12)
    np.testing.assert_allclose(std, np.std(single, 0), rtol=1e-10, atol=1e-15)
    mean_f, _ = L.ascent_path_over(model, bce, batches, kind="features", steps=5, select=torch.ones(1, 6).bool())
    assert mean_f.shape == (6,) and mean_f[0] == 0 and np.all(np.diff(mean_f) > 0)
    # a per-batch select (a function of the batch) walks each batch in its own entries only
    per_batch = [(b[0] > 0) for b in batches]
    mean_c, _ = L.ascent_path_over(model, bce, batches, kind="features", steps=5, select=lambda b: b[0] > 0)
    single = [L.ascent_path(L.InputSpace(model, bce, b, select=m), steps=5) for b, m in zip(batches, per_batch)]
    np.testing.assert_allclose(mean_c, np.mean(single, 0), rtol=1e-12)
    assert not np.allclose(mean_c, mean_f)


def test_loss_profile_along_top_eigenvector_is_half_lambda_eps_squared(mlp):
    model, x, y = mlp
    space = L.ParameterSpace(model, bce, (x, y))
    top = L.lanczos(space, k=1, tol=1e-8)
    eps = np.array([-2e-3, -1e-3, 1e-3, 2e-3])
    profile = L.loss_profile(space, top.as_params(space, 0), eps)
    even = 0.5 * (profile + profile[::-1])  # drops the (tiny) first-order term of an inexact minimum
    np.testing.assert_allclose(even, 0.5 * top.eigenvalues[0] * eps**2, rtol=1e-2)
    scaled = L.loss_profile(space, 3 * top.eigenvectors[0], eps)  # the direction is normalised
    np.testing.assert_allclose(scaled, profile, rtol=1e-10)


def test_reduced_hessian_reports_max_and_max_abs():
    _, space = quad_space([1.0, 2.0, -5.0, 0.5])
    reduced = L.reduced_hessian(space)
    np.testing.assert_allclose(reduced.eigenvalues, [-5.0, 0.5, 1.0, 2.0], atol=1e-12)
    assert reduced.max_eigenvalue == pytest.approx(2.0) and reduced.max_abs_eigenvalue == pytest.approx(5.0)
    assert reduced.matrix.shape == (4, 4)
    with pytest.raises(ValueError, match="max_dim"):
        L.reduced_hessian(space, max_dim=3)


def test_output_ratio(mlp):
    model, x, y = mlp
    space = L.ParameterSpace(model, bce, (x, y))
    v = L.lanczos(space, k=1).eigenvectors[0]
    eps = np.array([-0.5, 0.0, 0.5])
    np.testing.assert_allclose(L.output_ratio(model, x, lambda t: t, v, eps, space), 1.0, rtol=1e-14)
    flip = L.output_ratio(model, x, lambda t: -t, 2 * v, eps, space)
    before = [p.detach().clone() for p in model.parameters()]
    with space.perturbed(v, 0.5), torch.no_grad():
        expected = float((torch.sigmoid(model(x)) / torch.sigmoid(model(-x))).mean())
    assert flip[2] == pytest.approx(expected, rel=1e-12)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_errors(mlp):
    model, x, y = mlp
    with pytest.raises(ValueError, match="available: 0.weight, 0.bias, 2.weight, 2.bias"):
        L.ParameterSpace(model, bce, (x, y), params=["head."])
    with pytest.raises(ValueError, match="no parameter matches"):
        L.ParameterSpace(model, bce, (x, y), params=["0.w"])  # prefixes end at a dot
    with pytest.raises(ValueError, match="batch"):
        L.ParameterSpace(model, bce, [(x, y, y)])
    space = L.ParameterSpace(model, bce, (x, y))
    with pytest.raises(ValueError, match="shape"):
        space.hvp(torch.ones(3, dtype=DT))
    with pytest.raises(ValueError, match="shape"):
        space.unflatten(torch.ones(space.dim + 1, dtype=DT))
    with pytest.raises(ValueError, match="lacks"):
        space.flatten({"0.weight": torch.zeros(8, 6)})
    with pytest.raises(ValueError, match="min_probes"):
        L.hutchinson_trace(space, min_probes=2)
    with pytest.raises(ValueError, match="k=100"):
        L.lanczos(space, k=100)
    with pytest.raises(ValueError, match="which"):
        L.lanczos(space, which="SA")
    with pytest.raises(ValueError, match="tol"):
        L.power_iteration(space, tol=0)
    with pytest.raises(ValueError, match="kind"):
        L.ascent_path_over(model, bce, [(x, y)], kind="inputs")
    with pytest.raises(ValueError, match="non-zero"):
        L.loss_profile(space, torch.zeros(space.dim, dtype=DT), np.array([0.1]))
    with pytest.raises(ValueError, match="scalar"):
        L.ParameterSpace(model, lambda o, t: (o.reshape(-1) - t) ** 2, (x, y)).loss()
    with pytest.raises(ValueError, match="broadcast"):
        L.InputSpace(model, bce, (x, y), select=torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="boolean"):
        L.InputSpace(model, bce, (x, y), select=torch.ones(6))
    with pytest.raises(ValueError, match="no entry"):
        L.InputSpace(model, bce, (x, y), select=torch.zeros(6, dtype=torch.bool))
    with pytest.raises(ValueError, match="input_index"):
        L.InputSpace(model, bce, (x, y), input_index=1)
    with pytest.raises(ValueError, match="same model"):
        L.output_ratio(nn.Linear(6, 1), x, lambda t: t, torch.ones(space.dim), np.array([0.0]), space)
