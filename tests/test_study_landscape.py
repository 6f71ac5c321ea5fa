"""The sharpness page's study: the independent exact Hessian against closed forms, the estimators against it, and
the page's trained taggers reloaded bit-identically from their checkpoints. (``test_datasets`` is importable: tests/
is on sys.path through the rootdir conftest.)"""

import numpy as np
import pytest
import torch
from test_datasets import make_sample
from torch import nn
from torch.nn import functional as F

from hepnb import landscape
from hepnb.models import DenseTagger
from hepnb.studies import landscape as study
from hepnb.training.checkpoints import checkpoint_path


def _design(n: int = 40, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = (torch.rand(n, generator=gen, dtype=torch.float64) > 0.5).double()
    return x, y


def _linear(d: int, seed: int = 1) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, 1).double()


def _augmented(x: torch.Tensor) -> torch.Tensor:
    """``[x, 1]``: the columns in ``named_parameters`` order (weight, then bias)."""
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def test_exact_hessian_of_least_squares_is_two_xtx_over_n():
    x, y = _design()
    model = _linear(x.shape[1])
    h = study.exact_hessian(model, lambda out, t: ((out.squeeze(-1) - t) ** 2).mean(), (x,), y)
    xa = _augmented(x)
    torch.testing.assert_close(h, 2 * xa.T @ xa / len(x), rtol=1e-12, atol=1e-12)


def test_exact_hessian_of_logistic_regression_is_xt_s_x_over_n():
    x, y = _design(seed=3)
    model = _linear(x.shape[1], seed=4)
    h = study.exact_hessian(model, lambda out, t: F.binary_cross_entropy_with_logits(out.squeeze(-1), t), (x,), y)
    xa = _augmented(x)
    with torch.no_grad():
        p = torch.sigmoid(model(x).squeeze(-1))
    torch.testing.assert_close(h, xa.T @ (xa * (p * (1 - p))[:, None]) / len(x), rtol=1e-12, atol=1e-12)


def _small_dense(seed: int = 0) -> tuple[DenseTagger, tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
    """A float64 two-constituent tagger with non-trivial BatchNorm running statistics, and a batch of 64 jets."""
    torch.manual_seed(seed)
    model = DenseTagger(n_constituents=2, hidden=(4,)).double()
    x, jet = torch.randn(64, 2, 15, dtype=torch.float64), torch.randn(64, 2, dtype=torch.float64)
    y = (x[:, 0, 0] + jet[:, 0] > 0).double()
    with torch.no_grad():  # move the running statistics away from (0, 1)
        model.train()
        model(2 * x + 1, jet)
        model.eval()
    return model, ((x, jet, torch.ones(64, 2, dtype=torch.bool)), y)


def test_exact_hessian_is_symmetric_in_eval_mode_and_leaves_the_model_alone():
    model, (inputs, y) = _small_dense()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = study.exact_hessian(model, study.LOSS, inputs, y)
    assert h.shape == (sum(p.numel() for p in model.parameters()),) * 2
    torch.testing.assert_close(h, h.T, rtol=0, atol=1e-12)
    assert model.training and all(m.training for m in model.modules())  # modes restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no running-stat update
    assert all(p.grad is None for p in model.parameters())
    # eval mode: BatchNorm's running statistics, so the loss is a sum over independent jets -- the Hessian of the
    # mean over the batch is the mean of the Hessians of its two halves
    halves = [study.exact_hessian(model, study.LOSS, tuple(t[s] for t in inputs), y[s])
              for s in (slice(0, 32), slice(32, 64))]
    torch.testing.assert_close(h, (halves[0] + halves[1]) / 2, rtol=1e-10, atol=1e-12)


def test_estimators_and_dense_hessian_agree_with_the_exact_hessian():
    model, batch = _small_dense(seed=2)
    space = landscape.ParameterSpace(model, study.LOSS, batch)
    exact = study.exact_hessian(model, study.LOSS, *batch)
    check = study.exact_check(space, exact, k=3, seed=0, rel_error=0.1, slq_probes=1, slq_iter=space.dim)
    assert check.dense_difference < 1e-10 * check.dense_scale
    np.testing.assert_allclose(check.eigenvalues, np.linalg.eigvalsh(exact.numpy())[::-1], rtol=1e-12,
                               atol=1e-12 * check.dense_scale)
    rows = {(r["method"], r["quantity"]): r for r in check.rows()}
    for i in range(3):
        lanczos = rows[("Lanczos", f"λ{i + 1}")]
        assert lanczos["relative error"] < 1e-8 and lanczos["|cos| to exact vector"] > 1 - 1e-6
    assert rows[("power iteration + deflation", "λ1")]["relative error"] < 1e-6
    for res in (check.trace, check.deflated):  # within 4 standard errors of the exact trace
        assert abs(res.trace - check.exact_trace) < 4 * res.stderr
    # the deflated part is computed exactly: the sum of the three largest-|lambda| eigenvalues
    by_magnitude = check.eigenvalues[np.argsort(-np.abs(check.eigenvalues))]
    assert check.deflated.deflated == pytest.approx(by_magnitude[:3].sum(), rel=1e-8)
    # SLQ run to the full dimension is exact quadrature: its top node is lambda_1
    assert rows[(f"SLQ ({check.slq_probes} probes)", "λ1 (largest node)")]["relative error"] < 1e-8
    errors = study.convergence(space, check.eigenvalues[0], [2, 8, 32], seed=0)
    assert errors["Lanczos"][-1] < 1e-10 and errors["Lanczos"][0] >= errors["Lanczos"][-1]


def test_running_trace_ends_at_the_estimate():
    model, batch = _small_dense(seed=5)
    space = landscape.ParameterSpace(model, study.LOSS, batch)
    res = landscape.hutchinson_trace(space, rel_error=0.05, seed=1, deflate=2)
    hvps, running, stderr = study.running_trace(res)
    assert hvps[-1] == res.n_hvp and len(hvps) == res.n_probes
    assert running[-1] == pytest.approx(res.trace) and stderr[-1] == pytest.approx(res.stderr)
    assert np.isnan(stderr[0])


@pytest.fixture(scope="module")
def data():
    """One file per class, as the page loads them: the splits list all QCD jets, then all H->bb jets."""
    qcd = make_sample({"qcd": 200}, V=1, C=40, seed=7)
    hbb = make_sample({"hbb": 200}, V=1, C=40, seed=8)
    hbb.p4[:] *= 1.8  # harder H->bb jets: a learnable, not perfect, difference
    hbb.jet_p4[:] *= 1.8
    return study.tagger_data([hbb, qcd], seed=1, batch_size=32)


def test_tagger_data_splits_by_event_and_keys_the_files(data):
    sizes = {row["split"]: row for row in data.sizes()}
    assert sizes["train"]["qcd"] == sizes["train"]["hbb"] > sizes["test"]["hbb"] > 0
    rows = [set(s.rows.tolist()) for s in data.sets.values()]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])
    assert data.key["sources"] == ["synthetic", "synthetic"] and data.key["rows"] == [200, 200]


