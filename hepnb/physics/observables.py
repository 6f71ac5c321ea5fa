"""Jet observables of a :class:`~hepnb.data.sample.JetSample` and how much each shower variation shifts them.

Explained in ``book/data/resimulation.ipynb``: the domain shift between showers is measured on physics observables
(mass, multiplicity, N2, displaced tracks) with the Kolmogorov-Smirnov distance to the nominal shower.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepnb.data.sample import JetSample
from hepnb.physics import kinematics
from hepnb.physics.substructure import n2

OBSERVABLES: dict[str, str] = {
    "mass": r"jet mass $m$ [GeV]",
    "pt": r"jet $p_T$ [GeV]",
    "multiplicity": "constituents per jet",
    "n2": r"$N_2^{(\beta=1)}$",
    "displaced": r"fraction of tracks with $|d_0| > 0.1$ mm",
    "tanh_d0": r"$\tanh d_0$ of every track [mm] (per constituent)",
}
DISPLACED_D0_MM = 0.1  # |d0| threshold of a "displaced" track (B hadrons: c*tau ~ 0.5 mm); not 0, see DESIGN 4


def observables(sample: JetSample, variation: int | str, with_n2: bool = True) -> dict[str, np.ndarray]:
    """Observables of one variation: see :data:`OBSERVABLES`. All are per jet except ``tanh_d0`` (one entry per
    track, all jets together). N2 costs ~0.3 ms per jet."""
    v = sample.variation_index(variation)
    charged = (sample.charge[:, v] != 0) & sample.mask[:, v]
    displaced = charged & (np.abs(sample.d0[:, v]) > DISPLACED_D0_MM)
    out = {"mass": kinematics.mass(sample.jet_p4[:, v]), "pt": kinematics.pt(sample.jet_p4[:, v]),
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


def peak_width(mass: np.ndarray, window: tuple[float, float] = (75.0, 175.0)) -> float:
    """Half the 16-84% range of the masses inside ``window`` [GeV]: a resolution-like width of a mass peak."""
    mass = np.asarray(mass, float)
    inside = mass[(mass > window[0]) & (mass < window[1])]
    return float(np.subtract(*np.percentile(inside, [84, 16])) / 2)


def iqr(values: np.ndarray) -> float:
    """Interquartile range (NaNs dropped)."""
    return float(np.subtract(*np.nanpercentile(np.asarray(values, float), [75, 25])))
