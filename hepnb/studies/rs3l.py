"""Re-simulation-based self-supervised learning (RS3L, Harris et al.): contrastive pre-training of an EdgeConv
backbone on re-simulated jet pairs, fine-tuning against supervision, and robustness to the shower model.

Explained in ``book/rs3l/rs3l.ipynb``; this module holds the chapter's logic and the paper's published values, so
the page only narrates and plots. The pieces, in the page's order:

* data: :func:`load_data` reads (or generates) H->bb, QCD and W jets showered five ways (:mod:`hepnb.data.cache`),
  computes the 15 constituent features of the hardest ``constituents`` and splits every class by hard event into
  test (30%), validation (10%) and a pool cut 5 : 3 into independent pre-training and fine-tuning sets (the
  paper's 5M : 3M); one *unit* is an eighth of the pool (the paper's 1M);
* training: a :class:`Job` is one network -- ``pretrain`` (NT-Xent on nominal/partner pairs,
  :class:`hepnb.training.tasks.ContrastiveTask`, partners drawn afresh every epoch by
  :class:`hepnb.data.datasets.PartnerBatches`), ``fixed`` or ``floating`` fine-tuning of a pre-trained backbone, or
  ``supervised`` from scratch, each classifier on the same augmented mixture (every hard event's nominal jet and
  one re-simulated partner); :func:`train` trains or loads them through :func:`hepnb.training.checkpoints.load_or_train`
  and scores every test jet in every shower;
* results: :func:`rejection_rows` (Table II), :func:`wasserstein_rows` (Table III), :func:`ood_rows` (Tables IV
  and V), :func:`convergence` (Fig. 2), :func:`representations` (Figs. 3-5), :func:`roc` and :func:`origin_roc`
  (Figs. 6-7), and beyond the paper :func:`label_efficiency`, :func:`probe_rows` (linear and k-NN probes) and
  :func:`origin_rows` (robustness per QCD origin); :func:`claims_rows` (paper vs ours, with verdicts);
* the paper's values: :data:`HARRIS`.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hepnb.config import set_seed
from hepnb.data.cache import cache_path, load_classes
from hepnb.data.datasets import PartnerBatches
from hepnb.data.features import FEATURE_NAMES, sample_features
from hepnb.data.sample import CLASS_NAMES, VARIATION_NAMES, JetSample
from hepnb.evaluation import metrics
from hepnb.evaluation.claims import claim
from hepnb.evaluation.stats import seed_difference, seed_stats
from hepnb.generate.pythia import derive_seed
from hepnb.models import n_parameters
from hepnb.models.edgeconv import EdgeConvBackbone, RS3LTagger
from hepnb.physics.substructure import n2 as n2_of
from hepnb.training.checkpoints import load_if_usable, load_or_train
from hepnb.training.loop import fit, predict
from hepnb.training.parallel import run_jobs, share_memory
from hepnb.training.tasks import BinaryTask, ContrastiveTask
from hepnb.validation import check_int

__all__ = ["data_requests", "CLASSES",
           "TRAINING_VERSION", "KIND", "HARRIS", "AUGMENTATIONS", "AUG_LABELS", "EFFICIENCIES", "LR_GRID",
           "ORIGINS", "CLASSIFIERS", "PRETRAIN_LR", "PRETRAIN_BATCH", "TEMPERATURE", "schedule",
           "RS3LData", "load_data", "Settings", "settings", "make_backbone", "Job", "train",
           "scores",
           "lr_scan_jobs", "choose_lr", "lr_rows", "main_jobs", "architecture_rows", "split_rows",
           "convergence", "load_backbone", "representations", "discriminating_dimension", "rejection_rows",
           "wasserstein_rows", "ood_rows", "roc", "origin_roc", "label_efficiency", "probe_rows", "origin_rows",
           "claims_rows", "n2_scores", "timing_rows", "speed_rows", "shower_mixing", "tsne_map", "tsne_rows",
           "pearson_rows", "pearson_pairs", "test_labels", "FIG6_STYLES", "VARIATION_NAMES", "origin_counts", "reading",
           "tsne_panels"]

TRAINING_VERSION = 1  # bump when a change to this chapter's training makes its checkpoints wrong
KIND = "rs3l"
CLASSES: tuple[str, ...] = ("qcd", "hbb", "wqq")  # the generated classes the chapter reads, in file order
SIGNAL = {"h": "hbb", "w": "wqq"}  # the two downstream tasks: H vs QCD (in distribution), W vs QCD (out of it)
TEST_FRACTION, VAL_FRACTION = 0.4, 0.1
PRETRAIN_UNITS, FINETUNE_UNITS, POOL_UNITS = 5, 3, 8
SUPERVISED_UNITS = (1, 3, 8)
EFFICIENCIES = (0.3, 0.5, 0.7)
PAPER_LR = 1e-4  # Harris et al.'s fine-tuning and supervised Adam learning rate
LR_GRID = (PAPER_LR, 3e-4, 1e-3, 3e-3, 1e-2)  # classifier learning rates scanned on the validation set
PRETRAIN_LR, PRETRAIN_BATCH, TEMPERATURE = 1e-3, 100, 0.1
STEP_EPOCHS, STEP_GAMMA = 50, 0.5  # the reference's StepLR

# Partner variations allowed in pre-training and in the augmented mixtures. "All but the alternative shower" is
# the seed + FSR set: the paper's space "without Herwig 7 augmentations" (Fig. 5) is the seed_fsr pre-training.
AUGMENTATIONS: dict[str, tuple[str, ...]] = {
    "all": ("seed", "fsr_down", "fsr_up", "alt_shower"),
    "seed_fsr": ("seed", "fsr_down", "fsr_up"),
    "seed": ("seed",),
}
AUG_LABELS = {"all": "all", "seed_fsr": "seed+FSR", "seed": "seed"}
# QCD jets by the PDG id of their hard parton (Fig. 7 splits by flavour content; ours by the initiating parton)
ORIGINS: dict[str, tuple[int, ...]] = {"light quark": (1, 2, 3), "c": (4,), "b": (5,), "gluon": (21,)}

# ---------------------------------------------------------------------------------------------------------------
# What Harris et al. report (Tables II-V, Sec. III A). Sizes are in millions of labelled jets; (value, error).
HARRIS: dict[str, Any] = {
    "pretrain_jets": 5_000_000, "finetune_jets": 3_000_000, "supervised_jets": (1_000_000, 3_000_000, 8_000_000),
    "constituents": 100, "k": 24, "width": 128, "latent": 8, "temperature": 0.1, "batch": 100,
    "fig2_positive_cosine": (0.74, 0.89), "corner_max_correlation": {"hbb": -0.16, "qcd": 0.49},
    # Table II: QCD rejection at H efficiency 0.3 / 0.5 / 0.7
    "table2": {"n2": ((29, 0), (16, 0), (8, 0)),
               ("fixed", "all", 3): ((140, 1), (64, 0), (39, 0)),
               ("floating", "all", 3): ((1325, 31), (380, 4), (135, 1)),
               ("supervised", "all", 1): ((834, 11), (257, 6), (96, 2)),
               ("supervised", "all", 3): ((1070, 29), (317, 3), (115, 1)),
               ("supervised", "all", 8): ((1312, 15), (381, 7), (134, 1))},
    # Table III: Wasserstein distance nominal vs seed / FSR up / FSR down / Herwig (our alt_shower)
    "table3": {"n2": ((1.51e-4, 0), (2.49e-3, 0), (2.98e-3, 0), (1.22e-2, 0)),
               ("fixed", "all", 3): ((8.63e-4, .23e-4), (4.85e-4, .11e-4), (1.02e-3, .02e-3), (1.08e-3, .01e-3)),
               ("floating", "all", 3): ((8.23e-4, .24e-4), (9.09e-4, .50e-4), (1.32e-3, .01e-3), (1.40e-2, .04e-2)),
               ("floating", "seed_fsr", 3): ((7.87e-4, .32e-4), (9.80e-4, .27e-4), (1.22e-3, .02e-3),
                                             (3.58e-2, .04e-2)),
               ("floating", "seed", 3): ((8.51e-4, .19e-4), (9.50e-4, .18e-4), (1.36e-3, .03e-3), (3.35e-2, .09e-2)),
               ("supervised", "all", 1): ((9.55e-4, .89e-4), (1.33e-3, .04e-3), (1.45e-3, .05e-3), (2.08e-2, .05e-2)),
               ("supervised", "all", 3): ((8.87e-4, .20e-4), (1.14e-3, .06e-3), (1.48e-3, .09e-3), (2.18e-2, .15e-2)),
               ("supervised", "all", 8): ((8.20e-4, .51e-4), (9.91e-4, .33e-4), (1.29e-3, .03e-3), (1.32e-2, .06e-2)),
               ("supervised", "seed_fsr", 8): ((8.68e-4, .56e-4), (9.95e-4, .06e-4), (1.18e-3, .02e-3),
                                               (3.87e-2, .04e-2)),
               ("supervised", "seed", 8): ((8.44e-4, .15e-4), (1.15e-3, .01e-3), (1.32e-3, .03e-3), (4.47e-2, .32e-2))},
    # Table IV: QCD rejection at W efficiency 0.3 / 0.5 / 0.7; Table V: Wasserstein as Table III (W vs QCD)
    "table4": {("floating", "all", 1): ((1589, 88), (438, 9), (134, 2)),
               ("floating", "all", 3): ((1928, 31), (504, 3), (147, 1)),
               ("supervised", "all", 1): ((1288, 102), (357, 16), (114, 2)),
               ("supervised", "all", 3): ((1763, 18), (459, 1), (137, 2))},
    "table5": {("floating", "all", 1): ((2.48e-4, .95e-4), (5.18e-3, .03e-3), (6.53e-3, .01e-3), (4.07e-2, .05e-2)),
               ("floating", "all", 3): ((3.26e-4, .24e-4), (4.79e-3, .09e-3), (6.08e-3, .01e-3), (3.58e-2, .06e-2)),
               ("supervised", "all", 1): ((3.09e-4, .39e-4), (5.02e-3, .19e-3), (6.28e-3, .32e-3), (4.51e-2, .39e-2)),
               ("supervised", "all", 3): ((4.08e-4, .24e-4), (5.22e-3, .01e-3), (6.70e-3, .13e-3), (4.33e-2, .19e-2))},
}
# The paper's Table III / V columns, in its order, and ours: FSR up is mu_R x sqrt(2), FSR down x 1/sqrt(2)
PAPER_COLUMNS = ("seed", "fsr_up", "fsr_down", "alt_shower")

# ---------------------------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True, eq=False)
class RS3LData:
    """The chapter's jets: ``x`` (N, V, C, 15) float32 features of the hardest C constituents
    (:data:`hepnb.data.features.FEATURE_NAMES`) and ``mask`` (N, V, C), both torch tensors (numpy arrays are
    converted), ``label`` (N,) (index into
    :data:`hepnb.data.sample.CLASS_NAMES`), ``parton`` (N,) the initiating parton's PDG id, ``event_id`` (N,),
    ``rows``: the rows of each ``"<split>:<class>"`` (splits ``test``, ``val``, ``pretrain``, ``finetune``; W has no
    pre-training rows), ``n2`` (N, V) N2 of every test jet (NaN elsewhere) and ``unit``: hard events per unit
    (an eighth of the H + QCD pool, the paper's 1M)."""

    x: np.ndarray
    mask: np.ndarray
    label: np.ndarray
    parton: np.ndarray
    event_id: np.ndarray
    rows: Mapping[str, np.ndarray]
    n2: np.ndarray
    unit: int
    source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The features travel to every training process: as torch tensors they are moved to shared memory once
        # and then pickled as a handle (a few hundred bytes), where a numpy array would be copied for every job.
        for name in ("x", "mask"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                object.__setattr__(self, name, torch.from_numpy(np.ascontiguousarray(value)))

    def key(self) -> dict[str, Any]:
        """What identifies the data in checkpoint keys: files, constituents, split sizes."""
        return {**self.source, "constituents": int(self.x.shape[2]),
                "sizes": {k: int(len(v)) for k, v in self.rows.items()}}

    def jets(self) -> dict[str, torch.Tensor]:
        """The per-jet tensors ``x`` and ``mask`` (N, V, ...)."""
        return {"x": torch.as_tensor(self.x), "mask": torch.as_tensor(self.mask)}

    def rows_of(self, split: str, task: str = "h") -> np.ndarray:
        """Rows of a split for a task, signal and QCD together (``pretrain``: H and QCD)."""
        return np.sort(np.concatenate([self.rows[f"{split}:{SIGNAL[task]}"], self.rows[f"{split}:qcd"]]))

    def target(self, task: str = "h") -> torch.Tensor:
        """Per-row 0/1 target of a task (1 for its signal class), float32."""
        return torch.from_numpy((self.label == CLASS_NAMES.index(SIGNAL[task])).astype(np.float32))

    def labelled_rows(self, task: str, units: float) -> np.ndarray:
        """The labelled training rows of ``units`` units, half signal and half QCD: up to 3 units come from the
        fine-tuning pool (the same rows for fine-tuning and supervision, nested: 1 unit is the start of 3), 8 units
        (H vs QCD only) are the whole pool, pre-training rows included, as the paper's 8M supervised network."""
        if units == POOL_UNITS and task == "h":
            return np.sort(np.concatenate([self.rows_of("pretrain"), self.rows_of("finetune")]))
        if not 0 < units <= FINETUNE_UNITS:
            raise ValueError(f"labelled sets hold up to {FINETUNE_UNITS} units (or {POOL_UNITS} for H vs QCD); "
                             f"got {units}")
        parts = []
        for cls in (SIGNAL[task], "qcd"):
            pool = self.rows[f"finetune:{cls}"]
            parts.append(pool[: max(1, int(round(len(pool) * units / FINETUNE_UNITS)))])
        return np.sort(np.concatenate(parts))


def _split(n: int, seed: int, cls: str, pretrain: bool) -> dict[str, np.ndarray]:
    order = np.random.default_rng(derive_seed(seed, "rs3l split", cls)).permutation(n)
    n_test, n_val = int(round(TEST_FRACTION * n)), int(round(VAL_FRACTION * n))
    out = {"test": order[:n_test], "val": order[n_test:n_test + n_val]}
    pool = order[n_test + n_val:]
    if pretrain:
        n_pre = int(round(len(pool) * PRETRAIN_UNITS / POOL_UNITS))
        out["pretrain"], out["finetune"] = pool[:n_pre], pool[n_pre:]
    else:
        out["finetune"] = pool
    return out


def data_requests(cfg: Any) -> list[Any]:
    """The generated files :func:`load_data` reads with the chapter's configuration ``cfg`` (for ``make data``,
    :func:`hepnb.data.generators.plan`)."""
    from hepnb.data.generators import requests

    return requests("resim", CLASSES, cfg.n_events, [cfg.seed], "rs3l")

def load_data(n_events: int, constituents: int, seed: int = 0, workers: int = 1, progress: bool = True,
              sample: JetSample | None = None) -> RS3LData:
    """H->bb, QCD and W jets (``n_events`` hard events each, five showers), features of the hardest
    ``constituents``, split by hard event per class; N2 of every test jet. ``sample`` replaces the generated
    jets (a public RS3L file read with :func:`hepnb.data.public.load_rs3l`, holding these classes)."""
    n_events, constituents = check_int("n_events", n_events), check_int("constituents", constituents)
    if n_events < 20:
        raise ValueError(f"n_events must be at least 20 per class to split 30/10/60; got {n_events}")
    if sample is None:
        sample = load_classes(CLASSES, n_events, seed, workers=workers, progress=progress)
        source = {"files": [cache_path(c, seed).name for c in CLASSES], "n_events": n_events}
    else:
        source = {"files": [str(sample.source)], "n_events": len(sample)}
    if tuple(sample.variations) != VARIATION_NAMES:
        raise ValueError(f"the RS3L chapter needs all five showers {VARIATION_NAMES}; got {sample.variations}")
    x, _, mask = sample_features(sample, max_constituents=constituents)
    rows: dict[str, np.ndarray] = {}
    for cls in CLASSES:
        members = np.flatnonzero(sample.label == CLASS_NAMES.index(cls))
        if len(members) < 20:
            raise ValueError(f"the sample holds {len(members)} {cls} jets; the chapter needs at least 20 per class")
        for split, idx in _split(len(members), seed, cls, pretrain=cls != "wqq").items():
            rows[f"{split}:{cls}"] = members[np.sort(idx)]
    n2 = np.full(mask.shape[:2], np.nan)
    test = np.concatenate([rows[f"test:{c}"] for c in CLASSES])
    trunc = sample.truncate(constituents)
    for v in range(len(VARIATION_NAMES)):
        n2[test, v] = n2_of(trunc.p4[test, v], trunc.mask[test, v])
    pool = len(rows["pretrain:hbb"]) + len(rows["pretrain:qcd"]) + len(rows["finetune:hbb"]) + len(rows["finetune:qcd"])
    return RS3LData(x=x, mask=mask, label=sample.label.copy(), parton=sample.parton.copy(),
                    event_id=sample.event_id.copy(), rows=rows, n2=n2, unit=max(1, pool // POOL_UNITS),
                    source=source)


def split_rows(data: RS3LData) -> list[dict[str, Any]]:
    """Hard events per split and class, and in the paper's units (1 unit = the paper's 1M)."""
    out = []
    for split in ("pretrain", "finetune", "val", "test"):
        row = {"split": split}
        for cls in ("hbb", "qcd", "wqq"):
            row[cls] = int(len(data.rows.get(f"{split}:{cls}", ())))
        row["units (H + QCD)"] = round((row["hbb"] + row["qcd"]) / data.unit, 2)
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------------------------
# models and jobs


@dataclass(frozen=True)
class Settings:
    """The architecture and schedule of a scale: ``k`` neighbours and ``width`` of the backbone (the input
    ``constituents`` are the data's), epochs of pre-training and of fine-tuning/supervision, and the labelled
    batch (hard events; each brings its nominal jet and one partner)."""

    k: int = 24
    width: int = 128
    pretrain_epochs: int = 100
    epochs: int = 200
    batch_size: int = 1000


def settings(cfg: Any) -> Settings:
    """The :class:`Settings` of a resolved configuration (``hepnb.resolve(..., chapter="rs3l")``)."""
    return Settings(k=int(cfg["k"]), width=int(cfg["width"]), pretrain_epochs=int(cfg["pretrain_epochs"]),
                    epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]))


def make_backbone(st: Settings) -> EdgeConvBackbone:
    """The backbone at a scale's width and k (the paper's at width 128, k 24)."""
    return EdgeConvBackbone(n_features=len(FEATURE_NAMES), embed=(st.width, st.width), k=st.k)


def architecture_rows(st: Settings) -> list[dict[str, Any]]:
    """Layer-by-layer shapes and parameter counts of the backbone at ``st`` and at the paper's size."""
    out = []
    for name, s in (("this run", st), ("paper", Settings())):
        b = make_backbone(s)
        out.append({"backbone": name, "embed": f"15 → {s.width} → {s.width}", "edge convs": f"3 × (k = {s.k}, "
                    f"Linear {2 * s.width} → {s.width})", "encoder": f"{s.width} → 64 → 32 → 32 → 8",
                    "parameters": n_parameters(b), "with head": n_parameters(RS3LTagger(b))})
    return out


@dataclass(frozen=True)
class Job:
    """One network. ``kind``: ``pretrain`` (contrastive, on H + QCD), ``fixed`` / ``floating`` (fine-tuning of the
    ``pretrain`` backbone with the same ``augment`` and ``seed``), or ``supervised`` (from scratch). ``augment``:
    the partner set (:data:`AUGMENTATIONS`); ``task``: ``h`` (H vs QCD) or ``w`` (W vs QCD); ``units``: labelled
    hard events in units (0 for pre-training); ``lr``: the classifier's Adam learning rate; ``seed``: initial
    weights, batch order and partners."""

    kind: str
    augment: str
    seed: int
    task: str = "h"
    units: float = 0.0
    lr: float = PRETRAIN_LR

    KINDS = ("pretrain", "fixed", "floating", "supervised")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {', '.join(self.KINDS)}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation set {self.augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
        if self.task not in SIGNAL:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(SIGNAL)}")
        if (self.kind == "pretrain") != (self.units == 0):
            raise ValueError("pre-training takes units = 0, every classifier units > 0")

    @property
    def backbone(self) -> Job:
        """The pre-training this job starts from (fine-tunings only)."""
        return Job("pretrain", self.augment, self.seed)

    @property
    def label(self) -> str:
        if self.kind == "pretrain":
            return f"RS3L pre-training ({AUG_LABELS[self.augment]})"
        name = {"fixed": "fine-tuned, fixed", "floating": "fine-tuned, floating", "supervised": "supervised"}
        task = ", W vs QCD" if self.task == "w" else ""
        return f"{name[self.kind]} ({_units(self.units)}, {AUG_LABELS[self.augment]}{task})"


def _units(units: float) -> str:
    return f"{units:g} u" if units >= 1 else f"{units:.2g} u"


def _partners(augment: str) -> list[int]:
    return [VARIATION_NAMES.index(v) for v in AUGMENTATIONS[augment]]


def _key(job: Job, data: RS3LData, st: Settings) -> dict[str, Any]:
    s = asdict(st)
    if job.kind == "pretrain":
        s.pop("epochs"), s.pop("batch_size")
    else:
        s["pretrain_epochs"] = s["pretrain_epochs"] if job.kind != "supervised" else None
    return {"job": asdict(job), "data": data.key(), "settings": s}


def _pack(array: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(a.shape), "float32": base64.b64encode(a.tobytes()).decode()}


def _unpack(packed: Mapping[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["float32"]), dtype="<f4").reshape(packed["shape"]).copy()


def _test_scores(model: nn.Module, data: RS3LData, task: str, device: str) -> np.ndarray:
    """Sigmoid scores (rows of ``data.rows_of("test", task)``, 5 showers)."""
    rows = data.rows_of("test", task)
    out = np.zeros((len(rows), len(VARIATION_NAMES)), np.float32)
    jets = data.jets()
    for v in range(len(VARIATION_NAMES)):
        batches = [{"x": jets["x"][rows[s:s + 1024], v], "mask": jets["mask"][rows[s:s + 1024], v]}
                   for s in range(0, len(rows), 1024)]
        out[:, v] = predict(model, batches, device, task=_ScoreTask())[0]
    return out


class _ScoreTask(BinaryTask):
    """Sigmoid scores of (x, mask) batches without targets."""

    def __init__(self) -> None:
        super().__init__(input_keys=("x", "mask"))

    def predict(self, model: nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, None]:
        return torch.sigmoid(model(batch["x"], batch["mask"])), None


def _fig2(model: nn.Module, batches: Sequence[Mapping[str, Any]], is_h: np.ndarray) -> dict[str, float]:
    """Fig. 2 on fixed pairs: mean cosine similarity of the positive pairs per class, and the cosine similarity of
    the mean (normalised) H and QCD vectors."""
    z1, z2 = [], []
    device = next(model.parameters()).device
    with torch.no_grad():
        for batch in batches:
            a, b = ContrastiveTask(("x", "mask")).representations(
                model, (batch["x"].to(device), batch["mask"].to(device)))
            z1.append(F.normalize(a, dim=1).cpu())
            z2.append(F.normalize(b, dim=1).cpu())
    a, b = torch.cat(z1), torch.cat(z2)
    cos = (a * b).sum(1).numpy()
    h = torch.from_numpy(is_h)
    mean_h, mean_q = a[h].mean(0), a[~h].mean(0)
    return {"positive_hbb": float(cos[is_h].mean()), "positive_qcd": float(cos[~is_h].mean()),
            "mean_h_vs_qcd": float(F.cosine_similarity(mean_h, mean_q, dim=0))}


def schedule(lr: float):
    """The reference's optimiser and schedule at learning rate ``lr``: ``(make_optimiser, make_scheduler)`` for
    :func:`hepnb.training.loop.fit`, Adam and a StepLR halving the rate every 50 epochs."""
    make_opt = functools.partial(torch.optim.Adam, lr=lr)
    make_sched = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=STEP_EPOCHS, gamma=STEP_GAMMA)
    return make_opt, make_sched


