"""Classifier scores of Rothen et al.: AUC, background rejection at a signal efficiency, the fractional
improvement Delta S (eq. 14) and mass sculpting by the Jensen-Shannon divergence (App. D 2).

Explained in ``book/adversarial/adversarial.ipynb``. Labels are 1 for signal (H->bb) and 0 for background (QCD);
a higher score means more signal-like. All functions are pure and take numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import wasserstein_distance
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["auc", "rejection_curve", "rejection_at", "threshold_at", "delta_s", "jensen_shannon",
           "mass_sculpting", "wasserstein"]


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels and scores must be 1-d of one length; got {labels.shape} and {scores.shape}")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError("labels must be 0 (background) or 1 (signal)")
    if labels.min() == labels.max():
        raise ValueError("labels hold one class only: signal and background are both needed")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return labels.astype(int), scores


def _check_efficiency(eff: float) -> None:
    if not 0.0 < eff < 1.0:
        raise ValueError(f"a signal efficiency must lie strictly between 0 and 1; got {eff}")


def auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Area under the ROC curve (probability that a random signal jet outscores a random background jet).

    ``weights``: per-example weights (the reweighted background of ``book/symmetry/symmetry.ipynb``)."""
    labels, scores = _check(labels, scores)
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != labels.shape or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"weights must be finite, >= 0 and one per example; got shape {weights.shape}")
    return float(roc_auc_score(labels, scores, sample_weight=weights))


def rejection_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(signal efficiency, background rejection 1/eps_B)`` over all thresholds, efficiency ascending.

    Points with no background passing (``eps_B = 0``, infinite rejection) are dropped.
    """
    labels, scores = _check(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    keep = fpr > 0
    return tpr[keep], 1.0 / fpr[keep]


def threshold_at(labels: np.ndarray, scores: np.ndarray, eff: float) -> float:
    """The score cut that keeps the fraction ``eff`` of signal jets (``score >= cut``)."""
    labels, scores = _check(labels, scores)
    _check_efficiency(eff)
    signal = np.sort(scores[labels == 1])
    return float(np.quantile(signal, 1.0 - eff, method="inverted_cdf"))


def rejection_at(labels: np.ndarray, scores: np.ndarray, eff: float = 0.85) -> float:
    """Background rejection ``1 / eps_B`` at signal efficiency ``eff`` (Rothen et al.: 0.85).

    ``eps_B`` is read off the ROC curve by linear interpolation in signal efficiency, so it does not jump with the
    last few signal jets; ``inf`` if no background passes.
    """
    labels, scores = _check(labels, scores)
    _check_efficiency(eff)
    fpr, tpr, _ = roc_curve(labels, scores)
    eps_b = float(np.interp(eff, tpr, fpr))
    return np.inf if eps_b == 0 else 1.0 / eps_b


def delta_s(score: float | np.ndarray, default: float | np.ndarray, target: float | np.ndarray) -> np.ndarray:
    """Fractional improvement of Rothen et al., eq. 14: ``(S'_a^b - S_a^b) / (S_b^b - S_a^b)``.

    ``score``: the method trained on a, evaluated on b; ``default``: the default model trained on a, evaluated on b;
    ``target``: the default model trained and evaluated on b. 0 = no better than default, 1 = as good as training on
    the evaluation simulator. Meaningless when the target gap is within the noise: a zero gap raises.
    """
    score, default, target = (np.asarray(v, dtype=float) for v in (score, default, target))
    gap = target - default
    if np.any(gap == 0):
        raise ValueError("Delta S is undefined: the default model already scores the target (zero gap)")
    return (score - default) / gap


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two histograms; each is normalised to unit sum first."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"histograms must be 1-d of one shape; got {p.shape} and {q.shape}")
    if np.any(p < 0) or np.any(q < 0) or p.sum() == 0 or q.sum() == 0:
        raise ValueError("histograms must be non-negative and not empty")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def mass_sculpting(mass: np.ndarray, labels: np.ndarray, scores: np.ndarray, eff: float | Sequence[float] = 0.85,
                   bins: np.ndarray | int = 40, mass_range: tuple[float, float] = (0.0, 300.0)) -> np.ndarray:
    """Jensen-Shannon divergence between the mass of background jets that pass and that fail the cut keeping the
    signal fraction ``eff`` (Rothen et al., App. D 2, Fig. 6): 0 when the cut leaves the background mass shape alone,
    larger the more the classifier sculpts it. One value per efficiency.
    """
    labels, scores = _check(labels, scores)
    mass = np.asarray(mass, dtype=float)
    if mass.shape != scores.shape:
        raise ValueError(f"mass must have the scores' shape {scores.shape}; got {mass.shape}")
    effs = np.atleast_1d(np.asarray(eff, dtype=float))
    edges = np.histogram_bin_edges(mass, bins=bins, range=mass_range) if np.isscalar(bins) else np.asarray(bins)
    bkg = labels == 0
    out = []
    for e in effs:
        cut = threshold_at(labels, scores, float(e))
        passed = bkg & (scores >= cut)
        failed = bkg & (scores < cut)
        if not passed.any() or not failed.any():
            out.append(np.nan)  # every background jet on one side: no shape to compare
            continue
        out.append(jensen_shannon(np.histogram(mass[passed], edges)[0], np.histogram(mass[failed], edges)[0]))
    return np.asarray(out)


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """The 1-d Wasserstein (earth mover's) distance between two samples of a score, ``scipy.stats``'s, as Harris et
    al. (Tables III and V) compute it on the sigmoid output of nominal and re-simulated jets.

    For two samples it is the area between their empirical CDFs: a shift of every value by ``d`` gives ``|d|``.
    Explained in ``book/rs3l/rs3l.ipynb``."""
    a, b = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
    if a.size == 0 or b.size == 0:
        raise ValueError("the Wasserstein distance needs two non-empty samples")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("the Wasserstein distance needs finite values")
    return float(wasserstein_distance(a, b))
