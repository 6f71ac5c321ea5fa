"""Which idea generalises? Every method of the book's four papers on one cross-shower benchmark.

Explained in ``book/benchmark/benchmark.ipynb``; this module holds the chapter's logic, so the page only narrates
and plots. The task is H->bb vs QCD on the re-simulated jets of ``book/data/resimulation.ipynb``: every method
trains on the nominal shower of the *same* hard events and is tested on the same test events showered five ways
(nominal, new seed, FSR mu_R x 1/sqrt 2 and x sqrt 2, the alternative shower). The pieces, in the page's order:

* data: :func:`load_replicas` gives each training seed its own replica (data generated with that seed, one event
  split shared by every method: :class:`Replica`), the replicas of ``book/adversarial/adversarial.ipynb`` with all
  five showers kept, so the adversarial chapter's checkpoints are reused where the settings match;
* methods (:data:`METHODS`): default, FGSM, PGD, SAM and SSAM-D (Rothen et al.), the SEAL soft Lorentz-symmetry loss
  (Glowacki), a hybrid of the dense tagger and a pairwise-invariant subnet mixed by a learned jet-pT weight (Nabat
  et al.'s idea on jets: :mod:`hepnb.models.pairwise`), RS3L fine-tuned fixed and floating and supervised on the
  augmented mixture (Harris et al.), and two controls whose augmentations leave the alternative shower out;
* training and measurement: :func:`run` trains (or loads) every (method, seed) and measures each: test scores in
  all five showers and the loss Hessian's lambda_1 (Lanczos) and trace (Hutchinson) on a fixed batch of training
  jets, through :mod:`hepnb.landscape`; results are cached beside the checkpoints;
* results: :func:`values` (every metric per method and seed), :func:`summary_rows` (the sortable table, its ranking
  computed), :func:`shift_rows`, :func:`pareto_points`, :func:`sharpness_points` and :func:`correlations`,
  :func:`claims_rows` (paired verdicts against the default) and :func:`verdicts` (one plain sentence per method).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hepnb import landscape
from hepnb.config import data_dir
from hepnb.data.datasets import DictBatches, JetDataset, PartnerBatches
from hepnb.data.features import JetInputBoost
from hepnb.data.files import atomic_path
from hepnb.data.sample import VARIATION_NAMES
from hepnb.evaluation import metrics
from hepnb.evaluation.claims import claim
from hepnb.evaluation.stats import seed_difference, seed_stats, verdict
from hepnb.evaluation.tables import format_pm
from hepnb.generate.pythia import derive_seed
from hepnb.models import DenseTagger, mode, n_parameters
from hepnb.models.edgeconv import RS3LTagger
from hepnb.models.pairwise import JetHybrid
from hepnb.physics.kinematics import mass as jet_mass
from hepnb.studies import adversarial, rs3l
from hepnb.studies.adversarial import SimulatorSplits
from hepnb.training.adversarial import METHODS as ROTHEN_SPECS
from hepnb.training.checkpoints import key_hash, load_or_train
from hepnb.training.loop import fit, predict
from hepnb.training.parallel import run_jobs, share_memory
from hepnb.training.tasks import BinaryTask, ContrastiveTask, InvariancePenaltyTask
from hepnb.validation import check_int

__all__ = ["TRAINING_VERSION", "ANALYSIS_VERSION", "KIND", "CLASSES", "VARIATIONS", "SHIFTS", "EFFICIENCY",
           "JSD_EFFICIENCY",
           "Method", "METHODS", "ORDER", "SHIFT_LABELS", "STYLES", "CONTROLS", "Replica", "load_replica",
           "load_replicas",
           "data_requests", "split_rows", "method_rows", "Settings", "settings", "training_events", "training_rows",
           "run",
           "Result", "values", "summary_rows", "rank", "shift_rows", "pareto_front", "pareto_points",
           "sharpness_points", "correlations", "correlation_rows", "claims_rows", "verdicts", "summary",
           "cost_rows", "hybrid_weights", "rejection_counts", "jsd_floor", "GLOWACKI_LAMBDA", "GLOWACKI_BETA2_MAX",
           "SHARED_BACKBONE"]

TRAINING_VERSION = 1  # bump when a change to this chapter's training makes its checkpoints wrong
ANALYSIS_VERSION = 1  # bump when a change to the measurements makes the cached results wrong
KIND = "benchmark"
CLASSES: tuple[str, ...] = adversarial.CLASSES  # H->bb and QCD: the adversarial chapter's replicas
VARIATIONS: tuple[str, ...] = VARIATION_NAMES
SHIFTS: tuple[str, ...] = VARIATIONS[1:]  # what the nominal-trained models are tested on besides nominal
EFFICIENCY = 0.5  # the working point of the rejection R50
JSD_EFFICIENCY = 0.85  # the mass-sculpting cut (Rothen et al.'s working point: enough QCD jets pass to histogram)
GLOWACKI_LAMBDA, GLOWACKI_BETA2_MAX = 0.1, 0.95  # SEAL's weight and boost range (Glowacki; the authors' code)
SHARED = "dense tagger (Rothen et al.): 40 × 15 + 2 → 128 → 64 → 32 → 1"


@dataclass(frozen=True)
class Method:
    """One way of training a tagger: ``key``, its table ``label``, the ``paper`` it comes from, its ``backbone``
    (the shared dense tagger, or what the method forces), ``recipe`` (what the method adds to the shared training
    core, with its paper's hyperparameters), ``partners``: the shower variations it trains on besides nominal (the
    augmentations), and ``control``: beyond the papers, a control that isolates one ingredient."""

    key: str
    label: str
    paper: str
    backbone: str
    recipe: str
    partners: tuple[str, ...] = ()
    control: bool = False


_ALL = ("seed", "fsr_down", "fsr_up", "alt_shower")
_SEED_FSR = ("seed", "fsr_down", "fsr_up")


def _rothen(key: str) -> Method:
    spec = ROTHEN_SPECS[key]
    params = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in spec.params.items())
    recipe = {"default": "the shared core alone: BCE, AdamW, the weights of the best validation epoch",
              "fgsm": f"one signed-gradient attack on the inputs per step ({params})",
              "pgd": f"5 projected attack steps on the inputs per step ({params})",
              "sam": f"the gradient taken at the worst point of a weight ball ({params})",
              "ssamd": f"SAM on a dynamic sparse half of the weights ({params})"}[key]
    return Method(key, spec.label, "Rothen et al.", SHARED, recipe)


METHODS: dict[str, Method] = {
    **{k: _rothen(k) for k in ("default", "fgsm", "pgd", "sam", "ssamd")},
    "seal": Method("seal", "SEAL", "Glowacki", SHARED,
                   f"+ λ · mean((σ(f(x)) − σ(f(Λx)))²), λ = {GLOWACKI_LAMBDA}, Λ a random boost per jet with "
                   f"|β|² uniform in [0, {GLOWACKI_BETA2_MAX}) (constituents and jet axis boosted, features "
                   "recomputed)"),
    "hybrid": Method("hybrid", "hybrid (pT-weighted)", "Nabat et al.",
                     "its own: the dense tagger's last hidden layer g and a pairwise-invariant subnet s (190 pairs "
                     "of the 20 leading constituents), mixed w(pT) g + (1 − w(pT)) s",
                     "the architecture is the method; trained by the shared core"),
    "rs3l_fixed": Method("rs3l_fixed", "RS3L fine-tuned, fixed", "Harris et al.",
                         "the dense tagger as an 8-d encoder (head 32 → 8), + Linear(8 → 1) on the normalised "
                         "representation", "NT-Xent pre-training (τ = 0.1, Adam 10⁻³, 100 events per batch) on "
                         "nominal/re-simulated pairs of the training events; then only the head trains, on the "
                         "augmented mixture", _ALL),
    "rs3l_floating": Method("rs3l_floating", "RS3L fine-tuned, floating", "Harris et al.",
                            "as fixed", "the same pre-training; then every weight trains, on the augmented mixture",
                            _ALL),
    "augmented": Method("augmented", "supervised, all augmentations", "Harris et al.", SHARED,
                        "BCE on the augmented mixture: each event's nominal jet and one partner from seed, FSR and "
                        "alt. shower, drawn afresh every epoch", _ALL),
    "rs3l_floating_sf": Method("rs3l_floating_sf", "RS3L floating, seed + FSR only", "control",
                               "as fixed", "RS3L floating with partners from seed and FSR only: it never sees the "
                               "alternative shower", _SEED_FSR, control=True),
    "augmented_sf": Method("augmented_sf", "supervised, seed + FSR only", "control", SHARED,
                           "the augmented mixture without the alternative shower", _SEED_FSR, control=True),
}
ORDER: tuple[str, ...] = tuple(METHODS)
SHIFT_LABELS: dict[str, str] = {"seed": "new seed", "fsr_down": "FSR μR × 1/√2", "fsr_up": "FSR μR × √2",
                                "alt_shower": "alt. shower"}  # plain text: table headers render no LaTeX
# Figure styles (colour, marker) per method: a paper's methods share a marker, controls are drawn open.
STYLES: dict[str, tuple[str, str]] = {
    "default": ("black", "o"), "fgsm": ("tab:blue", "o"), "pgd": ("tab:cyan", "o"), "sam": ("tab:purple", "o"),
    "ssamd": ("tab:pink", "o"), "seal": ("tab:orange", "D"), "hybrid": ("tab:brown", "P"),
    "rs3l_fixed": ("darkred", "s"), "rs3l_floating": ("tab:red", "s"), "augmented": ("tab:green", "^"),
    "rs3l_floating_sf": ("tab:red", "s"), "augmented_sf": ("tab:green", "^")}
CONTROLS: tuple[str, ...] = tuple(k for k, m in METHODS.items() if m.control)
_ROTHEN = ("default", "fgsm", "pgd", "sam", "ssamd")
_RS3L = ("rs3l_fixed", "rs3l_floating", "rs3l_floating_sf")


def _inputs(method: str) -> tuple[str, ...]:
    return ("x", "jet", "mask", "p4") if method == "hybrid" else ("x", "jet", "mask")


# ---------------------------------------------------------------------------------------------------------------
# data


@dataclass(eq=False)
class Replica:
    """One replica of the benchmark: the adversarial chapter's split of seed ``seed``'s H->bb and QCD hard events
    (70 / 15 / 15 by hard event, balanced per split), with all five showers, and beside each split's
    :class:`~hepnb.data.datasets.JetDataset` the 4-vectors the SEAL boost and the hybrid's invariants need:
    ``p4`` (R, 5, 40, 4) float32 [GeV] and ``jet_p4`` (R, 5, 4) float64, and the ``event_id`` of every row.
    Every method of one seed trains on exactly these training rows."""

    seed: int
    splits: SimulatorSplits
    p4: dict[str, torch.Tensor]
    jet_p4: dict[str, torch.Tensor]
    event_id: dict[str, np.ndarray]

    def dataset(self, split: str) -> JetDataset:
        return self.splits.datasets[split]

    def key(self) -> dict[str, Any]:
        """What identifies the data in checkpoint keys (the adversarial chapter's, so its checkpoints match)."""
        return dict(self.splits.data_key)

    def tensors(self, split: str, variation: str = "nominal") -> dict[str, torch.Tensor]:
        """Every per-jet tensor of one split and shower: ``x``, ``jet``, ``mask``, ``y``, ``p4``, ``jet_p4`` and
        ``event`` (the hard-event id)."""
        d, v = self.dataset(split), VARIATIONS.index(variation)
        return {"x": d.x[:, v], "jet": d.jet[:, v], "mask": d.mask[:, v], "y": d.y, "p4": self.p4[split][:, v],
                "jet_p4": self.jet_p4[split][:, v], "event": torch.from_numpy(self.event_id[split])}

    def batches(self, split: str, variation: str = "nominal", shuffle: bool = False, seed: int = 0,
                batch_size: int | None = None) -> DictBatches:
        """Minibatches of one split and shower. Shuffled with ``seed`` they come in the order of
        :meth:`SimulatorSplits.train` with that seed (the same generator over the same rows): what the adversarial
        chapter's models trained on."""
        size = batch_size or (self.splits.batch_size if split == "train" else 1024)
        return DictBatches(self.tensors(split, variation), size, shuffle=shuffle, seed=seed)

    def partner_batches(self, partners: Sequence[str], layout: str, events: int, seed: int, split: str = "train",
                        fixed: bool = False) -> PartnerBatches:
        """Hard events of a split, each with its nominal jet and one partner from ``partners`` drawn afresh every
        pass (Harris et al.'s augmentation; :class:`~hepnb.data.datasets.PartnerBatches`)."""
        d = self.dataset(split)
        labels = {"y": d.y, "event": torch.from_numpy(self.event_id[split])}
        return PartnerBatches({"x": d.x, "jet": d.jet, "mask": d.mask}, np.arange(len(d.rows)),
                              [VARIATIONS.index(p) for p in partners], events, layout, labels=labels,
                              shuffle=not fixed, fixed=fixed, seed=seed)

    def hessian_rows(self, n: int) -> np.ndarray:
        """Up to ``n`` training rows, half H->bb and half QCD, drawn with the replica's seed: the batch whose loss
        Hessian is analysed, the same for every method."""
        y = self.dataset("train").labels
        rng = np.random.default_rng(derive_seed(self.seed, "benchmark hessian"))
        half = [rng.choice(np.flatnonzero(y == c), size=min(n // 2, int((y == c).sum())), replace=False)
                for c in (1, 0)]
        return np.sort(np.concatenate(half))

    def share(self) -> bool:
        """Move every tensor to shared memory for a worker pool (:func:`hepnb.training.parallel.share_memory`)."""
        tensors = [t for s in ("train", "val", "test") for t in (*self._dataset_tensors(s), self.p4[s],
                                                                 self.jet_p4[s])]
        return share_memory(tensors, "the benchmark's jets")

    def _dataset_tensors(self, split: str) -> tuple[torch.Tensor, ...]:
        d = self.dataset(split)
        return d.x, d.jet, d.mask, d.y


def load_replica(n_events: int, seed: int, workers: int = 1, batch_size: int = 128) -> Replica:
    """The :class:`Replica` of one seed: ``n_events`` H->bb and QCD hard events from the generation cache
    (generated first if missing), split by :func:`hepnb.studies.adversarial.load_splits`."""
    n_events = check_int("n_events", n_events)
    jets, splits = adversarial.load_splits(n_events, seed, batch_size, workers, simulators=VARIATIONS)
    trunc = jets.truncate(adversarial.N_CONSTITUENTS)
    p4, jet_p4, events = {}, {}, {}
    for split, d in splits.datasets.items():
        p4[split] = torch.from_numpy(np.ascontiguousarray(trunc.p4[d.rows], dtype=np.float32))
        jet_p4[split] = torch.from_numpy(np.ascontiguousarray(jets.jet_p4[d.rows], dtype=np.float64))
        events[split] = jets.event_id[d.rows].astype(np.int64)
    return Replica(int(seed), splits, p4, jet_p4, events)


def load_replicas(n_events: int, seeds: Sequence[int], workers: int = 1, batch_size: int = 128
                  ) -> dict[int, Replica]:
    """``{seed: Replica}``: one independent replica per training seed, as the adversarial chapter has them (seed
    ``s``: data generated with ``s``, split with ``s``, initial weights from ``s``), so the spread over seeds is the
    spread of the whole benchmark and two methods of one seed are a paired comparison."""
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"replicas need distinct seeds, got {seeds}")
    return {s: load_replica(n_events, s, workers, batch_size) for s in tqdm(seeds, desc="replicas", delay=2)}


def data_requests(cfg: Any) -> list[Any]:
    """The generated files :func:`load_replicas` reads with the chapter's configuration (for ``make data``,
    :func:`hepnb.data.generators.plan`): H->bb and QCD at every training seed."""
    from hepnb.data.generators import requests

    return requests("resim", CLASSES, cfg.n_events, [cfg.seed + k for k in range(cfg.seeds)], "benchmark")


def split_rows(replicas: Mapping[int, Replica]) -> list[dict[str, Any]]:
    """Hard events per split and class for every replica."""
    out = []
    for s, r in replicas.items():
        for split in ("train", "val", "test"):
            n = r.dataset(split).n_per_class
            out.append({"seed": s, "split": split, "H→bb": n["hbb"], "QCD": n["qcd"],
                        "showers per event": len(VARIATIONS)})
    return out


def method_rows() -> list[dict[str, str]]:
    """What every method is: its paper, backbone, what it adds to the shared core, and what it trains on."""
    return [{"method": m.label, "paper": m.paper, "backbone": m.backbone, "recipe": m.recipe,
             "trains on": "nominal + " + ", ".join(m.partners) if m.partners else "nominal only"}
            for m in METHODS.values()]


# ---------------------------------------------------------------------------------------------------------------
# training and measurement


@dataclass(frozen=True)
class Settings:
    """The shared training core and the measurement of a scale: ``epochs`` at AdamW(``lr``, weight decay 0.01)
    with minibatches of ``batch_size`` jets (Rothen et al., Table VII), the RS3L pre-training's epochs, and the
    Hessian: ``hessian_jets`` training jets, Hutchinson to ``rel_error`` with at most ``max_probes`` probes."""

    epochs: int = 100
    lr: float = 1e-4
    batch_size: int = 128
    pretrain_epochs: int = 100
    hessian_jets: int = 4096
    rel_error: float = 0.02
    max_probes: int = 1000

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "pretrain_epochs", "hessian_jets"):
            check_int(name, getattr(self, name), minimum=2 if name in ("batch_size", "hessian_jets") else 1)
        check_int("max_probes", self.max_probes, minimum=3)


def settings(cfg: Any) -> Settings:
    """The :class:`Settings` of a resolved configuration (``hepnb.resolve(..., chapter="benchmark")``)."""
    return Settings(int(cfg.epochs), float(cfg.lr), int(cfg.batch_size), int(cfg.pretrain_epochs),
                    int(cfg.hessian_jets), float(cfg.rel_error), int(cfg.max_probes))


def _key(method: str, replica: Replica, st: Settings) -> dict[str, Any]:
    """The checkpoint key of a non-Rothen method (Rothen's go through the adversarial chapter's own keys)."""
    m = METHODS[method]
    key = {"chapter": KIND, "method": method, "partners": list(m.partners), "seed": replica.seed,
           "epochs": st.epochs, "lr": st.lr, "batch_size": st.batch_size, "optimiser": "AdamW(weight_decay=0.01)",
           "data": replica.key()}
    if method == "seal":
        key["seal"] = {"lambda": GLOWACKI_LAMBDA, "beta2_max": GLOWACKI_BETA2_MAX}
    if method in _RS3L:
        key["pretraining"] = _pretrain_key(method, replica, st)
    return key


def _pretrain_key(method: str, replica: Replica, st: Settings) -> dict[str, Any]:
    return {"chapter": KIND, "method": "rs3l_pretrain", "partners": list(METHODS[method].partners),
            "seed": replica.seed, "epochs": st.pretrain_epochs, "lr": rs3l.PRETRAIN_LR,
            "batch": rs3l.PRETRAIN_BATCH, "temperature": rs3l.TEMPERATURE, "data": replica.key()}


def training_events(method: str, replica: Replica, st: Settings) -> np.ndarray:
    """The hard-event ids of every jet ``method`` trains on in its first epoch, in batch order (the nominal jets,
    and for the augmented methods each event's partner after them): what the tests compare across methods."""
    return np.concatenate([b["event"].numpy() for b in _train_batches(method, replica, st)])


def _train_batches(method: str, replica: Replica, st: Settings) -> Any:
    partners = METHODS[method].partners
    if not partners:
        return replica.batches("train", shuffle=True, seed=replica.seed, batch_size=st.batch_size)
    return replica.partner_batches(partners, "mixture", max(1, st.batch_size // 2),
                                   derive_seed(replica.seed, "benchmark mixture", method))


def training_rows(replicas: Mapping[int, Replica], st: Settings, methods: Sequence[str] = ORDER
                  ) -> list[dict[str, Any]]:
    """Checks, per replica, that every method trains on exactly the replica's training events (by hard-event id,
    from the batches each method's training iterates), and that the batches the adversarial chapter's models were
    trained on (:meth:`SimulatorSplits.train`) are the benchmark's nominal batches, jet for jet; raises
    ``RuntimeError`` otherwise. Rows: seed, events, a fingerprint of the sorted event ids, jets per epoch."""
    import hashlib

    rows = []
    for seed, r in replicas.items():
        events = np.sort(r.event_id["train"])
        adversarial_x = [b["x"] for b in r.splits.train("nominal", seed)]
        ours_x = [b["x"] for b in r.batches("train", shuffle=True, seed=seed)]
        if len(adversarial_x) != len(ours_x) or not all(torch.equal(a, b) for a, b in zip(adversarial_x, ours_x)):
            raise RuntimeError(f"seed {seed}: the adversarial chapter's training batches differ from the benchmark's")
        jets = {}
        for m in methods:
            seen = training_events(m, r, st)
            if not np.array_equal(np.unique(seen), events):
                raise RuntimeError(f"seed {seed}: {m} trains on other events than the replica's training split")
            jets[m] = len(seen)
        rows.append({"seed": seed, "training events": len(events),
                     "event-id fingerprint": hashlib.sha256(events.tobytes()).hexdigest()[:12],
                     "methods": len(jets), "jets per epoch": ", ".join(f"{n:,}" for n in sorted(set(jets.values())))})
    return rows


def _fit(model: nn.Module, method: str, replica: Replica, st: Settings, device: str, task: Any = None
         ) -> dict[str, Any]:
    task = task or BinaryTask(input_keys=_inputs(method))
    start = time.perf_counter()  # every method picks its epoch on the nominal validation jets
    history = fit(model, _train_batches(method, replica, st), list(replica.batches("val")), st.epochs, lr=st.lr,
                  device=device, progress=False, task=task,
                  make_optimiser=lambda params: torch.optim.AdamW([p for p in params if p.requires_grad], lr=st.lr,
                                                                  weight_decay=1e-2))
    return {**history.as_dict(), "seconds": time.perf_counter() - start}


def _pretrained(method: str, replica: Replica, st: Settings, device: str) -> tuple[DenseTagger, dict[str, Any]]:
    """The RS3L encoder of ``method``'s partner set and seed: NT-Xent on nominal/partner pairs of the training
    events (loaded from its checkpoint when present)."""
    partners = METHODS[method].partners

    def train(model: nn.Module) -> dict[str, Any]:
        pairs = replica.partner_batches(partners, "pairs", rs3l.PRETRAIN_BATCH,
                                        derive_seed(replica.seed, "benchmark pairs", *partners))
        val = list(replica.partner_batches(partners, "pairs", rs3l.PRETRAIN_BATCH,
                                           derive_seed(replica.seed, "benchmark val pairs"), split="val", fixed=True))
        make_opt, make_sched = rs3l.schedule(rs3l.PRETRAIN_LR)
        start = time.perf_counter()
        history = fit(model, pairs, val, st.pretrain_epochs, device=device, progress=False,
                      task=ContrastiveTask(("x", "jet", "mask"), rs3l.TEMPERATURE), make_optimiser=make_opt,
                      make_scheduler=make_sched)
        model.to("cpu")
        return {**history.as_dict(), "seconds": time.perf_counter() - start}

    torch.manual_seed(replica.seed)
    encoder = DenseTagger(outputs=8)
    meta, _ = load_or_train(KIND, _pretrain_key(method, replica, st), encoder, train, version=TRAINING_VERSION)
    return encoder, meta


def _model(method: str, replica: Replica, st: Settings, device: str) -> tuple[nn.Module, dict[str, Any], bool]:
    """``(model in eval mode, meta, trained now?)`` of one method and seed. Every model of a seed starts from that
    seed's torch state: the dense methods from the very same initial weights."""
    seed = replica.seed
    if method in _ROTHEN:
        model, meta, trained = adversarial.trained_model(method, "nominal", seed, replica.splits, st.epochs, st.lr,
                                                         device)
        return model, {**meta, "seconds": float(np.sum(meta["epoch_seconds"]))}, trained
    pre: dict[str, Any] = {}
    if method in _RS3L:
        encoder, pre = _pretrained(method, replica, st, device)
        torch.manual_seed(derive_seed(seed, "benchmark head", method))
        model: nn.Module = RS3LTagger(encoder, freeze_backbone=method == "rs3l_fixed")
    else:
        torch.manual_seed(seed)
        model = JetHybrid() if method == "hybrid" else DenseTagger()
    task = None
    if method == "seal":
        task = InvariancePenaltyTask(BinaryTask(), JetInputBoost(derive_seed(seed, "benchmark seal"),
                                                                 GLOWACKI_BETA2_MAX), GLOWACKI_LAMBDA)
    meta, trained = load_or_train(KIND, _key(method, replica, st), model,
                                  lambda m: _fit(m, method, replica, st, device, task), version=TRAINING_VERSION)
    if pre:
        meta = {**meta, "pretrain_seconds": pre["seconds"], "seconds": meta["seconds"] + pre["seconds"]}
    return model.to(device).eval(), meta, trained


def _scores(model: nn.Module, method: str, replica: Replica, device: str) -> np.ndarray:
    """Sigmoid scores (N_test, 5 showers) of the test jets; raises if the showers' test jets are not the same hard
    events in the same order."""
    keys = _inputs(method)
    events = replica.event_id["test"]
    out = np.zeros((len(events), len(VARIATIONS)), np.float32)
    for v, name in enumerate(VARIATIONS):
        batches = list(replica.batches("test", name))
        seen = np.concatenate([b["event"].numpy() for b in batches])
        if not np.array_equal(seen, events):
            raise RuntimeError(f"the {name} test jets are not the nominal test jets' hard events")
        out[:, v] = predict(model, batches, device, task=BinaryTask(input_keys=keys))[0]
    return out


@contextlib.contextmanager
def _every_weight(model: nn.Module) -> Iterator[nn.Module]:
    """Every parameter differentiable for the block (a fixed RS3L backbone too): the Hessian of every method is
    taken over all its weights, the function the loss depends on, whatever the training updated."""
    frozen = getattr(model, "frozen", None)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    if frozen is not None:
        model.frozen = False
    for p, _ in flags:
        p.requires_grad_(True)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        if frozen is not None:
            model.frozen = frozen


def _curvature(model: nn.Module, method: str, replica: Replica, st: Settings, device: str) -> dict[str, Any]:
    """λ₁ (Lanczos) and Tr(H) (Hutchinson, with its standard error) of the BCE loss over every weight, in eval
    mode, on the replica's Hessian batch of nominal training jets."""
    rows = torch.from_numpy(replica.hessian_rows(st.hessian_jets))
    t = replica.tensors("train")
    inputs = tuple(t[k][rows].to(device) for k in _inputs(method))
    with _every_weight(model):
        space = landscape.ParameterSpace(model, nn.BCEWithLogitsLoss(), (inputs, t["y"][rows].to(device)))
        start = time.perf_counter()
        top = landscape.lanczos(space, k=1, tol=1e-3, seed=replica.seed)
        trace = landscape.hutchinson_trace(space, rel_error=st.rel_error, min_probes=min(10, st.max_probes),
                                           max_probes=st.max_probes, batch_probes=8, seed=replica.seed)
        return {"lambda1": float(top.eigenvalues[0]), "trace": float(trace.trace), "trace_se": float(trace.stderr),
                "probes": int(trace.n_probes), "dimension": int(space.dim), "loss": float(space.loss()),
                "seconds": time.perf_counter() - start}


def hybrid_weights(model: JetHybrid, log_pt: np.ndarray) -> np.ndarray:
    """The hybrid's learned weight ``w`` on its general subnet at jet log pT values ``log_pt`` [log GeV]."""
    device = next(model.parameters()).device
    with torch.no_grad(), mode(model, False):
        return model.general_weight(torch.as_tensor(log_pt, dtype=torch.float32, device=device)).cpu().numpy()


def _result_path(method: str, replica: Replica, st: Settings) -> Any:
    key = {"method": method, "settings": asdict(st), "data": replica.key(), "seed": replica.seed,
           "version": ANALYSIS_VERSION, "training_version": TRAINING_VERSION,
           "adversarial_version": adversarial.TRAINING_VERSION}
    return data_dir() / "checkpoints" / f"{KIND}-results" / f"{KIND}-{method}-{key_hash(key)}.json"


def _job(method: str, replica: Replica, st: Settings, device: str) -> dict[str, Any]:
    """Train (or load) one method of one replica and measure it; the measurement is cached beside the
    checkpoints (a second run only reads it)."""
    path = _result_path(method, replica, st)
    if path.exists():
        try:
            out = json.loads(path.read_text())
            out["trained"], out["cached"] = False, True
            return out
        except (OSError, ValueError):
            pass  # damaged: measure again
    model, meta, trained = _model(method, replica, st, device)
    scores = _scores(model, method, replica, device)
    out = {"method": method, "seed": replica.seed, "seconds": float(meta["seconds"]),
           "pretrain_seconds": float(meta.get("pretrain_seconds", 0.0)), "epochs_run": len(meta["val_loss"]),
           "best_epoch": int(meta["best_epoch"]), "parameters": n_parameters(model),
           "scores": scores.tolist(), "curvature": _curvature(model, method, replica, st, device)}
    if method == "hybrid":
        grid = np.linspace(*np.quantile(replica.dataset("test").jet[:, 0, 0].numpy(), [0.005, 0.995]), 41)
        out["weight"] = {"log_pt": grid.tolist(), "w": hybrid_weights(model, grid).tolist()}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out))
    out["trained"], out["cached"] = trained, False
    return out