def _pretrain(job: Job, data: RS3LData, st: Settings, model: EdgeConvBackbone, device: str) -> dict[str, Any]:
    jets, partners = data.jets(), _partners(job.augment)
    train_b = PartnerBatches(jets, data.rows_of("pretrain"), partners, PRETRAIN_BATCH, "pairs",
                             seed=derive_seed(job.seed, "rs3l pairs"))
    val_rows = data.rows_of("val")
    val_b = list(PartnerBatches(jets, val_rows, partners, PRETRAIN_BATCH, "pairs", shuffle=False, fixed=True,
                                seed=derive_seed(job.seed, "rs3l val pairs")))
    is_h = data.label[val_rows] == CLASS_NAMES.index("hbb")
    model.eval()
    start_fig2 = _fig2(model, val_b, is_h)
    make_opt, make_sched = schedule(PRETRAIN_LR)
    start = time.perf_counter()
    history = fit(model, train_b, val_b, st.pretrain_epochs, device=device, progress=False,
                  task=ContrastiveTask(("x", "mask"), TEMPERATURE), make_optimiser=make_opt,
                  make_scheduler=make_sched, monitor=lambda m, _: _fig2(m, val_b, is_h))
    model.to("cpu")
    return {"history": history.as_dict(), "seconds": time.perf_counter() - start, "fig2_start": start_fig2}


