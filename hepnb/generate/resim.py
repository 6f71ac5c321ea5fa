"""Re-simulation of one shard: hard scatterings showered five ways (the RS3L recipe); explained in
``book/data/resimulation.ipynb``.

The pipeline for one *shard* (a given number of hard events, seeded from ``(seed, class, shard)``):

1. generate the hard process only (parton and hadron level off), keep events whose jet-initiating object (the H or W,
   or the hard parton recoiling against the Z) is central, and write them to a Les Houches (LHE) file;
2. re-shower that file once per :data:`~hepnb.generate.catalogue.VARIATIONS` entry (``Beams:frameType = 4``), with
   ISR on and MPI off in every variation; a batch of events comes back as awkward arrays (``nextBatch(n, "none")``:
   a failed event stays a ``None`` in its row, so rows stay paired);
3. cluster anti-kT R=0.8 with FastJet, pick the jet matched (ΔR < 0.8) to the showered H/W *and both its decay
   quarks*, or to the hard parton, inside the pT/|η|/mass window; in variations 1-4 the jet must also lie within
   ΔR < 0.8 of the nominal jet, so every variation of a row is the same jet;
4. keep a hard event only if **every** variation has its matched jet. Variations run in order on the survivors of the
   previous one (the LHE file is filtered between them), which gives exactly that intersection at a fraction of the
   cost, and row ``i`` of every variation is the same hard event;
5. store up to 100 pT-ordered constituents per jet: 4-vector, charge, PDG id and production vertex.

A shard is pure (a function of its arguments): :mod:`hepnb.generate.shards` runs many of them in worker processes
and merges them into a sample whose bytes do not depend on the worker count.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepnb.generate.catalogue import VARIATIONS, JetClass, Variation, jet_class
from hepnb.generate.processes import COMMON_SETTINGS, process_settings
from hepnb.generate.pythia import GeneratorError, derive_seed, make_pythia, visible_final_state
from hepnb.physics import kinematics
from hepnb.physics.jets import cluster
from hepnb.validation import check_int, check_window

__all__ = ["PIPELINE_VERSION", "Selection", "CAND_FIELDS", "CAND_UNITS", "VARIATIONS", "JetClass", "Variation",
           "jet_class", "hard_settings", "shower_settings", "settings_record", "simulate_shard"]

# Bump when the pipeline changes what it writes for the same settings: it is part of every cache file's hash.
PIPELINE_VERSION = 2
PRUNE_MARGIN = 0.1  # extra (y, φ) radius kept around the target when pruning particles before clustering
BATCH_EVENTS = 2000  # events showered per nextBatch call (memory: ~0.1-0.2 GB per batch)


@dataclass(frozen=True)
class Selection:
    """Hard-event and jet requirements (defaults: Harris et al., Sec. II B, adapted as the data chapter explains).

    ``hard_eta_max``   |η| of the H/W/parton in the hard process (paper: 0.1 at generation; 0.3 here, as each
                       accepted central event costs 1/P(|η|<cut) hard events: 15 at 0.1, 5 at 0.3)
    ``hard_pt_min``    pT of the H/W/parton in the hard process [GeV]. Not in the paper (its partons span 400-600
                       GeV); a jet above ``jet_pt_min`` in all five showers essentially never comes from a softer
                       parton (measured: 0 of 370 kept events below 454 GeV), so this skips showering hopeless events.
    ``jet_pt_min/max`` jet pT window [GeV] (paper: > 450)
    ``jet_eta_max``    jet |η| (paper: 0.1 with ISR off; ISR recoil, on in every variation here, moves jets by
                       0.1-0.2 in |η|, so 0.5: E/pT <= cosh 0.5 = 1.13 instead of 1.005)
    ``jet_mass_min``   jet mass [GeV] (paper: 10)
    ``match_dr``       ΔR of the jet axis to the H/W, both its decay quarks, or the hard parton (paper: 0.8)
    ``R``              anti-kT radius (paper: 0.8); ``max_constituents`` stored per jet (paper: 100)
    """

    hard_eta_max: float = 0.3
    hard_pt_min: float = 450.0
    jet_pt_min: float = 450.0
    jet_pt_max: float = 1000.0
    jet_eta_max: float = 0.5
    jet_mass_min: float = 10.0
    match_dr: float = 0.8
    R: float = 0.8
    max_constituents: int = 100

    def __post_init__(self) -> None:
        check_window(self)


CAND_FIELDS: tuple[str, ...] = ("px", "py", "pz", "E", "vx", "vy", "vz")
CAND_UNITS: tuple[str, ...] = ("GeV", "GeV", "GeV", "GeV", "mm", "mm", "mm")


def hard_settings(cls: JetClass, sel: Selection | None = None) -> list[str]:
    """Pythia settings of the hard-process-only step (no shower, no hadronisation).

    In a 2 -> 2 scattering both outgoing particles have pT = pTHat, so ``Selection.hard_pt_min`` is applied as
    ``PhaseSpace:pTHatMin`` (the same events as cutting afterwards, without generating the ones cut away).
    """
    sel = sel or Selection()
    pt_min = max(sel.hard_pt_min, _setting_value(process_settings(cls.process), "PhaseSpace:pTHatMin", 0.0))
    return [*process_settings(cls.process), f"PhaseSpace:pTHatMin = {pt_min:g}", "PartonLevel:all = off",
            "HadronLevel:all = off"]


def _setting_value(settings: Sequence[str], key: str, default: float) -> float:
    """The last value given to ``key`` in a settings list (Pythia applies them in order)."""
    value = default
    for line in settings:
        name, _, rest = line.partition("=")
        if name.strip().lower() == key.lower():
            value = float(rest)
    return value


def shower_settings(variation: Variation, lhe_path: str | os.PathLike[str]) -> list[str]:
    """Pythia settings that re-shower the LHE file ``lhe_path`` in ``variation``."""
    return [*COMMON_SETTINGS, "Beams:frameType = 4", f"Beams:LHEF = {os.fspath(lhe_path)}", *variation.settings]


def settings_record(cls: JetClass, sel: Selection | None = None) -> dict[str, list[str]]:
    """Every Pythia setting used for a class, per step (stored in file attributes, hashed for the cache name)."""
    record = {"hard": hard_settings(cls, sel)}
    for v in VARIATIONS:
        record[v.name] = shower_settings(v, "<shard>.lhe")
    return record


# ---------------------------------------------------------------------------------------------------------------
# step 1: hard events -> LHE


def _write_hard_events(cls: JetClass, seed: int, shard: int, n_hard: int, sel: Selection, lhe_path: Path
                       ) -> tuple[np.ndarray, np.ndarray, int]:
    """Generate ``n_hard`` hard events passing the pT and |η| cuts into ``lhe_path``.

    Returns the hard-level 4-vector (px, py, pz, E) and PDG id of the jet-initiating object per kept event, and
    the number of hard events tried.
    """
    import pythia8mc

    pythia = make_pythia(hard_settings(cls, sel), derive_seed(seed, cls.name, shard, "hard"))
    info = pythia.infoPython()  # keep a reference: the writer holds a pointer into it
    writer = pythia8mc.LHEF3FromPythia8(pythia.process, info, 15, True)
    writer.openLHEF(os.fspath(lhe_path))
    writer.setInit()
    p4 = np.empty((n_hard, 4))
    pid = np.empty(n_hard, dtype=np.int32)
    kept = tried = 0
    if cls.target_id is None:
        def is_target(ident: int) -> bool:
            return ident != 23 and ident != 22
    else:
        def is_target(ident: int) -> bool:
            return abs(ident) == cls.target_id
    process = pythia.process  # the same Event object every time; entries 5, 6: the 2 -> 2 outgoing particles
    generate, eta_max = pythia.next, sel.hard_eta_max
    while kept < n_hard:
        tried += 1
        if tried > 1000 * n_hard + 1000:
            raise GeneratorError(f"{cls.name}: fewer than 1 in 1000 hard events pass pT > {sel.hard_pt_min} GeV and "
                                 f"|eta| < {sel.hard_eta_max}")
        if not generate():
            continue
        target = process[5]
        if not is_target(target.id()):
            target = process[6]
        if abs(target.eta()) >= eta_max:  # (this loop runs ~5 times per kept event: keep it lean)
            continue
        if not is_target(target.id()):
            raise GeneratorError(f"{cls.name}: no jet-initiating particle among the outgoing hard partons")
        if target.pT() <= sel.hard_pt_min:
            continue
        p4[kept] = (target.px(), target.py(), target.pz(), target.e())
        pid[kept] = target.id()
        writer.setEvent()
        kept += 1
    writer.closeLHEF(True)
    return p4, pid, tried


def _split_lhe(text: str) -> tuple[str, list[str], str]:
    """Header (up to the first event), the event blocks, and the footer of an LHE file."""
    start = text.index("<event>")
    end = text.rindex("</event>") + len("</event>")
    blocks = text[start:end].split("</event>")
    events = [b.strip("\n") + "\n</event>\n" for b in blocks if b.strip()]
    return text[:start], events, text[end:]


# ---------------------------------------------------------------------------------------------------------------
# step 2-3: shower one variation, cluster, match


def _bottom_copy(index: np.ndarray, offsets: np.ndarray, d1: np.ndarray, d2: np.ndarray, pid: np.ndarray
                 ) -> np.ndarray:
    """Follow copies (one daughter of the same id; e.g. ISR recoil) to the last copy of a particle.

    ``index`` holds one local index per event; flat arrays ``d1, d2, pid`` with event ``offsets``.
    """
    index = index.copy()
    for _ in range(200):
        g = offsets[:-1] + index
        nxt = d1[g]
        step = (nxt > 0) & ((d2[g] == nxt) | (d2[g] == 0))  # d2 == 0: a single daughter
        step[step] = pid[offsets[:-1][step] + nxt[step]] == pid[g[step]]
        if not step.any():
            return index
        index[step] = nxt[step]
    raise GeneratorError("copy chain longer than 200 entries in the event record")


def _targets(events: ak.Array, cls: JetClass) -> tuple[np.ndarray, np.ndarray | None]:
    """Per event: the showered jet-initiating object's (η, φ, y) and, for resonances, its decay products' (2, η, φ, y).

    Read from the event record after the shower, so ISR recoil (which moves the hard system) is accounted for.
    """
    prt = events.prt
    counts = ak.to_numpy(ak.num(prt.id))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pid = ak.to_numpy(ak.flatten(prt.id))
    d1 = ak.to_numpy(ak.flatten(prt.daughter1))
    d2 = ak.to_numpy(ak.flatten(prt.daughter2))
    px, py, pz, e = (ak.to_numpy(ak.flatten(prt.p[c])) for c in ("px", "py", "pz", "e"))
    id5 = pid[offsets[:-1] + 5]
    if cls.target_id is None:
        first = ~np.isin(id5, (22, 23))
    else:
        first = np.abs(id5) == cls.target_id
    start = np.where(first, 5, 6)
    bottom = _bottom_copy(start, offsets, d1, d2, pid)

    def eta_phi(g: np.ndarray) -> np.ndarray:  # columns: pseudorapidity, azimuth, rapidity
        p4 = np.stack([px[g], py[g], pz[g], e[g]], axis=-1)
        _, eta, phi = kinematics.pt_eta_phi(p4)
        return np.stack([eta, phi, kinematics.rapidity(p4)], axis=-1)

    g = offsets[:-1] + bottom
    target = eta_phi(g)
    if cls.target_id is None:
        return target, None
    first_daughter, last_daughter = d1[g], d2[g]
    # two decay products: daughter1 and daughter2 (either order; Pythia may list them reversed)
    if np.any(first_daughter <= 0) or np.any(last_daughter <= 0) or np.any(first_daughter == last_daughter):
        raise GeneratorError(f"{cls.name}: a showered resonance without two decay products")
    products = np.stack([eta_phi(offsets[:-1] + first_daughter), eta_phi(offsets[:-1] + last_daughter)], axis=1)
    return target, products


def _jet_eta_phi(jet: np.ndarray) -> np.ndarray:
    """(η, φ) of 4-vectors (..., 4)."""
    _, eta, phi = kinematics.pt_eta_phi(jet)
    return np.stack([eta, phi], -1)


def _delta_r(eta: ak.Array, phi: ak.Array, eta_phi: np.ndarray) -> ak.Array:
    """ΔR between each jet (jagged per event) and one (η, φ) per event."""
    return kinematics.delta_r(eta, phi, eta_phi[:, 0], eta_phi[:, 1])


def _shower_variation(cls: JetClass, variation: Variation, lhe_path: Path, n_events: int, seed: int, shard: int,
                      sel: Selection, anchor: np.ndarray | None = None, prune: bool = True
                      ) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """Re-shower every event of ``lhe_path``; return which passed, their jets' arrays, and the seconds spent.

    ``anchor`` (n_events, 2): (η, φ) of the event's nominal jet; the jet must also lie within ``match_dr`` of it,
    so that all variations of a row are the same jet (ISR recoil differs between showers, and a hard ISR emission
    can move the parton). ``prune=False`` clusters every particle (for checking that pruning changes nothing).
    Events are showered in batches of :data:`BATCH_EVENTS` from one Pythia (the same events as one big batch; it
    bounds the memory of a shard).
    """
    t0 = time.perf_counter()
    pythia = make_pythia(shower_settings(variation, lhe_path), derive_seed(seed, cls.name, shard, variation.name))
    passed = np.zeros(n_events, dtype=bool)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n_events, BATCH_EVENTS):
        stop = min(start + BATCH_EVENTS, n_events)
        events = pythia.nextBatch(stop - start, "none")
        batch_anchor = None if anchor is None else anchor[start:stop]
        batch_passed, arrays = _jets_of_batch(events, pythia.particleData, cls, sel, batch_anchor, prune)
        passed[start:stop] = batch_passed
        parts.append(arrays)
    merged = {key: np.concatenate([a[key] for a in parts]) for key in parts[0]}
    return passed, merged, time.perf_counter() - t0


def _jets_of_batch(events: ak.Array, particle_data: Any, cls: JetClass, sel: Selection, anchor: np.ndarray | None,
                   prune: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cluster, match and pack one batch of showered events (see :func:`_shower_variation`)."""
    ok = ~ak.to_numpy(ak.is_none(events, axis=0))
    passed = np.zeros(len(events), dtype=bool)
    good = events[ok]
    target, products = _targets(good, cls)
    particles = visible_final_state(good, particle_data)
    # Only particles near the target are clustered. A jet within match_dr of the target (in η; its rapidity differs by
    # < PRUNE_MARGIN for these jets) holds particles within about match_dr + R of it in (y, φ), and anti-kT lets a
    # particle affect that jet only through a neighbouring jet overlapping it (axes < 2R apart); beyond match_dr + 2R
    # that takes a chain of overlapping jets. tests/test_resim.py checks that
    # pruned and unpruned clustering give identical jets, passed flags and arrays in every variation.
    if prune:  # FastJet measures distances in rapidity y, not pseudorapidity (they differ for soft massive hadrons)
        distance = _delta_r(particles.rapidity, particles.phi, target[:, [2, 1]])
        particles = particles[distance < sel.match_dr + 2 * sel.R + PRUNE_MARGIN]
    jets, constituents = cluster(particles, R=sel.R, ptmin=sel.jet_pt_min)
    window = ((jets.pt < sel.jet_pt_max) & (abs(jets.eta) < sel.jet_eta_max) & (jets.mass > sel.jet_mass_min))
    dr = _delta_r(jets.eta, jets.phi, target)
    matched = window & (dr < sel.match_dr)
    if products is not None:
        for k in range(products.shape[1]):
            matched = matched & (_delta_r(jets.eta, jets.phi, products[:, k]) < sel.match_dr)
    if anchor is not None:
        matched = matched & (_delta_r(jets.eta, jets.phi, anchor[ok]) < sel.match_dr)
    has = ak.to_numpy(ak.any(matched, axis=1))
    best = ak.argmin(ak.where(matched, dr, np.inf), axis=1, keepdims=True)
    chosen = ak.flatten(constituents[best][has], axis=1)  # constituent indices of the matched jet
    jet = ak.flatten(jets[best][has], axis=1)
    cands = particles[has][chosen]
    cands = cands[ak.argsort(cands.pt, axis=1, ascending=False)]
    C = int(sel.max_constituents)

    def padded(x: ak.Array, dtype: Any) -> np.ndarray:
        return np.asarray(ak.to_numpy(ak.fill_none(ak.pad_none(x, C, axis=1, clip=True), 0))).astype(dtype)

    arrays = {
        "cands": np.stack([padded(cands[f], np.float32) for f in CAND_FIELDS], axis=-1).reshape(-1, C,
                                                                                               len(CAND_FIELDS)),
        "pid": padded(cands.pid, np.int32).reshape(-1, C),
        "charge": padded(cands.charge, np.int8).reshape(-1, C),
        "n_constituents": np.asarray(ak.to_numpy(ak.fill_none(ak.num(cands.px), 0))).astype(np.int32),
        "jet": np.stack([np.asarray(ak.to_numpy(ak.fill_none(jet[c], 0.0))) for c in ("px", "py", "pz", "E")],
                        axis=-1).astype(np.float64).reshape(-1, 4),
    }
    passed[np.flatnonzero(ok)[has]] = True
    return passed, arrays


