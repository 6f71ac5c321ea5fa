"""Where shards run: in this process, in a pool of spawned processes, or as tasks on a Dask cluster.

Explained in ``book/data/resimulation.ipynb`` (section "Generating at scale"). :func:`open_backend` gives a
:class:`Backend` with one interface for all three: ``submit(fn, *args)`` returns a future, ``wait(futures)``
returns the finished ones, ``slots()`` says how many shards to keep in flight, ``stop()`` cancels what is still
running. Shards are pure, so the
backend never changes the bytes of a sample, only how fast it is made.

``dask`` may be ``"local"`` (a ``distributed.LocalCluster`` of ``workers`` single-threaded worker processes, started
here and closed afterwards), a scheduler address such as ``"tcp://head-node:8786"`` (any cluster a user runs, e.g.
started by ``dask-jobqueue`` on SLURM or HTCondor; its workers must have hepnb installed), or a
``distributed.Client`` (used as it is, never closed). An unreachable scheduler fails within ``timeout`` seconds with
a :class:`~hepnb.errors.GeneratorError` naming the address. Every shard on Dask first checks that its worker has the
client's package versions and hepnb code (:func:`checked`), since a worker that differs would make other bytes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import functools
import logging
import multiprocessing
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hepnb.errors import GeneratorError
from hepnb.validation import check_int, check_positive

__all__ = ["Backend", "open_backend", "dask_client", "DASK_TIMEOUT", "fingerprint", "checked"]

DASK_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up
_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> what dask_client made it for


class Backend:
    """Runs shard jobs: ``submit`` returns a future (``cancel()``); ``wait`` blocks until at least one of the given
    futures is done and returns the done ones; ``result`` is a done future's shard; ``slots()`` is the number of
    shards to keep in flight; ``name`` says what it is (for run information); ``stop()`` cancels unfinished work."""

    name = "this process"

    def slots(self) -> int:
        return 1

    def wait(self, futures: Iterable[Any]) -> set[Any]:
        done, _ = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)
        return set(done)

    def result(self, future: Any) -> Any:
        """The shard a finished future holds (an error raised by the shard job is raised here)."""
        return future.result()

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        future.set_result(fn(*args))  # an exception (or Ctrl-C) propagates at once, from here
        return future

    def stop(self, futures: Any = ()) -> None:
        pass


class _Pool(Backend):
    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"process pool ({workers} workers)"
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def slots(self) -> int:
        return self.workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        return self.pool.submit(fn, *args)

    def stop(self, futures: Any = ()) -> None:
        # shards still running are not needed (or generation failed): stop them rather than wait
        futures = list(futures)
        for future in futures:
            future.cancel()
        if any(not f.done() for f in futures):
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


FINGERPRINT_PACKAGES = ("pythia8mc", "fastjet", "awkward", "numpy")


@functools.lru_cache(maxsize=1)
def fingerprint() -> tuple[tuple[str, str], ...]:
    """What decides a shard's bytes besides its arguments, on this machine: the versions of
    :data:`FINGERPRINT_PACKAGES`, and a SHA-256 of hepnb's generation and physics code (``hepnb/generate``,
    ``hepnb/physics``). A Dask worker compares it with the client's before it runs a shard."""
    import hashlib
    from pathlib import Path

    from hepnb.environment import version

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for folder in ("generate", "physics"):
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return (*((p, version(p)) for p in FINGERPRINT_PACKAGES), ("hepnb code", digest.hexdigest()[:16]))


def checked(expected: tuple[tuple[str, str], ...], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a Dask worker, after checking that the worker's :func:`fingerprint` is the client's
    ``expected``: a worker with other versions or other hepnb code would make other bytes, silently."""
    found = dict(fingerprint())
    wrong = [f"{k} {found.get(k)!r} (client: {v!r})" for k, v in expected if found.get(k) != v]
    if wrong:
        import socket

        raise GeneratorError(f"Dask worker on {socket.gethostname()} differs from the client: {'; '.join(wrong)}; "
                             "install the same hepnb checkout and packages on every worker")
    return fn(*args)


class _Dask(Backend):
    def __init__(self, client: Any, name: str):
        self.client, self.name = client, name

    def slots(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))  # follows an adaptive cluster as it scales
        except (cf.CancelledError, asyncio.CancelledError, OSError, TimeoutError) as err:
            raise self._lost(err) from err

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(checked, fingerprint(), fn, *args, pure=False)

    def wait(self, futures: Iterable[Any]) -> set[Any]:
        try:
            done, _ = _distributed().wait(list(futures), return_when="FIRST_COMPLETED")
        except (cf.CancelledError, asyncio.CancelledError, OSError, TimeoutError) as err:
            raise self._lost(err) from err
        return set(done)

    def result(self, future: Any) -> Any:
        try:
            return future.result()
        except (cf.CancelledError, asyncio.CancelledError) as err:  # not the shard's own error: the cluster's
            raise self._lost(err) from err

    def _lost(self, err: BaseException) -> GeneratorError:
        reason = " ".join(str(err).split())[:200]
        return GeneratorError(f"{self.name}: lost the Dask scheduler or its workers ({type(err).__name__}: {reason});"
                              " the finished shards are kept: run the same command again to resume")

    def stop(self, futures: Any = ()) -> None:
        futures = [f for f in futures if not f.done()]
        if futures:
            with contextlib.suppress(Exception):  # the scheduler may be gone already: nothing left to cancel
                self.client.cancel(futures)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - distributed is in requirements.txt
        raise GeneratorError("the Dask backend needs dask.distributed: pip install 'dask[distributed]'") from err
    return distributed


@contextlib.contextmanager
def dask_client(dask: Any, workers: int = 1, timeout: float = DASK_TIMEOUT) -> Iterator[tuple[Any, str]]:
    """``(client, description)`` for ``dask`` (``"local"``, a scheduler address or a ``distributed.Client``; see the
    module docstring). A local cluster and a client made here are closed on exit; a client passed in is not."""
    distributed = _distributed()
    if isinstance(dask, distributed.Client):
        yield dask, _NAMES.get(dask, f"dask ({dask.scheduler.address})")
        return
    if not isinstance(dask, str) or not dask.strip():
        raise GeneratorError(f"dask must be 'local', a scheduler address or a distributed.Client; got {dask!r}")
    timeout = check_positive("timeout", timeout, error=GeneratorError)
    if dask == "local":
        workers = check_int("workers", workers, error=GeneratorError)
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            _NAMES[client] = f"dask local cluster ({workers} workers)"
            yield client, _NAMES[client]
        return
    address = dask.strip()
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise GeneratorError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                             f"({type(err).__name__}: {err}); is `dask scheduler` running there?") from err
    try:
        yield client, f"dask ({address})"
    finally:
        client.close()


@contextlib.contextmanager
def open_backend(workers: int = 1, dask: Any = None, timeout: float = DASK_TIMEOUT) -> Iterator[Backend]:
    """The :class:`Backend` for ``workers`` processes (1: this process) or, if ``dask`` is given, for Dask (see the
    module docstring; ``workers`` then sizes a local cluster)."""
    workers = check_int("workers", workers)
    if dask is not None:
        with dask_client(dask, workers, timeout) as (client, name):
            yield _Dask(client, name)
        return
    backend = _Pool(workers) if workers > 1 else Backend()
    try:
        yield backend
    finally:
        if isinstance(backend, _Pool):
            backend.pool.shutdown(wait=False, cancel_futures=True)
