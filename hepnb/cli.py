"""The ``hepnb`` command line: generate data ahead of the notebooks, on this machine or a Dask cluster.

Explained in ``book/data/resimulation.ipynb`` (section "Generating at scale") and ``README.md``::

    python -m hepnb generate resim --class hbb --events 2000 --seed 7 --workers 2
    python -m hepnb generate resim --class hbb --events 2000 --seed 7 --dask local
    python -m hepnb generate dimuon --events 50000 --dask tcp://head-node:8786
    python -m hepnb data --scale paper --workers 16          # everything the chapters read at paper scale
    python -m hepnb data --scale paper --dry-run             # only list it

Each file is generated in shards that are saved as they finish (:mod:`hepnb.generate.shardstore`), so a command
that is interrupted (Ctrl-C, a killed job, a lost node) is resumed by running it again. A file that already holds
enough rows is left as it is. Errors are one line on stderr and a non-zero exit status: 2 for a bad command line
(unknown generator, class or chapter, a size or seed out of range), 1 for anything that fails while running it (an
unreachable scheduler, a generator error), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from hepnb.config import MAX_SEED
from hepnb.errors import ConfigError, HepnbError
from hepnb.validation import check_int, check_positive

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``hepnb: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hepnb: error: {message} (see: {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from hepnb.config import SCALES
    from hepnb.data.generators import GENERATORS

    top = _Parser(prog="python -m hepnb", description="Generate the book's data ahead of the notebooks.")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser,
                             metavar="{generate,data,estimate,report}")

    def backend_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--workers", type=int, default=None, metavar="W",
                       help=f"worker processes on this machine (default: all {os.cpu_count()} cores); with --dask "
                            "local, the size of the local cluster")
        p.add_argument("--dask", default=None, metavar="ADDRESS|local",
                       help="run the shards on Dask: 'local' starts a LocalCluster here, an address such as "
                            "tcp://head-node:8786 uses a running scheduler")
        p.add_argument("--dask-timeout", type=float, default=None, metavar="S",
                       help="seconds to reach the scheduler before failing (default 10)")
        p.add_argument("--keep-shards", action="store_true",
                       help="keep each file's finished shards after merging (default: remove them)")
        p.add_argument("--data-dir", default=None, metavar="DIR", help="cache folder (default: $HEPNB_DATA or data/)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    g = sub.add_parser("generate", help="generate one generator's classes into the cache",
                       description="Generate (or resume) cached files of one generator.")
    g.add_argument("generator", choices=list(GENERATORS), metavar="generator",
                   help=f"one of: {', '.join(f'{k} ({v.description})' for k, v in GENERATORS.items())}")
    g.add_argument("--class", dest="classes", action="append", default=None, metavar="NAME",
                   help="class to generate (repeat it, or separate by commas; default: every class)")
    g.add_argument("--events", type=int, required=True, metavar="N", help="rows per class (hard events, events or "
                   "jets, as the generator counts them)")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="base seed (default 0)")
    g.add_argument("--force", action="store_true", help="generate even if the cached file holds enough rows")
    backend_options(g)

    d = sub.add_parser("data", help="generate every file the chapters read at a scale",
                       description="Generate (or resume) every file the book's chapters read at a scale.")
    d.add_argument("--scale", choices=SCALES, default="paper", help="scale (default: paper)")
    d.add_argument("--seed", type=int, default=None, metavar="S", help="seed base (default: the scale's)")
    d.add_argument("--chapters", default=None, metavar="KEYS", help="comma-separated chapter keys (default: all)")
    d.add_argument("--dry-run", action="store_true", help="list the files and what is cached; generate nothing")
    d.add_argument("--record", default=None, metavar="FILE",
                   help="write each file's generation seconds to this timing record (make book: _build/data-times.json)")
    backend_options(d)

    e = sub.add_parser("estimate", help="before a book build: what will be generated and run, and how long",
                       description="What `make book` will generate and execute, with times from the measured "
                                   "record (book/timings.json).")
    e.add_argument("--scale", choices=SCALES, default="book", help="scale (default: book)")
    e.add_argument("--build", default="_build", metavar="DIR", help="the book's build folder (default: _build)")
    e.add_argument("--workers", type=int, default=None, metavar="W",
                   help=f"processes of the data step (default: all {os.cpu_count()} cores)")
    e.add_argument("--data-dir", default=None, metavar="DIR", help="cache folder (default: $HEPNB_DATA or data/)")

    r = sub.add_parser("report", help="after a book build: seconds per page, the longest cells, failures last",
                       description="Print the timing record of the last book build (<build>/timings.json); exit "
                                   "status 1 if a notebook failed.")
    r.add_argument("--build", default="_build", metavar="DIR", help="the book's build folder (default: _build)")
    r.add_argument("--save", action="store_true",
                   help="also merge it into the measured record book/timings.json (make timings)")
    return top


def _say(text: str) -> None:
    print(text, flush=True)


def _requests(args: argparse.Namespace) -> list[Any]:
    from hepnb.data.generators import Request, generator, plan

    if args.command == "data":
        chapters = [c.strip() for c in args.chapters.split(",") if c.strip()] if args.chapters else None
        return plan(args.scale, seed=args.seed, chapters=chapters)
    gen = generator(args.generator)
    names = [c.strip() for item in (args.classes or [",".join(gen.classes)]) for c in item.split(",") if c.strip()]
    n = check_int("--events", args.events, error=ConfigError)
    seed = check_int("--seed", args.seed, minimum=0, maximum=MAX_SEED, error=ConfigError)
    return [Request(gen.name, c, n, seed, ()) for c in dict.fromkeys(names)]


def _check_backend(args: argparse.Namespace) -> None:
    """The backend options make sense together (checked before anything runs)."""
    if args.workers is not None:
        check_int("--workers", args.workers, error=ConfigError)
    if args.dask is None and args.dask_timeout is not None:
        raise ConfigError("--dask-timeout needs --dask")
    if args.dask_timeout is not None:
        check_positive("--dask-timeout", args.dask_timeout, error=ConfigError)
    if args.dask not in (None, "local") and args.workers is not None:
        raise ConfigError(f"--workers sizes a local pool or --dask local; the scheduler at {args.dask} has its own "
                          "workers")


@contextlib.contextmanager
def _backend(args: argparse.Namespace) -> Iterator[tuple[int, Any]]:
    """``(workers, dask)`` to pass to the generators: one Dask client for every file of the command."""
    from hepnb.generate.backends import DASK_TIMEOUT, dask_client

    if args.dask is None:
        yield args.workers or os.cpu_count() or 1, None
        return
    import logging

    import distributed  # noqa: F401  (configures its loggers on import: quieten them after that)

    # a lost scheduler is reported in one line (GeneratorError); distributed's reconnection tracebacks would bury it
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    timeout = DASK_TIMEOUT if args.dask_timeout is None else args.dask_timeout
    workers = args.workers or os.cpu_count() or 1
    with dask_client(args.dask, workers, timeout) as (client, name):
        _say(f"running shards on {name}")
        yield workers, client


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "data_dir", None):
        os.environ["HEPNB_DATA"] = str(args.data_dir)
    if args.command == "estimate":
        return _estimate(args)
    if args.command == "report":
        return _report(args)
    from hepnb.data.generators import generator

    _check_backend(args)
    todo = _requests(args)  # every size, class and seed is checked before anything runs
    rows = []
    for r in todo:
        gen = generator(r.generator)
        path = r.path()
        rows.append((r, gen, path, gen.cached(path)))
    if args.command == "data":
        _say(f"{len(rows)} files for scale {args.scale}:")
        for r, gen, path, have in rows:
            state = "cached" if have >= r.n else (f"has {have}, generate" if have else "generate")
            _say(f"  {r.generator:7s} {r.class_name:6s} seed {r.seed:<4d} {r.n:>9,d} {gen.unit:12s} {state:18s} "
                 f"{path.name}  ({', '.join(r.chapters)})")
        if args.dry_run:
            return 0
    force = getattr(args, "force", False)
    missing = [row for row in rows if force or row[3] < row[0].n]
    record = _DataRecord(getattr(args, "record", None), getattr(args, "scale", None))
    for r, gen, path, have in rows:
        if not (force or have < r.n):
            _say(f"{r.generator} {r.class_name}: {path} already holds {have:,d} >= {r.n:,d} {gen.unit}; nothing to do")
            record.add(r, cached=True)
    if not missing:
        record.save()
        return 0
    with _backend(args) as (workers, dask):
        for i, (r, gen, path, _) in enumerate(missing, start=1):
            start = time.perf_counter()
            if len(missing) > 1:
                _say(f"[{i}/{len(missing)}] {r.generator} {r.class_name} seed {r.seed}: {r.n:,d} {gen.unit}")
            info = gen.generate(path, r.class_name, r.n, seed=r.seed, workers=workers, dask=dask,
                                keep_shards=args.keep_shards, progress=not args.quiet)
            seconds = time.perf_counter() - start
            shards = f"{info['shards']} shard{'s' if info['shards'] != 1 else ''}"
            _say(f"{r.generator} {r.class_name}: wrote {path} ({r.n:,d} {gen.unit}; {shards}: "
                 f"{info['generated']} generated, {info['reused']} reused; {seconds:.1f} s on {info['backend']})")
            record.add(r, seconds=seconds, workers=workers, reused=info["reused"])
            record.save()
    record.save()
    return 0


class _DataRecord:
    """The data step's part of a build's timing record (:mod:`hepnb.buildreport`), if ``--record`` asks for it."""

    def __init__(self, path: str | None, scale: str | None) -> None:
        from hepnb.buildreport import new_record

        self.path = path
        self.record = new_record(scale or "")

    def add(self, r: Any, seconds: float = 0.0, workers: int = 0, reused: int = 0, cached: bool = False) -> None:
        self.record["data"].append({"generator": r.generator, "class": r.class_name, "seed": r.seed, "n": r.n,
                                    "seconds": round(seconds, 2), "workers": workers, "reused": reused,
                                    "cached": cached})

    def save(self) -> None:
        if self.path:
            from hepnb.buildreport import write_record

            write_record(self.path, self.record)


def _estimate(args: argparse.Namespace) -> int:
    """``python -m hepnb estimate``: the data plan's missing files and the notebooks the execution cache lacks, with
    times from ``book/timings.json``."""
    from hepnb import buildreport
    from hepnb.config import data_dir, repo_root
    from hepnb.data.generators import generator, plan
    from hepnb.toc import notebooks

    workers = check_int("--workers", args.workers or os.cpu_count() or 1, error=ConfigError)
    root = repo_root()
    files = [{"generator": r.generator, "class": r.class_name, "seed": r.seed, "n": r.n,
              "have": generator(r.generator).cached(r.path())} for r in plan(args.scale)]
    pages = [p.as_posix() for p in notebooks(root)]
    record = buildreport.read_record(root / buildreport.RECORD, missing_ok=True)
    if record is not None and record.get("scale") != args.scale:
        record = None
    cached = _cached_pages(root, pages, os.path.join(args.build, ".jupyter_cache"))
    _say(f"make book at scale {args.scale}: the plan")
    for line in buildreport.estimate(record, files, pages, cached, workers, data_dir()):
        _say(line)
    return 0


def _cached_pages(root: Any, pages: Sequence[str], cache_path: str) -> list[str]:
    """The notebooks whose executed outputs jupyter-cache holds (as myst-nb will match them)."""
    if not os.path.isdir(cache_path):
        return []
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(cache_path)
    found = []
    for page in pages:
        try:
            cache.match_cache_notebook(nbformat.read(os.path.join(root, page), as_version=4))
            found.append(page)
        except KeyError:
            pass
    return found


def _report(args: argparse.Namespace) -> int:
    """``python -m hepnb report``: the last build's table, failures last; exit status 1 if one failed."""
    from hepnb import buildreport
    from hepnb.config import repo_root

    path = os.path.join(args.build, "timings.json")
    record = buildreport.read_record(path)
    try:
        timeout = buildreport.config_timeout(repo_root())
    except (HepnbError, OSError):
        timeout = None
    _say("")
    _say(f"book build at scale {record.get('scale')}, seconds per page ({path}):")
    for line in buildreport.report(record, timeout):
        _say(line)
    if args.save:
        if buildreport.failures(record):
            raise ConfigError(f"{path} records a failed build; not saved as the measured record")
        target = repo_root() / buildreport.RECORD
        old = buildreport.read_record(target, missing_ok=True)
        buildreport.write_record(target, buildreport.merge_record(old, record))
        _say(f"saved as the measured record {target}")
    return 1 if buildreport.failures(record) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:  # the output was piped into a reader that stopped (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("hepnb: interrupted; finished shards are kept: run the same command again to resume",
              file=sys.stderr, flush=True)
        return 130
    except (HepnbError, ValueError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"hepnb: error: {message}", file=sys.stderr, flush=True)
        return 2 if isinstance(err, ConfigError) else 1
