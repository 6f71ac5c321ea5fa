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
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="{generate,data}")

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
    backend_options(d)
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
    if args.data_dir:
        os.environ["HEPNB_DATA"] = str(args.data_dir)
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
    for r, gen, path, have in rows:
        if not (force or have < r.n):
            _say(f"{r.generator} {r.class_name}: {path} already holds {have:,d} >= {r.n:,d} {gen.unit}; nothing to do")
    if not missing:
        return 0
    with _backend(args) as (workers, dask):
        for r, gen, path, _ in missing:
            start = time.perf_counter()
            info = gen.generate(path, r.class_name, r.n, seed=r.seed, workers=workers, dask=dask,
                                keep_shards=args.keep_shards, progress=not args.quiet)
            shards = f"{info['shards']} shard{'s' if info['shards'] != 1 else ''}"
            _say(f"{r.generator} {r.class_name}: wrote {path} ({r.n:,d} {gen.unit}; {shards}: "
                 f"{info['generated']} generated, {info['reused']} reused; {time.perf_counter() - start:.1f} s on "
                 f"{info['backend']})")
    return 0


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
