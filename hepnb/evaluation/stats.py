"""Statistics of small samples: seed-to-seed spread, paired bootstrap errors, and the verdict on a paper's claim.

Explained in ``book/data/resimulation.ipynb`` (paired bootstrap over hard events) and
``book/adversarial/adversarial.ipynb`` (seeds, the verdict rule). Every paper-vs-ours verdict in the book comes from
:func:`verdict`, so the rule is written once:

* a measured difference is an :class:`Estimate`: its mean, standard error, the degrees of freedom of that error and
  the sample size it came from (seeds, or hard events for a bootstrap);
* its two-sided interval at :data:`CONFIDENCE` uses the **Student-t** critical value with those degrees of freedom
  (n - 1 for n seeds, or for n paired differences; Welch-Satterthwaite for two independent sets of seeds; the normal
  value for a bootstrap over thousands of events). With 3 seeds the 95% factor is 4.30, not 2: a standard error
  from three numbers is itself very uncertain, and the t factor is exactly what makes the interval honest;
* the verdict is "yes" when the interval lies on the paper's side of zero, "no (opposite)" when on the other side,
  otherwise "undecided (needs >= N seeds)" where N, from the measured effect and spread, is the sample size at which
  a true effect of that size would be detected with :data:`POWER` (the exact non-central t power), or "not
  significant" where even :data:`MAX_SEEDS` seeds would not do (the effect is small against the noise). One seed
  has no error and gets no verdict.

Why t and not a bootstrap over seeds: with 3 to 5 values a bootstrap cannot see tails it never sampled and its
intervals are *too narrow* (it behaves like z, not t); a permutation test over 3 paired signs cannot reach 95% at
all (its smallest p-value is 1/8). The t interval is exact for normal seed-to-seed noise and robust to mild
departures, which is what a tests checks (coverage at the nominal rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _scipy

__all__ = ["CONFIDENCE", "POWER", "MAX_SEEDS", "Estimate", "Verdict", "seed_stats", "seed_estimate",
           "seed_difference", "paired_bootstrap", "t_critical", "power", "needed", "verdict"]

CONFIDENCE = 0.95  # two-sided confidence of every interval and verdict in the book
POWER = 0.8  # the detection probability a "needs >= N" sample size is computed for
MAX_SEEDS = 100  # beyond this, an effect is "not significant" rather than "undecided"
MAX_EVENTS_FACTOR = 100  # a bootstrap claim needing more than 100x its events is "not significant"


@dataclass(frozen=True)
class Estimate:
    """A mean (or a difference of means) with its standard error, the degrees of freedom of that error, the sample
    size ``n`` it came from (per side) and what the sample is (``"seeds"`` or ``"hard events"``).

    ``design``: ``"single"`` (one set of values), ``"paired"`` (per-seed differences), ``"independent"`` (two
    unpaired sets; Welch) or ``"bootstrap"`` (resampled events; normal). Unpacks as ``mean, error`` so
    ``format_pm(*estimate)`` works. Explained in ``book/adversarial/adversarial.ipynb``.
    """

    mean: float
    error: float
    dof: float
    n: int
    design: str = "single"
    sample: str = "seeds"

    def __iter__(self) -> Iterator[float]:
        yield self.mean
        yield self.error

    @property
    def unit(self) -> float:
        """The spread that gives the standard error at one unit of sample: ``error * sqrt(n)``."""
        return self.error * math.sqrt(self.n)

    def critical(self, confidence: float = CONFIDENCE) -> float:
        """The two-sided critical value of this estimate's t (or normal) distribution."""
        return t_critical(self.dof, confidence)

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """The two-sided interval at ``confidence``; ``(nan, nan)`` without an error (one seed)."""
        half = self.critical(confidence) * self.error
        if not math.isfinite(half):
            return math.nan, math.nan
        return self.mean - half, self.mean + half


@dataclass(frozen=True)
class Verdict:
    """The outcome of a claim: ``"yes"``, ``"opposite"``, ``"undecided"`` (with the sample size ``needed``),
    ``"not significant"`` or ``"none"`` (one seed, no error). ``str()`` gives the table's wording."""

    outcome: str
    needed: int | None = None
    sample: str = "seeds"

    def __str__(self) -> str:
        if self.outcome == "yes":
            return "yes"
        if self.outcome == "opposite":
            return "no (opposite)"
        if self.outcome == "undecided":
            return f"undecided (needs ≥{self.needed:,} {self.sample})"
        if self.outcome == "none":
            return "no verdict (one seed, no error)"
        return self.outcome