@dataclass
class Result:
    """What was measured on one (method, seed): test ``scores`` (N_test, 5 showers) with the replica's ``labels``
    and nominal jet ``mass`` [GeV], the ``curvature`` (λ₁, Tr H), training ``seconds`` (pre-training included) and
    the raw ``record``."""

    method: str
    seed: int
    scores: np.ndarray
    labels: np.ndarray
    mass: np.ndarray
    curvature: dict[str, Any]
    seconds: float
    record: dict[str, Any] = field(repr=False, default_factory=dict)


def run(replicas: Mapping[int, Replica], st: Settings, methods: Sequence[str] = ORDER, workers: int = 1,
        device: str = "cpu") -> dict[tuple[str, int], Result]:
    """Every (method, seed) trained or loaded and measured: ``{(method, seed): Result}``. RS3L pre-trainings run
    in a first stage (so that two fine-tunings never train the same encoder at once), everything else in a second;
    on a CPU the jobs run single-threaded in ``workers`` spawned processes (the same bits for any worker count)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    parallel = device == "cpu" and workers > 1
    if parallel and not all(r.share() for r in replicas.values()):
        workers = 1
    encoders = {METHODS[m].partners: m for m in methods if m in _RS3L}  # one pre-training per partner set
    pre = [(m, r) for r in replicas.values() for m in encoders.values()]
    run_jobs(_pretrain_job, [(m, r, st, device) for m, r in pre], workers, desc="pre-trainings",
             parallel=parallel)
    calls = [(m, r, st, device) for r in replicas.values() for m in methods]
    records = run_jobs(_job, calls, workers, desc="methods × seeds", parallel=parallel)
    out = {}
    for (m, r, _, _), rec in zip(calls, records):
        d = r.dataset("test")
        mass = jet_mass(r.jet_p4["test"][:, 0].numpy())
        out[m, r.seed] = Result(m, r.seed, np.asarray(rec["scores"], np.float32), d.labels.copy(), mass,
                                rec["curvature"], float(rec["seconds"]), rec)
    return out


def _pretrain_job(method: str, replica: Replica, st: Settings, device: str) -> float:
    """Pre-train (or load) one RS3L encoder; returns its training seconds."""
    return float(_pretrained(method, replica, st, device)[1]["seconds"])


# ---------------------------------------------------------------------------------------------------------------
# metrics


def _metrics(r: Result) -> dict[str, float]:
    """Every metric of one (method, seed) (see :func:`values`)."""
    y, s = r.labels, r.scores
    out = {"auc": metrics.auc(y, s[:, 0]), "r50": metrics.rejection_at(y, s[:, 0], EFFICIENCY)}
    for v, name in enumerate(VARIATIONS[1:], start=1):
        auc, r50 = metrics.auc(y, s[:, v]), metrics.rejection_at(y, s[:, v], EFFICIENCY)
        out[f"auc_{name}"], out[f"r50_{name}"] = auc, r50
        out[f"dauc_{name}"] = out["auc"] - auc
        out[f"dr50_{name}"] = 1.0 - r50 / out["r50"] if np.isfinite(out["r50"]) else float("nan")
        out[f"w_{name}"] = metrics.wasserstein(s[:, 0], s[:, v])
    out["jsd"] = float(metrics.mass_sculpting(r.mass, y, s[:, 0], JSD_EFFICIENCY)[0])
    out["lambda1"], out["trace"] = float(r.curvature["lambda1"]), float(r.curvature["trace"])
    out["seconds"] = r.seconds
    return out


def values(results: Mapping[tuple[str, int], Result]) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {metric: one value per seed}}``, seeds in ascending order. Metrics: ``auc`` and ``r50``
    (rejection 1/ε_B at ε_S = 0.5) on the nominal test jets; per shift ``v`` of :data:`SHIFTS` ``auc_v``,
    ``r50_v``, the drops ``dauc_v = auc - auc_v`` and ``dr50_v = 1 - r50_v / r50``, and ``w_v``, the Wasserstein
    distance of the score between nominal and ``v`` jets (all test jets, as Harris et al.); ``jsd``: mass sculpting
    of the nominal QCD jets by a cut at ε_S = 0.85 (:data:`JSD_EFFICIENCY`); ``lambda1`` and ``trace`` of the
    loss Hessian; ``seconds`` of training (pre-training included) and ``cost``, those seconds over the default's on
    the same seed."""
    methods = list(dict.fromkeys(m for m, _ in results))
    seeds = sorted({s for _, s in results})
    per = {k: _metrics(r) for k, r in results.items()}
    out: dict[str, dict[str, np.ndarray]] = {}
    for m in methods:
        missing = [s for s in seeds if (m, s) not in per]
        if missing:
            raise KeyError(f"{m} has no result for seeds {missing}")
        out[m] = {k: np.array([per[m, s][k] for s in seeds]) for k in per[m, seeds[0]]}
    if "default" in out:
        for m in methods:
            out[m]["cost"] = out[m]["seconds"] / out["default"]["seconds"]
    return out