def test_subsets_are_seeded_random_draws_of_both_classes(data):
    assert len(set(data.sets["test"].labels[:20].tolist())) == 1  # the first rows: one class only
    sub = data.subset("test", 20, seed=2, dtype=torch.float64)
    assert sub["x"].dtype == torch.float64 and sub["mask"].dtype == torch.bool and len(sub["y"]) == 20
    assert 0 < float(sub["y"].sum()) < 20
    assert torch.equal(sub["y"], data.subset("test", 20, seed=2)["y"].double())
    everything = data.subset("test", 10_000)
    assert len(everything["y"]) == len(data.sets["test"])
    assert float(everything["y"].sum()) == data.sets["test"].n_per_class["hbb"]


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))


def test_small_tagger_is_trained_once_and_reloaded_bit_identically(data, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    first = study.small_tagger(data, seed=3, epochs=20)
    assert first.trained and next(first.model.parameters()).dtype == torch.float64
    assert first.meta["train_loss"][-1] < first.meta["train_loss"][0]
    again = study.small_tagger(data, seed=3, epochs=20)
    assert not again.trained and again.meta == first.meta and _same_weights(first.model, again.model)
    assert torch.equal(again.batch[1], first.batch[1])
    assert len(list((tmp_path / "checkpoints" / "landscape-small").iterdir())) == 1
    other = study.small_tagger(data, seed=4, epochs=20)
    assert other.trained and not _same_weights(first.model, other.model)


def test_tagger_is_trained_once_reloaded_bit_identically_and_reproducible(data, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    model, meta, trained = study.trained_tagger(data, epochs=3, seed=0)
    assert trained and len(meta["epoch_seconds"]) == 3 and not model.training
    again, meta2, trained2 = study.trained_tagger(data, epochs=3, seed=0)
    assert not trained2 and meta2 == meta and _same_weights(model, again)
    (path,) = (tmp_path / "checkpoints" / "landscape").iterdir()
    path.unlink()  # the same seed retrains to the same weights on a CPU
    fresh, _, trained3 = study.trained_tagger(data, epochs=3, seed=0)
    assert trained3 and _same_weights(model, fresh)
    assert study.tagger_auc(model, data) > 0.6
    assert checkpoint_path("landscape", {"x": 1}, study.TRAINING_VERSION).parent == path.parent


def test_sharpness_reduced_paths_and_walk_of_a_trained_tagger(data, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    model, _, _ = study.trained_tagger(data, epochs=3, seed=0)
    batch = study.as_landscape_batch(data.subset("test", 40))
    space = landscape.ParameterSpace(model, study.LOSS, batch)
    sharp = study.sharpness(space, k=2, deflate=2, seed=0, rel_error=0.2, max_probes=50)
    assert sharp.top.eigenvalues[0] >= sharp.top.eigenvalues[1] and len(sharp.rows()) == 3
    with torch.no_grad():
        assert sharp.loss == pytest.approx(float(study.LOSS(model(*batch[0]), batch[1])), rel=1e-5)
    rows = study.reduced_rows(model, batch, reduced_jets=3)
    assert [r["dimension"] for r in rows] == [33, 75, 33, 75]
    paths = study.ascent_paths(model, data, n_jets=64, steps=4)
    for path in paths.values():
        assert path.mean[0] == 0 and np.all(np.diff(path.mean) > 0) and path.n_batches == 2
    # along the eigenvector the loss follows its second-order Taylor expansion, the better the closer to theta
    walks = [study.eigen_walk(model, space, sharp.top, batch[0], seed=0, reach=r) for r in (0.5, 0.01)]
    misfit = [np.abs(w.profile - w.taylor).max() / np.abs(w.taylor).max() for w in walks]
    assert misfit[1] < 0.03 and misfit[1] < misfit[0] / 3
    assert walks[1].ratio[len(walks[1].ratio) // 2] != 1.0 and np.all(np.isfinite(walks[1].ratio))
