"""How long the book takes to build: the timing record a build writes, the table it ends with, the estimate before
a cold build, and the check that every cell fits the per-cell timeout.

Explained in ``README.md`` ("Two commands") and the introduction (``book/intro.md``, "Running it").

A **record** is one JSON file. ``make book`` writes ``_build/timings.json``: the data step's files (generator,
class, seed, rows, seconds, workers) from ``python -m hepnb data --record``, and every notebook of ``_toc.yml`` with
its seconds, whether it ran or came from the execution cache, the seconds of each code cell, the files it added to
the data folder (trained checkpoints, cached results) and, if it failed, the cell and the cause. The record measured
by a cold build on an idle 2-core machine is kept in the repository as ``book/timings.json`` (``make timings``
copies it there). Three things read it:

* :func:`timeout_problems`: every measured cell times :data:`MARGIN` must fit ``_config.yml``'s ``execute.timeout``
  (``tests/test_book_timings.py`` checks it and names the cell that does not fit);
* :func:`stale_pages`: a chapter whose book-scale knobs changed since its cells were measured must be measured again
  (the same test names the chapter and the knobs), so a knob change cannot quietly push a cell over the timeout;
* :func:`estimate`: before a build, what will be generated and executed and how long it should take, from the
  record's measured rates.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hepnb.errors import ConfigError

__all__ = ["MARGIN", "TARGET_SECONDS", "RECORD", "FORMAT", "chapter_of", "knob_values", "cell_label",
           "config_timeout", "new_record", "read_record", "write_record", "merge_record", "timeout_problems", "stale_pages",
           "data_rates", "estimate", "report", "failures"]

FORMAT = "hepnb-build-timings"
VERSION = 1
RECORD = Path("book") / "timings.json"
# The per-cell timeout must be at least this many times the longest cell measured at book scale on an idle 2-core
# machine: a machine shared with one other job of the same size runs a cell about twice as slowly.
MARGIN = 2.0
# A cold `make book` (data included) should finish within this on an idle 2-core machine.
TARGET_SECONDS = 90 * 60


def chapter_of(notebook: str | os.PathLike[str]) -> str | None:
    """The ``config.CHAPTERS`` key a notebook belongs to: ``book/<key>/page.ipynb`` -> ``key``, a top-level
    ``book/<key>.ipynb`` -> ``key``; ``None`` if that key has no knobs."""
    from hepnb.config import CHAPTERS

    parts = Path(notebook).parts
    key = parts[-2] if len(parts) >= 3 else Path(notebook).stem
    return key if key in CHAPTERS else None


def knob_values(chapter: str | None, scale: str) -> dict[str, Any]:
    """The chapter's knobs at ``scale`` as plain values (``{}`` for a page without knobs)."""
    from hepnb.config import CHAPTERS

    if chapter is None:
        return {}
    return {name: knob.at(scale) for name, knob in CHAPTERS[chapter].items()}


def cell_label(source: str, width: int = 60) -> str:
    """The first line of a cell that is code (not blank, not a comment), cut to ``width`` characters."""
    for line in source.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            return text if len(text) <= width else text[: width - 1] + "…"
    return "(comments only)"


def config_timeout(root: str | os.PathLike[str]) -> int:
    """``execute.timeout`` of ``<root>/_config.yml``: the seconds one cell may run in a book build."""
    import yaml

    path = Path(root) / "_config.yml"
    value = (yaml.safe_load(path.read_text()) or {}).get("execute", {}).get("timeout")
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{path}: execute.timeout must be a positive number of seconds; found {value!r}")
    return value


def new_record(scale: str) -> dict[str, Any]:
    """An empty record of a build at ``scale`` on this machine."""
    return {"format": FORMAT, "version": VERSION, "scale": scale, "cores": os.cpu_count(), "data": [],
            "pages": []}


