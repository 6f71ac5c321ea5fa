"""1 TeV jets of five classes (g, q, W, Z, t; Glowacki's SEAL) in memory and on disk: a validated native HDF5 file
per class, generated once and cached under a hash of its settings; explained in ``book/simplicity/simplicity.ipynb``.

Datasets of a ``hepnb-highpt`` file (one class per file, :data:`hepnb.generate.highpt.HIGHPT_CLASSES`; C = 32)::

    p4              (N, C, 4) float32  constituent px, py, pz, E [GeV], pT-ordered, zero-padded (as hls4ml)
    pid             (N, C)    int32    PDG id (0 = padding)
    charge          (N, C)    int8     charge [e]
    n_constituents  (N,)      int32    constituents of the jet before truncation to C
    jet_p4          (N, 4)    float64  the anti-kT R = 0.8 jet, all its constituents [GeV]
    origin_p4       (N, 4)    float64  the showered parton / W / Z / top the jet is matched to [GeV]
    origin_pid      (N,)      int32    its PDG id
    decay_p4        (N, 3, 4) float64  its decay products: W, Z: q, q' (slot 2 zero); t: b, q, q'; g, q: zeros
    decay_pid       (N, 3)    int32    their PDG ids (0 where none)
    event_id        (N,)      int64    shard * 2**20 + index of the event in its shard (one jet per event)
    label           (N,)      int8     0 g, 1 q, 2 W, 3 Z, 4 t (the hls4ml order)

The generator and its choices (processes, windows, matching) are described in :mod:`hepnb.generate.highpt`; the public
hls4ml files are read into the same :class:`HighPtSample` by :mod:`hepnb.data.hls4ml`.
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

__all__ = ["FORMAT", "SCHEMA_VERSION", "HighPtSample", "write_highpt", "read_highpt", "generation_record",
           "cache_path", "cached_jets", "generate_file", "load_or_generate", "load_highpt"]

FORMAT = "hepnb-highpt"
SCHEMA_VERSION = 1
N_LABELS = 5  # g, q, W, Z, t
_DTYPES = {"p4": np.float32, "pid": np.int32, "charge": np.int8, "n_constituents": np.int32, "jet_p4": np.float64,
           "origin_p4": np.float64, "origin_pid": np.int32, "decay_p4": np.float64, "decay_pid": np.int32,
           "event_id": np.int64, "label": np.int8}
_REQUIRED = ("format", "schema_version", "class_name", "label", "seed", "settings", "selection", "n_jets")
_OPTIONAL = ("pid", "charge", "origin_p4", "origin_pid", "decay_p4", "decay_pid")


def _take(x: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if x is None else x[rows]


@dataclass(frozen=True, eq=False)
class HighPtSample:
    """``N`` jets with up to ``C`` constituents each, generated (:func:`load_highpt`) or public
    (:func:`hepnb.data.hls4ml.load_hls4ml`); explained in ``book/simplicity/simplicity.ipynb``.

    ``p4``              (N, C, 4) float32  constituent px, py, pz, E [GeV], pT-ordered, zero-padded
    ``mask``            (N, C)    bool     real constituent (True) or padding
    ``pid``, ``charge`` (N, C)    int32, int8  PDG id and charge [e]; ``None`` where unknown (the hls4ml files)
    ``n_constituents``  (N,)      int32    constituents before truncation to C
    ``jet_p4``          (N, 4)    float64  jet px, py, pz, E [GeV]
    ``label``           (N,)      int8     0 g, 1 q, 2 W, 3 Z, 4 t
    ``event_id``        (N,)      int64    unique within one class's file (generated) or the file's row (public)
    ``origin_p4`` (N, 4) float64, ``origin_pid`` (N,) int32, ``decay_p4`` (N, 3, 4) float64, ``decay_pid`` (N, 3)
    int32: the generator's truth (module docstring); ``None`` for public files. ``sources`` the files the jets came
    from, ``attrs`` the first file's metadata.
    """

    p4: np.ndarray
    mask: np.ndarray
    pid: np.ndarray | None
    charge: np.ndarray | None
    n_constituents: np.ndarray
    jet_p4: np.ndarray
    label: np.ndarray
    event_id: np.ndarray
    origin_p4: np.ndarray | None = None
    origin_pid: np.ndarray | None = None
    decay_p4: np.ndarray | None = None
    decay_pid: np.ndarray | None = None
    sources: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.label)
        if n == 0:
            raise SampleError("a HighPtSample needs at least one jet; this one is empty")
        if self.p4.ndim != 3 or self.p4.shape[0] != n or self.p4.shape[2] != 4:
            raise SampleError(f"p4 must be (N, C, 4) with N = {n} labels, got {self.p4.shape}")
        c = self.p4.shape[1]
        shapes = {"mask": (n, c), "pid": (n, c), "charge": (n, c), "n_constituents": (n,), "jet_p4": (n, 4),
                  "event_id": (n,), "origin_p4": (n, 4), "origin_pid": (n,), "decay_p4": (n, 3, 4),
                  "decay_pid": (n, 3)}
        for name, shape in shapes.items():
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise SampleError(f"{name} must have shape {shape} for {n} jets of {c} constituents, "
                                  f"got {value.shape}")
        if self.mask.dtype != np.bool_:
            raise SampleError(f"mask must be bool, got {self.mask.dtype}")
        if np.any((self.label < 0) | (self.label >= N_LABELS)):
            raise SampleError(f"labels must lie in 0..{N_LABELS - 1} (g, q, W, Z, t)")

    def __len__(self) -> int:
        return len(self.label)

    @property
    def max_constituents(self) -> int:
        """``C``, the constituent slots per jet."""
        return self.p4.shape[1]

    def select(self, rows: np.ndarray) -> HighPtSample:
        """The jets at ``rows`` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        return HighPtSample(self.p4[rows], self.mask[rows], _take(self.pid, rows), _take(self.charge, rows),
                            self.n_constituents[rows], self.jet_p4[rows], self.label[rows], self.event_id[rows],
                            _take(self.origin_p4, rows), _take(self.origin_pid, rows), _take(self.decay_p4, rows),
                            _take(self.decay_pid, rows), self.sources, self.attrs)

    def truncate(self, max_constituents: int) -> HighPtSample:
        """The same jets with only their ``max_constituents`` hardest constituents (``<= C``; ``n_constituents`` and
        ``jet_p4`` still describe the whole jet)."""
        c = check_int("max_constituents", max_constituents, 1, self.max_constituents)
        cut = (lambda x: None if x is None else x[:, :c])  # noqa: E731
        return HighPtSample(self.p4[:, :c], self.mask[:, :c], cut(self.pid), cut(self.charge), self.n_constituents,
                            self.jet_p4, self.label, self.event_id, self.origin_p4, self.origin_pid, self.decay_p4,
                            self.decay_pid, self.sources, self.attrs)

    @staticmethod
    def concatenate(samples: Sequence[HighPtSample]) -> HighPtSample:
        """One sample of several (their rows in order; ``attrs`` of the first). Optional fields (``pid``, ...)
        are kept only if every sample has them. All samples need the same ``C`` (:meth:`truncate` first)."""
        if not samples:
            raise SampleError("nothing to concatenate")
        sizes = sorted({s.max_constituents for s in samples})
        if len(sizes) > 1:
            raise SampleError(f"samples hold {sizes} constituent slots: truncate them to a common number first")

        def cat(name: str) -> np.ndarray | None:
            parts = [getattr(s, name) for s in samples]
            return None if any(p is None for p in parts) else np.concatenate(parts)

        return HighPtSample(cat("p4"), cat("mask"), cat("pid"), cat("charge"), cat("n_constituents"), cat("jet_p4"),
                            cat("label"), cat("event_id"), cat("origin_p4"), cat("origin_pid"), cat("decay_p4"),
                            cat("decay_pid"), tuple(x for s in samples for x in s.sources), samples[0].attrs)