def _classifier(job: Job, data: RS3LData, st: Settings, model: RS3LTagger, device: str) -> dict[str, Any]:
    jets, partners = data.jets(), _partners(job.augment)
    y = {"y": data.target(job.task)}
    train_b = PartnerBatches(jets, data.labelled_rows(job.task, job.units), partners, st.batch_size, "mixture",
                             labels=y, seed=derive_seed(job.seed, "rs3l labelled", job.task))
    val_b = list(PartnerBatches(jets, data.rows_of("val", job.task), partners, 1000, "mixture", labels=y,
                                shuffle=False, fixed=True, seed=derive_seed(job.seed, "rs3l val", job.task)))
    make_opt, make_sched = schedule(job.lr)
    start = time.perf_counter()
    history = fit(model, train_b, val_b, st.epochs, device=device, progress=False,
                  task=BinaryTask(input_keys=("x", "mask")),
                  make_optimiser=lambda params: make_opt([p for p in params if p.requires_grad]),
                  make_scheduler=make_sched)
    seconds = time.perf_counter() - start
    return {"history": history.as_dict(), "seconds": seconds,
            "scores": _pack(_test_scores(model, data, job.task, device)), "parameters": n_parameters(model)}


def load_backbone(job: Job, data: RS3LData, st: Settings) -> EdgeConvBackbone:
    """The pre-trained backbone of ``job`` (a ``pretrain`` job, or the pre-training a fine-tuning starts from);
    its checkpoint must exist (:func:`train` first)."""
    job = job if job.kind == "pretrain" else job.backbone
    model = make_backbone(st)
    if load_if_usable(KIND, _key(job, data, st), model, TRAINING_VERSION) is None:
        raise FileNotFoundError(f"no trained checkpoint for {job}; run rs3l.train on it first")
    return model


