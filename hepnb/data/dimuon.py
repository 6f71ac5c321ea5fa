"""Dimuon events of Nabat et al. in memory and on disk: a validated native HDF5 file per class, generated once and
cached under a hash of its settings; explained in ``book/symmetry/symmetry.ipynb``.

Datasets of a ``hepnb-dimuon`` file (one class per file, :data:`hepnb.generate.dimuon.DIMUON_CLASSES`)::

    muons     (N, 2, 4) float64  true px, py, pz, E of the two muons [GeV], leading (higher pT) first
    charge    (N, 2)    int8     charge [e] (opposite for the two muons)
    pid       (N, 2)    int32    PDG id (+-13)
    event_id  (N,)      int64    shard * 2**20 + index of the event in its shard
    label     (N,)      int8     1 = Z (signal), 0 = gamma* (background)

The muons are the generator's: the detector (:mod:`hepnb.physics.detector`) smears them when a study loads them,
from its own seed, so the smearing strength is a knob and one file serves every strength.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepnb.data.store import (
    _attr,
    _version,
    cache_file,
    cached_rows,
    generation_attrs,
    open_native,
    read_rows,
    write_native,
)
from hepnb.errors import DataFileError, SampleError
from hepnb.validation import check_int

__all__ = ["FORMAT", "SCHEMA_VERSION", "DimuonSample", "write_dimuons", "read_dimuons", "generation_record",
           "cache_path", "cached_events", "generate_file", "load_or_generate", "load_dimuons"]

FORMAT = "hepnb-dimuon"
SCHEMA_VERSION = 1
_DTYPES = {"muons": np.float64, "charge": np.int8, "pid": np.int32, "event_id": np.int64, "label": np.int8}
_REQUIRED = ("format", "schema_version", "class_name", "label", "seed", "settings", "n_events")


@dataclass(frozen=True, eq=False)
class DimuonSample:
    """``N`` dimuon events: ``muons`` (N, 2, 4) [GeV], ``charge`` (N, 2), ``label`` (N,) 1 = Z, 0 = gamma*,
    ``event_id`` (N,) (unique within one class; :meth:`concatenate` keeps rows of different classes apart by their
    label), ``sources`` the files they came from."""

    muons: np.ndarray
    charge: np.ndarray
    label: np.ndarray
    event_id: np.ndarray
    sources: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.label)
        if n == 0:
            raise SampleError("a DimuonSample needs at least one event; this one is empty")
        if self.muons.shape != (n, 2, 4):
            raise SampleError(f"muons must be (N, 2, 4) with N = {n} labels, got {self.muons.shape}")
        if self.charge.shape != (n, 2) or self.event_id.shape != (n,):
            raise SampleError(f"charge {self.charge.shape} / event_id {self.event_id.shape} do not fit {n} events")

    def __len__(self) -> int:
        return len(self.label)

    def select(self, rows: np.ndarray) -> DimuonSample:
        """The events at ``rows`` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        return DimuonSample(self.muons[rows], self.charge[rows], self.label[rows], self.event_id[rows], self.sources,
                            self.attrs)

    @staticmethod
    def concatenate(samples: Sequence[DimuonSample]) -> DimuonSample:
        """One sample of several (their rows in order)."""
        if not samples:
            raise SampleError("nothing to concatenate")
        return DimuonSample(np.concatenate([s.muons for s in samples]), np.concatenate([s.charge for s in samples]),
                            np.concatenate([s.label for s in samples]),
                            np.concatenate([s.event_id for s in samples]),
                            tuple(x for s in samples for x in s.sources))


def write_dimuons(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
    """Write one class's arrays (module docstring) and attributes atomically; equal inputs give identical bytes."""
    return write_native(path, arrays, _DTYPES, {**attrs, "format": FORMAT, "schema_version": SCHEMA_VERSION})


def read_dimuons(path: str | os.PathLike[str], n_rows: int | None = None) -> DimuonSample:
    """Read (the first ``n_rows`` events of) a ``hepnb-dimuon`` file, validating format, schema, attributes, shapes,
    dtypes, labels and the muons themselves (two per event, PDG id +-13, opposite charges, physical 4-vectors);
    raises :class:`~hepnb.errors.DataFileError` naming the file and the problem."""
    path = Path(path)
    with open_native(path, FORMAT, SCHEMA_VERSION, _REQUIRED) as f:
        attrs = {key: _attr(f, key) for key in f.attrs}
        for name, dtype in _DTYPES.items():
            if name not in f:
                raise DataFileError(f"{path}: dataset {name!r} is missing")
            if f[name].dtype != np.dtype(dtype):
                raise DataFileError(f"{path}: {name} has dtype {f[name].dtype}, expected {np.dtype(dtype)}")
        n = f["label"].shape[0]
        expect = {"muons": (n, 2, 4), "charge": (n, 2), "pid": (n, 2), "event_id": (n,), "label": (n,)}
        for name, shape in expect.items():
            if f[name].shape != shape:
                raise DataFileError(f"{path}: {name} has shape {f[name].shape}, expected {shape}")
        data, n = read_rows(f, path, _DTYPES, n, n_rows, "events")
    if n == 0:
        raise DataFileError(f"{path}: holds no events")
    if not np.all(data["label"] == int(attrs["label"])):
        raise DataFileError(f"{path}: labels disagree with the file's class {attrs['class_name']!r}")
    if not np.all(np.abs(data["pid"]) == 13):
        raise DataFileError(f"{path}: not every particle is a muon (|PDG id| = 13)")
    if not np.all(data["charge"].sum(axis=1) == 0) or not np.all(np.abs(data["charge"]) == 1):
        raise DataFileError(f"{path}: the two muons of an event must have opposite charges +-1")
    p = data["muons"]
    if not np.all(np.isfinite(p)) or np.any(p[..., 3] ** 2 < (p[..., :3] ** 2).sum(-1) * (1 - 1e-9)):
        raise DataFileError(f"{path}: muon 4-vectors are not finite and time-like")
    return DimuonSample(p, data["charge"], data["label"], data["event_id"], (str(path),), attrs)


def generation_record(name: str, seed: int, acceptance: Any = None) -> dict[str, Any]:
    """Everything that determines the bytes of a dimuon file except its length (hashed for the cache name)."""
    from hepnb.generate import dimuon, shards

    cls = dimuon.dimuon_class(name)
    acc = acceptance or dimuon.Acceptance()
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "pipeline_version": dimuon.PIPELINE_VERSION,
            "generator": f"pythia8mc {_version('pythia8mc')}", "class_name": cls.name, "label": cls.label,
            "process": cls.process, "seed": int(seed), "acceptance": asdict(acc),
            "settings": dimuon.dimuon_settings(cls.name, acc),
            "shard_sizes": {"first": [dimuon.SHARD_FACTOR * n for n in shards.SHARD_SIZES],
                            "then": dimuon.SHARD_FACTOR * shards.SHARD_SIZE_MAX}}


