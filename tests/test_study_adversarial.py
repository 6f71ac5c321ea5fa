"""The paper-000 cross-simulator study: paired test sets, seeded load-or-train, evaluation and sharpness."""

import numpy as np
import pytest
import torch

from hepnb.evaluation.stats import seed_stats
from hepnb.studies import adversarial as crossval
from hepnb.training.checkpoints import checkpoint_path
from hepnb.data.sample import CLASS_NAMES
from test_datasets import make_sample  # tests/ is on sys.path (rootdir conftest, no __init__)


@pytest.fixture(scope="module")
def splits():
    sample = make_sample({"qcd": 200, "hbb": 200}, V=3, C=40, seed=4)
    hbb = sample.label == CLASS_NAMES.index("hbb")
    sample.p4[hbb] *= 1.8  # harder H->bb jets: a learnable, not perfect, difference
    sample.jet_p4[hbb] *= 1.8
    return crossval.simulator_splits(sample, ("nominal", "fsr_down"), batch_size=32, seed=1, sources=["synthetic"])


def test_test_sets_are_the_same_hard_events_showered_twice(splits):
    a, b = (torch.cat([t["y"] for t in splits.test[s]]) for s in splits.simulators)
    assert torch.equal(a, b) and np.array_equal(a.numpy().astype(int), splits.test_labels)
    xa, xb = (torch.cat([t["x"] for t in splits.test[s]]) for s in splits.simulators)
    assert not torch.equal(xa, xb)  # different showers of those events
    assert splits.test_mass["nominal"].shape == splits.test_labels.shape
    counts = splits.n_per_class
    assert counts["train"]["qcd"] == counts["train"]["hbb"] > counts["test"]["hbb"] > 0


def test_trained_models_are_seeded_cached_and_keyed(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    model, meta, trained = crossval.trained_model("fgsm", "nominal", 3, splits, epochs=2)
    assert trained and len(meta["epoch_seconds"]) == 2 and not model.training
    again, meta2, trained2 = crossval.trained_model("fgsm", "nominal", 3, splits, epochs=2)
    assert not trained2 and meta2 == meta
    assert all(torch.equal(u, v) for u, v in zip(model.state_dict().values(), again.state_dict().values()))
    key = crossval.training_key("fgsm", "nominal", 3, 2, 1e-4, splits.data_key)
    path = checkpoint_path("adversarial", key)
    assert path.exists() and path.parent == tmp_path / "checkpoints" / "adversarial"
    # same seed, same CPU weights: retraining from scratch reproduces the file's model exactly
    path.unlink()
    fresh, _, trained3 = crossval.trained_model("fgsm", "nominal", 3, splits, epochs=2)
    assert trained3
    assert all(torch.equal(u, v) for u, v in zip(model.state_dict().values(), fresh.state_dict().values()))
    # every ingredient changes the key
    for changed in (crossval.training_key("pgd", "nominal", 3, 2, 1e-4, splits.data_key),
                    crossval.training_key("fgsm", "fsr_down", 3, 2, 1e-4, splits.data_key),
                    crossval.training_key("fgsm", "nominal", 4, 2, 1e-4, splits.data_key),
                    crossval.training_key("fgsm", "nominal", 3, 3, 1e-4, splits.data_key),
                    crossval.training_key("fgsm", "nominal", 3, 2, 1e-4, {**splits.data_key, "sources": ["x"]}),
                    crossval.training_key("fgsm", "nominal", 3, 2, 1e-4, splits.data_key, {"eps": 0.01})):
        assert checkpoint_path("adversarial", changed) != path


def test_evaluation_and_sharpness_of_a_trained_model(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNB_DATA", str(tmp_path))
    model, _, _ = crossval.trained_model("default", "nominal", 0, splits, epochs=5, lr=1e-3)
    ev = crossval.evaluate(model, splits, "fsr_down")
    assert 0.6 < ev.auc < 1.0 and 1.0 < ev.rejection < np.inf and 0.0 <= ev.jsd <= 1.0
    grid = np.linspace(0.3, 0.95, 5)
    assert np.all(np.diff(crossval.rejection_on_grid(ev, grid)) <= 1e-9)  # rejection falls with efficiency
    sh = crossval.sharpness(model, splits, "nominal", reduced_jets=3, path_jets=64, steps=4)
    assert sh.path_features[0] == 0.0 and sh.path_weights[0] == 0.0
    assert sh.path_weights[-1] > 0 and sh.path_features[-1] > 0  # climbing the gradient raises the loss
    assert all(np.isfinite([sh.feature_hbb, sh.feature_qcd, sh.weight_hbb, sh.weight_qcd]))
    assert sh.weight_hbb >= 0 and sh.weight_qcd >= 0  # output-layer Hessian of BCE is positive semi-definite


def test_seed_stats():
    mean, std, sem = seed_stats([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, 1.0) and sem == pytest.approx(1 / np.sqrt(3))
    assert np.isnan(seed_stats([5.0])[1])
    with pytest.raises(ValueError):
        seed_stats([])
