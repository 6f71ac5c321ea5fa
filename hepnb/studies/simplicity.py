"""Softly induced functional simplicity (Glowacki): a soft Lorentz-symmetry loss (SEAL) on a jet transformer, the
curvature of its solution, its robustness, its out-of-distribution performance and how well it distils.

Explained in ``book/simplicity/simplicity.ipynb``; this module holds the chapter's logic and the paper's published
values, so the page only narrates and plots. The pieces, in the page's order:

* data: :func:`load_data` reads (or generates) the 1 TeV gluon, W, Z and top jets (:mod:`hepnb.data.highpt`, or the
  public hls4ml files via :mod:`hepnb.data.hls4ml`), keeps the 32 hardest constituents' 4-vectors, computes the
  seven kinematic features of every constituent with the jet axis from the kept constituents, and splits gluons and
  W bosons in the paper's proportions (200,000 : 49,560 : 104,704); Z and top jets are test-only;
* training: a :class:`Job` is one transformer trained one way -- ``"bce"`` (unconstrained), ``"seal"`` (BCE +
  λ · mean((σ(f(x)) − σ(f(Λx)))²), :class:`hepnb.training.tasks.InvariancePenaltyTask` with the boost
  :class:`hepnb.data.features.JetBoost`) or ``"augment"`` (BCE on the jet and its boosted copy, no penalty:
  :class:`hepnb.training.tasks.AugmentedTask`) -- with Adam (lr 0.005, L2 weight decay 5e-4) and the weights of
  the lowest validation loss kept (:func:`train`, through :func:`hepnb.training.checkpoints.load_or_train`);
* analysis (:func:`analyse`, cached beside the checkpoints): accuracy and AUC in distribution (gluon vs W) and out
  of it (gluon vs Z, gluon vs top), the AUC under constituent-pT smearing (eq. 7), and the curvature of the BCE loss
  on a fixed batch of training jets from :mod:`hepnb.landscape` -- λ₁ by Lanczos with its residual bound, Tr(H) by
  Hutchinson with its standard error, the SLQ spectral density, the loss along ν₁ and R(ε) along ν₁ (eq. 6) with g
  a random Lorentz boost;
* distillation (:func:`distil`): one fixed student fitted by MSE to each teacher's logits;
* results: :func:`table1_rows`, :func:`table2_rows`, :func:`table3_rows`, :func:`distillation_rows`,
  :func:`scan_rows` (beyond the paper: λ ∈ {0, 0.01, 0.1, 1}), :func:`claims_rows` (paper vs ours, with verdicts);
* the paper's values: :data:`GLOWACKI`.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from hepnb import landscape
from hepnb.config import data_dir, set_seed
from hepnb.data.datasets import DictBatches
from hepnb.data.features import KINEMATIC_FEATURES, BoostInputs, JetBoost, kinematic_features
from hepnb.data.files import atomic_path
from hepnb.evaluation import metrics
from hepnb.evaluation.claims import claim
from hepnb.evaluation.stats import seed_difference, seed_stats
from hepnb.evaluation.tables import format_pm
from hepnb.generate.pythia import derive_seed
from hepnb.models import JetTransformer, n_parameters
from hepnb.physics.detector import smear_pt
from hepnb.physics.kinematics import random_velocities
from hepnb.studies.landscape import eigen_walk
from hepnb.training.checkpoints import key_hash, load_if_usable, load_or_train
from hepnb.training.loop import fit, predict
from hepnb.training.parallel import run_jobs
from hepnb.training.tasks import AugmentedTask, BinaryTask, DistillationTask, InvariancePenaltyTask
from hepnb.validation import check_int

__all__ = ["data_requests",
           "TRAINING_VERSION", "ANALYSIS_VERSION", "GLOWACKI", "FRACTIONS", "METHODS", "LABELS", "COLOURS",
           "SIGMAS", "LAMBDAS", "JetData", "load_data", "make_teacher", "make_student", "Job", "jobs", "make_task",
           "train", "Settings", "settings", "analyse", "Distillation", "distil", "best_seed", "table1_rows",
           "table2_rows", "table3_rows", "curvature_rows", "distillation_rows", "scan_series", "scan_rows", "scan_jobs",
           "claims_rows", "roc", "architecture_rows", "load_teacher", "n_test", "jet_observables", "boost_rows",
           "reading"]

TRAINING_VERSION = 1  # bump when a change to this chapter's training makes its checkpoints wrong
ANALYSIS_VERSION = 2  # bump when a change to the analysis makes its cached results wrong
KIND = "simplicity"

# Glowacki, Sec. 3.1: 200,000 training, 49,560 validation and 104,704 test jets (gluon vs W); the same fractions here
_PAPER_SPLIT = (200_000, 49_560, 104_704)
FRACTIONS: dict[str, float] = {k: n / sum(_PAPER_SPLIT) for k, n in zip(("train", "val", "test"), _PAPER_SPLIT)}
TRAIN_CLASSES = ("g", "w")  # label 0 = gluon, 1 = W
OOD_CLASSES = {"near": "z", "far": "t"}  # replace the W in the test set (Sec. 4.3)
N_CONSTITUENTS = 32
SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)  # relative constituent-pT smearing of Fig. 7 (the paper's range is unstated)
LAMBDAS = (0.0, 0.01, 0.1, 1.0)  # beyond the paper: the dose-response of the SEAL weight

METHODS: dict[str, str] = {"bce": "unconstrained (BCE)", "seal": "constrained (SEAL, λ = 0.1)",
                           "augment": "boost augmentation, no penalty (control)"}
LABELS = {"bce": "unconstrained", "seal": "constrained", "augment": "augmented (control)"}
COLOURS = {"bce": "tab:blue", "seal": "tab:orange", "augment": "tab:green"}

# ---------------------------------------------------------------------------------------------------------------
# What Glowacki reports (Tables 1-3, Secs. 3.2-3.5). Figures 5-9 have no numbers; their claims are qualitative.
GLOWACKI: dict[str, Any] = {
    "split": _PAPER_SPLIT, "epochs": 100, "seeds": 3, "lr": 0.005, "weight_decay": 5e-4, "lam": 0.1,
    "constituents": 32, "features": 7, "width": 256, "teacher_parameters": 1_256_356, "student_parameters": 487_665,
    "beta2_max": 0.95,  # the SEAL authors' code: |beta|^2 uniform in [0, 0.95)
    "table1": {"bce": {"accuracy": (0.9424, 0.0024), "auc": (0.9875, 0.0005)},
               "seal": {"accuracy": (0.9400, 0.0009), "auc": (0.9850, 0.0002)}},
    "table2": {"lambda1": 0.079, "trace": 0.119},
    "table3": {"near": {"bce": {"accuracy": (0.7656, 0.0064), "auc": (0.9364, 0.0025)},
                        "seal": {"accuracy": (0.7835, 0.0186), "auc": (0.9429, 0.0078)}},
               "far": {"bce": {"accuracy": (0.5258, 0.0028), "auc": (0.4177, 0.0495)},
                       "seal": {"accuracy": (0.5407, 0.0003), "auc": (0.5323, 0.0124)}}},
}


# ---------------------------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True, eq=False)
class JetData:
    """The chapter's jets: ``p4`` (N, 32, 4) float64 constituent 4-vectors [GeV] (pT-ordered, zero padded),
    ``mask`` (N, 32), ``x`` (N, 32, 7) float32 features (:data:`hepnb.data.features.KINEMATIC_FEATURES`, jet axis
    = the sum of the kept constituents), ``label`` (N,) the five-class label (0 g, 1 q, 2 W, 3 Z, 4 t),
    ``event_id`` (N,), and ``rows``: indices of the gluon + W ``train``/``val``/``test`` splits, and the test jets of
    the out-of-distribution classes (``near``: Z, ``far``: top); ``n_constituents`` (N,) counts each jet's
    constituents before the truncation."""

    p4: np.ndarray
    mask: np.ndarray
    x: np.ndarray
    label: np.ndarray
    event_id: np.ndarray
    rows: Mapping[str, np.ndarray]
    source: Mapping[str, Any] = field(default_factory=dict)
    n_constituents: np.ndarray | None = None  # per jet, before the truncation to 32

    def key(self) -> dict[str, Any]:
        """What identifies the data in checkpoint keys: files, sizes, split."""
        return {**self.source, "sizes": {k: int(len(v)) for k, v in self.rows.items()}}

    def test_rows(self, task: str = "id") -> tuple[np.ndarray, np.ndarray]:
        """Rows and 0/1 targets of a test set: ``id`` gluon vs W, ``near`` gluon vs Z, ``far`` gluon vs top."""
        test = self.rows["test"]
        gluons = test[self.label[test] == 0]
        other = test[self.label[test] != 0] if task == "id" else self.rows[task]
        rows = np.concatenate([gluons, other])
        return rows, np.concatenate([np.zeros(len(gluons)), np.ones(len(other))]).astype(np.float32)

    def tensors(self, rows: np.ndarray, y: np.ndarray | None = None, x: np.ndarray | None = None
                ) -> dict[str, torch.Tensor]:
        """Model batches of ``rows``: ``x``, ``mask``, ``p4`` (float64, for boosts) and ``y`` (default: W = 1)."""
        y = (self.label[rows] != 0).astype(np.float32) if y is None else y
        return {"x": torch.as_tensor(self.x[rows] if x is None else x), "mask": torch.as_tensor(self.mask[rows]),
                "p4": torch.as_tensor(self.p4[rows]), "y": torch.as_tensor(y)}


def _split(n: int, seed: int, cls: str) -> dict[str, np.ndarray]:
    order = np.random.default_rng(derive_seed(seed, "simplicity split", cls)).permutation(n)
    n_train, n_val = int(round(FRACTIONS["train"] * n)), int(round(FRACTIONS["val"] * n))
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}


def n_test(n_jets: int) -> int:
    """Test jets per class out of ``n_jets`` (the out-of-distribution classes are generated at this size)."""
    return n_jets - int(round(FRACTIONS["train"] * n_jets)) - int(round(FRACTIONS["val"] * n_jets))


def data_requests(cfg: Any) -> list[Any]:
    """The generated files :func:`load_data` reads with the chapter's configuration ``cfg``: ``n_jets`` gluon and
    W jets, :func:`n_test` Z and top jets (for ``make data``, :func:`hepnb.data.generators.plan`)."""
    from hepnb.data.generators import requests

    return (requests("highpt", TRAIN_CLASSES, cfg.n_jets, [cfg.seed], "simplicity")
            + requests("highpt", list(OOD_CLASSES.values()), n_test(cfg.n_jets), [cfg.seed], "simplicity"))

def load_data(n_jets: int, seed: int = 0, workers: int = 1, public: bool = False, progress: bool = True
              ) -> JetData:
    """``n_jets`` gluon and W jets (split in the paper's proportions) and :func:`n_test` Z and top jets.

    Generated by :func:`hepnb.data.highpt.load_highpt` (cached), or read from the public hls4ml files under
    ``public_data_dir()/hls4ml`` when ``public`` (the first jets of each class in file order). The features are
    computed here from the kept 4-vectors, in float64, exactly as the SEAL boost recomputes them."""
    n_jets = check_int("n_jets", n_jets, minimum=20)
    m = n_test(n_jets)
    if public:
        from hepnb.data.hls4ml import find_hls4ml_files, load_hls4ml

        files = find_hls4ml_files()
        if not files:
            from hepnb.config import public_data_dir

            raise FileNotFoundError(f"no hls4ml files under {public_data_dir() / 'hls4ml'} (see data/README.md)")
        parts = [load_hls4ml(f, max_constituents=N_CONSTITUENTS) for f in files]
        from hepnb.data.highpt import HighPtSample

        pool = HighPtSample.concatenate(parts)
        keep = []
        for cls, n in (("g", n_jets), ("w", n_jets), ("z", m), ("t", m)):
            rows = np.flatnonzero(pool.label == _label(cls))[:n]
            if len(rows) < n:
                raise ValueError(f"the hls4ml files hold {len(rows)} {cls} jets, {n} were asked for")
            keep.append(rows)
        sample = pool.select(np.concatenate(keep))
        source = {"public": [str(f) for f in files], "n_jets": n_jets}
    else:
        from hepnb.data.highpt import HighPtSample, load_highpt

        sample = HighPtSample.concatenate([load_highpt(list(TRAIN_CLASSES), n_jets, seed, workers, progress=progress),
                                           load_highpt(list(OOD_CLASSES.values()), m, seed, workers,
                                                       progress=progress)])
        source = {"generated": [str(s) for s in sample.sources], "n_jets": n_jets, "seed": int(seed)}
    p4 = np.asarray(sample.p4[:, :N_CONSTITUENTS], dtype=np.float64)
    mask = np.asarray(sample.mask[:, :N_CONSTITUENTS], dtype=bool)
    p4 = np.where(mask[..., None], p4, 0.0)
    label = np.asarray(sample.label).astype(np.int64)
    rows: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in TRAIN_CLASSES:
        index = np.flatnonzero(label == _label(cls))
        for part, local in _split(len(index), seed, cls).items():
            rows[part].append(index[np.sort(local)])
    out = {k: np.concatenate(v) for k, v in rows.items()}
    for task, cls in OOD_CLASSES.items():
        out[task] = np.flatnonzero(label == _label(cls))
    x = kinematic_features(p4, mask)
    return JetData(p4, mask, np.asarray(x, np.float32), label, np.asarray(sample.event_id), out,
                   {**source, "split_seed": int(seed), "constituents": N_CONSTITUENTS},
                   np.asarray(sample.n_constituents))


def jet_observables(data: JetData) -> dict[str, dict[str, np.ndarray]]:
    """Per class (``g``, ``w``, ``z``, ``t``), keyed by its display label: the mass [GeV] and pT [GeV] of the sum of
    the kept constituents and the number of constituents before truncation, for the page's first figure."""
    from hepnb.generate.highpt import HIGHPT_CLASSES
    from hepnb.physics.kinematics import mass, pt

    jet = data.p4.sum(axis=1)
    out = {}
    for cls in HIGHPT_CLASSES:
        rows = data.label == cls.label
        if rows.any():
            n = data.mask[rows].sum(1) if data.n_constituents is None else data.n_constituents[rows]
            out[cls.display] = {"mass": mass(jet[rows]), "pt": pt(jet[rows]), "n": n}
    return out


def boost_rows(data: JetData, n: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    """What one SEAL boost does to ``n`` test jets: |β|, the jet's pT and E before and after (they change), its mass
    (kept to rounding) and the change of the leading constituent's features."""
    from hepnb.data.features import boosted_features
    from hepnb.physics.kinematics import boost, mass, pt

    rows = data.rows["test"][:n]
    beta = random_velocities(len(rows), GLOWACKI["beta2_max"], derive_seed(seed, "simplicity boost demo"))
    p4, mask = data.p4[rows], data.mask[rows]
    after = boost(p4, beta[:, None, :])
    x0, x1 = data.x[rows][:, 0], np.asarray(boosted_features(p4, mask, beta))[:, 0]
    out = []
    for i in range(len(rows)):
        jet0, jet1 = p4[i][mask[i]].sum(0), after[i][mask[i]].sum(0)
        out.append({"|β|": f"{np.linalg.norm(beta[i]):.3f}", "pT [GeV]": f"{pt(jet0):.0f} → {pt(jet1):.0f}",
                    "E [GeV]": f"{jet0[3]:.0f} → {jet1[3]:.0f}",
                    "mass [GeV]": f"{mass(jet0):.3f} → {mass(jet1):.3f}",
                    "leading: log pT/pT_jet": f"{x0[i][1]:+.3f} → {x1[i][1]:+.3f}",
                    "leading: ΔR": f"{x0[i][6]:.4f} → {x1[i][6]:.4f}"})
    return out


def _label(cls: str) -> int:
    from hepnb.generate.highpt import highpt_class

    return int(highpt_class(cls).label)


# ---------------------------------------------------------------------------------------------------------------
# models


def make_teacher(width: int = 256) -> JetTransformer:
    """Glowacki's transformer at ``d_model = width`` (the paper: 256): 3 encoder layers, 4 heads, feed-forward
    width = ``width``, mean pooling, a head of three linear layers of ``width / 2`` and one logit, on the 7
    features. At 256 it has 1,255,425 parameters (the paper: 1,256,356; see :mod:`hepnb.models.transformer`)."""
    width = check_int("width", width, minimum=8)
    return JetTransformer(n_features=len(KINEMATIC_FEATURES), d_model=width, dim_feedforward=width,
                          head=(width // 2,) * 3)


def make_student(width: int = 256) -> JetTransformer:
    """The distillation student for a teacher of ``width`` (the paper: 487,665 parameters, architecture not
    given): half the model width, two encoder layers instead of three, a feed-forward width of 2.5 ``width`` and a
    head ``width/2 -> 3 width/16 -> width/8 -> 1``. At ``width = 256`` (d_model 128, feed-forward 640, head 128, 48,
    32) it has exactly 487,665 parameters; smaller teachers get the same shape scaled down."""
    width = check_int("width", width, minimum=16)
    return JetTransformer(n_features=len(KINEMATIC_FEATURES), d_model=width // 2, n_layers=2,
                          dim_feedforward=5 * width // 2, head=(width // 2, 3 * width // 16, width // 8))


def architecture_rows(width: int) -> list[dict[str, Any]]:
    """Parameter counts of the teacher and student at ``width`` and at the paper's width, with the paper's."""
    rows = []
    for name, make, paper in (("teacher", make_teacher, GLOWACKI["teacher_parameters"]),
                              ("student", make_student, GLOWACKI["student_parameters"])):
        rows.append({"model": name, f"parameters (width {width})": f"{n_parameters(make(width)):,}",
                     "parameters (width 256)": f"{n_parameters(make(256)):,}", "paper": f"{paper:,}"})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class Job:
    """One teacher: ``method`` (``bce``, ``seal``, ``augment``) with SEAL weight ``lam`` (``seal`` only), the
    training ``seed`` (initial weights, batch order, boosts), ``epochs`` and model ``width``; Adam's ``lr`` and L2
    ``weight_decay`` and the boost law's ``beta2_max`` as in Glowacki / the SEAL code."""

    method: str
    lam: float
    seed: int
    epochs: int
    width: int
    batch_size: int = 256
    lr: float = GLOWACKI["lr"]
    weight_decay: float = GLOWACKI["weight_decay"]
    beta2_max: float = GLOWACKI["beta2_max"]

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method != "seal" and self.lam != 0:
            raise ValueError(f"lam is the SEAL weight; method {self.method!r} takes lam = 0")


def jobs(methods: Sequence[str], seeds: Sequence[int], epochs: int, width: int, lam: float = GLOWACKI["lam"],
         batch_size: int = 256) -> list[Job]:
    """A :class:`Job` per method and seed (``seal`` with weight ``lam``)."""
    return [Job(m, float(lam) if m == "seal" else 0.0, int(s), int(epochs), int(width), int(batch_size))
            for m in methods for s in seeds]


def make_task(job: Job) -> BinaryTask | InvariancePenaltyTask | AugmentedTask:
    """The job's task: BCE on (x, mask); SEAL adds the boost-consistency penalty; the control trains BCE on the jet
    and its boosted copy. The boosts are seeded from the job's seed (a fresh draw every batch, validation included,
    as in the SEAL code)."""
    base = BinaryTask(input_keys=("x", "mask"))
    boost = JetBoost(seed=derive_seed(job.seed, "simplicity boosts"), beta2_max=job.beta2_max)
    if job.method == "seal":
        return InvariancePenaltyTask(base, boost, weight=job.lam)
    if job.method == "augment":
        return AugmentedTask(base, boost)
    return base


def _key(job: Job, data: JetData) -> dict[str, Any]:
    return {"job": asdict(job), "data": data.key(), "features": list(KINEMATIC_FEATURES)}


def _train_job(job: Job, data: JetData, device: str) -> dict[str, Any]:
    """Train one job (or load its checkpoint); returns its meta."""
    set_seed(job.seed)
    model = make_teacher(job.width)

    def train_model(m: nn.Module) -> dict[str, Any]:
        train_batches = DictBatches(data.tensors(data.rows["train"]), job.batch_size, shuffle=True, seed=job.seed)
        val_batches = DictBatches(data.tensors(data.rows["val"]), 1024)
        start = time.perf_counter()
        history = fit(m, train_batches, val_batches, job.epochs, device=device, progress=False, task=make_task(job),
                      make_optimiser=functools.partial(torch.optim.Adam, lr=job.lr, weight_decay=job.weight_decay))
        m.to("cpu")
        return {"history": history.as_dict(), "seconds": time.perf_counter() - start}

    meta, trained = load_or_train(KIND, _key(job, data), model, train_model, version=TRAINING_VERSION)
    return {**meta, "trained": trained}


def train(job_list: Sequence[Job], data: JetData, workers: int = 1, device: str = "cpu") -> dict[Job, dict]:
    """Every job trained (or loaded): ``{job: meta}`` with the training history and seconds. Missing ones train in
    ``workers`` spawned single-threaded processes on a CPU (the same bits for any worker count)."""
    job_list = list(dict.fromkeys(job_list))
    metas = run_jobs(_train_job, [(j, data, device) for j in job_list], workers, desc="trainings",
                     parallel=device == "cpu")
    return dict(zip(job_list, metas))


def load_teacher(job: Job, data: JetData) -> JetTransformer:
    """The trained teacher of ``job`` (its checkpoint must exist: :func:`train` first)."""
    model = make_teacher(job.width)
    if load_if_usable(KIND, _key(job, data), model, TRAINING_VERSION) is None:
        raise FileNotFoundError(f"no trained checkpoint for {job}; run simplicity.train first")
    return model


# ---------------------------------------------------------------------------------------------------------------
# analysis


@dataclass(frozen=True)
class Settings:
    """What the analysis of one teacher computes: ``hessian_jets`` training jets (half gluon, half W) for the
    Hessian of the BCE loss, Lanczos to ``eig_tol``, Hutchinson to ``rel_error`` (after deflating the top
    ``deflate``, at most ``max_probes``), ``slq_probes`` x ``slq_iter`` for the spectral density (0: none),
    ``ratio_jets`` test jets for R(ε), and the smearing widths ``sigmas``."""

    hessian_jets: int = 1024
    eig_tol: float = 1e-3
    rel_error: float = 0.02
    deflate: int = 5
    max_probes: int = 400
    slq_probes: int = 4
    slq_iter: int = 40
    ratio_jets: int = 512
    sigmas: tuple[float, ...] = SIGMAS
    seed: int = 0


LOSS = nn.BCEWithLogitsLoss()
_SLQ = {"smoke": (2, 15), "book": (4, 40), "paper": (10, 80)}  # (probes, Lanczos steps) of the spectral density


def settings(cfg: Any) -> Settings:
    """The analysis :class:`Settings` of a resolved configuration (``hepnb.resolve(..., chapter="simplicity")``): its
    Hessian batch, trace accuracy and probe cap, and the SLQ resolution of its scale."""
    probes, steps = _SLQ[cfg.scale]
    return Settings(hessian_jets=int(cfg["hessian_jets"]), rel_error=float(cfg["rel_error"]),
                    max_probes=int(cfg["max_probes"]), slq_probes=probes, slq_iter=steps, seed=int(cfg["seed"]))


def _scores(model: nn.Module, data: JetData, rows: np.ndarray, y: np.ndarray, x: np.ndarray | None = None
            ) -> np.ndarray:
    """Sigmoid scores of ``rows`` (features ``x`` if given), on the model's device."""
    batches = DictBatches({k: v for k, v in data.tensors(rows, y, x).items() if k != "p4"}, 2048)
    device = next(model.parameters()).device
    return predict(model, batches, device, BinaryTask(input_keys=("x", "mask")))[0]


def _classification(model: nn.Module, data: JetData) -> dict[str, Any]:
    out = {}
    for task in ("id", "near", "far"):
        rows, y = data.test_rows(task)
        s = _scores(model, data, rows, y)
        out[task] = {"accuracy": float(np.mean((s > 0.5) == (y > 0.5))), "auc": metrics.auc(y.astype(int), s),
                     "scores": np.round(s, 6).tolist()}
    return out


def _invariance(model: nn.Module, data: JetData, seed: int) -> dict[str, float]:
    """How boost-invariant the model's output is on the in-distribution test jets: with one random SEAL boost per jet
    (the same boosts for every model), the mean of ``(p(x) - p(Λx))^2`` -- the SEAL penalty itself -- and of
    ``|p(x) - p(Λx)|``, ``p`` the sigmoid output."""
    from hepnb.data.features import boosted_features

    rows, y = data.test_rows("id")
    beta = random_velocities(len(rows), GLOWACKI["beta2_max"], derive_seed(seed, "simplicity invariance"))
    gx = np.asarray(boosted_features(data.p4[rows], data.mask[rows], beta), np.float32)
    p, q = _scores(model, data, rows, y), _scores(model, data, rows, y, gx)
    return {"msd": float(np.mean((p - q) ** 2)), "mad": float(np.mean(np.abs(p - q)))}


def _robustness(model: nn.Module, data: JetData, sigmas: Sequence[float], seed: int) -> list[float]:
    """Test AUC (gluon vs W) with every constituent's pT smeared by 1 + σ N(0, 1) (the same draws for every model:
    seeded by σ and the analysis seed), features recomputed from the smeared 4-vectors."""
    rows, y = data.test_rows("id")
    out = []
    for sigma in sigmas:
        p4 = smear_pt(data.p4[rows], float(sigma), derive_seed(seed, "simplicity smearing", sigma))
        x = np.asarray(kinematic_features(p4, data.mask[rows]), np.float32)
        out.append(metrics.auc(y.astype(int), _scores(model, data, rows, y, x)))
    return out


def _hessian_batch(data: JetData, n: int, seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    train = data.rows["train"]
    rng = np.random.default_rng(derive_seed(seed, "simplicity hessian batch"))
    half = []
    for label in (0, 2):  # gluon, W
        pool = train[data.label[train] == label]
        half.append(rng.choice(pool, size=min(n // 2, len(pool)), replace=False))
    rows = np.sort(np.concatenate(half))
    t = data.tensors(rows)
    return (t["x"], t["mask"]), t["y"]


def _curvature(model: nn.Module, data: JetData, settings: Settings, density: bool) -> dict[str, Any]:
    """λ₁ (Lanczos) with its residual ``‖Hv − λv‖`` (an error bound on λ₁), Tr(H) (deflated Hutchinson) with its
    standard error, the SLQ density, the loss along ν₁ and R(ε) along ν₁ with g a random boost per jet."""
    device = next(model.parameters()).device
    (x, mask), y = _hessian_batch(data, settings.hessian_jets, settings.seed)
    space = landscape.ParameterSpace(model, LOSS, ((x.to(device), mask.to(device)), y.to(device)), vectorize=False)
    with sdpa_kernel(SDPBackend.MATH):
        start = time.perf_counter()
        top = landscape.lanczos(space, k=1, tol=settings.eig_tol, seed=settings.seed)
        v = top.eigenvectors[0].to(space.dtype)
        residual = float((space.hvp(v) - float(top.eigenvalues[0]) * v).norm())
        t_eig = time.perf_counter() - start
        trace = landscape.hutchinson_trace(space, rel_error=settings.rel_error, batch_probes=8, seed=settings.seed,
                                           deflate=settings.deflate, max_probes=settings.max_probes)
        t_trace = time.perf_counter() - start - t_eig
        out: dict[str, Any] = {
            "lambda1": float(top.eigenvalues[0]), "lambda1_residual": residual, "lanczos_hvp": int(top.n_hvp),
            "trace": float(trace.trace), "trace_se": float(trace.stderr), "trace_probes": int(trace.n_probes),
            "trace_converged": bool(trace.converged), "trace_hvp": int(trace.n_hvp),
            "seconds": {"lanczos": t_eig, "trace": t_trace}, "loss": float(space.loss())}
        if density and settings.slq_probes:
            nodes, weights = landscape.slq_density(space, n_probes=settings.slq_probes, n_iter=settings.slq_iter,
                                                   seed=settings.seed)
            out["slq"] = {"nodes": np.asarray(nodes).tolist(), "weights": np.asarray(weights).tolist()}
        rows, y = data.test_rows("id")
        rng = np.random.default_rng(derive_seed(settings.seed, "simplicity ratio jets"))
        pick = np.sort(rng.choice(len(rows), size=min(settings.ratio_jets, len(rows)), replace=False))
        t = data.tensors(rows[pick], y[pick])
        beta = random_velocities(len(pick), GLOWACKI["beta2_max"], derive_seed(settings.seed, "simplicity R boosts"))
        walk = eigen_walk(model, space, top, (t["x"].to(device), t["mask"].to(device)),
                          transform=BoostInputs(t["p4"].to(device), beta),
                          eps_ratio=np.linspace(-1.0, 1.0, 21))
        out["walk"] = {"eps": walk.eps_profile.tolist(), "loss": walk.profile.tolist(),
                       "taylor": walk.taylor.tolist(), "eps_ratio": walk.eps_ratio.tolist(),
                       "ratio": walk.ratio.tolist()}
    return out


def _analysis_path(job: Job, data: JetData, settings: Settings, density: bool):
    key = {"job": _key(job, data), "settings": asdict(settings), "density": density, "version": ANALYSIS_VERSION}
    return data_dir() / "checkpoints" / f"{KIND}-analysis" / f"{KIND}-analysis-{key_hash(key)}.json"


def _analyse_job(job: Job, data: JetData, settings: Settings, density: bool, device: str = "cpu"
                 ) -> dict[str, Any]:
    path = _analysis_path(job, data, settings, density)
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # damaged: recompute
    model = load_teacher(job, data).to(device)
    start = time.perf_counter()
    out = {"classification": _classification(model, data), "invariance": _invariance(model, data, settings.seed),
           "robustness": {"sigmas": list(settings.sigmas),
                          "auc": _robustness(model, data, settings.sigmas, settings.seed)},
           "curvature": _curvature(model, data, settings, density)}
    out["seconds"] = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out))
    return out


def analyse(job_list: Sequence[Job], data: JetData, settings: Settings, workers: int = 1,
            density_jobs: Sequence[Job] = (), device: str = "cpu") -> dict[Job, dict]:
    """The analysis of every (trained) job, cached per job and settings: classification (accuracy, AUC, scores) in
    and out of distribution, robustness (AUC per σ) and curvature; the SLQ density too for ``density_jobs``. Runs in
    ``workers`` single-threaded processes on a CPU, one after the other on ``device`` otherwise."""
    job_list = list(dict.fromkeys(job_list))
    calls = [(j, data, settings, j in density_jobs, device) for j in job_list]
    return dict(zip(job_list, run_jobs(_analyse_job, calls, workers, desc="analyses", parallel=device == "cpu")))


# ---------------------------------------------------------------------------------------------------------------
# distillation


@dataclass(frozen=True)
class Distillation:
    """One student fitted by MSE to the logits of the teacher of ``teacher``, for ``epochs`` with Adam at ``lr``
    (the paper fixes the procedure but does not give it), on the teacher's training jets."""

    teacher: Job
    epochs: int
    lr: float = 1e-3
    batch_size: int = 256


def _distil_job(d: Distillation, data: JetData, device: str) -> dict[str, Any]:
    teacher = load_teacher(d.teacher, data).to(device)
    set_seed(derive_seed(d.teacher.seed, "simplicity student"))
    student = make_student(d.teacher.width)
    base = BinaryTask(input_keys=("x", "mask"))
    task = DistillationTask(base, teacher)

    def train_model(m: nn.Module) -> dict[str, Any]:
        train_batches = DictBatches(data.tensors(data.rows["train"]), d.batch_size, shuffle=True,
                                    seed=d.teacher.seed)
        val_batches = DictBatches(data.tensors(data.rows["val"]), 1024)
        start = time.perf_counter()
        history = fit(m, train_batches, val_batches, d.epochs, device=device, progress=False, task=task,
                      make_optimiser=functools.partial(torch.optim.Adam, lr=d.lr))
        m.to("cpu")
        teacher.to("cpu")
        rows, y = data.test_rows("id")
        test = DictBatches({k: v for k, v in data.tensors(rows, y).items() if k != "p4"}, 2048)
        mse = float(sum(task.loss(m, b).item() * len(b["y"]) for b in test) / len(y))
        auc = metrics.auc(y.astype(int), predict(m, test, "cpu", base)[0])
        return {"history": history.as_dict(), "test_mse": mse, "student_auc": auc,
                "seconds": time.perf_counter() - start}

    key = {"distillation": asdict(d), "teacher": _key(d.teacher, data)}
    meta, trained = load_or_train(f"{KIND}-student", key, student, train_model, version=TRAINING_VERSION)
    return {**meta, "trained": trained}


def distil(teachers: Sequence[Job], data: JetData, epochs: int, workers: int = 1, device: str = "cpu"
           ) -> dict[Job, dict]:
    """A student per teacher (its checkpoint trained or loaded): ``{teacher job: meta}`` with the per-epoch
    validation MSE (``history["val_loss"]``), the test MSE and the student's test AUC."""
    calls = [(Distillation(t, int(epochs)), data, device) for t in teachers]
    return dict(zip(teachers, run_jobs(_distil_job, calls, workers, desc="distillations",
                                       parallel=device == "cpu")))


# ---------------------------------------------------------------------------------------------------------------
# results


def _select(table: Mapping[Job, Any], **match: Any) -> list[tuple[Job, Any]]:
    hits = [(j, v) for j, v in table.items() if all(getattr(j, k) == v2 for k, v2 in match.items())]
    return sorted(hits, key=lambda jv: jv[0].seed)


def best_seed(metas: Mapping[Job, dict], method: str, lam: float | None = None) -> Job:
    """The job of ``method`` with the lowest best validation loss (the paper's choice for its costly analyses)."""
    match = {"method": method} if lam is None else {"method": method, "lam": lam}
    hits = _select(metas, **match)
    if not hits:
        raise KeyError(f"no trained job of method {method!r}")
    return min(hits, key=lambda jv: min(jv[1]["history"]["val_loss"]))[0]


def _values(analyses: Mapping[Job, dict], path: Sequence[str], **match: Any) -> list[float]:
    out = []
    for _, a in _select(analyses, **match):
        for p in path:
            a = a[p]
        out.append(float(a))
    return out


def _main(method: str) -> dict[str, Any]:
    return {"method": method, "lam": GLOWACKI["lam"] if method == "seal" else 0.0}


def table1_rows(analyses: Mapping[Job, dict]) -> list[dict[str, Any]]:
    """Table 1: accuracy and AUC (mean ± std over seeds) in distribution, ours beside the paper's."""
    rows = []
    for method in ("bce", "seal", "augment"):
        if not _select(analyses, **_main(method)):
            continue
        row: dict[str, Any] = {"model": METHODS[method]}
        for metric in ("accuracy", "auc"):
            mean, std, _ = seed_stats(_values(analyses, ("classification", "id", metric), **_main(method)))
            paper = GLOWACKI["table1"].get(method, {}).get(metric)
            row[f"{metric} (paper)"] = format_pm(*paper, 4, signed=False) if paper else "-"
            row[f"{metric} (ours)"] = format_pm(mean, std, 4, signed=False)
        mean, std, _ = seed_stats(_values(analyses, ("invariance", "msd"), **_main(method)))
        row["mean (p(x) − p(Λx))² (ours)"] = format_pm(mean, std, 4, signed=False)
        rows.append(row)
    return rows


def table3_rows(analyses: Mapping[Job, dict]) -> list[dict[str, Any]]:
    """Table 3: accuracy and AUC out of distribution (gluon vs Z, gluon vs top), mean ± std over seeds."""
    rows = []
    for task, name in (("near", "gluon vs Z (near OOD)"), ("far", "gluon vs top (far OOD)")):
        for method in ("bce", "seal", "augment"):
            if not _select(analyses, **_main(method)):
                continue
            row: dict[str, Any] = {"task": name, "model": METHODS[method]}
            for metric in ("accuracy", "auc"):
                mean, std, _ = seed_stats(_values(analyses, ("classification", task, metric), **_main(method)))
                paper = GLOWACKI["table3"][task].get(method, {}).get(metric)
                row[f"{metric} (paper)"] = format_pm(*paper, 4, signed=False) if paper else "-"
                row[f"{metric} (ours)"] = format_pm(mean, std, 4, signed=False)
            rows.append(row)
    return rows


def _log_ratio(analyses: Mapping[Job, dict], quantity: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed: constrained / unconstrained of ``quantity`` (paired by seed), and each side's own relative error."""
    con = [a["curvature"] for _, a in _select(analyses, **_main("seal"))]
    unc = [a["curvature"] for _, a in _select(analyses, **_main("bce"))]
    err = "lambda1_residual" if quantity == "lambda1" else "trace_se"
    ratio = np.array([c[quantity] / u[quantity] for c, u in zip(con, unc)])
    rel = np.array([np.hypot(c[err] / abs(c[quantity]), u[err] / abs(u[quantity])) for c, u in zip(con, unc)])
    return ratio, rel, np.array([[c[quantity], u[quantity]] for c, u in zip(con, unc)])


def table2_rows(analyses: Mapping[Job, dict], best: Mapping[str, Job] | None = None) -> list[dict[str, Any]]:
    """Table 2 with error bars: λ₁ and Tr(H) ratios (constrained / unconstrained), per seed pair and their mean ±
    standard error over seeds, the best-validation-loss pair (the paper's choice) with its estimator error (Lanczos
    residual bound and Hutchinson standard error, propagated), and the paper's value."""
    rows = []
    for quantity, name in (("lambda1", "λ₁ ratio"), ("trace", "Tr(H) ratio")):
        ratio, rel, _ = _log_ratio(analyses, quantity)
        mean, std, se = seed_stats(ratio)
        row = {"metric": name, "paper": f"{GLOWACKI['table2'][quantity]:.3f}",
               "ours: mean ± SE over seeds": format_pm(mean, se, 3, signed=False),
               "per seed (± estimator error)": ", ".join(format_pm(r, r * e, 3, signed=False)
                                                          for r, e in zip(ratio, rel))}
        if best is not None:
            c = analyses[best["seal"]]["curvature"]
            u = analyses[best["bce"]]["curvature"]
            err = "lambda1_residual" if quantity == "lambda1" else "trace_se"
            r = c[quantity] / u[quantity]
            e = r * np.hypot(c[err] / abs(c[quantity]), u[err] / abs(u[quantity]))
            row["best-val-loss pair"] = format_pm(r, e, 3, signed=False)
        rows.append(row)
    return rows


def curvature_rows(analyses: Mapping[Job, dict]) -> list[dict[str, Any]]:
    """λ₁ (± residual bound) and Tr(H) (± standard error) of every main model and seed, with the HVPs spent."""
    rows = []
    for method in ("bce", "seal", "augment"):
        for job, a in _select(analyses, **_main(method)):
            c = a["curvature"]
            rows.append({"model": LABELS[method], "seed": job.seed,
                         "λ₁ (± ‖Hv−λv‖)": format_pm(c["lambda1"], c["lambda1_residual"], 4, signed=False),
                         "Tr(H) (± SE)": format_pm(c["trace"], c["trace_se"], 3, signed=False),
                         "probes": c["trace_probes"], "HVPs": c["lanczos_hvp"] + c["trace_hvp"],
                         "loss": f"{c['loss']:.4f}"})
    return rows


def distillation_rows(students: Mapping[Job, dict]) -> list[dict[str, Any]]:
    """Fig. 9 in numbers: per teacher, the student's final test MSE, its test AUC and the best epoch."""
    rows = []
    for method in ("bce", "seal"):
        for job, s in _select(students, method=method):
            rows.append({"teacher": LABELS[method], "seed": job.seed, "test MSE": f"{s['test_mse']:.4f}",
                         "lowest validation MSE": f"{min(s['history']['val_loss']):.4f}",
                         "student AUC": f"{s['student_auc']:.4f}", "best epoch": s["history"]["best_epoch"] + 1})
    return rows


def scan_series(analyses: Mapping[Job, dict], lambdas: Sequence[float] = LAMBDAS) -> dict[str, Any]:
    """Beyond the paper: per λ (λ = 0 is the unconstrained model) the mean and standard error over seeds of the
    boost-consistency penalty on test jets, λ₁, Tr(H), the in-distribution AUC and the two OOD AUCs."""
    def jobs_at(lam: float) -> dict[str, Any]:
        return {"method": "bce", "lam": 0.0} if lam == 0 else {"method": "seal", "lam": float(lam)}

    paths = {"msd": ("invariance", "msd"), "lambda1": ("curvature", "lambda1"), "trace": ("curvature", "trace"),
             "auc_id": ("classification", "id", "auc"), "auc_near": ("classification", "near", "auc"),
             "auc_far": ("classification", "far", "auc")}
    out: dict[str, Any] = {"lam": list(lambdas)}
    for name, path in paths.items():
        stats = [seed_stats(_values(analyses, path, **jobs_at(lam))) for lam in lambdas]
        out[name] = (np.array([s[0] for s in stats]), np.array([s[2] for s in stats]))
    return out


def scan_rows(analyses: Mapping[Job, dict], lambdas: Sequence[float] = LAMBDAS) -> list[dict[str, Any]]:
    """The λ scan as a table (mean ± standard error over seeds)."""
    series = scan_series(analyses, lambdas)
    rows = []
    for i, lam in enumerate(lambdas):
        row = {"λ": f"{lam:g}"}
        for name, label, digits in (("msd", "mean (p(x) − p(Λx))²", 4), ("lambda1", "λ₁", 4), ("trace", "Tr(H)", 2),
                                    ("auc_id", "AUC g vs W", 4),
                                    ("auc_near", "AUC g vs Z", 4), ("auc_far", "AUC g vs t", 4)):
            row[label] = format_pm(series[name][0][i], series[name][1][i], digits, signed=False)
        rows.append(row)
    return rows


def roc(analyses: Mapping[Job, dict], data: JetData, job: Job, task: str = "id") -> tuple[np.ndarray, np.ndarray]:
    """(gluon efficiency ε_g, signal efficiency ε_s) of one job's stored test scores (Fig. 4, Fig. 8)."""
    from sklearn.metrics import roc_curve

    _, y = data.test_rows(task)
    fpr, tpr, _ = roc_curve(y.astype(int), np.asarray(analyses[job]["classification"][task]["scores"]))
    return fpr, tpr


def claims_rows(analyses: Mapping[Job, dict], students: Mapping[Job, dict]) -> list[dict[str, Any]]:
    """The paper's claims, each measured as a paired per-seed difference (constrained minus unconstrained; the two
    share the seed, hence the split, batch order and initial weights) and judged by the statistics module's rule."""
    def paired(path: Sequence[str], transform=lambda v: v) -> Any:
        con = [transform(v) for v in _values(analyses, path, **_main("seal"))]
        unc = [transform(v) for v in _values(analyses, path, **_main("bce"))]
        return seed_difference(con, unc, paired=True)

    log = np.log
    rows = [
        claim("AUC in distribution: constrained − unconstrained", GLOWACKI["table1"]["seal"]["auc"][0]
              - GLOWACKI["table1"]["bce"]["auc"][0], paired(("classification", "id", "auc")), -1,
              key="ID AUC difference"),
        claim("log λ₁: constrained − unconstrained (Table 2)", float(log(GLOWACKI["table2"]["lambda1"])),
              paired(("curvature", "lambda1"), log), -1, digits=3, key="lambda1 ratio"),
        claim("log Tr(H): constrained − unconstrained (Table 2)", float(log(GLOWACKI["table2"]["trace"])),
              paired(("curvature", "trace"), log), -1, digits=3, key="trace ratio"),
        claim("AUC gluon vs Z (near OOD): constrained − unconstrained",
              GLOWACKI["table3"]["near"]["seal"]["auc"][0] - GLOWACKI["table3"]["near"]["bce"]["auc"][0],
              paired(("classification", "near", "auc")), +1, key="near OOD AUC"),
        claim("AUC gluon vs top (far OOD): constrained − unconstrained",
              GLOWACKI["table3"]["far"]["seal"]["auc"][0] - GLOWACKI["table3"]["far"]["bce"]["auc"][0],
              paired(("classification", "far", "auc")), +1, key="far OOD AUC"),
    ]
    rows.insert(0, claim("boost-consistency penalty mean((p(x) − p(Λx))²) on test jets: constrained − unconstrained "
                         "(eq. 5)", "< 0 (eq. 5)", paired(("invariance", "msd")), -1, digits=4,
                         key="boost invariance"))
    con = [a["robustness"]["auc"] for _, a in _select(analyses, **_main("seal"))]
    unc = [a["robustness"]["auc"] for _, a in _select(analyses, **_main("bce"))]
    drop = seed_difference([c[0] - c[-1] for c in con], [u[0] - u[-1] for u in unc], paired=True)
    rows.append(claim(f"AUC lost at σ = {SIGMAS[-1]:g} smearing: constrained − unconstrained (Fig. 7)",
                      "< 0 (Fig. 7)", drop, -1, key="smearing robustness"))
    if students:
        mse_c = [s["test_mse"] for _, s in _select(students, method="seal")]
        mse_u = [s["test_mse"] for _, s in _select(students, method="bce")]
        if len(mse_c) == len(mse_u) and mse_c:
            rows.append(claim("log final distillation MSE: constrained − unconstrained teacher (Fig. 9)",
                              "< 0 (Fig. 9)", seed_difference(np.log(mse_c), np.log(mse_u), paired=True), -1,
                              digits=3, key="distillation MSE"))
    return rows


def reading(analyses: Mapping[Job, dict], students: Mapping[Job, dict]) -> str:
    """The page's reading of its own results, in Markdown, written from the values and verdicts of this run (so the
    words cannot drift from the numbers)."""
    claims = {r["key"]: r for r in claims_rows(analyses, students)}

    def mean(path: Sequence[str], method: str) -> float:
        values = _values(analyses, path, **_main(method))
        return float(np.mean(values)) if values else float("nan")

    inv = {m: mean(("invariance", "msd"), m) for m in METHODS}
    ratios = {q: _log_ratio(analyses, q) for q in ("lambda1", "trace")}
    spread = max(float(np.std(r, ddof=1) / abs(np.mean(r))) if len(r) > 1 else 0.0 for r, _, _ in ratios.values())
    estimator = max(float(np.max(e)) for _, e, _ in ratios.values())
    control = ("is at least as invariant: training on boosted jets alone buys the invariance" if inv["augment"]
               <= inv["seal"] else "is less invariant than the constrained one")
    lines = [
        f"* **The constraint itself.** A random boost moves the unconstrained model's output by "
        f"⟨(p(x) − p(Λx))²⟩ = {inv['bce']:.4f} on average, the constrained one's by {inv['seal']:.4f} (verdict: "
        f"{claims['boost invariance']['reproduced']}); the augmentation control, which never sees the penalty "
        f"({inv['augment']:.4f}), {control}.",
        f"* **Curvature (Table 2).** Constrained / unconstrained λ₁ per seed: "
        f"{', '.join(f'{r:.2f}' for r in ratios['lambda1'][0])} (the paper: {GLOWACKI['table2']['lambda1']}); "
        f"Tr(H): {', '.join(f'{r:.2f}' for r in ratios['trace'][0])} (the paper: {GLOWACKI['table2']['trace']}). "
        f"On the log scale: {claims['lambda1 ratio']['reproduced']} and {claims['trace ratio']['reproduced']}. "
        f"The ratios scatter by up to {spread:.0%} from seed to seed, the estimators' own errors are at most "
        f"{estimator:.1%}" + (": the seeds, not the estimators, limit what one pair of models (as in the paper) can "
                              "say." if spread > estimator else "."),
        f"* **Accuracy, out of distribution, robustness, distillation.** In distribution the constrained model's AUC "
        f"differs by {claims['ID AUC difference']['ours']} ({claims['ID AUC difference']['reproduced']}); gluon vs Z "
        f"by {claims['near OOD AUC']['ours']} ({claims['near OOD AUC']['reproduced']}), gluon vs top by "
        f"{claims['far OOD AUC']['ours']} ({claims['far OOD AUC']['reproduced']}); the AUC lost at the largest "
        f"smearing by {claims['smearing robustness']['ours']} ({claims['smearing robustness']['reproduced']})"
        + (f"; the log distillation MSE by {claims['distillation MSE']['ours']} "
           f"({claims['distillation MSE']['reproduced']})." if "distillation MSE" in claims else "."),
    ]
    return "\n".join(lines)


def scan_jobs(seeds: Sequence[int], epochs: int, width: int, lambdas: Sequence[float] = LAMBDAS) -> list[Job]:
    """The SEAL jobs of the λ scan beyond λ = 0 (the unconstrained model) and the main λ."""
    return [Job("seal", float(lam), int(s), int(epochs), int(width)) for lam in lambdas if lam != 0 for s in seeds]

