"""Re-simulated jets in memory: one container for generated and public (RS3L) files.

Explained in ``book/data/resimulation.ipynb``. Every per-jet array is shaped ``(N, V, ...)``: row ``i`` is one hard
event and axis 1 the shower variation, so row ``i`` of every variation is the same hard scattering (pairing by
index, the RS3L layout). Constituents are pT-ordered and zero-padded to ``C``; ``mask`` marks real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hepnb.errors import SampleError

# Jet classes and variation names are defined in the catalogue (generated files carry one class each, the public
# RS3L files mix them); they are imported here too because every JetSample user needs them.
from hepnb.generate.catalogue import CLASS_LABELS, CLASS_NAMES, VARIATION_NAMES
from hepnb.validation import check_int

__all__ = ["JetSample", "SampleError", "CLASS_NAMES", "CLASS_LABELS", "VARIATION_NAMES", "ARRAY_FIELDS"]

# Per-row (N, ...) and per-jet (N, V, ...) array fields; the rest are metadata.
_ROW_FIELDS = ("label", "parton", "event_id")
_JET_FIELDS = ("p4", "charge", "pid", "d0", "dz", "mask", "jet_p4", "n_constituents")
ARRAY_FIELDS: tuple[str, ...] = (*_JET_FIELDS, *_ROW_FIELDS)


@dataclass(frozen=True, eq=False)
class JetSample:
    """Jets of ``N`` hard events in ``V`` shower variations with up to ``C`` constituents each.

    ``p4``             (N, V, C, 4) float32  constituent px, py, pz, E [GeV]
    ``charge``         (N, V, C)    int8     electric charge [e]
    ``pid``            (N, V, C)    int32    PDG id (0 for padding)
    ``d0``, ``dz``     (N, V, C)    float32  transverse / longitudinal impact parameter [mm] (0 for neutrals)
    ``mask``           (N, V, C)    bool     real constituent (True) or padding
    ``jet_p4``         (N, V, 4)    float64  jet px, py, pz, E [GeV] from all its constituents (before truncation)
    ``n_constituents`` (N, V)       int32    constituents of the jet before truncation to C
    ``label``          (N,)         int8     index into :data:`CLASS_NAMES`
    ``parton``         (N,)         int32    PDG id of what initiated the jet (25 H, 24 W, 23 Z, 21 g, 1-5 quarks)
    ``event_id``       (N,)         int64    hard-event id, unique within ``source``: splits are made on it
    ``variations``     names of axis 1 (a subset of :data:`VARIATION_NAMES`, in file order)
    ``source``         where the jets came from (a path); ``attrs`` the file's metadata
    """

    p4: np.ndarray
    charge: np.ndarray
    pid: np.ndarray
    d0: np.ndarray
    dz: np.ndarray
    mask: np.ndarray
    jet_p4: np.ndarray
    n_constituents: np.ndarray
    label: np.ndarray
    parton: np.ndarray
    event_id: np.ndarray
    variations: tuple[str, ...] = VARIATION_NAMES
    source: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.label)
        if self.p4.ndim != 4 or self.p4.shape[-1] != 4:
            raise SampleError(f"p4 must be (N, V, C, 4), got {self.p4.shape}")
        N, V, C, _ = self.p4.shape
        expect = {"charge": (N, V, C), "pid": (N, V, C), "d0": (N, V, C), "dz": (N, V, C), "mask": (N, V, C),
                  "jet_p4": (N, V, 4), "n_constituents": (N, V), "label": (n,), "parton": (n,), "event_id": (n,)}
        for name, shape in expect.items():
            if getattr(self, name).shape != shape:
                raise SampleError(f"{name} must have shape {shape}, got {getattr(self, name).shape}")
        if N != n:
            raise SampleError(f"p4 has {N} rows but label has {n}")
        if len(self.variations) != V:
            raise SampleError(f"{V} variations on axis 1 but {len(self.variations)} names: {self.variations}")
        if n and (self.label.min() < 0 or self.label.max() >= len(CLASS_NAMES)):
            raise SampleError(f"label outside 0..{len(CLASS_NAMES) - 1}")

    # -- sizes -------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.label)

    @property
    def n_variations(self) -> int:
        return self.p4.shape[1]

    @property
    def max_constituents(self) -> int:
        return self.p4.shape[2]

    @property
    def classes(self) -> tuple[str, ...]:
        """Names of the classes present, in :data:`CLASS_NAMES` order."""
        return tuple(CLASS_NAMES[i] for i in np.unique(self.label))

    def class_mask(self, name: str) -> np.ndarray:
        """Rows of class ``name`` (one of :data:`CLASS_NAMES`)."""
        if name not in CLASS_NAMES:
            raise SampleError(f"unknown class {name!r}; known: {', '.join(CLASS_NAMES)}")
        return self.label == CLASS_NAMES.index(name)

    def variation_index(self, variation: int | str) -> int:
        """Axis-1 index of a variation given by index or name."""
        if isinstance(variation, str):
            if variation not in self.variations:
                raise SampleError(f"variation {variation!r} not in this sample: {self.variations}")
            return self.variations.index(variation)
        if not 0 <= int(variation) < self.n_variations:
            raise SampleError(f"variation index {variation} outside 0..{self.n_variations - 1}")
        return int(variation)

    # -- slicing -----------------------------------------------------------------------------------------------
    def rows(self, index: Any) -> JetSample:
        """The hard events selected by ``index`` (slice, integer array or boolean mask), all variations."""
        changes = {name: getattr(self, name)[index] for name in (*_ROW_FIELDS, *_JET_FIELDS)}
        return replace(self, **changes)

    def select_variations(self, variations: Sequence[int | str]) -> JetSample:
        """Keep only the given variations (by index or name), in the given order."""
        idx = [self.variation_index(v) for v in variations]
        changes = {name: getattr(self, name)[:, idx] for name in _JET_FIELDS}
        return replace(self, variations=tuple(self.variations[i] for i in idx), **changes)

    def truncate(self, max_constituents: int) -> JetSample:
        """Keep the ``max_constituents`` hardest constituents of each jet (they are stored pT-ordered)."""
        c = min(check_int("max_constituents", max_constituents, error=SampleError), self.max_constituents)
        changes = {name: getattr(self, name)[:, :, :c] for name in ("p4", "charge", "pid", "d0", "dz", "mask")}
        return replace(self, **changes)

    @staticmethod
    def concatenate(samples: Sequence[JetSample]) -> JetSample:
        """Stack samples row-wise (e.g. one file per class). Variations and ``C`` must agree.

        ``event_id`` stays unique by offsetting each sample's ids by a multiple of 2**40 per source.
        """
        if not samples:
            raise SampleError("nothing to concatenate")
        first = samples[0]
        for s in samples[1:]:
            if s.variations != first.variations:
                raise SampleError(f"variations differ: {first.variations} vs {s.variations}")
            if s.max_constituents != first.max_constituents:
                raise SampleError(f"constituent counts differ: {first.max_constituents} vs {s.max_constituents}")
        arrays = {name: np.concatenate([getattr(s, name) for s in samples]) for name in (*_ROW_FIELDS, *_JET_FIELDS)}
        arrays["event_id"] = np.concatenate([s.event_id + (k << 40) for k, s in enumerate(samples)])
        return JetSample(**arrays, variations=first.variations, source=" + ".join(s.source for s in samples),
                         attrs={"parts": [s.attrs for s in samples]})

    def __repr__(self) -> str:
        counts = ", ".join(f"{c}: {int(self.class_mask(c).sum())}" for c in self.classes)
        return (f"JetSample({len(self)} hard events [{counts}] x {self.n_variations} variations "
                f"{self.variations} x {self.max_constituents} constituents; source={self.source!r})")

