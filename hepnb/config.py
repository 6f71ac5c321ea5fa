"""Run configuration: the three scales, the per-chapter knobs, seeding, device and data directory.

Every notebook of the book starts the same way (explained in ``book/getting_started.ipynb``)::

    # parameters cell (tagged "parameters"): plain values only
    scale = None
    device = None
    seed = None
    n_events = None

    # next cell
    cfg = hepnb.resolve(scale, chapter="getting_started", device=device, seed=seed, n_events=n_events)

``resolve`` picks the scale as ``scale or $HEPNB_SCALE or "book"``, takes that scale's values for the chapter's
knobs, and lets every override that is not ``None`` win. Keeping the parameters cell free of computation matters:
papermill injects its ``-p`` values in a new cell *after* the parameters cell, so anything computed inside the
parameters cell would silently ignore them.

The three scales:

``smoke``  CI: every notebook end to end in under 3 minutes on 2 CPU cores. Proves the code runs.
``book``   The default build: shows each paper's effects on a laptop CPU, each chapter within 15 minutes once its
           data are cached.
``paper``  The papers' own settings; meant for a GPU via ``make paper`` (papermill ``-p scale paper -p device cuda``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepnb.errors import ConfigError
from hepnb.validation import check_fraction, check_int, check_positive

SCALES: tuple[str, ...] = ("smoke", "book", "paper")
DEFAULT_SCALE = "book"
SCALE_ENV = "HEPNB_SCALE"
DATA_ENV = "HEPNB_DATA"
PUBLIC_DATA_ENV = "HEPNB_PUBLIC_DATA"
MAX_SEED = 2**32 - 1  # numpy's legacy global generator accepts seeds in [0, 2**32)


@dataclass(frozen=True)
class Knob:
    """One tunable quantity with its value at each scale.

    ``kind`` says what values are legal:
    ``count``    integer >= 1 (sizes, epochs, repetitions, workers)
    ``seed``     integer in [0, 2**32)
    ``positive`` real number > 0 (learning rates, radii)
    ``fraction`` real number in (0, 1]
    ``device``   ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``
    """

    kind: str
    smoke: Any
    book: Any
    paper: Any
    doc: str

    def at(self, scale: str) -> Any:
        return getattr(self, scale)


# Knobs every chapter has.
COMMON: dict[str, Knob] = {
    "seed": Knob("seed", 0, 0, 0, "base random seed (python, numpy, torch, Pythia seeds derive from it)"),
    "device": Knob("device", "cpu", "auto", "auto", "torch device; 'auto' picks cuda when available"),
}

# Per-chapter knobs. A chapter's key is the same word here, in book/<key>/ and in hepnb/studies/<key>.py
# (getting_started is the conventions page, book/getting_started.ipynb). Chapter issues own their values;
# paper-scale values follow the paper named in the doc. A chapter is added here when its notebook lands.
CHAPTERS: dict[str, dict[str, Knob]] = {
    "getting_started": {
        "n_events": Knob("count", 50, 500, 5000, "HZ(->bb nunu) events clustered for the jet-mass spectrum"),
    },
    "data": {
        "n_events": Knob("count", 300, 10_000, 500_000,
                         "hard events per class (H->bb, QCD, W), each showered 5 ways "
                         "(Rothen et al.: 500k jets/class)"),
        "workers": Knob("count", 2, 2, 16, "generator worker processes"),
        "n_substructure": Knob("count", 300, 4_000, 50_000,
                               "jets per class and variation whose N2 is computed for the plots"),
    },
    "landscape": {
        "n_events": Knob("count", 300, 5_000, 100_000, "hard events per class (H->bb, QCD) for the jet tagger"),
        "epochs": Knob("count", 2, 15, 50, "training epochs of the jet tagger"),
        "hessian_jets": Knob("count", 256, 2_048, 20_000, "jets in the batch whose loss Hessian is analysed"),
        "test_jets": Knob("count", 256, 2_000, 20_000, "test jets averaged over in the gradient-ascent paths"),
        "reduced_jets": Knob("count", 10, 100, 1_000, "jets per class whose 75x75 feature-space Hessian is formed"),
    },
    "adversarial": {
        "n_events": Knob("count", 300, 10_000, 500_000,
                         "hard events (= jets per simulator) per class, 70% for training "
                         "(Rothen et al., Table VII: 500k)"),
        "epochs": Knob("count", 2, 30, 100, "training epochs per model (Rothen et al.: a 24 h budget per model)"),
        "seeds": Knob("count", 1, 3, 12, "independent trainings per method and simulator (Rothen et al.: 5; paper "
                      "scale runs 12, what the open flatness claims need at book-scale spread)"),
        "reduced_jets": Knob("count", 10, 100, 1_000, "jets per class whose 75x75 feature Hessian is averaged"),
        "workers": Knob("count", 2, 2, 16, "processes generating jets when the cache lacks them"),
        "path_jets": Knob("count", 256, 1_024, 20_000,
                          "test jets for the ascent paths and the weight-space Hessian"),
        "batch_size": Knob("count", 128, 128, 128, "minibatch size (Rothen et al., Table VII)"),
        "lr": Knob("positive", 1e-4, 1e-4, 1e-4, "AdamW learning rate (Rothen et al., Table VII)"),
    },
    "symmetry": {
        "n_events": Knob("count", 1_500, 20_000, 50_000,
                         "accepted Z and gamma* -> mu mu events per class, 70% training, 10% validation, 20% test "
                         "(Nabat et al.: 100k in all, 80/20)"),
        "epochs": Knob("count", 2, 20, 100, "training epochs per model (Nabat et al.: 100)"),
        "ensembles": Knob("count", 2, 3, 5, "independent replicas (data, smearing, split, initial weights) per "
                          "model (Nabat et al.: 5 ensembles)"),
        "sigma": Knob("fraction", 0.10, 0.10, 0.10, "relative muon pT resolution of the detector model "
                      "(Nabat et al.: 10%)"),
        "batch_size": Knob("count", 128, 128, 128, "minibatch size (Nabat et al.)"),
        "workers": Knob("count", 2, 2, 16, "processes generating events, and training models side by side on a "
                        "CPU (on a GPU the trainings run one after another on the device)"),
    },
    "simplicity": {
        "n_jets": Knob("count", 400, 6_000, 177_132,
                       "gluon and W jets per class, split 56/14/30 like Glowacki's 200,000/49,560/104,704 "
                       "(paper scale: those numbers); Z and top jets: the test share of it"),
        "epochs": Knob("count", 1, 8, 100, "training epochs per teacher (Glowacki: 100)"),
        "seeds": Knob("count", 2, 3, 3, "trainings per model with different initial weights (Glowacki: 3)"),
        "extra_seeds": Knob("count", 1, 2, 3, "seeds of the beyond-the-paper models (the augmentation control and "
                            "the lambda scan's other weights)"),
        "width": Knob("count", 16, 64, 256, "transformer width d_model (Glowacki: 256; the book scale trains a "
                      "quarter-width model, see the page)"),
        "student_epochs": Knob("count", 1, 8, 100, "distillation epochs per student"),
        "hessian_jets": Knob("count", 64, 256, 2_048, "training jets in the batch whose loss Hessian is analysed"),
        "rel_error": Knob("fraction", 0.2, 0.05, 0.02, "target relative standard error of Hutchinson's trace "
                          "(the benchmark's 2% at paper scale)"),
        "max_probes": Knob("count", 20, 150, 1_000, "Hutchinson probes at most per trace"),
        "workers": Knob("count", 2, 2, 16, "processes generating jets, and training and analysing models side by "
                        "side on a CPU"),
    },
    "rs3l": {
        "n_events": Knob("count", 300, 8_000, 500_000,
                         "hard events per class (H->bb, QCD, W), each showered 5 ways; 40% test, 10% validation, "
                         "the rest 5 : 3 pre-training : fine-tuning (Harris et al.: 5M + 3M; see the page)"),
        "constituents": Knob("count", 16, 24, 100, "hardest constituents per jet fed to the backbone "
                             "(Harris et al.: 100)"),
        "k": Knob("count", 8, 12, 24, "neighbours per constituent in each DynamicEdgeConv (Harris et al.: 24)"),
        "width": Knob("count", 16, 32, 128, "width of the embedding and edge convolutions (Harris et al.: 128)"),
        "pretrain_epochs": Knob("count", 1, 8, 100, "contrastive pre-training epochs (Harris et al.: not stated)"),
        "epochs": Knob("count", 1, 8, 200, "fine-tuning and supervised epochs (Harris et al.: 200)"),
        "seeds": Knob("count", 2, 3, 3, "repeats of every training (Harris et al.: at least 3)"),
        "batch_size": Knob("count", 50, 50, 500, "hard events per fine-tuning / supervised batch, each with "
                           "its nominal jet and one re-simulated partner (Harris et al.: 1000 jets = 500 events)"),
        "tsne_jets": Knob("count", 200, 1_000, 10_000, "test jets per class in each t-SNE map"),
        "workers": Knob("count", 2, 2, 16, "processes generating jets, and training models side by side on a CPU"),
    },
    "benchmark": {
        "n_events": Knob("count", 300, 10_000, 500_000,
                         "H->bb and QCD hard events per class and seed, 70% for training, each showered five ways "
                         "(the adversarial chapter's replicas; Rothen et al.: 500k)"),
        "epochs": Knob("count", 2, 30, 100, "training epochs of every tagger, the shared core (the adversarial "
                       "chapter's, so its checkpoints are reused)"),
        "pretrain_epochs": Knob("count", 1, 10, 100, "RS3L contrastive pre-training epochs"),
        "seeds": Knob("count", 2, 3, 5, "replicas (data, split, initial weights) per method (Rothen et al.: 5)"),
        "batch_size": Knob("count", 128, 128, 128, "jets per minibatch of the shared core (Rothen et al., Table VII)"),
        "lr": Knob("positive", 1e-4, 1e-4, 1e-4, "AdamW learning rate of the shared core (Rothen et al.)"),
        "hessian_jets": Knob("count", 128, 1_024, 4_096, "training jets in the batch whose loss Hessian is "
                             "analysed"),
        "rel_error": Knob("fraction", 0.2, 0.05, 0.02, "target relative standard error of Hutchinson's trace"),
        "max_probes": Knob("count", 16, 160, 1_000, "Hutchinson probes at most per trace"),
        "workers": Knob("count", 2, 2, 16, "processes generating jets, and training and measuring models side by "
                        "side on a CPU"),
    },
}


# ---------------------------------------------------------------------------------------------------------------
# scale


def resolve_scale(scale: str | None = None) -> str:
    """Return ``scale or $HEPNB_SCALE or "book"``, raising :class:`ConfigError` for an unknown name.

    Explained in ``book/getting_started.ipynb``.
    """
    source = "the scale argument"
    if scale is None or scale == "":
        env = os.environ.get(SCALE_ENV, "").strip()
        if env:
            scale, source = env, f"${SCALE_ENV}"
        else:
            scale, source = DEFAULT_SCALE, "the default"
    if not isinstance(scale, str):
        raise ConfigError(f"scale must be a string, one of {SCALES}; got {scale!r} from {source}")
    name = scale.strip().lower()
    if name not in SCALES:
        raise ConfigError(f"unknown scale {scale!r} (from {source}); choose one of {', '.join(SCALES)}")
    return name


# ---------------------------------------------------------------------------------------------------------------
# values


def _check_value(name: str, kind: str, value: Any) -> Any:
    """Validate ``value`` for a knob of ``kind``; return it normalised (e.g. 1e5 -> 100000)."""
    if kind == "count":
        return check_int(name, value, minimum=1, error=ConfigError)
    if kind == "seed":
        return check_int(name, value, minimum=0, maximum=MAX_SEED, error=ConfigError)
    if kind == "positive":
        return check_positive(name, value, error=ConfigError)
    if kind == "fraction":
        return check_fraction(name, value, error=ConfigError)
    if kind == "device":
        if not isinstance(value, str):
            raise ConfigError(f"{name}={value!r} is not valid: expected a device name such as 'auto', 'cpu' or "
                              "'cuda'")
        return value.strip().lower()
    raise AssertionError(f"knob {name} has unknown kind {kind!r}")  # a registry bug, not user input


def resolve_device(choice: str = "auto") -> str:
    """Turn a device choice into a torch device string.

    ``auto`` gives ``cuda`` when a CUDA GPU is usable, else ``mps`` on Apple silicon, else ``cpu``. Asking for
    ``cuda`` on a machine without one raises :class:`ConfigError` instead of failing later inside torch.
    Explained in ``book/getting_started.ipynb``.
    """
    import torch

    choice = _check_value("device", "device", choice)
    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if choice == "cpu":
        return "cpu"
    if choice == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device 'mps' requested but torch.backends.mps is not available on this machine")
        return "mps"
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {choice!r} requested but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}); use device='auto' or 'cpu' on this machine"
            )
        if choice != "cuda":
            index = choice.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise ConfigError(f"device {choice!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return choice
    raise ConfigError(f"unknown device {choice!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


# ---------------------------------------------------------------------------------------------------------------
# directories


def repo_root() -> Path | None:
    """The hepnb checkout this package was imported from, or ``None`` for a non-editable install."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "hepnb" / "config.py").is_file():
        return root
    return None


