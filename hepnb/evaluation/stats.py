"""Statistics of small samples: the spread over seeds, paired bootstrap errors, and verdicts on a paper's claims.

Explained in ``book/data/resimulation.ipynb`` (paired bootstrap, verdicts) and ``book/adversarial/adversarial.ipynb``
(seed statistics). Every paper-vs-ours verdict in the book comes from :func:`verdict`, so the rule is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["seed_stats", "seed_difference", "paired_bootstrap", "verdict"]


def seed_stats(values: Sequence[float]) -> tuple[float, float, float]:
    """``(mean, standard deviation, standard error of the mean)`` over seeds; the spread is NaN for one seed."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("no values")
    std = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return float(v.mean()), std, std / np.sqrt(v.size)


def seed_difference(a: Sequence[float], b: Sequence[float], paired: bool = True) -> tuple[float, float]:
    """``mean(a) - mean(b)`` over seeds and its standard error.

    ``paired``: ``a[k]`` and ``b[k]`` share seed ``k`` (same initial weights, same data order), so the error is the
    standard error of the per-seed differences; else the two standard errors add in quadrature. NaN error for one
    seed. Explained in ``book/adversarial/adversarial.ipynb``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired values need one per seed on both sides; got {a.shape} and {b.shape}")
        mean, _, err = seed_stats(a - b)
        return mean, err
    (ma, _, ea), (mb, _, eb) = seed_stats(a), seed_stats(b)
    return ma - mb, float(np.hypot(ea, eb))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, statistic: Any, n_boot: int = 300, seed: int = 0
                     ) -> tuple[float, float]:
    """``statistic(b) - statistic(a)`` and its bootstrap standard error.

    ``a`` and ``b`` are the same hard events in two variations (row ``i`` of both is one event), so rows are
    resampled *jointly*: the shower-to-shower correlation of the pair is kept, as it should be.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_bootstrap needs two 1-d arrays of the same length, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        rows = rng.integers(0, len(a), len(a))
        diffs[k] = statistic(b[rows]) - statistic(a[rows])
    return float(statistic(b) - statistic(a)), float(diffs.std(ddof=1))


def verdict(difference: float, error: float, expected_sign: int, z: float = 2.0) -> str:
    """``"yes"`` if ``difference`` has the expected sign by more than ``z`` standard errors, ``"no (opposite)"`` if
    it has the other sign by as much, else ``"not significant"``."""
    if difference * expected_sign > z * error:
        return "yes"
    if difference * expected_sign < -z * error:
        return "no (opposite)"
    return "not significant"