def _mean(v: np.ndarray) -> float:
    return float(np.mean(v))


def _pm(v: np.ndarray, digits: int, scale: float = 1.0) -> str:
    mean, _, error = seed_stats(np.asarray(v) * scale)
    return f"{mean:.{digits}f}" if not np.isfinite(error) else format_pm(mean, error, digits, signed=False)


def rank(vals: Mapping[str, Mapping[str, np.ndarray]], by: str = "auc_alt_shower", descending: bool = True
         ) -> list[str]:
    """The methods ordered by the seed mean of metric ``by`` (default: the AUC on the alternative shower, what a
    tagger trained on one simulator delivers on another), best first; ties keep :data:`ORDER`."""
    sign = -1.0 if descending else 1.0
    methods = list(vals)
    return sorted(methods, key=lambda m: (sign * _mean(vals[m][by]), methods.index(m)))


def pareto_front(vals: Mapping[str, Mapping[str, np.ndarray]], performance: str = "auc",
                 robustness: str = "dauc_alt_shower") -> list[str]:
    """The methods no other method beats on both seed means: higher ``performance`` *and* smaller
    ``robustness`` drop (at least as good on both, better on one), in order of ``performance`` (the front's line
    from left to right)."""
    p = {m: _mean(v[performance]) for m, v in vals.items()}
    d = {m: _mean(v[robustness]) for m, v in vals.items()}
    front = [m for m in vals if not any(p[o] >= p[m] and d[o] <= d[m] and (p[o] > p[m] or d[o] < d[m])
                                        for o in vals if o != m)]
    return sorted(front, key=p.get)


