"""Generation backends and resumable shards: the process pool against a local Dask cluster of the same size, the cost
of resuming, and what paper scale costs on 16 cores and on a 200-core cluster.

What is measured
----------------
1. *Backend overhead.* The same generation (``hepnb.generate.shards.run_shards`` with a shard store in a temporary
   folder, exactly the path ``python -m hepnb generate`` takes) on a process pool of ``W`` workers and on a
   ``distributed.LocalCluster`` of ``W`` single-threaded workers, alternating, ``--repeats`` times each; the best run
   of each counts. Rates are per shard actually generated (spare shards included), so a backend that computes one
   spare shard more is not flattered. The pool's time includes starting its processes (each generation starts its
   own pool); the cluster is started once and its start-up is reported separately (the command line starts one
   cluster for all files). The headline is ``overhead = pool shards/s / Dask shards/s`` (target <= 1.1).
2. *Resume.* A dimuon file is generated with its shards kept; then half of its shards are deleted, as if the run had
   been killed, and it is generated again: the rerun regenerates only the missing shards. Printed: the seconds of
   the full run, of the resumed run, and of a rerun with every shard finished (read and merge only).
3. *Paper scale.* One shard per class and generator on one core gives rows per core-second; with the chapters'
   paper-scale plan (``hepnb.data.generators.plan("paper")``) that gives core-hours, and wall time on 16 and 200
   cores, counting that the command line makes one file after another, each with at most its own shards in flight.

Run: ``.venv/bin/python benchmarks/backends.py [--workers 2] [--repeats 2] [--skip-estimate]``. It exits 0 and prints
``ABOVE TARGET`` when the Dask overhead exceeds 1.1.
"""

from __future__ import annotations

import argparse
import functools
import math
import shutil
import tempfile
import time
from pathlib import Path

from hepnb.generate import dimuon as gen_dimuon
from hepnb.generate import highpt as gen_highpt
from hepnb.generate import resim as gen_resim
from hepnb.generate.backends import dask_client
from hepnb.generate.shards import SHARD_SIZE_MAX, run_shards, shard_size
from hepnb.generate.shardstore import ShardStore

TARGET = 1.1
HASH = "0" * 64


def timed_run(job, n_events, workers, dask, n_hard=None, factor=1):
    """Seconds, shards generated and events generated of one ``run_shards`` into a fresh shard store."""
    folder = Path(tempfile.mkdtemp(prefix="hepnb-bench-"))
    try:
        start = time.perf_counter()
        run = run_shards(job, n_events, workers, n_hard=n_hard, progress=False, factor=factor,
                         store=ShardStore(folder, HASH), dask=dask)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    size = (lambda k: n_hard) if n_hard else (lambda k: factor * shard_size(k))
    return seconds, len(run.generated), sum(size(k) for k in run.generated)


def overhead(name, job, n_events, workers, repeats, n_hard=None, factor=1):
    start = time.perf_counter()
    with dask_client("local", workers) as (client, _):
        cluster_start = time.perf_counter() - start
        best = {"pool": None, "dask": None}
        for _ in range(repeats):
            for backend, dask in (("pool", None), ("dask", client)):
                result = timed_run(job, n_events, workers, dask, n_hard, factor)
                if best[backend] is None or result[0] < best[backend][0]:
                    best[backend] = result
    print(f"\n{name}: {n_events} kept rows wanted, {workers} workers, best of {repeats}")
    print(f"  {'backend':8s} {'seconds':>8s} {'shards':>7s} {'shards/s':>9s} {'events/s/core':>14s}")
    rates = {}
    for backend, (seconds, shards, events) in best.items():
        rates[backend] = shards / seconds
        print(f"  {backend:8s} {seconds:8.2f} {shards:7d} {shards / seconds:9.3f} {events / seconds / workers:14.0f}")
    ratio = rates["pool"] / rates["dask"]
    print(f"  LocalCluster start-up: {cluster_start:.1f} s (once per command)")
    print(f"  overhead (pool shards/s / Dask shards/s): {ratio:.3f}  (target <= {TARGET})"
          + ("  ABOVE TARGET" if ratio > TARGET else ""))
    return ratio