# ---------------------------------------------------------------------------------------------------------------
# the native file


def write_highpt(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
    """Write one class's arrays (module docstring) and attributes atomically; equal inputs give identical bytes.
    Explained in ``book/simplicity/simplicity.ipynb``."""
    return write_native(path, arrays, _DTYPES, {**attrs, "format": FORMAT, "schema_version": SCHEMA_VERSION})


def _check_layout(path: Path, f: Any) -> tuple[int, int]:
    for name, dtype in _DTYPES.items():
        if name not in f:
            raise DataFileError(f"{path}: dataset {name!r} is missing")
        if f[name].dtype != np.dtype(dtype):
            raise DataFileError(f"{path}: {name} has dtype {f[name].dtype}, expected {np.dtype(dtype)}")
    n = f["label"].shape[0] if f["label"].ndim == 1 else -1
    p4 = f["p4"]
    if n < 0 or p4.ndim != 3 or p4.shape[0] != n or p4.shape[2] != 4 or p4.shape[1] < 1:
        raise DataFileError(f"{path}: p4 has shape {p4.shape} and label {f['label'].shape}, expected (N, C, 4) "
                            "and (N,)")
    c = p4.shape[1]
    expect = {"pid": (n, c), "charge": (n, c), "n_constituents": (n,), "jet_p4": (n, 4), "origin_p4": (n, 4),
              "origin_pid": (n,), "decay_p4": (n, 3, 4), "decay_pid": (n, 3), "event_id": (n,)}
    for name, shape in expect.items():
        if f[name].shape != shape:
            raise DataFileError(f"{path}: {name} has shape {f[name].shape}, expected {shape}")
    return n, c


def _time_like(p4: np.ndarray, rtol: float) -> np.ndarray:
    p = p4.astype(np.float64)
    return np.isfinite(p).all(-1) & (p[..., 3] > 0) & (p[..., 3] ** 2 >= (p[..., :3] ** 2).sum(-1) * (1 - rtol))


def _check_physics(path: Path, data: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    """Check labels, truth, padding and 4-vectors of a file's arrays; return the constituent mask."""
    from hepnb.generate.highpt import highpt_class

    try:
        cls = highpt_class(str(attrs["class_name"]))
    except KeyError as err:
        raise DataFileError(f"{path}: {err.args[0]}") from None
    if attrs["label"] != cls.label or not np.all(data["label"] == cls.label):
        raise DataFileError(f"{path}: labels disagree with the file's class {cls.name!r} (label {cls.label})")
    if not np.all(np.isin(np.abs(data["origin_pid"]), cls.origin_ids)):
        raise DataFileError(f"{path}: an origin PDG id is not one of class {cls.name!r}'s {cls.origin_ids}")
    decay_pid = np.abs(data["decay_pid"])
    used = np.arange(3) < cls.n_decay
    if not (np.all((decay_pid[:, used] >= 1) & (decay_pid[:, used] <= 5)) and np.all(decay_pid[:, ~used] == 0)
            and np.all(data["decay_p4"][:, ~used] == 0)):
        raise DataFileError(f"{path}: decay products disagree with class {cls.name!r} ({cls.n_decay} quarks)")
    if cls.name == "t" and not np.all(decay_pid[:, 0] == 5):
        raise DataFileError(f"{path}: a top jet without its b (decay_pid[:, 0] must be +-5)")
    n_const, c = data["n_constituents"], data["p4"].shape[1]
    if np.any(n_const < 1):
        raise DataFileError(f"{path}: a jet with n_constituents < 1")
    mask = np.arange(c) < np.minimum(n_const, c)[:, None]
    if (np.any((data["pid"] != 0) != mask) or np.any(data["p4"][~mask] != 0)
            or np.any(data["charge"][~mask] != 0)):
        raise DataFileError(f"{path}: constituent padding disagrees with n_constituents")
    if not np.all(_time_like(data["p4"][mask], 1e-5)):  # float32: massless particles within rounding
        raise DataFileError(f"{path}: constituent 4-vectors are not finite, of positive energy and time-like")
    pt = np.hypot(data["p4"][..., 0].astype(np.float64), data["p4"][..., 1].astype(np.float64))
    if np.any((pt[:, 1:] > pt[:, :-1] * (1 + 1e-6)) & mask[:, 1:]):
        raise DataFileError(f"{path}: constituents are not ordered by decreasing pT")
    for name in ("jet_p4", "origin_p4"):
        if not np.all(_time_like(data[name], 1e-9)):
            raise DataFileError(f"{path}: {name} is not finite, of positive energy and time-like")
    sel = attrs["selection"]
    jet_pt = np.hypot(data["jet_p4"][:, 0], data["jet_p4"][:, 1])
    jet_eta = np.arcsinh(data["jet_p4"][:, 2] / np.where(jet_pt > 0, jet_pt, 1.0))
    if not np.all((jet_pt > sel["jet_pt_min"]) & (jet_pt < sel["jet_pt_max"])
                  & (np.abs(jet_eta) < sel["jet_eta_max"])):
        raise DataFileError(f"{path}: a jet outside the file's window {sel['jet_pt_min']:g} < pT < "
                            f"{sel['jet_pt_max']:g} GeV, |eta| < {sel['jet_eta_max']:g}")
    if np.any(np.diff(data["event_id"]) <= 0):
        raise DataFileError(f"{path}: event_id is not strictly increasing")
    return mask


def read_highpt(path: str | os.PathLike[str], n_rows: int | None = None) -> HighPtSample:
    """Read (the first ``n_rows`` jets of) a ``hepnb-highpt`` file into a :class:`HighPtSample`.

    Validates the format, schema version and attributes, the dataset names, shapes and dtypes, the labels and the
    truth (origin id, decay products) against the file's class, the padding against ``n_constituents``, the pT
    order, and that the 4-vectors are finite and physical and the jets inside the file's window; raises
    :class:`~hepnb.errors.DataFileError` naming the file and the problem. Explained in
    ``book/simplicity/simplicity.ipynb``.
    """
    path = Path(path)
    with open_native(path, FORMAT, SCHEMA_VERSION, _REQUIRED) as f:
        attrs = {key: _attr(f, key) for key in f.attrs}
        n, _ = _check_layout(path, f)
        data, n = read_rows(f, path, _DTYPES, n, n_rows, "jets")
    if n == 0:
        raise DataFileError(f"{path}: holds no jets")
    mask = _check_physics(path, data, attrs)
    return HighPtSample(data["p4"], mask, data["pid"], data["charge"], data["n_constituents"], data["jet_p4"],
                        data["label"], data["event_id"], data["origin_p4"], data["origin_pid"], data["decay_p4"],
                        data["decay_pid"], (str(path),), attrs)


# ---------------------------------------------------------------------------------------------------------------
# the cache


def generation_record(name: str, seed: int, selection: Any = None) -> dict[str, Any]:
    """Everything that determines the bytes of a class's file except its length (hashed for the cache name).
    Explained in ``book/simplicity/simplicity.ipynb``."""
    from hepnb.generate import highpt, shards

    cls = highpt.highpt_class(name)
    sel = selection or highpt.Selection()
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "pipeline_version": highpt.PIPELINE_VERSION,
            "generator": f"pythia8mc {_version('pythia8mc')}", "clustering": f"fastjet {_version('fastjet')}",
            "class_name": cls.name, "label": cls.label, "process": cls.process, "seed": int(seed),
            "selection": asdict(sel), "settings": highpt.highpt_settings(cls.name),
            "shard_sizes": {"first": [highpt.SHARD_FACTOR * n for n in shards.SHARD_SIZES],
                            "then": highpt.SHARD_FACTOR * shards.SHARD_SIZE_MAX},
            "batch_events": highpt.BATCH_EVENTS}


def cache_path(name: str, seed: int = 0, selection: Any = None, folder: str | os.PathLike[str] | None = None
               ) -> Path:
    """Where :func:`load_or_generate` keeps a class: ``<data_dir>/highpt/highpt-<class>-seed<S>-<hash>.h5``.
    Explained in ``book/simplicity/simplicity.ipynb``."""
    return cache_file("highpt", name, seed, generation_record(name, seed, selection), folder)


def cached_jets(path: str | os.PathLike[str]) -> int:
    """Jets the 1 TeV jet file ``path`` holds: 0 if it is missing, unreadable or foreign (then generated over)."""
    return cached_rows(path, FORMAT, SCHEMA_VERSION, _REQUIRED, "n_jets")


def generate_file(path: str | os.PathLike[str], name: str, n_jets: int, seed: int = 0, selection: Any = None,
                  workers: int = 1, progress: bool = True, dask: Any = None, keep_shards: bool = False
                  ) -> dict[str, Any]:
    """Generate ``n_jets`` matched jets of class ``name`` in shards and write them to ``path`` atomically; returns
    run information (shards, events tried, seconds, Pythia's initialisation share, matched jets per second per
    core). Finished shards are saved as they finish and reused by an interrupted call's rerun; ``dask`` and
    ``keep_shards`` as in :func:`hepnb.data.cache.generate_file`. Explained in ``book/simplicity/simplicity.ipynb``."""
    from hepnb.generate import highpt, shards
    from hepnb.generate.pythia import derive_seed
    from hepnb.generate.shardstore import ShardStore

    cls = highpt.highpt_class(name)
    sel = selection or highpt.Selection()
    n_jets = check_int("n_jets", n_jets)
    record = generation_record(cls.name, seed, sel)
    with ShardStore.generating(path, record, keep_shards) as store:
        t0 = time.perf_counter()
        job = functools.partial(highpt.simulate_shard, cls.name, int(seed), sel)
        arrays, used = shards.run_labelled(job, n_jets, cls.label, workers, f"{cls.name} jets (1 TeV)", progress,
                                           highpt.SHARD_FACTOR, store, dask)
        seconds = sum(s["stats"]["seconds"] for s in used)
        init = sum(s["stats"]["init_seconds"] for s in used)
        info = {"shards": len(used), "tried": sum(s["stats"]["tried"] for s in used),
                "two_matched": sum(s["stats"]["two_matched"] for s in used),
                "kept_in_shards": sum(len(s["event_id"]) for s in used), "wall_seconds": time.perf_counter() - t0,
                "shard_seconds": seconds, "init_seconds": init, "init_fraction": init / seconds,
                "workers": int(workers), **shards.run_counts(used)}
        info["jets_per_core_second"] = info["kept_in_shards"] / seconds
        attrs = {**generation_attrs(record, cls.description, "n_jets", n_jets, used,
                                    lambda k: derive_seed(seed, "highpt", cls.name, k)),
                 "constituent_fields": ["px", "py", "pz", "E"], "units": "GeV"}
        write_highpt(path, arrays, attrs)
    return info


def load_or_generate(name: str, n_jets: int, seed: int = 0, selection: Any = None, workers: int = 1,
                     folder: str | os.PathLike[str] | None = None, progress: bool = True) -> HighPtSample:
    """The first ``n_jets`` jets of a class: from the cache when a file with the same settings holds enough, else
    generated (``workers`` processes) and cached first. A smaller request is served from a bigger file (the shard
    order is fixed, so its first rows are exactly the smaller sample). Explained in
    ``book/simplicity/simplicity.ipynb``."""
    from hepnb.generate.highpt import highpt_class

    highpt_class(name)  # an unknown class fails before any file is touched
    n_jets = check_int("n_jets", n_jets)
    path = cache_path(name, seed, selection, folder)
    if cached_jets(path) < n_jets:
        generate_file(path, name, n_jets, seed, selection, workers, progress)
    return read_highpt(path, n_rows=n_jets)


def load_highpt(classes: Sequence[str], n_jets: int, seed: int = 0, workers: int = 1,
                folder: str | os.PathLike[str] | None = None, progress: bool = True) -> HighPtSample:
    """``n_jets`` jets of each of ``classes`` (names of :data:`hepnb.generate.highpt.HIGHPT_CLASSES`, e.g.
    ``["g", "q", "w", "z", "t"]``), concatenated in the given order; from the cache or generated. Explained in
    ``book/simplicity/simplicity.ipynb``."""
    from hepnb.generate.highpt import HIGHPT_CLASS_NAMES, highpt_class

    names = [classes] if isinstance(classes, str) else list(classes)
    if not names:
        raise ValueError(f"classes is empty; choose from {', '.join(HIGHPT_CLASS_NAMES)}")
    for name in names:
        highpt_class(name)
    if len(set(names)) != len(names):
        raise ValueError(f"classes {names} name a class twice")
    n_jets = check_int("n_jets", n_jets)
    return HighPtSample.concatenate([load_or_generate(name, n_jets, seed, None, workers, folder, progress)
                                     for name in names])
