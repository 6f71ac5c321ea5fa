"""Dimuon generation throughput: one shard of :func:`hepnb.generate.dimuon.simulate_shard` against a bare
``Pythia.next()`` loop with the same settings, on one core, in one run.

The shard (production size by default: 32,000 events) generates events with ``nextBatch`` (awkward arrays), picks
the two muons, orders them, and applies the acceptance; the bare loop only calls ``pythia.next()`` (its
initialisation not timed). The ratio of the two generated-event rates (pipeline / bare) says what the batch
interface, the initialisation and the array work cost; the target is >= 0.7. The symmetry chapter
(``book/symmetry/symmetry.ipynb``) quotes the accepted events per second per core printed here.

Run: ``.venv/bin/python benchmarks/dimuon_generation.py [--class z] [--events 32000] [--bare-events 16000]``. Always
exits 0 (benchmarks report, they do not fail); prints ``BELOW TARGET`` under the target.
"""

from __future__ import annotations

import argparse
import time

from hepnb.generate.dimuon import SHARD_FACTOR, Acceptance, dimuon_settings, simulate_shard
from hepnb.generate.pythia import derive_seed, make_pythia
from hepnb.generate.shards import shard_size

TARGET = 0.7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--class", dest="cls", default="z", help="dimuon class: z or gamma")
    parser.add_argument("--events", type=int, default=SHARD_FACTOR * shard_size(4),
                        help="events generated in the timed shard (default: a production-size dimuon shard)")
    parser.add_argument("--bare-events", type=int, default=16000, help="Pythia.next() calls")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    acc = Acceptance()
    simulate_shard(args.cls, args.seed, acc, 99, 50)  # warm-up: imports

    t0 = time.perf_counter()
    out = simulate_shard(args.cls, args.seed, acc, 4, args.events)
    wall = time.perf_counter() - t0
    kept = len(out["event_id"])

    pythia = make_pythia(dimuon_settings(args.cls, acc), derive_seed(args.seed, "bench", "dimuon", args.cls))
    t0 = time.perf_counter()
    failed = sum(not pythia.next() for _ in range(args.bare_events))
    bare = args.bare_events / (time.perf_counter() - t0)

    pipeline = args.events / wall
    print(f"class {args.cls}: {args.events} events in one shard (Pythia init included), seed {args.seed}, one core")
    print(f"pipeline: {pipeline:.0f} generated events/s, {kept / wall:.0f} accepted events/s "
          f"(acceptance {kept / args.events:.3f})")
    print(f"bare Pythia.next(): {bare:.0f} events/s ({failed} failed)")
    print(f"ratio (pipeline / bare): {pipeline / bare:.2f}  (target >= {TARGET})")
    if pipeline / bare < TARGET:
        print("BELOW TARGET")


if __name__ == "__main__":
    main()