def read_record(path: str | os.PathLike[str], missing_ok: bool = False) -> dict[str, Any] | None:
    """The record at ``path``; ``None`` if it is missing and ``missing_ok``. A file that is not a record raises
    :class:`ConfigError` naming it."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return None
        raise ConfigError(f"{path}: no timing record (a `make book` writes one)")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable timing record ({err})") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a hepnb timing record (format is not {FORMAT!r})")
    if record.get("version") != VERSION:
        raise ConfigError(f"{path}: timing record version {record.get('version')!r}; this hepnb reads {VERSION}")
    return record


def write_record(path: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    """Write ``record`` to ``path`` atomically (a reader never sees half a file)."""
    from hepnb.data.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return Path(path)


def merge_record(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` with what it did not measure taken from ``old``: pages that came from the cache keep their measured
    entry, and data files that were already cached keep their generation time (same scale only)."""
    merged = json.loads(json.dumps(new))
    if old is None or old.get("scale") != new.get("scale"):
        return merged
    old_pages = {p["notebook"]: p for p in old.get("pages", [])}
    merged["pages"] = [p if not p.get("cached") or p["notebook"] not in old_pages else old_pages[p["notebook"]]
                       for p in merged["pages"]]
    have = {(d["generator"], d["class"], d["seed"]) for d in merged.get("data", []) if not d.get("cached")}
    kept = [d for d in old.get("data", []) if (d["generator"], d["class"], d["seed"]) not in have]
    merged["data"] = [d for d in merged.get("data", []) if not d.get("cached")] + kept
    return merged


def _longest(page: Mapping[str, Any]) -> Mapping[str, Any] | None:
    cells = page.get("cells") or []
    return max(cells, key=lambda c: c["seconds"]) if cells else None


def timeout_problems(record: Mapping[str, Any], timeout: float, margin: float = MARGIN) -> list[str]:
    """One message per measured cell that does not fit ``timeout`` with ``margin``: it names the notebook, the code
    cell (1-based, with its first line), its seconds and the timeout it would need."""
    problems = []
    for page in record.get("pages", []):
        for cell in page.get("cells") or []:
            if cell["seconds"] * margin > timeout:
                problems.append(
                    f"{page['notebook']}, code cell {cell['cell']} (`{cell['label']}`): {cell['seconds']:.0f} s at "
                    f"{record.get('scale')} scale needs a timeout of >= {math.ceil(cell['seconds'] * margin)} s "
                    f"({margin:g}x); _config.yml has {timeout:g} s. Make the cell cheaper or raise the timeout.")
    return problems


def stale_pages(record: Mapping[str, Any], scale: str | None = None) -> list[str]:
    """One message per page whose chapter knobs at the record's scale differ from ``hepnb.config`` now (their cell
    times no longer describe what a build runs): names the chapter and each changed knob."""
    scale = scale or record.get("scale", "book")
    messages = []
    for page in record.get("pages", []):
        chapter = chapter_of(page["notebook"])
        now = knob_values(chapter, scale)
        then = page.get("knobs", {})
        changed = [f"{k} {then.get(k, '(none)')!r} -> {now.get(k, '(none)')!r}"
                   for k in sorted(set(now) | set(then)) if now.get(k) != then.get(k)]
        if changed:
            messages.append(f"{page['notebook']}: the {chapter} chapter's {scale}-scale knobs changed since its cells "
                            f"were timed ({'; '.join(changed)}); run `make book` and `make timings` to measure it "
                            "again")
    return messages


