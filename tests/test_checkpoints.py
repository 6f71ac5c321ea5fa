"""Load-or-train checkpoints: trained once, reloaded bit for bit, damaged files named and retrained, versioned per
study."""

import pytest
import torch

from hepnb.models import DenseTagger
from hepnb.training import checkpoints
from hepnb.training.checkpoints import CheckpointError, load_checkpoint, load_or_train, save_checkpoint


def test_load_or_train_trains_once_and_reloads(tmp_path):
    key = {"method": "default", "seed": 1}
    calls = []

    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.head.bias.fill_(3.25)
        return {"best_epoch": 4}

    model = DenseTagger(n_constituents=2, hidden=(4,))
    meta, trained = load_or_train("test", key, model, train, version=1, folder=tmp_path)
    assert trained and meta == {"best_epoch": 4} and len(calls) == 1
    again = DenseTagger(n_constituents=2, hidden=(4,))
    meta, trained = load_or_train("test", key, again, train, version=1, folder=tmp_path)
    assert not trained and len(calls) == 1 and meta == {"best_epoch": 4}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not again.training
    # another key, another file
    other = checkpoints.checkpoint_path("test", {**key, "seed": 2}, 1, tmp_path)
    assert other != checkpoints.checkpoint_path("test", key, 1, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [checkpoints.checkpoint_path("test", key, 1, tmp_path).name]


def test_bad_checkpoints_are_named_and_retrained(tmp_path):
    key = {"seed": 0}
    model = DenseTagger(n_constituents=2, hidden=(4,))
    path = checkpoints.checkpoint_path("test", key, 1, tmp_path)
    path.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path, model, key, 1)
    meta, trained = load_or_train("test", key, model, lambda m: {"ok": True}, version=1, folder=tmp_path)
    assert trained and load_checkpoint(path, model, key, 1) == {"ok": True}
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a hepnb checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", model, key, 1)
    with pytest.raises(CheckpointError, match="other settings"):
        load_checkpoint(path, model, {"seed": 9}, 1)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, DenseTagger(n_constituents=3, hidden=(4,)), key, 1)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt", model, key, 1)
    save_checkpoint(tmp_path / "x.pt", model, key, 1, {})
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: nothing half-written left
    with pytest.raises(ValueError, match="JSON"):
        checkpoints.key_hash({"a": object()})


def test_each_study_versions_its_own_checkpoints(tmp_path):
    """Bumping one study's TRAINING_VERSION changes its files only: another study's key and version still load."""
    key = {"seed": 0}
    model = DenseTagger(n_constituents=2, hidden=(4,))
    save_checkpoint(checkpoints.checkpoint_path("a", key, 1, tmp_path), model, key, 1, {"study": "a"})
    save_checkpoint(checkpoints.checkpoint_path("b", key, 1, tmp_path), model, key, 1, {"study": "b"})
    assert checkpoints.checkpoint_path("a", key, 2, tmp_path) != checkpoints.checkpoint_path("a", key, 1, tmp_path)
    assert load_checkpoint(checkpoints.checkpoint_path("b", key, 1, tmp_path), model, key, 1) == {"study": "b"}
    with pytest.raises(CheckpointError, match="other settings"):  # the file of version 1 is refused for version 2
        load_checkpoint(checkpoints.checkpoint_path("a", key, 1, tmp_path), model, key, 2)
    with pytest.raises(ValueError, match="version"):
        checkpoints.checkpoint_path("a", {"training_version": 3}, 1, tmp_path)
