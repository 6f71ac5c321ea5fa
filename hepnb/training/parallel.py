"""Many independent trainings (or analyses) in worker processes, with the same numbers as in one process.

Explained in ``book/symmetry/symmetry.ipynb`` (where it first runs) and used by ``book/simplicity/simplicity.ipynb``.
Each call runs single-threaded (:func:`one_thread`) in a spawned process, so a job's result is the same bits on a CPU
whatever the worker count, and the jobs of a chapter fill the cores of a laptop without fighting over them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from tqdm import tqdm

from hepnb.validation import check_int

__all__ = ["one_thread", "run_jobs", "share_memory"]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch single-threaded inside the block: the same bits whether a job runs here or in a worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def share_memory(tensors: Sequence[torch.Tensor], what: str) -> bool:
    """Move ``tensors`` to shared memory, so that a worker pool gets them as handles (a few hundred bytes each)
    instead of a copy per job; False (with a warning naming ``what``) where the machine's shared memory cannot hold
    them (a container's default /dev/shm is 64 MB): the caller then runs its jobs in one process."""
    try:
        for t in tensors:
            t.share_memory_()
    except RuntimeError as err:
        size = sum(t.numel() * t.element_size() for t in tensors) / 2**20
        warnings.warn(f"{what} ({size:.0f} MB) do not fit in shared memory ({err}); running in one process instead "
                      "of a worker pool (enlarge /dev/shm, e.g. docker --shm-size, to use it)", RuntimeWarning,
                      stacklevel=3)
        return False
    return True


def _single_threaded(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    with one_thread():
        return fn(*args)


def run_jobs(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], workers: int = 1, desc: str = "jobs",
             parallel: bool = True, progress: bool = True) -> list[Any]:
    """``[fn(*args) for args in calls]``, each single-threaded, in ``workers`` spawned processes when ``parallel``
    and there is more than one call (``fn`` and its arguments must then be picklable: a module-level function).
    Results come back in the order of ``calls``; a progress bar counts them. ``parallel=False`` (e.g. a GPU run)
    runs them here, one after the other."""
    workers = check_int("workers", workers)
    calls = list(calls)
    out: list[Any] = [None] * len(calls)
    bar = tqdm(total=len(calls), desc=desc, delay=2, disable=not progress or not calls)
    try:
        if workers == 1 or len(calls) <= 1 or not parallel:
            for i, args in enumerate(calls):
                out[i] = _single_threaded(fn, tuple(args))
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=min(workers, len(calls)), mp_context=context) as pool:
                futures = {pool.submit(_single_threaded, fn, tuple(args)): i for i, args in enumerate(calls)}
                for future in cf.as_completed(futures):
                    out[futures[future]] = future.result()
                    bar.update()
    finally:
        bar.close()
    return out
