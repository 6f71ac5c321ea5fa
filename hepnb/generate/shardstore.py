"""Finished shards on disk: the unit of the generation cache, so an interrupted generation resumes where it stopped.

Explained in ``book/data/resimulation.ipynb`` (section "Generating at scale"). While a sample is generated, every
shard that finishes is written at once, atomically, to its own file in a folder next to the sample's file::

    data/resim/resim-hbb-seed0-<hash>.h5            the merged sample (hepnb.data.store)
    data/resim/resim-hbb-seed0-<hash>.shards/       its finished shards, until they are merged
        shard-00000-n500.npz                        shard 0, generated with 500 events (the schedule's size)
        shard-00001-n1000.npz

A later call for the same sample (same generation record, so the same folder) reads the finished shards back
instead of generating them again. A shard file is trusted only if it opens, every array passes the zip CRC check,
and its metadata names the same generation record (its SHA-256), shard index and size; anything else (truncated,
corrupt, foreign, or left by other settings) is deleted with a :class:`~hepnb.errors.ShardWarning` naming the file and
generated again. Shards are pure functions of their index, so a shard read back is the same bytes as a new one and
the merged sample is byte-identical whether it was generated in one go, resumed, on a process pool or on Dask.
Once the sample is written the folder is removed, unless it is asked to be kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepnb.data.files import atomic_path
from hepnb.errors import ShardWarning

__all__ = ["SHARD_FORMAT", "SHARD_VERSION", "ShardStore", "ShardColumn", "shard_folder"]

SHARD_FORMAT = "hepnb-shard"
SHARD_VERSION = 1
_META, _STATS = "__meta__", "__stats__"
_NAME = re.compile(r"shard-(\d{5,})-n(\d+)\.npz")


def shard_folder(path: str | os.PathLike[str]) -> Path:
    """The folder of finished shards of the sample file ``path``: the same name with ``.shards`` for ``.h5``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.shards")


class _Untrusted(ValueError):
    """Why a shard file cannot be trusted (the message of its warning)."""


def _text(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, sort_keys=True).encode(), dtype=np.uint8)