def _run(job: Job, data: RS3LData, st: Settings, device: str) -> dict[str, Any]:
    """Train one job (or load its checkpoint); returns its meta."""
    set_seed(job.seed)
    if job.kind == "pretrain":
        model: nn.Module = make_backbone(st)
        train_fn = functools.partial(_pretrain, job, data, st, device=device)
    else:
        backbone = make_backbone(st) if job.kind == "supervised" else load_backbone(job, data, st)
        set_seed(derive_seed(job.seed, "rs3l head", job.kind))
        model = RS3LTagger(backbone, freeze_backbone=job.kind == "fixed")
        train_fn = functools.partial(_classifier, job, data, st, device=device)
    meta, trained = load_or_train(KIND, _key(job, data, st), model, lambda m: train_fn(model=m),
                                  version=TRAINING_VERSION)
    return {**meta, "trained": trained}


def train(jobs: Sequence[Job], data: RS3LData, st: Settings, workers: int = 1, device: str = "cpu"
          ) -> dict[Job, dict]:
    """Every job trained (or loaded): ``{job: meta}``. Pre-trainings run first, then the classifiers that start
    from them; on a CPU each runs single-threaded in ``workers`` spawned processes (the same bits for any worker
    count)."""
    jobs = list(dict.fromkeys(jobs))
    if device == "cpu" and workers > 1 and not share_memory((data.x, data.mask), "the RS3L features"):
        workers = 1
    needed = [j.backbone for j in jobs if j.kind in ("fixed", "floating")]
    first = list(dict.fromkeys([j for j in jobs if j.kind == "pretrain"] + needed))
    out: dict[Job, dict] = {}
    for stage, desc in ((first, "pre-trainings"), ([j for j in jobs if j.kind != "pretrain"], "classifiers")):
        metas = run_jobs(_run, [(j, data, st, device) for j in stage], workers, desc=desc,
                         parallel=device == "cpu")
        out.update(zip(stage, metas))
    return {j: out[j] for j in dict.fromkeys(first + jobs)}


def scores(meta: Mapping[str, Any]) -> np.ndarray:
    """A classifier's test scores (N_test, 5 showers) from its meta."""
    return _unpack(meta["scores"])


# ---------------------------------------------------------------------------------------------------------------
# the runs of the chapter


CLASSIFIERS = ("fixed", "floating", "supervised")


def lr_scan_jobs(seed: int, units: float = 1) -> list[Job]:
    """The learning-rate scan: each kind of classifier (fixed, floating, supervised; H vs QCD, all augmentations)
    on ``units`` units, once per :data:`LR_GRID` value. The fine-tunings start from the pre-training of ``seed``."""
    return [Job(kind, "all", seed, "h", units, lr) for kind in CLASSIFIERS for lr in LR_GRID]


def choose_lr(metas: Mapping[Job, dict]) -> dict[str, float]:
    """Per kind of classifier, the scanned learning rate with the lowest best validation loss (how the paper chose
    its temperature: on validation data, never on the test set)."""
    out = {}
    for kind in CLASSIFIERS:
        scanned = {j.lr: min(m["history"]["val_loss"]) for j, m in metas.items() if j.kind == kind}
        if scanned:
            out[kind] = min(scanned, key=scanned.get)
    return out


def lr_rows(metas: Mapping[Job, dict]) -> list[dict[str, Any]]:
    """The scan: per learning rate, each kind's best validation loss (and the epoch it came at)."""
    out = []
    for lr in sorted({j.lr for j in metas if j.kind in CLASSIFIERS}):
        row: dict[str, Any] = {"learning rate": lr}
        for j, m in metas.items():
            if j.lr == lr and j.kind in CLASSIFIERS:
                v = m["history"]["val_loss"]
                row[j.kind] = f"{min(v):.4f} (epoch {int(np.argmin(v)) + 1})"
        out.append(row)
    return out


