"""Event generation with Pythia 8 (the ``pythia8mc`` wheel); explained in ``book/getting_started.ipynb``.

``catalogue``  the jet classes and shower variations of the book, each defined once (no Pythia import)
``pythia``     a quiet, seeded, validated Pythia instance and batched generation into awkward arrays
``processes``  the named physics processes of the book (settings lists shared by every chapter)
``resim``      one shard: hard scatterings showered five ways, matched jets (``book/data/resimulation.ipynb``)
``dimuon``     Z and gamma* -> mu mu events for Nabat et al. (``book/symmetry/symmetry.ipynb``)
``highpt``     1 TeV g, q, W, Z, t jets like the hls4ml ones, for Glowacki (``book/simplicity/simplicity.ipynb``)
``shards``     many shards of any pure shard job in worker processes, merged into one reproducible sample
``shardstore`` finished shards on disk, so an interrupted generation resumes where it stopped
``backends``   where shards run: this process, a process pool, or a Dask cluster

The names below are loaded on first use, so ``import hepnb.generate.catalogue`` (which every file reader does) stays
light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"PROCESSES": "processes", "process_settings": "processes", "GeneratorError": "pythia",
            "derive_seed": "pythia", "generate_events": "pythia", "make_pythia": "pythia",
            "visible_final_state": "pythia"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hepnb.generate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hepnb.generate.{_EXPORTS[name]}"), name)