def _directory(path: Path, what: str) -> Path:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} exists but is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Where generated data and checkpoints are cached: ``$HEPNB_DATA``, else ``<repo>/data``.

    Outside a checkout (a non-editable install) the fallback is ``~/.cache/hepnb``. The directory is created if
    missing. Explained in ``book/getting_started.ipynb`` and ``data/README.md``.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return _directory(Path(env).expanduser().resolve(), f"${DATA_ENV}")
    root = repo_root()
    base = root / "data" if root is not None else Path.home() / ".cache" / "hepnb"
    return _directory(base, "data directory")


def public_data_dir() -> Path:
    """Where a user's copies of the public datasets live: ``$HEPNB_PUBLIC_DATA``, else ``<data_dir>/public``.

    This only locates the folder (creating nothing); the loaders of each dataset say which files they expect.
    See ``data/README.md``.
    """
    env = os.environ.get(PUBLIC_DATA_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else data_dir() / "public"


# ---------------------------------------------------------------------------------------------------------------
# the resolved configuration


class Config(Mapping):
    """The resolved settings of one notebook run: read-only, attribute or key access.

    ``cfg.scale``, ``cfg.chapter``, ``cfg.seed``, ``cfg.device`` (a torch device string, never ``auto``),
    ``cfg.data_dir`` and every knob of the chapter (``cfg.n_events`` ...). ``cfg.overridden`` names the knobs
    that did not come from the scale's table. Explained in ``book/getting_started.ipynb``.
    """

    def __init__(self, scale: str, chapter: str | None, values: dict[str, Any], overridden: frozenset[str],
                 data_dir: Path):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "chapter", chapter)
        object.__setattr__(self, "overridden", overridden)
        object.__setattr__(self, "data_dir", data_dir)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # no knob starts with "_"; keeps copy/pickle from recursing before __init__
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"Config has no setting {name!r}; it has {', '.join(self._values)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is read-only; pass overrides to hepnb.resolve() instead")

    def __reduce__(self) -> tuple:
        return (Config, (self.scale, self.chapter, self._values, self.overridden, self.data_dir))

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of scale, chapter and every value (for logging and checkpoint hashing)."""
        return {"scale": self.scale, "chapter": self.chapter, **self._values}

    def __repr__(self) -> str:
        width = max(len(k) for k in ("scale", "chapter", "data_dir", *self._values))
        rows = [f"{'scale':<{width}}  {self.scale}", f"{'chapter':<{width}}  {self.chapter}"]
        for key, value in self._values.items():
            note = "   (override)" if key in self.overridden else ""
            rows.append(f"{key:<{width}}  {value}{note}")
        rows.append(f"{'data_dir':<{width}}  {self.data_dir}")
        return "\n".join(rows)


def knobs(chapter: str | None = None) -> dict[str, Knob]:
    """The knobs a chapter has (the common ones first); ``chapter=None`` gives only the common ones."""
    if chapter is None:
        return dict(COMMON)
    if chapter not in CHAPTERS:
        raise ConfigError(f"unknown chapter {chapter!r}; known chapters: {', '.join(CHAPTERS)}")
    return {**COMMON, **CHAPTERS[chapter]}


def resolve(scale: str | None = None, chapter: str | None = None, **overrides: Any) -> Config:
    """Resolve one run's settings: scale, then the scale's knob values, then non-``None`` overrides.

    ``scale`` -- ``"smoke"``, ``"book"`` or ``"paper"``; ``None`` means ``$HEPNB_SCALE`` or ``"book"``.
    ``chapter`` -- whose knobs to include (see :data:`CHAPTERS`); ``None`` gives only ``seed`` and ``device``.
    ``overrides`` -- knob values that replace the scale's; ``None`` values are ignored, so a notebook can pass its
    parameters straight through. An unknown knob or a nonsense value raises :class:`ConfigError`.

    The returned ``device`` is resolved (``auto`` becomes ``cuda``/``mps``/``cpu``). Explained in
    ``book/getting_started.ipynb``.
    """
    name = resolve_scale(scale)
    table = knobs(chapter)
    unknown = sorted(set(overrides) - set(table))
    if unknown:
        where = f"chapter {chapter!r}" if chapter else "resolve() without a chapter"
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} for {where}; known: {', '.join(table)}")
    values: dict[str, Any] = {}
    overridden = set()
    for key, knob in table.items():
        value = overrides.get(key)
        if value is None:
            value = knob.at(name)
        else:
            overridden.add(key)
        values[key] = _check_value(key, knob.kind, value)
    values["device"] = resolve_device(values["device"])
    return Config(name, chapter, values, frozenset(overridden), data_dir())


def scale_table(chapter: str | None = None) -> list[dict[str, Any]]:
    """Rows ``{knob, smoke, book, paper, meaning}`` for one chapter, or every chapter when ``None``.

    Used by the book to show what each scale means; explained in ``book/getting_started.ipynb``.
    """
    groups = [(chapter, knobs(chapter))] if chapter else [("(all)", COMMON), *CHAPTERS.items()]
    rows = []
    for name, table in groups:
        for key, knob in table.items():
            rows.append({"chapter": name, "knob": key, "smoke": knob.smoke, "book": knob.book,
                         "paper": knob.paper, "meaning": knob.doc})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# seeding


def set_seed(seed: int) -> np.random.Generator:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device).

    Returns a fresh ``numpy.random.Generator`` seeded with the same value, for code that prefers an explicit
    generator. Same seed, same CPU results: this is what makes the book's numbers reproducible. Explained in
    ``book/getting_started.ipynb``.
    """
    seed = _check_value("seed", "seed", seed)
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)