def resume(workers):
    from hepnb.data import dimuon

    folder = Path(tempfile.mkdtemp(prefix="hepnb-bench-"))
    try:
        path = folder / "z.h5"
        start = time.perf_counter()
        info = dimuon.generate_file(path, "z", 40_000, seed=21, workers=workers, progress=False, keep_shards=True)
        full = time.perf_counter() - start
        store = ShardStore.for_file(path, dimuon.generation_record("z", 21))
        files = list(store.finished().values())
        for f in files[len(files) // 2:]:
            f.unlink()
        path.unlink()
        start = time.perf_counter()
        again = dimuon.generate_file(path, "z", 40_000, seed=21, workers=workers, progress=False, keep_shards=True)
        resumed = time.perf_counter() - start
        path.unlink()
        start = time.perf_counter()
        dimuon.generate_file(path, "z", 40_000, seed=21, workers=workers, progress=False)
        merged = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nresume (dimuon z, 40,000 events, {info['shards']} shards, {workers} workers):")
    print(f"  full run {full:.2f} s; after losing {again['generated']} of {info['shards']} shards {resumed:.2f} s "
          f"({again['reused']} reused); every shard finished (read + merge) {merged:.2f} s")


SAMPLE = {"resim": 1000, "dimuon": 8000, "highpt": 1000}  # events of the one shard timed per class


def rates():
    """``{(generator, class): (kept rows per core-second, kept rows per generated event)}`` of every class the paper
    plan needs, from one shard each in this process (Pythia's initialisations included)."""
    shard = {"resim": lambda c, n: gen_resim.simulate_shard(c, 99, 0, n),
             "dimuon": lambda c, n: gen_dimuon.simulate_shard(c, 99, gen_dimuon.Acceptance(), 0, n),
             "highpt": lambda c, n: gen_highpt.simulate_shard(c, 99, gen_highpt.Selection(), 0, n)}
    out = {}
    for generator, classes in (("resim", ("hbb", "qcd", "wqq")), ("dimuon", ("gamma", "z")),
                               ("highpt", ("g", "w", "z", "t"))):
        for cls in classes:
            n = SAMPLE[generator]
            start = time.perf_counter()
            kept = len(shard[generator](cls, n)["event_id"])
            out[(generator, cls)] = (kept / (time.perf_counter() - start), kept / n)
    return out


def estimate(dask_ratio):
    """Core-hours of the paper-scale plan, and wall hours on 16 and 200 cores as ``python -m hepnb data`` runs it:
    one file after another, each with at most ~1.2x its remaining shards in flight (the rest of a big cluster idles
    while a small file runs)."""
    from hepnb.data.generators import plan

    measured = rates()
    print("\nkept rows per core-second (one shard each, this machine):")
    for (g, c), (rate, kept) in measured.items():
        print(f"  {g:7s} {c:6s} {rate:8.1f}  (keeps {kept:.2f} of generated events)")
    requests = plan("paper")
    core_s = {r.key: r.n / measured[(r.generator, r.class_name)][0] for r in requests}
    total = sum(core_s.values())
    print(f"\npaper scale: {len(requests)} files, {sum(r.n for r in requests):,d} rows, {total / 3600:.1f} core-hours")
    for g in ("resim", "dimuon", "highpt"):
        print(f"  {g:7s} {sum(v for k, v in core_s.items() if k[0] == g) / 3600:7.1f} core-hours")
    for cores in (16, 200):
        wall = 0.0
        for r in requests:
            rate, kept = measured[(r.generator, r.class_name)]
            factor = gen_dimuon.SHARD_FACTOR if r.generator == "dimuon" else 1
            per_shard = factor * SHARD_SIZE_MAX * kept  # kept rows of a production shard
            shards = max(1, math.ceil(r.n / per_shard))
            wall += math.ceil(1.2 * shards / cores) * per_shard / rate
        print(f"  on {cores:3d} cores: {wall / 3600:5.1f} h as the command line runs it, "
              f"{wall * dask_ratio / 3600:5.1f} h on Dask (ideal, every core busy: {total / cores / 3600:5.1f} h)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-estimate", action="store_true")
    args = parser.parse_args()
    resim_job = functools.partial(_resim, sel=gen_resim.Selection())
    ratios = [overhead("resim hbb (shards of 150 hard events)", resim_job, 600, args.workers,
                       args.repeats, n_hard=150)]
    dimuon_job = functools.partial(gen_dimuon.simulate_shard, "z", 5, gen_dimuon.Acceptance())
    ratios.append(overhead("dimuon z (production shards, 0.4-7 s each)", dimuon_job, 60_000, args.workers,
                           args.repeats, factor=gen_dimuon.SHARD_FACTOR))
    resume(args.workers)
    if not args.skip_estimate:
        estimate(max(ratios))


def _resim(shard, n, sel):
    return gen_resim.simulate_shard("hbb", 5, shard, n, sel)


if __name__ == "__main__":
    main()