def summary_rows(vals: Mapping[str, Mapping[str, np.ndarray]]) -> tuple[list[dict[str, str]],
                                                                         list[dict[str, float]]]:
    """The chapter's table, ranked by :func:`rank`: per method the seed mean ± standard error of every headline
    metric, and whether it is on the :func:`pareto_front`. Returns ``(rows, sort_keys)``: the shown strings and,
    per row, the numbers a reader's click sorts by (the seed means)."""
    order, front = rank(vals), set(pareto_front(vals))
    columns = [("AUC nominal", "auc", 4, 1.0), ("R₅₀ nominal", "r50", 1, 1.0),
               ("AUC alt. shower", "auc_alt_shower", 4, 1.0), ("ΔAUC alt. shower", "dauc_alt_shower", 4, 1.0),
               ("ΔR₅₀ alt. shower (%)", "dr50_alt_shower", 1, 100.0),
               ("W alt. shower (10⁻³)", "w_alt_shower", 2, 1e3), ("mass JSD (10⁻³)", "jsd", 2, 1e3),
               ("λ₁", "lambda1", 3, 1.0), ("Tr H", "trace", 2, 1.0), ("cost × default", "cost", 1, 1.0)]
    rows, keys = [], []
    for i, m in enumerate(order, start=1):
        row = {"rank": str(i), "method": METHODS[m].label, "paper": METHODS[m].paper}
        key: dict[str, float] = {"rank": float(i)}
        for title, name, digits, scale in columns:
            if name in vals[m]:
                row[title] = _pm(vals[m][name], digits, scale)
                key[title] = _mean(vals[m][name]) * scale
        row["Pareto front"] = "●" if m in front else ""
        rows.append(row)
        keys.append(key)
    return rows, keys


