"""Background reweighting in bins of one variable, so that it alone no longer separates the classes; explained in
``book/symmetry/symmetry.ipynb`` (Nabat et al., Sec. II and Fig. 1).

:func:`fit_reweighting` histograms the variable for signal and background in ``bins`` equal bins (the paper: 100)
and gives each background event the ratio of the two normalised histograms in its bin, scaled so that the
background's weights add up to the number of signal events (balanced classes). Signal events weigh 1. Values
outside the binned range fall into the first or last bin. The weights serve as sampling probabilities
(:class:`hepnb.data.datasets.DictBatches`) and as the weights of a weighted AUC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepnb.errors import SampleError
from hepnb.validation import check_int

__all__ = ["Reweighting", "fit_reweighting"]


@dataclass(frozen=True)
class Reweighting:
    """Bin ``edges`` and the background weight ``ratio`` per bin (signal density / background density, 0 where the
    background is empty), with ``scale`` making the background weights of the fitted sample sum to its signal
    count."""

    edges: np.ndarray
    ratio: np.ndarray
    scale: float

    def bin(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value, under- and overflow folded into the first and last bins."""
        return np.clip(np.searchsorted(self.edges, values, side="right") - 1, 0, len(self.ratio) - 1)

    def weights(self, values: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-event weights: 1 for signal (label 1), ``scale * ratio[bin]`` for background (label 0)."""
        values, labels = np.asarray(values, float), np.asarray(labels)
        if values.shape != labels.shape:
            raise SampleError(f"values {values.shape} and labels {labels.shape} must have one entry per event")
        return np.where(labels == 1, 1.0, self.scale * self.ratio[self.bin(values)])


def fit_reweighting(values: np.ndarray, labels: np.ndarray, bins: int = 100,
                    quantile: float = 0.999) -> Reweighting:
    """Fit background weights that make the background's histogram of ``values`` match the signal's.

    ``bins`` equal bins between the smallest value and the ``quantile`` of all values (the sparse tail above
    goes into the last bin). Raises :class:`~hepnb.errors.SampleError` if a class is missing.
    """
    values, labels = np.asarray(values, float), np.asarray(labels)
    bins = check_int("bins", bins)
    if values.shape != labels.shape or values.ndim != 1:
        raise SampleError(f"values and labels must be 1-d of one length; got {values.shape} and {labels.shape}")
    n_sig, n_bkg = int((labels == 1).sum()), int((labels == 0).sum())
    if n_sig == 0 or n_bkg == 0:
        raise SampleError(f"reweighting needs both classes; got {n_sig} signal and {n_bkg} background events")
    edges = np.linspace(values.min(), np.quantile(values, quantile), bins + 1)
    probe = Reweighting(edges, np.ones(bins), 1.0)
    sig = np.bincount(probe.bin(values[labels == 1]), minlength=bins) / n_sig
    bkg = np.bincount(probe.bin(values[labels == 0]), minlength=bins) / n_bkg
    ratio = np.divide(sig, bkg, out=np.zeros(bins), where=bkg > 0)
    total = ratio[probe.bin(values[labels == 0])].sum()
    return Reweighting(edges, ratio, n_sig / total)