def data_rates(record: Mapping[str, Any] | None) -> dict[str, float]:
    """Measured core-seconds per row of each generator (``seconds x workers / rows`` over the files the record's
    data step generated from scratch)."""
    sums: dict[str, list[float]] = {}
    for d in (record or {}).get("data", []):
        if d.get("cached") or d.get("reused") or not d.get("n"):
            continue
        s = sums.setdefault(d["generator"], [0.0, 0.0])
        s[0] += d["seconds"] * d["workers"]
        s[1] += d["n"]
    return {g: sec / n for g, (sec, n) in sums.items() if n}


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def estimate(record: Mapping[str, Any] | None, files: Sequence[Mapping[str, Any]], pages: Sequence[str],
             cached_pages: Iterable[str], workers: int, data_dir: str | os.PathLike[str] | None = None
             ) -> list[str]:
    """What a build will do and how long it should take, as printable lines.

    ``files``: the data plan as mappings (``generator``, ``class``, ``seed``, ``n``, ``have``: rows cached);
    ``pages``: the notebooks in book order; ``cached_pages``: those whose outputs the execution cache holds;
    ``workers``: processes of the data step. Times come from ``record`` (a build's measured rates and page times,
    at the same scale), and are '?' where it has none.
    """
    rates = data_rates(record)
    measured = {p["notebook"]: p for p in (record or {}).get("pages", [])}
    lines, total, unknown = [], 0.0, False
    todo = [f for f in files if f["have"] < f["n"]]
    lines.append(f"data: {len(files) - len(todo)} of {len(files)} files cached; {len(todo)} to generate "
                 f"on {workers} worker{'s' if workers != 1 else ''}")
    for f in todo:
        rate = rates.get(f["generator"])
        seconds = None if rate is None else rate * (f["n"] - f["have"]) / workers
        total += seconds or 0.0
        unknown |= seconds is None
        lines.append(f"  {f['generator']:7s} {f['class']:6s} seed {f['seed']:<3d} {f['n'] - f['have']:>9,d} rows"
                     f"  ~{_minutes(seconds)}")
    cached = set(cached_pages)
    run = [p for p in pages if p not in cached]
    lines.append(f"notebooks: {len(pages) - len(run)} of {len(pages)} from the execution cache; {len(run)} to run")
    folder = Path(data_dir) if data_dir is not None else None
    for nb in run:
        page = measured.get(nb)
        seconds = None if page is None or page.get("cached") else page["seconds"]
        total += seconds or 0.0
        unknown |= seconds is None
        made = (page or {}).get("created", [])
        models = [f for f in made if f.startswith("checkpoints/")]
        train = ""
        if models:
            have = sum((folder / f).exists() for f in models) if folder is not None else 0
            train = f", trains {len(models) - have} of its {len(models)} models ({have} cached)"
        longest = _longest(page or {})
        slow = f", longest cell {longest['seconds']:.0f} s" if longest else ""
        lines.append(f"  {nb:45s} ~{_minutes(seconds)}{slow}{train}")
    when = "" if record is None else f" (times measured on {record.get('cores', '?')} cores)"
    if unknown and not total:
        lines.append("estimated total: unknown (nothing measured at this scale yet; unmeasured steps show '?')")
    else:
        lines.append(f"estimated total: ~{_minutes(total)}{' + unmeasured steps' if unknown else ''}{when}")
    return lines


def failures(record: Mapping[str, Any]) -> list[str]:
    """One line per failed notebook: the notebook, the code cell and the cause."""
    out = []
    for page in record.get("pages", []):
        err = page.get("error")
        if err:
            where = f"code cell {err['cell']} (`{err['label']}`)" if err.get("cell") else "before its first cell"
            out.append(f"FAILED {page['notebook']}, {where}: {err['cause']}")
    return out


def report(record: Mapping[str, Any], timeout: float | None = None) -> list[str]:
    """The table a build ends with: the data step, then seconds per page, whether the page ran or came from the
    execution cache, its longest cell (and its share of ``timeout``), models trained; then the total, cells too close
    to the timeout, and failures last."""
    lines = []
    data = [d for d in record.get("data", []) if not d.get("cached")]
    data_seconds = sum(d["seconds"] for d in data)
    if record.get("data"):
        lines.append(f"data step: {len(data)} of {len(record['data'])} files generated in {_minutes(data_seconds)}")
    head = f"{'page':45s} {'seconds':>8s}  {'from':9s} {'longest cell':>13s}  models"
    lines += [head, "-" * len(head)]
    total = data_seconds
    for page in record.get("pages", []):
        state = ("FAILED" if page.get("error") else "not run" if page.get("not_run")
                 else "cache" if page.get("cached") else "executed")
        seconds = page.get("seconds")
        if not page.get("cached"):
            total += seconds or 0.0
        longest = _longest(page)
        share = ""
        if longest and timeout:
            share = f" ({100 * longest['seconds'] / timeout:.0f}%)"
        cell = f"{longest['seconds']:.0f} s{share}" if longest else "-"
        models = sum(f.startswith("checkpoints/") for f in page.get("created", []))
        sec = "-" if seconds is None else f"{seconds:.0f}"
        lines.append(f"{page['notebook']:45s} {sec:>8s}  {state:9s} {cell:>13s}  {models or '-'}")
    lines.append(f"total this build: {_minutes(total)} (data step and executed pages)")
    for page in record.get("pages", []):
        made = [f for f in page.get("created", []) if f.endswith(".h5")]
        if made:
            lines.append(f"NOTE {page['notebook']} generated data in a cell ({', '.join(made)}): the data plan "
                         "(python -m hepnb data) does not list it")
    if timeout:
        lines += [f"WARNING {p}" for p in timeout_problems(record, timeout)]
    lines += failures(record)
    return lines