def cache_path(name: str, seed: int = 0, acceptance: Any = None, folder: str | os.PathLike[str] | None = None
               ) -> Path:
    """Where :func:`load_or_generate` keeps a class: ``<data_dir>/dimuon/dimuon-<class>-seed<S>-<hash>.h5``."""
    return cache_file("dimuon", name, seed, generation_record(name, seed, acceptance), folder)


def cached_events(path: str | os.PathLike[str]) -> int:
    """Events the dimuon file ``path`` holds: 0 if it is missing, unreadable or foreign (then generated over)."""
    return cached_rows(path, FORMAT, SCHEMA_VERSION, _REQUIRED, "n_events")


def generate_file(path: str | os.PathLike[str], name: str, n_events: int, seed: int = 0, acceptance: Any = None,
                  workers: int = 1, progress: bool = True, dask: Any = None, keep_shards: bool = False
                  ) -> dict[str, Any]:
    """Generate ``n_events`` accepted events of class ``name`` in shards and write them to ``path`` atomically;
    returns run information (shards, events tried, seconds, events per second per core). Finished shards are saved
    as they finish and reused by an interrupted call's rerun; ``dask`` and ``keep_shards`` as in
    :func:`hepnb.data.cache.generate_file`."""
    from hepnb.generate import dimuon, shards
    from hepnb.generate.pythia import derive_seed
    from hepnb.generate.shardstore import ShardStore

    cls = dimuon.dimuon_class(name)
    acc = acceptance or dimuon.Acceptance()
    n_events = check_int("n_events", n_events)
    record = generation_record(cls.name, seed, acc)
    with ShardStore.generating(path, record, keep_shards) as store:
        t0 = time.perf_counter()
        job = functools.partial(dimuon.simulate_shard, cls.name, int(seed), acc)
        arrays, used = shards.run_labelled(job, n_events, cls.label, workers, f"{cls.name} -> mu mu events", progress,
                                           dimuon.SHARD_FACTOR, store, dask)
        wall = time.perf_counter() - t0
        seconds = sum(s["stats"]["seconds"] for s in used)
        info = {"shards": len(used), "tried": sum(s["stats"]["tried"] for s in used), "wall_seconds": wall,
                "shard_seconds": seconds, "workers": int(workers), "accepted_per_core_second": n_events / seconds,
                **shards.run_counts(used)}
        attrs = {**generation_attrs(record, cls.description, "n_events", n_events, used,
                                    lambda k: derive_seed(seed, "dimuon", cls.name, k)),
                 "muon_fields": ["px", "py", "pz", "E"], "muon_units": "GeV"}
        write_dimuons(path, arrays, attrs)
    return info


def load_or_generate(name: str, n_events: int, seed: int = 0, acceptance: Any = None, workers: int = 1,
                     folder: str | os.PathLike[str] | None = None, progress: bool = True) -> DimuonSample:
    """The first ``n_events`` events of a class: from the cache when a file with the same settings holds enough,
    else generated (``workers`` processes) and cached first. A smaller request is served from a bigger file (the
    shard order is fixed, so its first rows are exactly the smaller sample)."""
    n_events = check_int("n_events", n_events)
    path = cache_path(name, seed, acceptance, folder)
    if cached_events(path) < n_events:
        generate_file(path, name, n_events, seed, acceptance, workers, progress)
    return read_dimuons(path, n_rows=n_events)


def load_dimuons(n_events: int, seed: int = 0, acceptance: Any = None, workers: int = 1,
                 folder: str | os.PathLike[str] | None = None, progress: bool = True) -> DimuonSample:
    """``n_events`` Z and ``n_events`` gamma* events (background first), from the cache or generated."""
    from hepnb.generate.dimuon import DIMUON_CLASSES

    return DimuonSample.concatenate([load_or_generate(c.name, n_events, seed, acceptance, workers, folder, progress)
                                     for c in DIMUON_CLASSES])
