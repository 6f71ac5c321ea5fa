"""The generation cache: re-simulated jets are generated once and read back whenever their settings match.

Explained in ``book/data/resimulation.ipynb``. A file is named by a hash of everything that determines its bytes
(:func:`generation_record`: format, pipeline version, generator versions, every Pythia setting, selection, seed,
shard schedule), written through :mod:`hepnb.data.store`, and a request for fewer hard events than a file holds is
served from its first rows.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hepnb.data.features import FEATURE_NAMES, FEATURE_UNITS, JET_FEATURE_NAMES, JET_FEATURE_UNITS
from hepnb.data.sample import JetSample
from hepnb.data.store import FORMAT, SCHEMA_VERSION, _json, _version, cache_file, read_attrs, read_resim, write_resim
from hepnb.errors import DataFileError
from hepnb.generate.catalogue import CLASS_NAMES, VARIATIONS, jet_class
from hepnb.validation import check_int

__all__ = ["generation_record", "settings_hash", "cache_path", "cached_events", "generate_file", "load_or_generate",
           "load_classes"]


def generation_record(class_name: str, seed: int, selection: Any = None) -> dict[str, Any]:
    """Everything that determines the bytes of a generated file except its length (hashed for the cache name)."""
    from hepnb.generate import resim, shards

    cls = jet_class(class_name)
    sel = selection or resim.Selection()
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "pipeline_version": resim.PIPELINE_VERSION,
            "generator": f"pythia8mc {_version('pythia8mc')}", "fastjet": _version("fastjet"),
            "class_name": cls.name, "process": cls.process, "seed": int(seed), "selection": asdict(sel),
            "settings": resim.settings_record(cls, sel),
            "shard_sizes": {"first": list(shards.SHARD_SIZES), "then": shards.SHARD_SIZE_MAX}}


def settings_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a generation record."""
    return hashlib.sha256(_json(record).encode()).hexdigest()


def cache_path(class_name: str, seed: int = 0, selection: Any = None, folder: str | os.PathLike[str] | None = None
               ) -> Path:
    """Where :func:`load_or_generate` keeps a class's jets: ``<data_dir>/resim/resim-<class>-<hash>.h5``."""
    return cache_file("resim", class_name, seed, generation_record(class_name, seed, selection), folder)


def cached_events(path: str | os.PathLike[str]) -> int:
    """Hard events the cache file ``path`` holds: 0 if it is missing, unreadable or not a ``hepnb-resim`` file
    (:func:`load_or_generate` then generates over it)."""
    if not Path(path).exists():
        return 0
    try:
        return int(read_attrs(path)["n_events"])
    except (DataFileError, KeyError, TypeError, ValueError):
        return 0


def generate_file(path: str | os.PathLike[str], class_name: str, n_events: int, seed: int = 0,
                  selection: Any = None, workers: int = 1, progress: bool = True, dask: Any = None,
                  keep_shards: bool = False) -> dict[str, Any]:
    """Generate ``n_events`` hard events of one class and write them to ``path`` atomically; returns run info.

    Finished shards are saved next to ``path`` as they finish (:class:`~hepnb.generate.shardstore.ShardStore`), so
    an interrupted call resumes where it stopped, and removed once the file is written unless ``keep_shards``.
    ``dask`` runs the shards on Dask (:mod:`hepnb.generate.backends`) instead of ``workers`` processes."""
    from hepnb.generate import resim, shards
    from hepnb.generate.pythia import derive_seed
    from hepnb.generate.shardstore import ShardStore

    sel = selection or resim.Selection()
    record = generation_record(class_name, seed, sel)
    with ShardStore.generating(path, record, keep_shards) as store:
        arrays, info = shards.generate_class(class_name, n_events, seed=seed, selection=sel, workers=workers,
                                             progress=progress, store=store, dask=dask)
        arrays["label"] = np.full(len(arrays["event_id"]), CLASS_NAMES.index(class_name), dtype=np.int8)
        attrs = {**record, "settings_hash": settings_hash(record), "hepnb_version": _version("hepnb"),
                 "class_description": jet_class(class_name).description, "n_events": int(len(arrays["event_id"])),
                 "variations": [v.name for v in VARIATIONS],
                 "variation_descriptions": [v.description for v in VARIATIONS],
                 "cand_fields": list(resim.CAND_FIELDS), "cand_units": list(resim.CAND_UNITS),
                 "jet_fields": ["px", "py", "pz", "E"], "jet_units": "GeV",
                 "shards_used": info["shards"],
                 "shard_seeds": {step: [derive_seed(seed, class_name, k, step) for k in range(info["shards"])]
                                 for step in ("hard", *(v.name for v in VARIATIONS))},
                 "hard_tried": info["hard_tried"], "showered": info["showered"], "passed": info["passed"]}
        attrs.update(feature_names=list(FEATURE_NAMES), feature_units=[FEATURE_UNITS[k] for k in FEATURE_NAMES],
                     jet_feature_names=list(JET_FEATURE_NAMES),
                     jet_feature_units=[JET_FEATURE_UNITS[k] for k in JET_FEATURE_NAMES])
        write_resim(path, arrays, attrs)
    return info


def load_or_generate(class_name: str, n_events: int, seed: int = 0, selection: Any = None, workers: int = 1,
                     folder: str | os.PathLike[str] | None = None, progress: bool = True) -> JetSample:
    """The first ``n_events`` hard events of a class: read from the cache when a file with the same settings holds
    enough of them, otherwise generated (``workers`` processes) and cached first.

    A smaller request is served from a bigger file: generation is sharded in a fixed order, so the first rows of a
    big sample are exactly a small sample with the same settings.
    """
    n_events = check_int("n_events", n_events)
    path = cache_path(class_name, seed, selection, folder)
    if cached_events(path) >= n_events:
        return read_resim(path, n_rows=n_events)
    generate_file(path, class_name, n_events, seed=seed, selection=selection, workers=workers, progress=progress)
    return read_resim(path)


def load_classes(classes: Sequence[str], n_events: int, seed: int = 0, selection: Any = None, workers: int = 1,
                 folder: str | os.PathLike[str] | None = None, progress: bool = True) -> JetSample:
    """:func:`load_or_generate` for several classes, concatenated (``event_id`` stays unique)."""
    samples = [load_or_generate(c, n_events, seed, selection, workers, folder, progress) for c in classes]
    return JetSample.concatenate(samples)
