"""Jet observables of a :class:`~hepnb.sample.JetSample` and how much each shower variation shifts them.

Explained in ``book/data/resimulation.ipynb``: the domain shift between showers is measured on physics observables
(mass, multiplicity, N2, displaced tracks) with the Kolmogorov-Smirnov distance to the nominal shower.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepnb.sample import JetSample
from hepnb.substructure import n2

OBSERVABLES: dict[str, str] = {
    "mass": r"jet mass $m$ [GeV]",
    "pt": r"jet $p_T$ [GeV]",
    "multiplicity": "constituents per jet",
    "n2": r"$N_2^{(\beta=1)}$",
    "displaced": r"fraction of tracks with $|d_0| > 0.1$ mm",
    "tanh_d0": r"$\tanh d_0$ of every track [mm] (per constituent)",
}
DISPLACED_D0_MM = 0.1  # |d0| threshold of a "displaced" track (B hadrons: c*tau ~ 0.5 mm); not 0, see DESIGN 4


def jet_mass(jet_p4: np.ndarray) -> np.ndarray:
    """Invariant mass [GeV] of 4-vectors (..., 4) px, py, pz, E (negative m^2 from rounding -> 0)."""
    jet_p4 = np.asarray(jet_p4, dtype=np.float64)
    m2 = jet_p4[..., 3] ** 2 - (jet_p4[..., :3] ** 2).sum(-1)
    return np.sqrt(np.maximum(m2, 0.0))


def jet_pt(jet_p4: np.ndarray) -> np.ndarray:
    """Transverse momentum [GeV] of 4-vectors (..., 4)."""
    return np.hypot(jet_p4[..., 0], jet_p4[..., 1])


def observables(sample: JetSample, variation: int | str, with_n2: bool = True) -> dict[str, np.ndarray]:
    """Observables of one variation: see :data:`OBSERVABLES`. All are per jet except ``tanh_d0`` (one entry per
    track, all jets together). N2 costs ~0.3 ms per jet."""
    v = sample.variation_index(variation)
    charged = (sample.charge[:, v] != 0) & sample.mask[:, v]
    displaced = charged & (np.abs(sample.d0[:, v]) > DISPLACED_D0_MM)
    out = {"mass": jet_mass(sample.jet_p4[:, v]), "pt": jet_pt(sample.jet_p4[:, v]),
           "multiplicity": sample.n_constituents[:, v].astype(float),
           "displaced": displaced.sum(1) / np.maximum(charged.sum(1), 1),
           "tanh_d0": np.tanh(sample.d0[:, v][charged]).astype(float)}
    if with_n2:
        out["n2"] = n2(sample.p4[:, v], sample.mask[:, v])
    return out


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs), NaNs dropped."""
    from scipy.stats import ks_2samp

    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(ks_2samp(a[np.isfinite(a)], b[np.isfinite(b)]).statistic)


def ks_noise_level(n: int, m: int | None = None) -> float:
    """The KS distance two samples of sizes n, m from the SAME distribution stay below 95% of the time."""
    m = n if m is None else m
    return float(1.358 * np.sqrt((n + m) / (n * m)))


def shift_table(values: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], reference: str = "nominal",
                names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows (class, variation, one KS distance to ``reference`` per observable) from
    ``values[class][variation][observable]`` arrays; the reference variation itself is skipped."""
    rows = []
    for cls, per_variation in values.items():
        ref = per_variation[reference]
        keys = list(names) if names is not None else list(ref)
        for variation, obs in per_variation.items():
            if variation == reference:
                continue
            row: dict[str, Any] = {"class": cls, "variation": variation}
            for key in keys:
                row[f"KS {key}"] = round(ks_distance(obs[key], ref[key]), 3)
            rows.append(row)
    return rows


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


def peak_width(mass: np.ndarray, window: tuple[float, float] = (75.0, 175.0)) -> float:
    """Half the 16-84% range of the masses inside ``window`` [GeV]: a resolution-like width of a mass peak."""
    mass = np.asarray(mass, float)
    inside = mass[(mass > window[0]) & (mass < window[1])]
    return float(np.subtract(*np.percentile(inside, [84, 16])) / 2)


def iqr(values: np.ndarray) -> float:
    """Interquartile range (NaNs dropped)."""
    return float(np.subtract(*np.nanpercentile(np.asarray(values, float), [75, 25])))
