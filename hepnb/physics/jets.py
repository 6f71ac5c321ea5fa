"""Jet clustering with FastJet's awkward interface; explained in ``book/getting_started.ipynb``.

FastJet prints a citation banner on its first clustering; hepnb silences it and the book cites FastJet
(Cacciari, Salam, Soyez, EPJC 72 (2012) 1896) instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import awkward as ak
import numpy as np

from hepnb.quiet import captured_stdout_fd

ALGORITHMS = ("antikt", "kt", "cambridge")
_banner_shown = False


@contextlib.contextmanager
def quiet_banner() -> Iterator[None]:
    """Run FastJet calls with its one-time citation banner silenced (only the first call needs it)."""
    global _banner_shown
    with contextlib.nullcontext() if _banner_shown else captured_stdout_fd():
        yield
    _banner_shown = True


def cluster(particles: ak.Array, R: float = 0.8, ptmin: float = 20.0, algorithm: str = "antikt"
            ) -> tuple[ak.Array, ak.Array]:
    """Cluster each event's particles into jets.

    ``particles``: per-event records with ``px, py, pz, E`` (GeV), as from
    :func:`hepnb.generate.visible_final_state`. Returns ``(jets, constituents)``: jets as ``Momentum4D`` records
    ``px, py, pz, E`` ordered by decreasing pT, and for each jet the indices of its particles in ``particles``
    (same jet order). Jets below ``ptmin`` GeV are dropped.
    """
    import fastjet
    import vector

    vector.register_awkward()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown jet algorithm {algorithm!r}; choose one of {ALGORITHMS}")
    if not 0 < R < 10:
        raise ValueError(f"jet radius R must lie in (0, 10), got {R!r}")
    if ptmin < 0:
        raise ValueError(f"ptmin must be >= 0, got {ptmin!r}")
    algo = {"antikt": fastjet.antikt_algorithm, "kt": fastjet.kt_algorithm,
            "cambridge": fastjet.cambridge_algorithm}[algorithm]
    inputs = ak.zip({k: ak.values_astype(particles[k], np.float64) for k in ("px", "py", "pz", "E")},
                    with_name="Momentum4D")
    with quiet_banner():
        sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(algo, float(R)))
        jets = sequence.inclusive_jets(min_pt=float(ptmin))
        constituents = sequence.constituent_index(min_pt=float(ptmin))
    jets = ak.zip({k: jets[k] for k in ("px", "py", "pz", "E")}, with_name="Momentum4D")
    order = ak.argsort(jets.pt, axis=1, ascending=False)
    return jets[order], constituents[order]


def constituent_residuals(particles: ak.Array, jets: ak.Array, constituents: ak.Array) -> np.ndarray:
    """Per jet of one event, the largest ``|sum of its constituents - jet|`` over px, py, pz, E [GeV].

    ``particles``, ``jets`` and ``constituents`` are one event's entries of :func:`cluster`'s inputs and outputs.
    FastJet's default E-scheme adds four-momenta, so the residuals are rounding only: a check the reader can see in
    ``book/getting_started.ipynb``.
    """
    if len(jets) == 0:
        return np.zeros(0)
    members = ak.unflatten(particles[ak.flatten(constituents)], ak.num(constituents))
    diffs = [ak.to_numpy(ak.sum(members[k], axis=1) - jets[k]) for k in ("px", "py", "pz", "E")]
    return np.abs(np.stack(diffs, axis=-1)).max(axis=-1)
