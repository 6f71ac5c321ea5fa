"""Many shards of generated events, in worker processes, merged into one byte-reproducible sample; explained in
``book/data/resimulation.ipynb`` (and used by the dimuons of ``book/symmetry/symmetry.ipynb``).

A *shard job* is a pure, picklable function ``job(shard, n) -> arrays`` that generates ``n`` events seeded from its
shard index (:func:`hepnb.generate.resim.simulate_shard` for re-simulated jets, :func:`hepnb.generate.dimuon.
simulate_shard` for dimuons). :func:`run_shards` decides how many events each shard has (:func:`shard_size`), runs
shards ``0, 1, 2, ...`` until enough events survive the job's selection, and merges them in index order.
Shards are pure (a function of their seed), so the result is the same bytes for any worker count or backend: shards
are merged in index order and the result is cut at ``n_events``; workers only change how many spare shards are
computed and thrown away. Where shards run is :mod:`hepnb.generate.backends` (this process, a process pool, Dask);
with a :class:`~hepnb.generate.shardstore.ShardStore`, every finished shard is saved at once and read back by a
later run, so an interrupted generation resumes where it stopped (section "Generating at scale" of the chapter).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from hepnb.generate.backends import Backend, open_backend
from hepnb.generate.catalogue import jet_class
from hepnb.generate.pythia import GeneratorError
from hepnb.generate.resim import Selection, simulate_shard
from hepnb.generate.shardstore import ShardStore
from hepnb.validation import check_int

__all__ = ["SHARD_SIZES", "SHARD_SIZE_MAX", "MAX_SHARDS", "ShardJob", "ShardRun", "shard_size", "run_shards",
           "run_counts", "merge", "generate_class", "run_labelled"]

ShardJob = Callable[[int, int], dict[str, Any]]  # (shard index, events to generate) -> arrays incl. "event_id"

# Hard events per shard: 500, 1000, 2000, 4000, then 8000 each. Small first shards keep small samples cheap; big later
# shards spread the Pythia initialisations (6 per shard, ~0.2 s each) over many events. The schedule is fixed, so the
# bytes of a sample depend neither on the worker count nor on how many events are asked for (a smaller sample is
# exactly the first rows of a bigger one). It is part of every cache file's hash (hepnb.data.cache).
SHARD_SIZES = (500, 1000, 2000, 4000)
SHARD_SIZE_MAX = 8000
MAX_SHARDS = 100_000  # a class whose matching efficiency is ~0 must not loop forever


def shard_size(shard: int) -> int:
    """Number of hard events of shard ``shard`` (see :data:`SHARD_SIZES`)."""
    return SHARD_SIZES[shard] if shard < len(SHARD_SIZES) else SHARD_SIZE_MAX


def _sizes(n_hard: int | None, factor: int) -> Callable[[int], int]:
    """Events of shard ``k``: ``n_hard`` for every shard if given, else ``factor *`` :func:`shard_size` ``(k)``."""
    if n_hard is not None:
        n_hard = check_int("n_hard", n_hard)
        return lambda k: n_hard
    factor = check_int("factor", factor)
    return lambda k: factor * shard_size(k)


def merge(shards: Sequence[dict[str, Any]], n_events: int) -> dict[str, Any]:
    """Concatenate the shards' arrays (every key but ``stats``) in the given order; keep the first ``n_events``.

    The shards of a :class:`ShardRun` with a store are on disk, not in memory: their merge is one
    :class:`~hepnb.generate.shardstore.ShardColumn` per key, read when it is written (same values, same bytes)."""
    if isinstance(shards, ShardRun) and shards.store is not None:
        return {k: shards.store.column(shards.sizes, k, n_events) for k in shards.keys}
    keys = [k for k in shards[0] if k != "stats"]
    return {k: np.concatenate([s[k] for s in shards])[:n_events] for k in keys}


def _run_info(used: ShardRun, seconds: float, workers: int) -> dict[str, Any]:
    """Run statistics of the shards used: shards, hard events tried; events showered, passed and seconds per step;
    shards generated and reused, and the backend."""
    info: dict[str, Any] = {"shards": len(used), "wall_seconds": seconds, "workers": workers,
                            **run_counts(used),
                            "hard_tried": sum(s["stats"]["hard_tried"] for s in used),
                            "showered": {}, "passed": {}, "seconds": {}}
    for key in ("showered", "passed", "seconds"):
        for s in used:
            for name, value in s["stats"][key].items():
                info[key][name] = info[key].get(name, 0) + value
    return info


def run_counts(run: ShardRun) -> dict[str, Any]:
    """What a run did, for run information: shards generated and reused (counts), and the backend."""
    return {"generated": len(run.generated), "reused": len(run.reused), "backend": run.backend}


class _Prefix:
    """Finished shards by index, and the kept events of the shortest run ``0..k-1`` of them reaching ``n_events``."""

    def __init__(self, n_events: int, bar: Any):
        self.n_events, self.bar = n_events, bar
        self.results: dict[int, dict[str, Any]] = {}
        self.keys: list[str] = []  # the array names of a shard (every key but "stats")
        self.have = self.length = 0

    def add(self, shard: int, result: dict[str, Any], full: dict[str, Any]) -> None:
        """Shard ``shard`` finished: ``result`` is what is kept of it (all of it, or ``event_id`` and ``stats`` when
        its arrays are in a store), ``full`` the whole shard (for its array names)."""
        self.results[shard] = result
        self.keys = self.keys or [k for k in full if k != "stats"]
        total, k = 0, 0
        while k in self.results and total < self.n_events:
            total += len(self.results[k]["event_id"])
            k += 1
        self.bar.update(min(total, self.n_events) - min(self.have, self.n_events))
        self.have, self.length = total, k

    @property
    def done(self) -> bool:
        return self.have >= self.n_events

    def used(self) -> list[dict[str, Any]]:
        return [self.results[k] for k in range(self.length)]


class ShardRun(list):
    """The shards used (a list, in index order) with what the run did: ``generated`` and ``reused`` (read back from
    a :class:`~hepnb.generate.shardstore.ShardStore`) list shard indices, ``backend`` names where they ran. With a
    ``store``, the listed shards keep only ``event_id`` and ``stats`` in memory (their arrays are in the store's
    files: ``sizes`` gives each used shard's ``(index, size)``, ``keys`` their array names), and :func:`merge` reads
    them from there."""

    generated: list[int]
    reused: list[int]
    backend: str
    store: ShardStore | None = None
    sizes: list[tuple[int, int]]
    keys: list[str]


def _light(result: dict[str, Any]) -> dict[str, Any]:
    """What the run keeps in memory of a shard that is saved in a store: its row ids and statistics."""
    return {"event_id": result["event_id"], "stats": result["stats"]}


def run_shards(job: ShardJob, n_events: int, workers: int = 1, n_hard: int | None = None, desc: str = "events",
               progress: bool = True, factor: int = 1, store: ShardStore | None = None, dask: Any = None
               ) -> ShardRun:
    """The shards ``0 .. k-1`` of ``job`` whose kept events first reach ``n_events``, in index order.

    Shard ``k`` is ``job(k, n)`` with ``n = n_hard`` or ``factor *`` :func:`shard_size` ``(k)`` (a generator whose
    events are cheap takes bigger shards, to spread Pythia's initialisation over more of them; the factor is part of
    its files' cache hash). They run in this process (``workers`` 1), in ``workers`` spawned processes (a notebook
    kernel's threads are not forked), or on Dask (``dask``: ``"local"``, a scheduler address or a
    ``distributed.Client``; :mod:`hepnb.generate.backends`). With a ``store``, each shard is written to its own file
    the moment it finishes, and a shard whose file is already there (an interrupted run's) is read back instead of
    generated. Shards are pure, so the result is the same for any backend, worker count or interruption: more
    workers only compute (and drop) more spare shards. Merge the result with :func:`merge`.
    """
    n_events = check_int("n_events", n_events)
    workers = check_int("workers", workers)
    size = _sizes(n_hard, factor)
    bar = tqdm(total=n_events, desc=desc, unit="ev", disable=not progress, delay=2.0)
    prefix = _Prefix(n_events, bar)
    run = ShardRun()
    run.generated, run.reused = [], []
    try:
        with open_backend(workers, dask) as backend:
            run.backend = backend.name
            _run(job, backend, size, prefix, store, run)
    finally:
        bar.close()
    if not prefix.done:
        raise GeneratorError(f"{desc}: {MAX_SHARDS} shards gave only {prefix.have} events")
    run.extend(prefix.used())
    run.store, run.sizes, run.keys = store, [(k, size(k)) for k in range(len(run))], prefix.keys
    return run


def _run(job: ShardJob, backend: Backend, size: Callable[[int], int], prefix: _Prefix, store: ShardStore | None,
         run: ShardRun) -> None:
    """Run (or read back from ``store``) shards ``0, 1, ...`` of ``job`` on ``backend`` until ``prefix`` is done
    (or :data:`MAX_SHARDS`); each generated shard is saved to ``store`` as soon as it finishes."""
    running: dict[Any, int] = {}  # future -> shard index
    next_shard = 0

    def note() -> None:
        prefix.bar.set_postfix_str(f"shards: {len(run.generated)} new, {len(run.reused)} reused", refresh=False)

    try:
        while not prefix.done:
            # Keep the backend busy, but stop submitting once the shards in flight are expected to cover what is
            # missing (kept fraction measured on the finished shards). Extra shards only cost time.
            slots = backend.slots()
            while next_shard < MAX_SHARDS and not prefix.done:
                tried = sum(size(k) for k in prefix.results)
                rate = sum(len(r["event_id"]) for r in prefix.results.values()) / tried if tried else None
                in_flight = sum(size(k) for k in running.values())
                if rate is not None and prefix.have + rate * in_flight >= 1.2 * prefix.n_events:
                    break
                finished = store.load(next_shard, size(next_shard)) if store is not None else None
                if finished is not None:
                    run.reused.append(next_shard)
                    prefix.add(next_shard, _light(finished), finished)
                    next_shard += 1
                    note()
                    continue
                if len(running) >= slots:
                    break
                running[backend.submit(job, next_shard, size(next_shard))] = next_shard
                next_shard += 1
            if prefix.done or not running:
                return  # done, or MAX_SHARDS spent: the caller reports it
            for future in sorted(backend.wait(running), key=running.__getitem__):
                shard = running.pop(future)
                result = backend.result(future)
                run.generated.append(shard)
                if store is not None:
                    store.save(shard, size(shard), result)
                    prefix.add(shard, _light(result), result)
                else:
                    prefix.add(shard, result, result)
                note()
    finally:
        backend.stop(running)


def run_labelled(job: ShardJob, n_events: int, label: int, workers: int = 1, desc: str = "events",
                 progress: bool = True, factor: int = 1, store: ShardStore | None = None, dask: Any = None
                 ) -> tuple[dict[str, np.ndarray], ShardRun]:
    """:func:`run_shards` then :func:`merge` for a generator of one class: the first ``n_events`` rows with a
    ``label`` column (int8) added, and the shards used (their ``stats`` for run information; ``store`` and ``dask``
    as in :func:`run_shards`). What the dimuon and
    1 TeV jet files are made of (``book/symmetry/symmetry.ipynb``, ``book/simplicity/simplicity.ipynb``)."""
    used = run_shards(job, n_events, workers, desc=desc, progress=progress, factor=factor, store=store, dask=dask)
    arrays = merge(used, n_events)
    arrays["label"] = np.full(n_events, label, dtype=np.int8)
    return arrays, used


def _resim_job(class_name: str, seed: int, sel: Selection, shard: int, n: int) -> dict[str, Any]:
    return simulate_shard(class_name, seed, shard, n, sel)


def generate_class(class_name: str, n_events: int, seed: int = 0, selection: Selection | None = None,
                   workers: int = 1, n_hard: int | None = None, progress: bool = True,
                   store: ShardStore | None = None, dask: Any = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``n_events`` hard events of one class, each with its matched jet in every variation.

    Shards ``0, 1, 2, ...`` (``n_hard`` hard events each, default :func:`shard_size`) are seeded from
    ``(seed, class, shard)`` and merged in index order by :func:`run_shards`, so the arrays are identical for any
    ``workers`` or backend (``store``, ``dask``: as in :func:`run_shards`). Returns the arrays (see
    :func:`hepnb.generate.resim.simulate_shard`) and run statistics (shards used, events showered and seconds per
    step summed over the used shards, wall time, shards generated and reused, the backend).
    """
    cls = jet_class(class_name)
    sel = selection or Selection()
    t0 = time.perf_counter()
    job = functools.partial(_resim_job, cls.name, int(seed), sel)
    used = run_shards(job, n_events, workers, n_hard, f"{cls.name} hard events", progress, store=store, dask=dask)
    return merge(used, n_events), _run_info(used, time.perf_counter() - t0, workers)