def seed_stats(values: Sequence[float]) -> tuple[float, float, float]:
    """``(mean, standard deviation, standard error of the mean)`` over seeds; the spread is NaN for one seed."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("no values")
    std = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return float(v.mean()), std, std / np.sqrt(v.size)


def seed_estimate(values: Sequence[float], design: str = "single") -> Estimate:
    """The mean of one value per seed as an :class:`Estimate` with n - 1 degrees of freedom. Pass per-seed
    differences (method minus default on the same seed) with ``design="paired"``."""
    mean, _, error = seed_stats(values)
    n = int(np.asarray(values).size)
    return Estimate(mean, float(error), float(n - 1) if n > 1 else math.nan, n, design)


def seed_difference(a: Sequence[float], b: Sequence[float], paired: bool = True) -> Estimate:
    """``mean(a) - mean(b)`` over seeds as an :class:`Estimate`.

    ``paired``: ``a[k]`` and ``b[k]`` share seed ``k`` (same initial weights, same data order, same split), so the
    error is that of the per-seed differences with n - 1 degrees of freedom: whatever the two share cancels.
    Otherwise the two standard errors add in quadrature with Welch-Satterthwaite degrees of freedom. NaN error for
    one seed. Explained in ``book/adversarial/adversarial.ipynb``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired values need one per seed on both sides; got {a.shape} and {b.shape}")
        return seed_estimate(a - b, design="paired")
    (ma, _, ea), (mb, _, eb) = seed_stats(a), seed_stats(b)
    error = float(np.hypot(ea, eb))
    if a.size < 2 or b.size < 2:
        dof = math.nan
    elif error == 0:
        dof = float(a.size + b.size - 2)
    else:
        dof = error**4 / (ea**4 / (a.size - 1) + eb**4 / (b.size - 1))
    return Estimate(ma - mb, error, float(dof), int(min(a.size, b.size)), "independent")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, statistic: Any, n_boot: int = 300, seed: int = 0) -> Estimate:
    """``statistic(b) - statistic(a)`` and its bootstrap standard error, as an :class:`Estimate` over the events.

    ``a`` and ``b`` are the same hard events in two variations (row ``i`` of both is one event), so rows are
    resampled *jointly*: the shower-to-shower correlation of the pair is kept, as it should be. Thousands of
    events make the statistic's distribution normal: the estimate has infinite degrees of freedom.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_bootstrap needs two 1-d arrays of the same length, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        rows = rng.integers(0, len(a), len(a))
        diffs[k] = statistic(b[rows]) - statistic(a[rows])
    return Estimate(float(statistic(b) - statistic(a)), float(diffs.std(ddof=1)), math.inf, len(a), "bootstrap",
                    "hard events")


def t_critical(dof: float, confidence: float = CONFIDENCE) -> float:
    """The two-sided critical value at ``confidence``: Student-t with ``dof`` degrees of freedom (normal for
    ``inf``); ``inf`` without degrees of freedom (``nan`` or < 1e-9: one seed decides nothing)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    q = 0.5 + confidence / 2
    if dof is None or not dof > 1e-9:
        return math.inf
    return float(_scipy.norm.ppf(q)) if math.isinf(dof) else float(_scipy.t.ppf(q, dof))


def _dof(design: str, n: int) -> float:
    """Degrees of freedom of an estimate of ``design`` from ``n`` per side (equal spreads for independent)."""
    if design == "bootstrap":
        return math.inf
    return float(2 * n - 2) if design == "independent" else float(n - 1)


def power(effect: float, unit: float, n: Any, design: str = "paired", confidence: float = CONFIDENCE) -> Any:
    """The probability that the two-sided test at ``confidence`` decides (either sign) on ``n`` per side (an int or
    an array of them), when the true effect is ``effect`` and one unit of sample has spread ``unit`` (error = unit /
    sqrt(n)): the exact non-central t (normal for a bootstrap)."""
    ns = np.atleast_1d(np.asarray(n, dtype=float))
    nc = abs(effect) * np.sqrt(ns) / unit
    if design == "bootstrap":
        crit = t_critical(math.inf, confidence)
        out = _scipy.norm.sf(crit - nc) + _scipy.norm.cdf(-crit - nc)
    else:
        dof = np.array([_dof(design, int(k)) for k in ns])
        ok = dof > 0
        out = np.zeros_like(ns)
        crit = np.array([t_critical(d, confidence) for d in dof[ok]])
        out[ok] = _scipy.nct.sf(crit, dof[ok], nc[ok]) + _scipy.nct.cdf(-crit, dof[ok], nc[ok])
    return float(out[0]) if np.ndim(n) == 0 else out


def needed(estimate: Estimate, confidence: float = CONFIDENCE, target: float = POWER) -> int | None:
    """The sample size (seeds, or events for a bootstrap) at which a true effect equal to the measured mean, with
    the measured spread, is decided with probability ``target``; ``None`` if that is more than :data:`MAX_SEEDS`
    seeds (or :data:`MAX_EVENTS_FACTOR` times the events), or if there is no spread to scale.

    A plug-in planning number: the measured effect is itself uncertain, so read it as an order of magnitude.
    """
    unit = estimate.unit
    if not (math.isfinite(unit) and unit > 0) or estimate.mean == 0:
        return None
    if estimate.design == "bootstrap":
        z = t_critical(math.inf, confidence) + float(_scipy.norm.ppf(target))
        n = math.ceil((z * unit / abs(estimate.mean)) ** 2)
        return n if n <= MAX_EVENTS_FACTOR * estimate.n else None
    ns = np.arange(2, MAX_SEEDS + 1)
    hits = np.flatnonzero(power(estimate.mean, unit, ns, estimate.design, confidence) >= target)
    return int(ns[hits[0]]) if hits.size else None


def verdict(estimate: Estimate, expected_sign: int, confidence: float = CONFIDENCE) -> Verdict:
    """The verdict on a claim that ``estimate`` has ``expected_sign`` (+1 or -1), by the rule in the module
    docstring: the two-sided ``confidence`` interval on the expected side of zero is "yes", on the other side
    "no (opposite)"; else "undecided" with the sample size :func:`needed`, or "not significant"; one seed, "none"."""
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1; got {expected_sign!r}")
    lo, hi = estimate.interval(confidence)
    if math.isnan(lo):
        return Verdict("none", sample=estimate.sample)
    if (lo > 0 and expected_sign > 0) or (hi < 0 and expected_sign < 0):
        return Verdict("yes", sample=estimate.sample)
    if lo > 0 or hi < 0:
        return Verdict("opposite", sample=estimate.sample)
    n = needed(estimate, confidence)
    return Verdict("undecided", n, estimate.sample) if n is not None and n > estimate.n else Verdict(
        "not significant", sample=estimate.sample)