def shift_rows(vals: Mapping[str, Mapping[str, np.ndarray]], metric: str = "dauc") -> list[dict[str, str]]:
    """Per method (in :data:`ORDER`) the seed mean ± standard error of ``metric`` under every shift: ``dauc``
    (AUC drop), ``dr50`` (relative rejection drop, %) or ``w`` (Wasserstein distance, 10⁻³)."""
    scale, digits = {"dauc": (1.0, 4), "dr50": (100.0, 1), "w": (1e3, 2)}[metric]
    return [{"method": METHODS[m].label, **{SHIFT_LABELS[v]: _pm(vals[m][f"{metric}_{v}"], digits, scale)
                                            for v in SHIFTS}} for m in vals]


def cost_rows(results: Mapping[tuple[str, int], Result]) -> list[dict[str, Any]]:
    """Per method: trainable parameters, epochs run and the kept epoch (means over seeds), training seconds
    (pre-training included; as recorded when the checkpoint was trained) and their ratio to the default's."""
    vals = values(results)
    rows = []
    for m in vals:
        recs = [r.record for (k, _), r in results.items() if k == m]
        rows.append({"method": METHODS[m].label, "trainable parameters": recs[0]["parameters"],
                     "epochs run": float(np.mean([r["epochs_run"] for r in recs])),
                     "kept epoch": float(np.mean([r["best_epoch"] + 1 for r in recs])),
                     "pre-training s": float(np.mean([r["pretrain_seconds"] for r in recs])),
                     "training s": _mean(vals[m]["seconds"]),
                     "× default": _mean(vals[m]["cost"]) if "cost" in vals[m] else float("nan")})
    return rows


