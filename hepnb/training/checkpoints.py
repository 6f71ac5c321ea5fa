"""Load-or-train: trained models are cached in the data directory under a hash of everything that made them.

Explained in ``book/adversarial/adversarial.ipynb``. The key is a JSON-able mapping (method and hyperparameters,
data file, sizes, epochs, seed, model) plus the ``version`` of the study that trains it: every study module
(``hepnb.studies.<key>``) has its own ``TRAINING_VERSION``, bumped when a change to its training makes old
checkpoints wrong, so one chapter's bump never retrains another chapter. The same key and version give the same
file, so rebuilding the book does not retrain and a GPU paper-scale run's checkpoints are picked up by a later CPU
build of the same settings. Files are written atomically and validated on reading: a corrupt, foreign or
mismatched file raises :class:`CheckpointError` naming it (or is retrained over, in :func:`load_or_train`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hepnb.config import data_dir
from hepnb.data.files import atomic_path
from hepnb.errors import CheckpointError
from hepnb.validation import check_int

__all__ = ["CheckpointError", "key_hash", "checkpoint_path", "save_checkpoint", "load_checkpoint", "load_if_usable",
           "load_or_train"]

FORMAT = "hepnb-checkpoint"


def key_hash(key: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of ``key`` (sorted keys)."""
    try:
        text = json.dumps(dict(key), sort_keys=True, separators=(",", ":"))
    except TypeError as err:
        raise ValueError(f"a checkpoint key must be JSON-serialisable: {err}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _versioned(key: Mapping[str, Any], version: int) -> dict[str, Any]:
    if "training_version" in key:
        raise ValueError("a checkpoint key must not hold 'training_version': pass version= instead")
    return {**key, "training_version": check_int("version", version, minimum=0)}


def checkpoint_path(kind: str, key: Mapping[str, Any], version: int,
                    folder: str | os.PathLike[str] | None = None) -> Path:
    """``<data dir>/checkpoints/<kind>/<kind>-<hash>.pt``, the hash over ``key`` and the study's ``version``."""
    if not kind or "/" in kind or kind.startswith("."):
        raise ValueError(f"kind must be a plain name; got {kind!r}")
    base = Path(folder) if folder is not None else data_dir() / "checkpoints" / kind
    return base / f"{kind}-{key_hash(_versioned(key, version))}.pt"


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, key: Mapping[str, Any], version: int,
                    meta: Mapping[str, Any]) -> Path:
    """Write ``model``'s state, the key with its version and JSON-able ``meta`` (history, timings) atomically."""
    payload = {"format": FORMAT, "key": json.dumps(_versioned(key, version), sort_keys=True),
               "meta": json.dumps(dict(meta)), "state_dict": {k: v.detach().cpu() for k, v in
                                                              model.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], model: nn.Module, key: Mapping[str, Any],
                    version: int) -> dict[str, Any]:
    """Load the weights into ``model`` and return the meta; raises :class:`CheckpointError` if the file is missing,
    corrupt, not a hepnb checkpoint, made with another key, or does not fit the model."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged zip/pickle
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a hepnb checkpoint (no format marker {FORMAT!r})")
    want = json.dumps(_versioned(key, version), sort_keys=True)
    if payload.get("key") != want:
        raise CheckpointError(f"{path}: made with other settings than requested")
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"{path}: weights do not fit the model ({err})") from None
    return json.loads(payload["meta"])


def load_if_usable(kind: str, key: Mapping[str, Any], model: nn.Module, version: int,
                   folder: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The meta of the checkpoint for ``key`` and ``version`` loaded into ``model`` (left in eval mode), or ``None``
    if there is none or it is damaged or mismatched. A study that trains missing models elsewhere (in worker
    processes: ``book/symmetry/symmetry.ipynb``) asks this first."""
    path = checkpoint_path(kind, key, version, folder)
    if not path.exists():
        return None
    try:
        meta = load_checkpoint(path, model, key, version)
    except CheckpointError:
        return None
    model.eval()
    return meta


def load_or_train(kind: str, key: Mapping[str, Any], model: nn.Module,
                  train: Callable[[nn.Module], Mapping[str, Any]], version: int,
                  folder: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], bool]:
    """``(meta, trained)``: the checkpoint for ``key`` and the study's ``version`` loaded into ``model`` if there is
    a usable one, else ``meta = train(model)`` (which trains ``model`` in place) saved first. A damaged or
    mismatched file is trained over. The model is left in eval mode."""
    meta = load_if_usable(kind, key, model, version, folder)
    if meta is not None:
        return meta, False
    meta = dict(train(model))
    save_checkpoint(checkpoint_path(kind, key, version, folder), model, key, version, meta)
    model.eval()
    return meta, True