# ---------------------------------------------------------------------------------------------------------------
# one shard


def simulate_shard(class_name: str, seed: int, shard: int, n_hard: int, selection: Selection | None = None
                   ) -> dict[str, Any]:
    """Run the whole pipeline for one shard; a pure function of its arguments (worker processes call it).

    ``n_hard`` hard events are generated (:func:`hepnb.generate.shards.shard_size` says how many a sample's shard
    ``shard`` has), and the ones matched in all five showers kept.

    Returns the kept hard events' arrays, ``cands`` (K, V, C, 7: px, py, pz, E, vx, vy, vz), ``pid`` and
    ``charge`` (K, V, C), ``n_constituents`` (K, V), ``jet`` (K, V, 4), ``hard_p4`` (K, 4), ``parton`` (K,),
    ``event_id`` (K,) = ``shard * 2**20 + index of the hard event in the shard``, and ``stats`` (events showered and
    seconds per step).
    """
    cls = jet_class(class_name)
    sel = selection or Selection()
    n_hard = check_int("n_hard", n_hard, 1, 2**20 - 1)
    stats: dict[str, Any] = {"showered": {}, "seconds": {}, "passed": {}}
    with tempfile.TemporaryDirectory(prefix="hepnb-lhe-") as tmp:
        lhe = Path(tmp) / f"{class_name}-{shard}.lhe"
        t0 = time.perf_counter()
        hard_p4, hard_pid, tried = _write_hard_events(cls, seed, shard, n_hard, sel, lhe)
        stats["seconds"]["hard"] = time.perf_counter() - t0
        stats["hard_tried"] = tried
        header, blocks, footer = _split_lhe(lhe.read_text())
        if len(blocks) != n_hard:
            raise GeneratorError(f"LHE file has {len(blocks)} events, expected {n_hard}")
        alive = np.arange(n_hard)  # hard events still matched in every variation so far
        per_variation: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        for v, variation in enumerate(VARIATIONS):
            if v > 0:  # re-shower only the survivors: the intersection over variations, for less work
                lhe.write_text(header + "".join(blocks[i] for i in alive) + footer)
            anchor = None
            if v > 0 and len(alive):  # the nominal jet of each surviving event
                nominal_alive, nominal_arrays = per_variation[0]
                anchor = _jet_eta_phi(nominal_arrays["jet"][np.searchsorted(nominal_alive, alive)])
            if len(alive) == 0:
                passed, arrays, seconds = np.zeros(0, bool), None, 0.0
            else:
                passed, arrays, seconds = _shower_variation(cls, variation, lhe, len(alive), seed, shard, sel,
                                                            anchor=anchor)
            stats["showered"][variation.name] = int(len(alive))
            stats["passed"][variation.name] = int(passed.sum())
            stats["seconds"][variation.name] = seconds
            alive = alive[passed]
            per_variation.append((alive, arrays))
    # keep the final survivors in every variation's arrays (each is aligned with its own survivor list)
    out: dict[str, Any] = {}
    C = int(sel.max_constituents)
    empty = {"cands": np.zeros((0, C, len(CAND_FIELDS)), np.float32), "pid": np.zeros((0, C), np.int32),
             "charge": np.zeros((0, C), np.int8), "n_constituents": np.zeros(0, np.int32),
             "jet": np.zeros((0, 4), np.float64)}
    for key, blank in empty.items():
        columns = []
        for survivors, arrays in per_variation:
            rows = np.searchsorted(survivors, alive)
            columns.append((arrays[key] if arrays is not None else blank)[rows])
        out[key] = np.stack(columns, axis=1) if len(alive) else np.zeros((0, len(VARIATIONS), *blank.shape[1:]),
                                                                          blank.dtype)
    out["hard_p4"] = hard_p4[alive]
    out["parton"] = hard_pid[alive]
    out["event_id"] = (np.int64(shard) << 20) + alive.astype(np.int64)
    out["stats"] = stats
    return out