def pareto_points(vals: Mapping[str, Mapping[str, np.ndarray]], performance: str = "auc",
                  robustness: str = "dauc_alt_shower") -> dict[str, tuple[float, float, float, float]]:
    """Per method ``(performance mean, its standard error, robustness mean, its standard error)`` over seeds:
    the points and error bars of the Pareto figure."""
    out = {}
    for m, v in vals.items():
        p, d = seed_stats(v[performance]), seed_stats(v[robustness])
        out[m] = (p[0], 0.0 if np.isnan(p[2]) else p[2], d[0], 0.0 if np.isnan(d[2]) else d[2])
    return out


def sharpness_points(vals: Mapping[str, Mapping[str, np.ndarray]], sharpness: str = "lambda1",
                     robustness: str = "dauc_alt_shower", methods: Sequence[str] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(sharpness, robustness, method of each point)``: one point per method and seed."""
    methods = list(vals) if methods is None else [m for m in methods if m in vals]
    x = np.concatenate([vals[m][sharpness] for m in methods])
    y = np.concatenate([vals[m][robustness] for m in methods])
    return x, y, [m for m in methods for _ in vals[m][sharpness]]


def correlations(vals: Mapping[str, Mapping[str, np.ndarray]], sharpness: str = "lambda1",
                 robustness: str = "dauc_alt_shower", methods: Sequence[str] | None = None) -> dict[str, float]:
    """Does flatness predict robustness? Over every (method, seed) point: Pearson's r of log10(sharpness) and the
    drop, Spearman's ρ (ranks, no log needed), their two-sided p-values and the number of points. Flatness
    predicting generalisation (Rothen et al., Glowacki) means a *positive* coefficient: sharper minima, larger
    drops."""
    from scipy import stats

    x, y, _ = sharpness_points(vals, sharpness, robustness, methods)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if ok.sum() < 3:
        return {"pearson": float("nan"), "pearson_p": float("nan"), "spearman": float("nan"),
                "spearman_p": float("nan"), "n": int(ok.sum())}
    pearson = stats.pearsonr(np.log10(x[ok]), y[ok])
    spearman = stats.spearmanr(x[ok], y[ok])
    return {"pearson": float(pearson[0]), "pearson_p": float(pearson[1]), "spearman": float(spearman[0]),
            "spearman_p": float(spearman[1]), "n": int(ok.sum())}


SHARED_BACKBONE: tuple[str, ...] = tuple(k for k, m in METHODS.items() if m.backbone == SHARED)


def correlation_rows(vals: Mapping[str, Mapping[str, np.ndarray]]) -> list[dict[str, Any]]:
    """:func:`correlations` of λ₁ and of Tr H with the alternative-shower AUC drop, over every method and over the
    methods that share the dense backbone exactly (weight-space sharpness depends on the parametrisation, so only
    those are strictly comparable)."""
    rows = []
    for sharp, label in (("lambda1", "λ₁"), ("trace", "Tr H")):
        for name, methods in (("all methods", None), ("shared dense backbone only", SHARED_BACKBONE)):
            c = correlations(vals, sharp, methods=methods)
            rows.append({"sharpness": label, "points": name, "n": c["n"], "Pearson r (log₁₀)": c["pearson"],
                         "p (Pearson)": c["pearson_p"], "Spearman ρ": c["spearman"], "p (Spearman)": c["spearman_p"]})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# verdicts


def _paper_cross_gain(method: str) -> float:
    table = adversarial.ROTHEN_SCORES
    return table[method, "pythia", "herwig"]["auc"][0] - table["default", "pythia", "herwig"]["auc"][0]


_PAPER_CROSS: dict[str, str] = {
    "seal": "+0.0065 (gluon vs Z, out of distribution, Table 3)",
    "hybrid": "not studied (Nabat et al. test one detector)",
    "rs3l_fixed": "no AUC given; W to Herwig 1.08 × 10⁻³ vs 21.8 supervised (Table III)",
    "rs3l_floating": "no AUC given; W to Herwig 14.0 × 10⁻³ vs 21.8 supervised (Table III)",
    "augmented": "not compared with an unaugmented tagger",
}


def claims_rows(vals: Mapping[str, Mapping[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Per method, two claims against the default on the same seeds (paired: same data, split and, for the dense
    methods, initial weights): its AUC on the alternative shower is higher, and its drop from nominal to the
    alternative shower is smaller; then the two controls: leaving the alternative shower out of the augmentations
    makes the drop larger. Each with the book's small-sample verdict."""
    rows = []
    base = vals["default"]
    for m in vals:
        if m == "default":
            continue
        label = METHODS[m].label
        paper = f"{_paper_cross_gain(m):+.3f} (Pythia → Herwig, Table IX)" if m in _ROTHEN else \
            _PAPER_CROSS.get(m, "— (control)")
        rows.append(claim(f"{label} generalises better: AUC on the alt. shower minus the default's", paper,
                          seed_difference(vals[m]["auc_alt_shower"], base["auc_alt_shower"]), +1,
                          key=f"{m}: cross-shower AUC"))
        rows.append(claim(f"{label} is more robust: its alt.-shower AUC drop minus the default's",
                          "smaller (implied)" if m in _ROTHEN else ("— (control)" if METHODS[m].control else
                                                                    "smaller (the method's aim)"),
                          seed_difference(vals[m]["dauc_alt_shower"], base["dauc_alt_shower"]), -1,
                          key=f"{m}: alt.-shower drop"))
    for control, full in (("rs3l_floating_sf", "rs3l_floating"), ("augmented_sf", "augmented")):
        if control in vals and full in vals:
            rows.append(claim(f"seeing the alt. shower in training is what helps: drop of "
                              f"'{METHODS[control].label}' minus '{METHODS[full].label}'",
                              "larger without it (Table III, seed-only vs all)",
                              seed_difference(vals[control]["dauc_alt_shower"], vals[full]["dauc_alt_shower"]), +1,
                              key=f"{control} vs {full}"))
    return rows


def _words(outcome: str, better: str, worse: str) -> str:
    return {"yes": better, "opposite": worse}.get(outcome, "indistinguishable from the default's")


def verdicts(vals: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """One plain sentence per method (Markdown), built from this run's values and the small-sample verdicts of its
    paired differences from the default: nominal AUC, AUC on the alternative shower, its drop, and cost."""
    base = vals["default"]
    lines = []
    for m in rank(vals):
        v, label = vals[m], METHODS[m].label
        if m == "default":
            lines.append(f"* **{label}**: AUC {_mean(v['auc']):.4f} nominal, {_mean(v['auc_alt_shower']):.4f} on "
                         f"the alternative shower (a drop of {_mean(v['dauc_alt_shower']):.4f}); the reference.")
            continue
        nominal = verdict(seed_difference(v["auc"], base["auc"]), +1)
        cross = verdict(seed_difference(v["auc_alt_shower"], base["auc_alt_shower"]), +1)
        drop = verdict(seed_difference(v["dauc_alt_shower"], base["dauc_alt_shower"]), -1)
        cost = _mean(v["cost"]) if "cost" in v else float("nan")
        lines.append(
            f"* **{label}**: nominal AUC {_mean(v['auc']):.4f} "
            f"({_mean(v['auc']) - _mean(base['auc']):+.4f}, {_words(nominal.outcome, 'better', 'worse')}); on "
            f"the alternative shower {_mean(v['auc_alt_shower']):.4f} "
            f"({_mean(v['auc_alt_shower']) - _mean(base['auc_alt_shower']):+.4f}, "
            f"{_words(cross.outcome, 'better', 'worse')}); its drop {_mean(v['dauc_alt_shower']):.4f} is "
            f"{_words(drop.outcome, 'smaller', 'larger')}; {cost:.1f}× the default's training time. "
            + _reading(nominal.outcome, cross.outcome, drop.outcome))
    return "\n".join(lines)


def summary(vals: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """The page's reading of its own table in three sentences (Markdown), built from this run's values: the best
    method on the alternative shower, how many methods beat the default there and how many *lose less*, and what
    the sharpness correlation says."""
    base = vals["default"]
    others = [m for m in vals if m != "default" and not METHODS[m].control]
    better = [m for m in others if verdict(seed_difference(vals[m]["auc_alt_shower"], base["auc_alt_shower"]),
                                           +1).outcome == "yes"]
    steadier = [m for m in others if verdict(seed_difference(vals[m]["dauc_alt_shower"], base["dauc_alt_shower"]),
                                             -1).outcome == "yes"]
    best = rank(vals)[0]
    c = correlations(vals)

    def names(ms: Sequence[str]) -> str:
        return "; ".join(METHODS[m].label for m in ms) or "none"  # labels hold commas themselves

    sign = "positive (sharper, larger drops)" if c["pearson"] > 0 else "negative (sharper, *smaller* drops)"
    second = (f"* **Better than the default there** (paired verdict \"yes\"): {len(better)} of {len(others)} "
              f"methods ({names(better)}). **Losing less** from nominal to the alternative shower: {len(steadier)} "
              f"({names(steadier)}).")
    if not steadier:
        second += " Where a method helps on the other shower, it does so by being a better tagger on both."
    return "\n".join([
        f"* **Best on the alternative shower:** {METHODS[best].label}, AUC {_mean(vals[best]['auc_alt_shower']):.4f} "
        f"against the default's {_mean(base['auc_alt_shower']):.4f}.", second,
        f"* **Flatness:** the correlation of log λ₁ with the drop is {sign}, Pearson r = {c['pearson']:+.2f} "
        f"(p = {c['pearson_p']:.2g}, {c['n']} points), Spearman ρ = {c['spearman']:+.2f} (p = {c['spearman_p']:.2g})."])


def _reading(nominal: str, cross: str, drop: str) -> str:
    if cross == "yes" and drop == "yes":
        return "It generalises better, and not only by being a better tagger: it also loses less."
    if cross == "yes":
        return ("It is better on the other shower by about what it gains on nominal jets: a better tagger, not a "
                "more robust one (its drop is the default's).")
    if cross == "opposite":
        return "It is worse on the other shower: not worth it here."
    if drop == "yes":
        return "It loses less on the other shower but, at this size, ends up no better there."
    if drop == "opposite" or nominal == "opposite":
        return "It trades something away for nothing measurable here."
    return "At this size nothing separates it from the default."


def jsd_floor(results: Mapping[tuple[str, int], Result], method: str = "default", draws: int = 200,
              seed: int = 0) -> float:
    """The mass JSD of a cut that knows nothing about mass: as many QCD test jets as ``method``'s ε_S = 0.85 cut
    passes, chosen at random (``draws`` times per replica, mean over draws and replicas). A finite sample of jets
    gives a JSD above 0 even without sculpting; this is that floor."""
    rng = np.random.default_rng(derive_seed(seed, "benchmark jsd floor"))
    out = []
    for (m, _), r in results.items():
        if m != method:
            continue
        y, s = r.labels, r.scores[:, 0]
        cut = metrics.threshold_at(y, s, JSD_EFFICIENCY)
        n_pass = int(((y == 0) & (s >= cut)).sum())
        qcd = r.mass[y == 0]
        edges = np.histogram_bin_edges(qcd, bins=40, range=(0.0, 300.0))  # as metrics.mass_sculpting bins
        for _ in range(draws):
            pick = rng.permutation(len(qcd))
            a, b = np.histogram(qcd[pick[:n_pass]], edges)[0], np.histogram(qcd[pick[n_pass:]], edges)[0]
            if a.sum() and b.sum():  # no jet in the mass window on one side: no shape to compare
                out.append(metrics.jensen_shannon(a, b))
    return float(np.mean(out)) if out else float("nan")


def rejection_counts(results: Mapping[tuple[str, int], Result], method: str = "default") -> dict[str, float]:
    """How many QCD test jets a replica has, and how many of them pass the ε_S = 0.5 cut of ``method`` on the
    nominal jets (mean over seeds): R₅₀ is that ratio, so its Poisson error is about 1/sqrt(passing)."""
    qcd, passing = [], []
    for (m, _), r in results.items():
        if m != method:
            continue
        s, y = r.scores[:, 0], r.labels
        cut = metrics.threshold_at(y, s, EFFICIENCY)
        qcd.append(int((y == 0).sum()))
        passing.append(int(((y == 0) & (s >= cut)).sum()))
    return {"qcd": float(np.mean(qcd)), "passing": float(np.mean(passing))}
