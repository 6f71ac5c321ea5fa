"""Generation throughput: the re-simulation pipeline against bare ``Pythia.next()``, on one core, in one run.

What is compared
----------------
*Pipeline*: one production-size shard of :func:`hepnb.generate.resim.simulate_shard` (shard index 4, so 8000 hard
events by default), timed as a whole (wall clock). It does much more than generate events: it generates the hard
process only and filters it to central events (|η| < 0.3), writes them to an LHE file and reads them back, showers
the same events five times (one per variation, each on the survivors of the previous one), clusters anti-kT R=0.8
with FastJet, matches the jet to the H/W and its decay quarks (or to the hard parton), and builds the padded
constituent arrays.

*Bare baseline*: for each variation, a Pythia with the **same** process and shower settings (the hard-process
settings of the class with the same ``PhaseSpace:pTHatMin``, parton and hadron level on, plus the variation's
settings) generating full events with a plain loop of ``pythia.next()``: no hard-process filtering, no LHE, no
clustering, no matching, no arrays. Its initialisation is not timed. This is what generating the same showered
events costs with nothing around them.

The headline ratio is the pipeline's showered events per second (all variations, over the shard's whole wall time,
initialisations and the hard-process step included) divided by the rate the bare loop would reach for the same mix
of showers (Σ showered / Σ showered_v / bare_rate_v). A ratio of 1 means the pipeline's overhead (filtering, LHE,
clustering, matching, arrays) is paid for by skipping the hard-process generation per shower; the target is >= 0.7.
Ratios, not seconds, are the result: they stay meaningful across machines and under load.

Run: ``.venv/bin/python benchmarks/generation.py [--class hbb] [--n-hard 8000] [--bare-events 1000] [--seed 0]``.
It always exits 0 (benchmarks report, they do not fail) and prints ``BELOW TARGET`` when the ratio is under 0.7.
"""

from __future__ import annotations

import argparse
import time

from hepnb.generate.catalogue import VARIATIONS, jet_class
from hepnb.generate.pythia import derive_seed, make_pythia
from hepnb.generate.resim import hard_settings, simulate_shard
from hepnb.generate.shards import SHARD_SIZE_MAX

TARGET = 0.7
SHARD = 4  # shards >= 4 have the production size (shards.SHARD_SIZE_MAX hard events)
HARD_ONLY = ("PartonLevel:all = off", "HadronLevel:all = off")


def bare_settings(cls, variation) -> list[str]:
    """The class's hard-process settings with parton and hadron level back on, plus the variation's settings."""
    return [s for s in hard_settings(cls) if s not in HARD_ONLY] + list(variation.settings)


def bare_rate(cls, variation, n_events: int, seed: int) -> tuple[float, float, int]:
    """Events per second of a plain ``pythia.next()`` loop (init not timed); also the init seconds and failures."""
    t0 = time.perf_counter()
    pythia = make_pythia(bare_settings(cls, variation), derive_seed(seed, "bench", cls.name, variation.name))
    init = time.perf_counter() - t0
    failed = 0
    t0 = time.perf_counter()
    for _ in range(n_events):
        if not pythia.next():
            failed += 1
    return n_events / (time.perf_counter() - t0), init, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--class", dest="cls", default="hbb", help="jet class: hbb, qcd or wqq")
    parser.add_argument("--n-hard", type=int, default=SHARD_SIZE_MAX, help="hard events in the timed shard")
    parser.add_argument("--bare-events", type=int, default=1000, help="Pythia.next() calls per variation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cls = jet_class(args.cls)

    simulate_shard(cls.name, args.seed, 99, n_hard=20)  # warm-up: imports, FastJet's first call

    t0 = time.perf_counter()
    out = simulate_shard(cls.name, args.seed, SHARD, n_hard=args.n_hard)
    wall = time.perf_counter() - t0
    stats = out["stats"]
    showered, passed, seconds = stats["showered"], stats["passed"], stats["seconds"]
    total_showered = sum(showered.values())
    kept = len(out["event_id"])

    bare, inits = {}, []
    for v in VARIATIONS:
        rate, init, failed = bare_rate(cls, v, args.bare_events, args.seed)
        bare[v.name] = rate
        inits.append(init)
        if failed:
            print(f"note: bare {v.name}: {failed} of {args.bare_events} Pythia.next() calls failed")

    print(f"class {cls.name}: shard {SHARD}, {args.n_hard} hard events ({stats['hard_tried']} tried), "
          f"seed {args.seed}, {args.bare_events} bare events per variation, one core")
    print()
    header = f"{'variation':<11} {'showered':>9} {'pipeline ev/s':>14} {'bare ev/s':>10} {'ratio':>6} " \
             f"{'passed':>7} {'sel. eff':>9}"
    print(header)
    print("-" * len(header))
    for v in VARIATIONS:
        n = showered[v.name]
        share = seconds["hard"] * n / total_showered if total_showered else 0.0
        rate = n / (seconds[v.name] + share) if n else float("nan")
        eff = passed[v.name] / n if n else float("nan")
        print(f"{v.name:<11} {n:>9d} {rate:>14.1f} {bare[v.name]:>10.1f} {rate / bare[v.name]:>6.2f} "
              f"{passed[v.name]:>7d} {eff:>9.3f}")
    print()

    pipeline = total_showered / wall
    bare_equivalent = total_showered / sum(showered[v.name] / bare[v.name] for v in VARIATIONS)
    ratio = pipeline / bare_equivalent
    steps = ", ".join(f"{name} {s:.2f}" for name, s in seconds.items())
    init = sum(inits) / len(inits)
    print(f"seconds per step: {steps}; total wall {wall:.2f}")
    print(f"Pythia init (bare, same settings): {init:.2f} s each; ~{6 * init:.2f} s for the shard's 6 inits "
          f"(estimate, included in the step seconds)")
    print(f"kept hard events: {kept} ({kept / args.n_hard:.3f} of hard events); "
          f"kept jets per second per core: {len(VARIATIONS) * kept / wall:.1f}")
    print(f"pipeline rate: {pipeline:.1f} showered events/s; bare-equivalent rate: {bare_equivalent:.1f} events/s")
    print(f"ratio (pipeline / bare Pythia.next()): {ratio:.2f}  (target >= {TARGET})")
    if ratio < TARGET:
        print("BELOW TARGET")


if __name__ == "__main__":
    main()