def main_jobs(seeds: Sequence[int], lrs: Mapping[str, float]) -> dict[str, list[Job]]:
    """Every network of the chapter, by what it is for: pre-trainings, the H vs QCD classifiers of Tables II
    and III, the W vs QCD ones of Tables IV and V, and the label-efficiency curve's extra points; each kind of
    classifier at its learning rate ``lrs[kind]`` (:func:`choose_lr`)."""
    out: dict[str, list[Job]] = {"pretrain": [], "table2": [], "table3": [], "ood": [], "efficiency": []}
    fix, flo, sup = (float(lrs[k]) for k in CLASSIFIERS)
    for s in seeds:
        out["pretrain"] += [Job("pretrain", a, s) for a in AUGMENTATIONS]
        out["table2"] += [Job("fixed", "all", s, "h", 3, fix), Job("floating", "all", s, "h", 3, flo)]
        out["table2"] += [Job("supervised", "all", s, "h", u, sup) for u in SUPERVISED_UNITS]
        out["table3"] += [Job("floating", a, s, "h", 3, flo) for a in ("seed_fsr", "seed")]
        out["table3"] += [Job("supervised", a, s, "h", 8, sup) for a in ("seed_fsr", "seed")]
        out["ood"] += [Job("floating", "all", s, "w", u, flo) for u in (1, 3)]
        out["ood"] += [Job("supervised", "all", s, "w", u, sup) for u in (1, 3)]
        out["efficiency"] += [Job("floating", "all", s, "h", u, flo) for u in (1 / 3, 1)]
        out["efficiency"] += [Job("supervised", "all", s, "h", 1 / 3, sup)]
    return out


def timing_rows(metas: Mapping[Job, dict]) -> list[dict[str, Any]]:
    """Seconds of training per kind of network (mean over the seeds), as each job measured it."""
    groups: dict[str, list[float]] = {}
    for j, m in metas.items():
        groups.setdefault(j.label, []).append(float(m["seconds"]))
    return [{"network": k, "trainings": len(v), "seconds each": round(float(np.mean(v)), 1)}
            for k, v in groups.items()]


# ---------------------------------------------------------------------------------------------------------------
# results


def _select(metas: Mapping[Job, dict], **match: Any) -> list[tuple[Job, dict]]:
    return sorted(((j, m) for j, m in metas.items() if all(getattr(j, k) == v for k, v in match.items())),
                  key=lambda jm: jm[0].seed)


def _test_y(data: RS3LData, task: str) -> np.ndarray:
    rows = data.rows_of("test", task)
    return (data.label[rows] == CLASS_NAMES.index(SIGNAL[task])).astype(int)


def n2_scores(data: RS3LData, task: str = "h") -> np.ndarray:
    """N2 as a tagger: ``-N2`` of the test jets (N_test, 5) (two-prong jets have small N2); NaN where a jet has
    fewer than 3 constituents is set to the least signal-like value."""
    s = -data.n2[data.rows_of("test", task)]
    return np.where(np.isfinite(s), s, np.nanmin(s))


def _rejections(y: np.ndarray, s: np.ndarray) -> list[float]:
    return [metrics.rejection_at(y, s, e) for e in EFFICIENCIES]


def _distances(s: np.ndarray) -> list[float]:
    return [metrics.wasserstein(s[:, 0], s[:, VARIATION_NAMES.index(v)]) for v in PAPER_COLUMNS]


def _measure(metas: Mapping[Job, dict], data: RS3LData, what: str, **match: Any) -> np.ndarray:
    """Per seed (rows), per efficiency or variation (columns): rejections (``what="rejection"``) or Wasserstein
    distances (``"wasserstein"``) of the matching classifiers."""
    task = match.get("task", "h")
    y = _test_y(data, task)
    values = []
    for _, m in _select(metas, **match):
        s = scores(m)
        values.append(_rejections(y, s[:, 0]) if what == "rejection" else _distances(s))
    return np.asarray(values, dtype=float)


def _cell(values: np.ndarray, fmt: str) -> str:
    if len(values) == 0:
        return "-"
    mean, std, _ = seed_stats(values)
    return f"{mean:{fmt}} ± {std:{fmt}}" if np.isfinite(std) else f"{mean:{fmt}}"


def _paper_cell(value: tuple[float, float], fmt: str) -> str:
    return f"{value[0]:{fmt}}" + (f" ± {value[1]:{fmt}}" if value[1] else "")


def _row_label(kind: str, augment: str, units: float, unit_events: int) -> str:
    name = {"fixed": "Fine-tuned, fixed ({u}{a})", "floating": "Fine-tuned, floating ({u}{a})",
            "supervised": "Fully supervised ({u}{a})"}[kind]
    return name.format(u=f"{units:.2g} u = {int(round(units * unit_events)):,} ev.", a=f", {AUG_LABELS[augment]}")


def rejection_rows(metas: Mapping[Job, dict], data: RS3LData, table: str = "table2", task: str = "h"
                   ) -> list[dict[str, Any]]:
    """Table II (``task="h"``) or Table IV (``table="table4", task="w"``): QCD rejection at signal efficiency 0.3,
    0.5 and 0.7 on nominal test jets, ours as mean ± standard deviation over seeds with the paper's in brackets."""
    out = []
    if table == "table2":
        y, s = _test_y(data, task), n2_scores(data, task)
        row = {"setup": "N₂"}
        for e, ours, paper in zip(EFFICIENCIES, _rejections(y, s[:, 0]), HARRIS[table]["n2"]):
            row[f"ε = {e}"] = f"{ours:.1f} ({_paper_cell(paper, '.0f')})"
        out.append(row)
    for (kind, augment, units), paper in [(k, v) for k, v in HARRIS[table].items() if k != "n2"]:
        values = _measure(metas, data, "rejection", kind=kind, augment=augment, units=units, task=task)
        row = {"setup": _row_label(kind, augment, units, data.unit)}
        for i, e in enumerate(EFFICIENCIES):
            ours = _cell(values[:, i] if len(values) else values, ".1f")
            row[f"ε = {e}"] = f"{ours} ({_paper_cell(paper[i], '.0f')})"
        out.append(row)
    return out


def wasserstein_rows(metas: Mapping[Job, dict], data: RS3LData, table: str = "table3", task: str = "h"
                     ) -> list[dict[str, Any]]:
    """Table III (or V: ``table="table5", task="w"``): Wasserstein distance between the score distributions of
    nominal and re-simulated test jets (both classes, the same hard events), in units of 10⁻³: ours as mean ± std
    over seeds, the paper's in brackets."""
    out = []
    if table == "table3":
        s = n2_scores(data, task)
        row = {"setup": "N₂ (distance of N₂ itself)"}
        for v, ours, paper in zip(PAPER_COLUMNS, _distances(-s), HARRIS[table]["n2"]):
            row[v] = f"{1e3 * ours:.2f} ({1e3 * paper[0]:.2f})"
        out.append(row)
    for (kind, augment, units), paper in [(k, v) for k, v in HARRIS[table].items() if k != "n2"]:
        values = 1e3 * _measure(metas, data, "wasserstein", kind=kind, augment=augment, units=units, task=task)
        row = {"setup": _row_label(kind, augment, units, data.unit)}
        for i, v in enumerate(PAPER_COLUMNS):
            ours = _cell(values[:, i] if len(values) else values, ".2f")
            row[v] = f"{ours} ({1e3 * paper[i][0]:.2f} ± {1e3 * paper[i][1]:.2f})"
        out.append(row)
    return out