class ShardStore:
    """The finished shards of one sample: ``folder`` holds them, ``record_hash`` (the SHA-256 of the sample's
    generation record, :func:`hepnb.data.cache.settings_hash`) says which settings they belong to.

    :meth:`load` returns a trusted shard or ``None``, :meth:`save` writes one atomically, :meth:`finish` removes the
    folder once the sample is merged (unless ``keep``). Counts of what happened are in :attr:`loaded`,
    :attr:`saved` and :attr:`rejected`."""

    def __init__(self, folder: str | os.PathLike[str], record_hash: str):
        if not re.fullmatch(r"[0-9a-f]{64}", str(record_hash)):
            raise ValueError(f"record_hash must be a SHA-256 hex digest, got {record_hash!r}")
        self.folder, self.record_hash = Path(folder), str(record_hash)
        self._lock: Any = None  # the open lock file while :meth:`use` holds it
        self.loaded: list[int] = []
        self.saved: list[int] = []
        self.rejected: list[int] = []

    @classmethod
    def for_file(cls, path: str | os.PathLike[str], record: Mapping[str, Any]) -> ShardStore:
        """The store of the sample file ``path`` generated with the generation ``record``."""
        import hashlib

        from hepnb.data.store import _json

        return cls(shard_folder(path), hashlib.sha256(_json(record).encode()).hexdigest())

    @classmethod
    @contextlib.contextmanager
    def generating(cls, path: str | os.PathLike[str], record: Mapping[str, Any], keep: bool = False
                   ) -> Iterator[ShardStore]:
        """The store of the sample file ``path`` for one generation: locked (:meth:`use`) while the body runs,
        generates, merges and writes ``path``; finished (:meth:`finish`) if the body succeeds, so an interrupted or
        failed generation keeps its shards for the next call."""
        store = cls.for_file(path, record)
        with store.use():
            yield store
            store.finish(keep)

    def path(self, shard: int, n: int) -> Path:
        """The file of shard ``shard`` generated with ``n`` events."""
        return self.folder / f"shard-{int(shard):05d}-n{int(n)}.npz"

    def finished(self) -> dict[int, Path]:
        """The shard files present (not checked), by shard index."""
        if not self.folder.is_dir():
            return {}
        found = {}
        for entry in self.folder.iterdir():
            match = _NAME.fullmatch(entry.name)
            if match:
                found[int(match.group(1))] = entry
        return dict(sorted(found.items()))

    def save(self, shard: int, n: int, result: Mapping[str, Any]) -> Path:
        """Write a finished shard (its arrays and its ``stats``) atomically; returns the file."""
        arrays = {k: np.asarray(v) for k, v in result.items() if k != "stats"}
        if not arrays or any(k.startswith("__") for k in arrays):
            raise ValueError(f"shard {shard}: nothing to save, or an array name starting with '__'")
        meta = {"format": SHARD_FORMAT, "version": SHARD_VERSION, "record_hash": self.record_hash,
                "shard": int(shard), "n": int(n), "keys": list(arrays)}
        path = self.path(shard, n)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays, **{_META: _text(meta), _STATS: _text(result.get("stats", {}))})
                f.flush()
                os.fsync(f.fileno())
        self.saved.append(int(shard))
        return path

    def _read(self, path: Path, shard: int, n: int) -> dict[str, Any]:
        """The shard in ``path``, or :class:`_Untrusted` saying why it cannot be trusted."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if _META not in z.files:
                    raise _Untrusted("no hepnb shard metadata (a foreign file)")
                meta = json.loads(bytes(z[_META]).decode())
                if meta.get("format") != SHARD_FORMAT or meta.get("version") != SHARD_VERSION:
                    raise _Untrusted(f"format {meta.get('format')!r} version {meta.get('version')!r}, expected "
                                     f"{SHARD_FORMAT!r} version {SHARD_VERSION}")
                if meta.get("record_hash") != self.record_hash:
                    raise _Untrusted("written for other generation settings (record hash "
                                     f"{str(meta.get('record_hash'))[:16]}, expected {self.record_hash[:16]})")
                if (meta.get("shard"), meta.get("n")) != (shard, n):
                    raise _Untrusted(f"holds shard {meta.get('shard')} of {meta.get('n')} events, expected shard "
                                     f"{shard} of {n}")
                keys = list(meta.get("keys", []))
                missing = [k for k in keys if k not in z.files]
                if not keys or missing:
                    raise _Untrusted(f"arrays {missing or keys} missing")
                result: dict[str, Any] = {k: z[k] for k in keys}  # reads every byte: the zip CRC is checked
                result["stats"] = json.loads(bytes(z[_STATS]).decode())
        except _Untrusted:
            raise
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as err:
            raise _Untrusted(f"unreadable (truncated or corrupt): {type(err).__name__}: {err}") from err
        rows = {len(v) for k, v in result.items() if k != "stats"}
        if len(rows) != 1:
            raise _Untrusted(f"arrays of different lengths {sorted(rows)}")
        return result

    def load(self, shard: int, n: int) -> dict[str, Any] | None:
        """Shard ``shard`` of ``n`` events if its file exists and can be trusted, else ``None``. A file that cannot
        be trusted is deleted with a :class:`ShardWarning` naming it and why (the caller generates it again)."""
        path = self.path(shard, n)
        if not path.is_file():
            return None
        try:
            result = self._read(path, int(shard), int(n))
        except _Untrusted as err:
            warnings.warn(f"{path}: {err}; generating this shard again", ShardWarning, stacklevel=2)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self.rejected.append(int(shard))
            return None
        self.loaded.append(int(shard))
        return result

    def column(self, shards: Sequence[tuple[int, int]], key: str, n_rows: int) -> ShardColumn:
        """The array ``key`` of the saved shards ``shards`` (``(index, size)`` pairs, in merge order), cut at
        ``n_rows``, read only when it is used (:class:`ShardColumn`)."""
        return ShardColumn(self, tuple(shards), key, n_rows)

    @contextlib.contextmanager
    def use(self) -> Iterator[ShardStore]:
        """Hold a shared lock on the folder while a generation runs, merges and writes: two processes making the same
        file at once (two notebooks, two commands) share the finished shards, and :meth:`finish` in one of them
        leaves the folder to the other instead of deleting shards it is about to merge."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = open(self.folder / ".lock", "a+b")  # noqa: SIM115 - held until the generation ends
        try:
            fcntl.flock(lock, fcntl.LOCK_SH)
            self._lock = lock
            yield self
        finally:
            self._lock = None
            lock.close()  # releases the lock

    def finish(self, keep: bool = False) -> None:
        """After the merged sample is written: remove the folder of shards, unless ``keep``, or unless another
        process is generating the same file (it holds the folder's lock, :meth:`use`; it removes it when done)."""
        if keep:
            return
        if self._lock is not None:
            lock = self._lock
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only if no one else holds it
            except BlockingIOError:
                return
        shutil.rmtree(self.folder, ignore_errors=True)


class ShardColumn:
    """One array of a merged sample, left in its shard files until it is used: ``len()`` is known at once,
    ``numpy.asarray(column)`` reads the shards one by one into a single array of the final size. So writing a
    merged file holds one column at a time in memory, not every shard plus their concatenation (at paper scale,
    ~7 GB instead of ~17 GB for 500k re-simulated hard events). The files were checked when the shards were saved
    or read back; a shard file that has gone missing since raises :class:`~hepnb.errors.DataFileError`."""

    def __init__(self, store: ShardStore, shards: tuple[tuple[int, int], ...], key: str, n_rows: int):
        self.store, self.shards, self.key, self.n_rows = store, shards, key, int(n_rows)

    def __len__(self) -> int:
        return self.n_rows

    def _part(self, shard: int, n: int) -> np.ndarray:
        from hepnb.errors import DataFileError

        path = self.store.path(shard, n)
        try:
            with np.load(path, allow_pickle=False) as z:
                return z[self.key]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
            raise DataFileError(f"{path}: a shard of this merge cannot be read any more: {err}") from err

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out: np.ndarray | None = None
        row = 0
        for shard, n in self.shards:
            if row >= self.n_rows:
                break
            part = self._part(shard, n)[: self.n_rows - row]
            if out is None:
                out = np.empty((self.n_rows, *part.shape[1:]), dtype=part.dtype if dtype is None else dtype)
            out[row:row + len(part)] = part
            row += len(part)
        if out is None or row != self.n_rows:
            raise ValueError(f"shards {[k for k, _ in self.shards]} hold {row} rows of {self.key!r}, "
                             f"{self.n_rows} were asked for")
        return out
