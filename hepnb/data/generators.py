"""The book's three generators under one interface, and the data each chapter needs at a scale.

Explained in ``book/data/resimulation.ipynb`` (section "Generating at scale"); used by the command line
(``python -m hepnb generate``, ``python -m hepnb data``, :mod:`hepnb.cli`).

:data:`GENERATORS` names them: ``resim`` (hard events showered five ways, :mod:`hepnb.data.cache`), ``dimuon``
(Z and gamma* -> mu mu, :mod:`hepnb.data.dimuon`) and ``highpt`` (1 TeV g, q, W, Z, t jets, :mod:`hepnb.data.highpt`).
Each knows its classes, its cache file, how many rows a cached file holds, and how to generate one.

A :class:`Request` is one cached file a chapter reads: generator, class, seed and size. Every study module with data
has ``data_requests(cfg)``, the requests its loader makes with the configuration ``cfg``; :func:`plan` collects them
over every chapter at a scale (the largest size per file), which is what ``make data SCALE=paper`` generates, so
that ``make paper`` on a GPU finds its data cached.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepnb.errors import ConfigError
from hepnb.validation import check_int

__all__ = ["Generator", "GENERATORS", "generator", "Request", "plan", "merge_requests"]


@dataclass(frozen=True)
class Generator:
    """One generator: ``name``, what it makes (``description``), what its rows are (``unit``), its ``classes``, and
    the module holding ``cache_path``, ``generate_file`` and the cached-row count ``count`` (a function name)."""

    name: str
    description: str
    unit: str
    classes: tuple[str, ...]
    module: str
    count: str

    def _module(self) -> Any:
        return importlib.import_module(self.module)

    def check_class(self, class_name: str) -> str:
        """``class_name`` if this generator makes it, else :class:`ConfigError` listing the ones it makes."""
        if class_name not in self.classes:
            raise ConfigError(f"generator {self.name!r} has no class {class_name!r}; its classes are "
                              f"{', '.join(self.classes)}")
        return class_name

    def path(self, class_name: str, seed: int = 0) -> Path:
        """The cache file of ``class_name`` at ``seed`` (in ``hepnb.config.data_dir()``)."""
        return self._module().cache_path(self.check_class(class_name), seed)

    def cached(self, path: str | os.PathLike[str]) -> int:
        """Rows the file ``path`` holds (0 if missing, unreadable or foreign)."""
        return int(getattr(self._module(), self.count)(path))

    def generate(self, path: str | os.PathLike[str], class_name: str, n: int, seed: int = 0, workers: int = 1,
                 dask: Any = None, keep_shards: bool = False, progress: bool = True) -> dict[str, Any]:
        """Generate ``n`` rows of ``class_name`` into ``path`` (resuming from finished shards); run information."""
        return self._module().generate_file(path, self.check_class(class_name), n, seed=seed, workers=workers,
                                            progress=progress, dask=dask, keep_shards=keep_shards)


def _resim_classes() -> tuple[str, ...]:
    from hepnb.generate.catalogue import GENERATED_CLASSES

    return tuple(GENERATED_CLASSES)


def _names(classes: Iterable[Any]) -> tuple[str, ...]:
    return tuple(c.name for c in classes)


def _registry() -> dict[str, Generator]:
    from hepnb.generate.dimuon import DIMUON_CLASSES
    from hepnb.generate.highpt import HIGHPT_CLASS_NAMES

    return {g.name: g for g in (
        Generator("resim", "hard events, each showered five ways (book/data/resimulation.ipynb)", "hard events",
                  _resim_classes(), "hepnb.data.cache", "cached_events"),
        Generator("dimuon", "Z and gamma* -> mu mu events (book/symmetry/symmetry.ipynb)", "events",
                  _names(DIMUON_CLASSES), "hepnb.data.dimuon", "cached_events"),
        Generator("highpt", "1 TeV g, q, W, Z, t jets (book/simplicity/simplicity.ipynb)", "jets",
                  HIGHPT_CLASS_NAMES, "hepnb.data.highpt", "cached_jets"),
    )}


GENERATORS: dict[str, Generator] = _registry()


def generator(name: str) -> Generator:
    """The :class:`Generator` called ``name``, else :class:`ConfigError` listing them."""
    if name not in GENERATORS:
        raise ConfigError(f"unknown generator {name!r}; choose from {', '.join(GENERATORS)}")
    return GENERATORS[name]


@dataclass(frozen=True)
class Request:
    """One cached file a chapter reads: ``n`` rows of ``class_name`` from ``generator`` at ``seed``;
    ``chapters`` names who needs it."""

    generator: str
    class_name: str
    n: int
    seed: int
    chapters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        generator(self.generator).check_class(self.class_name)
        object.__setattr__(self, "n", check_int("n", self.n, error=ConfigError))
        object.__setattr__(self, "seed", check_int("seed", self.seed, minimum=0, error=ConfigError))

    @property
    def key(self) -> tuple[str, str, int]:
        """What names the file: generator, class, seed (the size is not part of the name)."""
        return self.generator, self.class_name, self.seed

    def path(self) -> Path:
        return generator(self.generator).path(self.class_name, self.seed)


def requests(generator_name: str, classes: Sequence[str], n: int, seeds: Iterable[int], chapter: str
             ) -> list[Request]:
    """One :class:`Request` per class and seed: what a study's ``data_requests`` returns."""
    return [Request(generator_name, c, n, int(s), (chapter,)) for s in seeds for c in classes]


def merge_requests(items: Iterable[Request]) -> list[Request]:
    """One request per file (generator, class, seed): the largest size asked, and every chapter that asks."""
    merged: dict[tuple[str, str, int], Request] = {}
    for r in items:
        old = merged.get(r.key)
        if old is None:
            merged[r.key] = r
        else:
            chapters = tuple(dict.fromkeys(old.chapters + r.chapters))
            merged[r.key] = Request(r.generator, r.class_name, max(old.n, r.n), r.seed, chapters)
    return list(merged.values())


def _study_requests(chapter: str) -> Callable[[Any], list[Request]] | None:
    try:
        module = importlib.import_module(f"hepnb.studies.{chapter}")
    except ModuleNotFoundError:
        return None
    return getattr(module, "data_requests", None)


def plan(scale: str, seed: int | None = None, chapters: Sequence[str] | None = None) -> list[Request]:
    """Every generated file the chapters read at ``scale`` (seed base ``seed``, default the scale's), merged per
    file by :func:`merge_requests`; ``chapters`` limits it to those keys of ``hepnb.config.CHAPTERS``."""
    from hepnb.config import CHAPTERS, resolve

    keys = list(CHAPTERS) if chapters is None else list(chapters)
    unknown = [k for k in keys if k not in CHAPTERS]
    if unknown:
        raise ConfigError(f"unknown chapters {unknown}; known: {', '.join(CHAPTERS)}")
    found: list[Request] = []
    for key in keys:
        make = _study_requests(key)
        if make is not None:
            found.extend(make(resolve(scale, chapter=key, seed=seed)))
    return merge_requests(found)