def ood_rows(metas: Mapping[Job, dict], data: RS3LData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tables IV and V: W vs QCD, fine-tuned from the H-vs-QCD backbone or supervised from scratch."""
    return rejection_rows(metas, data, "table4", "w"), wasserstein_rows(metas, data, "table5", "w")


def _band(curves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.asarray(curves)
    return c.mean(0), c.min(0), c.max(0)


def roc(metas: Mapping[Job, dict], data: RS3LData, efficiencies: np.ndarray, variation: int = 0, **match: Any
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The QCD rejection at each signal efficiency of the matching classifiers: the mean over seeds and the
    lowest and highest seed (a band that stays positive on a log axis)."""
    task = match.get("task", "h")
    y = _test_y(data, task)
    curves = []
    for _, m in _select(metas, **match):
        eff, rej = metrics.rejection_curve(y, scores(m)[:, variation])
        curves.append(np.interp(efficiencies, eff, rej))
    return _band(curves)


def _origin(data: RS3LData, rows: np.ndarray) -> np.ndarray:
    names = np.full(len(rows), "", dtype=object)
    for name, ids in ORIGINS.items():
        names[np.isin(np.abs(data.parton[rows]), ids)] = name
    return names


def origin_roc(metas: Mapping[Job, dict], data: RS3LData, efficiencies: np.ndarray, **match: Any
               ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fig. 7: the rejection of each QCD origin (light quark, c, b, gluon) against all H jets: mean, lowest and
    highest seed."""
    rows = data.rows_of("test", "h")
    y, origin = _test_y(data, "h"), _origin(data, rows)
    out = {}
    for name in ORIGINS:
        keep = (y == 1) | (origin == name)
        if (origin == name).sum() < 5:
            continue
        curves = []
        for _, m in _select(metas, **match):
            eff, rej = metrics.rejection_curve(y[keep], scores(m)[keep, 0])
            curves.append(np.interp(efficiencies, eff, rej))
        out[name] = _band(curves)
    return out


def origin_rows(metas: Mapping[Job, dict], data: RS3LData, setups: Sequence[tuple[str, str, float]]
                ) -> list[dict[str, Any]]:
    """Beyond the paper: per QCD origin, the number of test jets and the Wasserstein distance (10⁻³) between
    nominal and alternative-shower scores of QCD jets of that origin, per setup (mean ± std over seeds), and N2's."""
    rows = data.rows_of("test", "h")
    y, origin = _test_y(data, "h"), _origin(data, rows)
    alt = VARIATION_NAMES.index("alt_shower")
    n2s = n2_scores(data)
    out = []
    for name in ORIGINS:
        keep = (y == 0) & (origin == name)
        if keep.sum() < 5:
            continue
        row: dict[str, Any] = {"QCD origin": name, "test jets": int(keep.sum()),
                               "N₂ (of N₂)": f"{1e3 * metrics.wasserstein(n2s[keep, 0], n2s[keep, alt]):.2f}"}
        for kind, augment, units in setups:
            d = [1e3 * metrics.wasserstein(scores(m)[keep, 0], scores(m)[keep, alt])
                 for _, m in _select(metas, kind=kind, augment=augment, units=units, task="h")]
            row[_row_label(kind, augment, units, data.unit).split(" (")[0] + f" ({units:g} u)"] = \
                _cell(np.asarray(d), ".2f")
        out.append(row)
    return out


def label_efficiency(metas: Mapping[Job, dict], data: RS3LData, eff: float = 0.5
                     ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Beyond the paper: QCD rejection at ``eff`` against labelled hard events, for floating fine-tuning and for
    supervision (all augmentations): ``{kind: (events, geometric mean, lowest, highest seed)}``."""
    y = _test_y(data, "h")
    out = {}
    for kind in ("floating", "supervised"):
        units = sorted({j.units for j in metas if j.kind == kind and j.task == "h" and j.augment == "all"})
        values = [np.asarray([metrics.rejection_at(y, scores(m)[:, 0], eff)
                              for _, m in _select(metas, kind=kind, augment="all", units=u, task="h")])
                  for u in units]
        mean = np.asarray([np.exp(np.log(v).mean()) for v in values])
        # the geometric mean of equal values can round past them: keep low <= mean <= high exactly
        low = np.minimum([v.min() for v in values], mean)
        high = np.maximum([v.max() for v in values], mean)
        out[kind] = (np.asarray(units) * data.unit, mean, low, high)
    return out


def convergence(metas: Mapping[Job, dict], augment: str = "all") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fig. 2: per quantity (positive-pair cosine similarity of H and of QCD jets; cosine similarity of the mean H
    and mean QCD vectors), mean and std over seeds at epochs 0 (before training), 1, 2, ..."""
    out = {}
    runs = [m for j, m in metas.items() if j.kind == "pretrain" and j.augment == augment]
    for name in ("positive_hbb", "positive_qcd", "mean_h_vs_qcd"):
        c = np.asarray([[m["fig2_start"][name], *m["history"]["monitored"][name]] for m in runs])
        out[name] = (c.mean(0), c.std(0, ddof=1) if len(c) > 1 else np.zeros(c.shape[1]))
    return out


@torch.no_grad()
def representations(backbone: EdgeConvBackbone, data: RS3LData, rows: np.ndarray, variations: Sequence[int] = (0,)
                    ) -> np.ndarray:
    """The 8-d representation ``z`` (not normalised) of ``rows`` in each of ``variations``: (len(rows), V', 8)."""
    backbone.eval()
    jets = data.jets()
    out = np.zeros((len(rows), len(variations), backbone.out_features), np.float32)
    for i, v in enumerate(variations):
        for s in range(0, len(rows), 1024):
            r = rows[s:s + 1024]
            out[s:s + len(r), i] = backbone(jets["x"][r, v], jets["mask"][r, v]).numpy()
    return out


def discriminating_dimension(z: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """The representation dimension whose values separate H from QCD best: ``(index, AUC)`` with the AUC folded to
    >= 0.5 (a dimension may rise or fall with H-ness)."""
    aucs = [metrics.auc(y, z[:, d]) for d in range(z.shape[1])]
    best = int(np.argmax([abs(a - 0.5) for a in aucs]))
    return best, max(aucs[best], 1 - aucs[best])


def probe_rows(backbones: Mapping[Job, EdgeConvBackbone], metas: Mapping[Job, dict], data: RS3LData,
               neighbours: int = 50) -> list[dict[str, Any]]:
    """Beyond the paper: the standard probes of a self-supervised representation, on the frozen "all" backbone of
    each seed -- a linear probe (logistic regression on the standardised 8-d ``z``) and a k-nearest-neighbour
    classifier (cosine distance) -- trained on every shower of the 3-unit fine-tuning rows, beside the fixed
    fine-tuning: rejection at ε = 0.5, AUC and the alternative-shower Wasserstein distance (10⁻³)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_rows, test_rows = data.labelled_rows("h", FINETUNE_UNITS), data.rows_of("test", "h")
    y_train = data.target("h").numpy()[train_rows]
    y_test = _test_y(data, "h")
    alt = VARIATION_NAMES.index("alt_shower")
    partners = [0, *_partners("all")]
    results: dict[str, list[tuple[float, float, float]]] = {"linear probe": [], f"{neighbours}-NN probe": [],
                                                             "fixed fine-tuning": []}
    for job, backbone in sorted(backbones.items(), key=lambda jb: jb[0].seed):
        z_train = representations(backbone, data, train_rows, partners).reshape(-1, backbone.out_features)
        yy = np.repeat(y_train, len(partners))
        z_test = representations(backbone, data, test_rows, (0, alt))
        probes = {"linear probe": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                  f"{neighbours}-NN probe": KNeighborsClassifier(neighbours, metric="cosine")}
        for name, probe in probes.items():
            probe.fit(z_train, yy)
            s = np.stack([probe.predict_proba(z_test[:, v])[:, 1] for v in range(z_test.shape[1])], axis=1)
            s = s + 1e-9 * np.arange(len(s))[:, None] / len(s)  # break k-NN's ties, which are many
            results[name].append((metrics.rejection_at(y_test, s[:, 0], 0.5), metrics.auc(y_test, s[:, 0]),
                                  1e3 * metrics.wasserstein(s[:, 0], s[:, 1])))
        fixed = _select(metas, kind="fixed", augment="all", units=FINETUNE_UNITS, task="h", seed=job.seed)
        if fixed:
            s = scores(fixed[0][1])
            results["fixed fine-tuning"].append((metrics.rejection_at(y_test, s[:, 0], 0.5),
                                                 metrics.auc(y_test, s[:, 0]),
                                                 1e3 * metrics.wasserstein(s[:, 0], s[:, alt])))
    out = []
    for name, values in results.items():
        if values:
            v = np.asarray(values)
            out.append({"frozen representation →": name, "rejection at ε = 0.5": _cell(v[:, 0], ".1f"),
                        "AUC": _cell(v[:, 1], ".4f"), "W alt. shower (10⁻³)": _cell(v[:, 2], ".2f")})
    return out


# ---------------------------------------------------------------------------------------------------------------
# claims


def _per_seed(metas: Mapping[Job, dict], data: RS3LData, what: str, column: int, **match: Any) -> np.ndarray:
    values = _measure(metas, data, what, **match)
    return values[:, column] if len(values) else np.zeros(0)


def _paper(table: str, key: Any, column: int) -> float:
    return float(HARRIS[table][key][column][0])


def claims_rows(metas: Mapping[Job, dict], data: RS3LData) -> list[dict[str, Any]]:
    """Paper vs ours for Harris et al.'s claims, each a per-seed paired difference (same seed = same pre-training,
    partners and batch order where the two setups share them) with the book's small-sample verdict."""
    half = EFFICIENCIES.index(0.5)
    alt = PAPER_COLUMNS.index("alt_shower")

    def log_rejection(kind: str, augment: str, units: float, task: str = "h") -> np.ndarray:
        return np.log(_per_seed(metas, data, "rejection", half, kind=kind, augment=augment, units=units, task=task))

    def log_distance(kind: str, augment: str, units: float, task: str = "h") -> np.ndarray:
        return np.log(_per_seed(metas, data, "wasserstein", alt, kind=kind, augment=augment, units=units,
                                task=task))

    def paper_ratio(table: str, a: tuple, b: tuple, column: int) -> float:
        return float(np.log(_paper(table, a, column) / _paper(table, b, column)))

    y = _test_y(data, "h")
    n2_rejection = metrics.rejection_at(y, n2_scores(data)[:, 0], 0.5)
    rows = []
    spec = [
        ("fine-tuning beats supervision on the same 3 units of labels: log(R₅₀ fine-tuned floating / supervised)",
         "table2", (("floating", "all", 3), ("supervised", "all", 3)), log_rejection, half, +1),
        ("floating beats fixed fine-tuning: log(R₅₀ floating / fixed), 3 units", "table2",
         (("floating", "all", 3), ("fixed", "all", 3)), log_rejection, half, +1),
        ("supervision gains from more labels: log(R₅₀ supervised 8 / 3 units)", "table2",
         (("supervised", "all", 8), ("supervised", "all", 3)), log_rejection, half, +1),
        ("the fixed backbone is the most robust: log(W_alt floating / fixed), 3 units", "table3",
         (("floating", "all", 3), ("fixed", "all", 3)), log_distance, alt, +1),
        ("alt.-shower partners in the mixture cut the alt.-shower distance: log(W_alt seed+FSR / all), floating",
         "table3", (("floating", "seed_fsr", 3), ("floating", "all", 3)), log_distance, alt, +1),
        ("the same for supervision: log(W_alt seed-only / all), supervised 8 units", "table3",
         (("supervised", "seed", 8), ("supervised", "all", 8)), log_distance, alt, +1),
        ("out of distribution, fine-tuning beats supervision: log(R₅₀ fine-tuned / supervised), W vs QCD, 3 units",
         "table4", (("floating", "all", 3), ("supervised", "all", 3)), log_rejection, half, +1),
        ("out of distribution, fine-tuning is more robust: log(W_alt supervised / fine-tuned), W vs QCD, 3 units",
         "table5", (("supervised", "all", 3), ("floating", "all", 3)), log_distance, alt, +1),
    ]
    for text, table, (a, b), measure, column, sign in spec:
        task = "w" if table in ("table4", "table5") else "h"
        va, vb = measure(*a, task=task), measure(*b, task=task)
        if len(va) == 0 or len(va) != len(vb):
            continue
        rows.append(claim(text, paper_ratio(table, a, b, column), seed_difference(va, vb), sign, digits=3))
    # the one not paired across seeds: fine-tuned on 3 units against supervised on 8 (the paper: equal)
    va, vb = log_rejection("floating", "all", 3), log_rejection("supervised", "all", 8)
    if len(va) and len(va) == len(vb):
        rows.append(claim("3 units fine-tuned are as good as 8 units supervised: log(R₅₀ floating 3 / supervised "
                          "8) (the paper: equal; the verdict tests 'not worse', so 'no (opposite)' = worse)",
                          paper_ratio("table2", ("floating", "all", 3), ("supervised", "all", 8), half),
                          seed_difference(va, vb), +1, digits=3, key="fine-tuned 3 u vs supervised 8 u"))
    fixed = log_rejection("fixed", "all", 3)
    if len(fixed) > 1:
        rows.append(claim("even the fixed backbone beats N₂: log(R₅₀ fixed / N₂)", float(np.log(64 / 16)),
                          seed_difference(fixed, np.full(len(fixed), np.log(n2_rejection))), +1, digits=3))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# the backbone's speed, and the geometry of the space


def speed_rows(st: Settings, constituents: int, batch: int = 100, reps: int = 2, seed: int = 0
               ) -> list[dict[str, Any]]:
    """A live check of the factorised backbone against the straightforward form at this run's size: forward +
    backward jets per second of each (this process's threads) and the largest difference of their outputs.
    ``benchmarks/edgeconv.py`` does the same at the paper's size."""
    from hepnb.models.edgeconv import dense_edge_conv

    torch.manual_seed(seed)
    backbone = make_backbone(st)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, constituents, len(FEATURE_NAMES), generator=g)
    mask = torch.arange(constituents)[None, :] < torch.randint(3, constituents + 1, (batch, 1), generator=g)
    x = x * mask[..., None]

    def dense(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        real = mask[..., None].to(x.dtype)
        h = backbone.embed(x) * real
        for conv in backbone.convs:
            h = dense_edge_conv(conv, h, mask)
        return (backbone.encoder(h) * real).sum(dim=1)

    out = []
    with torch.no_grad():
        difference = float((backbone(x, mask) - dense(x, mask)).abs().max())
    for name, fn in (("hepnb (factorised)", backbone), ("straightforward (every pair)", dense)):
        fn(x, mask).sum().backward()
        start = time.perf_counter()
        for _ in range(reps):
            fn(x, mask).sum().backward()
        rate = batch * reps / (time.perf_counter() - start)
        out.append({"form": name, "jets / s (forward + backward)": int(round(rate))})
    out[0]["speed ratio"] = round(out[0]["jets / s (forward + backward)"] / out[1]["jets / s (forward + backward)"], 1)
    out[0]["max |Δz|"] = f"{difference:.1e}"
    return out


def shower_mixing(z_nominal: np.ndarray, z_alt: np.ndarray, neighbours: int = 10) -> float:
    """Beyond the paper: how congruent two showers' jets are in a representation -- the mean fraction of each
    jet's ``neighbours`` nearest neighbours (cosine distance, among both sets pooled) that come from the *other*
    shower. 0.5 for two indistinguishable populations of equal size; 0 for separated ones."""
    from sklearn.neighbors import NearestNeighbors

    z = np.concatenate([z_nominal, z_alt])
    which = np.r_[np.zeros(len(z_nominal)), np.ones(len(z_alt))]
    index = NearestNeighbors(n_neighbors=neighbours + 1, metric="cosine").fit(z).kneighbors(z)[1][:, 1:]
    return float(np.mean(which[index] != which[:, None]))


def tsne_map(z: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fig. 5: a 2-d t-SNE embedding (scikit-learn, perplexity 30, PCA start) of L2-normalised representations."""
    from sklearn.manifold import TSNE

    z = z / np.linalg.norm(z, axis=1, keepdims=True).clip(1e-12)
    return TSNE(2, perplexity=min(30.0, (len(z) - 1) / 3), init="pca", random_state=seed).fit_transform(z)


def tsne_rows(data: RS3LData, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The test rows of the t-SNE maps: up to ``n`` H and ``n`` QCD jets, chosen at random (seeded)."""
    rng = np.random.default_rng(derive_seed(seed, "rs3l tsne"))
    return {cls: np.sort(rng.permutation(data.rows[f"test:{cls}"])[:n]) for cls in ("hbb", "qcd")}


def pearson_rows(z: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Fig. 4's numbers: per class, the largest |Pearson coefficient| among the 28 pairs of dimensions (signed), and
    the mean |coefficient|, beside the paper's largest."""
    out = []
    for cls, values in z.items():
        r = np.corrcoef(values, rowvar=False)
        upper = r[np.triu_indices_from(r, 1)]
        worst = upper[np.argmax(np.abs(upper))]
        out.append({"class": cls, "largest |r| (signed)": round(float(worst), 2),
                    "mean |r|": round(float(np.mean(np.abs(upper))), 2),
                    "paper: largest": HARRIS["corner_max_correlation"].get(cls, "-")})
    return out


def pearson_pairs(z_h: np.ndarray, z_qcd: np.ndarray) -> list[tuple[tuple[int, int], float, float]]:
    """Fig. 4's annotations: for every lower-triangle panel ``(i, j)`` (i > j) of a corner plot, the Pearson
    coefficients of dimensions i and j for H and for QCD jets."""
    r_h, r_q = np.corrcoef(z_h, rowvar=False), np.corrcoef(z_qcd, rowvar=False)
    d = z_h.shape[1]
    return [((i, j), float(r_h[i, j]), float(r_q[i, j])) for i in range(d) for j in range(i)]


def test_labels(data: RS3LData, task: str = "h") -> np.ndarray:
    """0/1 labels of the test rows of a task, in the order of every score array."""
    return _test_y(data, task)


# Fig. 6's curves (the paper's colours: reds for fine-tuning, blues for supervision)
FIG6_STYLES: dict[tuple[str, float], str] = {("fixed", 3): "darkred", ("floating", 3): "tab:red",
                                             ("supervised", 1): "lightsteelblue", ("supervised", 3): "tab:blue",
                                             ("supervised", 8): "navy"}


def origin_counts(data: RS3LData) -> dict[str, int]:
    """QCD test jets per origin (light quark, c, b, gluon)."""
    rows = data.rows_of("test", "h")
    y, origin = _test_y(data, "h"), _origin(data, rows)
    return {name: int(((y == 0) & (origin == name)).sum()) for name in ORIGINS}


def _mean_rejection(metas: Mapping[Job, dict], data: RS3LData, kind: str, units: float, task: str = "h",
                    augment: str = "all") -> float:
    v = _per_seed(metas, data, "rejection", EFFICIENCIES.index(0.5), kind=kind, augment=augment, units=units,
                  task=task)
    return float(np.exp(np.mean(np.log(v)))) if len(v) else float("nan")


def _mean_distance(metas: Mapping[Job, dict], data: RS3LData, column: str, **match: Any) -> float:
    v = _per_seed(metas, data, "wasserstein", PAPER_COLUMNS.index(column), **match)
    return float(np.mean(v)) if len(v) else float("nan")


def reading(metas: Mapping[Job, dict], data: RS3LData) -> str:
    """The page's reading of its own numbers, in words (Markdown), built from this run's values: the orderings of
    Table II, how the alternative-shower distances compare with the noise floor (the seed column), and the W task."""
    r = {key: _mean_rejection(metas, data, *key) for key in
         (("fixed", 3), ("floating", 3), ("supervised", 1), ("supervised", 3), ("supervised", 8))}
    w = {key: _mean_rejection(metas, data, key[0], key[1], "w") for key in
         (("floating", 1), ("floating", 3), ("supervised", 1), ("supervised", 3))}
    setups = [(k, "all", u) for k, u in (("fixed", 3), ("floating", 3), ("supervised", 3), ("supervised", 8))]
    alt = {s: _mean_distance(metas, data, "alt_shower", kind=s[0], augment=s[1], units=s[2], task="h")
           for s in setups}
    seed = {s: _mean_distance(metas, data, "seed", kind=s[0], augment=s[1], units=s[2], task="h") for s in setups}
    most = min(alt, key=alt.get)
    names = {("fixed", "all", 3): "fixed fine-tuning", ("floating", "all", 3): "floating fine-tuning",
             ("supervised", "all", 3): "supervision on 3 u", ("supervised", "all", 8): "supervision on 8 u"}

    def order(a: float, b: float) -> str:
        return "above" if a > b else "below"

    floor = max(seed.values())
    lines = [
        f"* **Table II.** At 50% H efficiency (geometric means over seeds), floating fine-tuning on 3 u reaches a "
        f"QCD rejection of {r[('floating', 3)]:.0f}, {order(r[('floating', 3)], r[('supervised', 3)])} supervision "
        f"on the same 3 u ({r[('supervised', 3)]:.0f}) and {order(r[('floating', 3)], r[('supervised', 8)])} "
        f"supervision on 8 u ({r[('supervised', 8)]:.0f}); the fixed backbone gives {r[('fixed', 3)]:.0f}, "
        f"{order(r[('fixed', 3)], r[('floating', 3)])} floating (the paper: 64 against 380). Supervision grows "
        f"from {r[('supervised', 1)]:.0f} (1 u) to {r[('supervised', 8)]:.0f} (8 u).",
        f"* **Table III.** The smallest alternative-shower distance belongs to {names[most]} "
        f"({1e3 * alt[most]:.1f} × 10⁻³; the others "
        + ", ".join(f"{names[s]} {1e3 * v:.1f}" for s, v in alt.items() if s != most)
        + f"). The seed column, two showers with the *same* settings, is the noise floor of the estimate at this "
        f"test size: up to {1e3 * floor:.1f} × 10⁻³ here (the paper's seed column: 0.8–1.0 × 10⁻³). "
        f"A distance is evidence of a shower dependence only where it stands clearly above that floor.",
        f"* **Tables IV–V.** For W vs QCD the fine-tuned backbone reaches {w[('floating', 1)]:.1f} (1 u) and "
        f"{w[('floating', 3)]:.1f} (3 u), supervision {w[('supervised', 1)]:.1f} and {w[('supervised', 3)]:.1f}.",
    ]
    return "\n".join(lines)


def tsne_panels(backbones: Mapping[str, EdgeConvBackbone], data: RS3LData, n: int, seed: int = 0
                ) -> dict[str, Any]:
    """Fig. 5's maps: ``"class"``: the t-SNE points of ``n`` H and ``n`` QCD nominal test jets in the ``"all"``
    space with their H flags; per augmentation set in ``backbones`` (``"all"``, ``"seed_fsr"``): the points of the
    same jets in the nominal and the alternative shower, mapped together, and their :func:`shower_mixing` in the
    8-d space."""
    pick = tsne_rows(data, n, seed)
    rows = np.concatenate([pick["hbb"], pick["qcd"]])
    out: dict[str, Any] = {"class": (tsne_map(representations(backbones["all"], data, rows)[:, 0], seed),
                                     np.isin(rows, pick["hbb"]))}
    alt = VARIATION_NAMES.index("alt_shower")
    for augment, backbone in backbones.items():
        pair = representations(backbone, data, rows, (0, alt))
        xy = tsne_map(np.concatenate([pair[:, 0], pair[:, 1]]), seed)
        out[augment] = (xy[: len(rows)], xy[len(rows):], shower_mixing(pair[:, 0], pair[:, 1]))
    return out
