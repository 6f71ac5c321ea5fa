"""Progress in the book build: one final line per bar on the page, and on the terminal a start line, a live line and
an end line per notebook, plus the timing record (``_build/timings.json``) the build ends with.

Explained in the introduction (``book/intro.md``, "Running it") and ``README.md`` ("Two commands").

**Bars on the page.** hepnb shows plain text ``tqdm`` bars (the training loop, the generators). In Jupyter each
refresh rewrites the same line. A book build stores what the kernel sent instead, and the kernel sends its output in
messages about 0.2 s apart, so the executor stored every refresh as an output of its own and a cold build showed one
grey block per refresh. This Sphinx extension, listed under ``sphinx: extra_extensions`` in ``_config.yml``, turns on
nbclient's own ``coalesce_streams`` option for the book's executor (myst-nb does not expose it). A cell's stdout and
stderr are then merged into one stream each and its carriage returns applied, so a bar keeps only its final line,
e.g. ``epochs: 100%|██████████| 5/5 [00:03<00:00, 1.6it/s]``. Nothing changes inside the kernel, so bars stay live
in Jupyter, and ``tests/test_book_build.py`` builds a small book and counts the lines that remain.

**The terminal.** Sphinx prints one line per notebook ("Executing notebook using local CWD") and nothing for the
minutes it runs. Here each notebook gets a start line (``[3/8] book/x/x.ipynb: running 38 code cells (measured
812 s)``), a live line while it runs (code cell n of m, its first line, the seconds so far, and the last line the
cell printed, such as its progress bar: rewritten in place on a terminal, one line a minute in a log) and an end line
with its seconds, or the cell and the cause of a failure. Pages served from the execution cache get one line.

**The record.** After every notebook and at the end of the build, :class:`BuildLog` writes ``_build/timings.json``
(:mod:`hepnb.buildreport`): seconds per page and per code cell, cache or executed, the files each notebook added to
the data folder (its trained checkpoints) and any failure. ``make book`` prints it as a table after the build.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from hepnb import buildreport

__all__ = ["BuildLog", "execute_coalesced", "setup"]

# Seconds between live lines when the output is a log file, not a terminal ($HEPNB_PROGRESS_INTERVAL sets it), and
# before the first live line of a cell (a third of that); on a terminal the line is rewritten every second.
LOG_INTERVAL = float(os.environ.get("HEPNB_PROGRESS_INTERVAL", "60"))
LOG_FIRST = LOG_INTERVAL / 3
TTY_INTERVAL = 1.0

_LOG: BuildLog | None = None


def _data_files(folder: Path) -> set[str]:
    """Files under the data folder (relative paths), leaving out hidden temporaries and unmerged shard folders."""
    if not folder.is_dir():
        return set()
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not d.endswith(".shards")]
        for name in filenames:
            if not name.startswith("."):
                found.add(Path(dirpath, name).relative_to(folder).as_posix())
    return found


class _Live:
    """The live line of one running notebook: which code cell, since when, and the last line it printed."""

    def __init__(self, stream: TextIO, name: str, n_code: int) -> None:
        self.stream, self.name, self.n_code = stream, name, n_code
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.cell, self.label, self.cell_started, self.text = 0, "", self.started, ""
        self.next_log = float("inf")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hepnb-live", daemon=True)
        self._thread.start()

    def enter(self, cell: int, label: str) -> None:
        with self._lock:
            self.cell, self.label, self.text = cell, label, ""
            self.cell_started = time.monotonic()
            self.next_log = self.cell_started + LOG_FIRST

    def saw(self, text: str) -> None:
        """Keep the last visible line of a stream message (a tqdm refresh ends in a carriage return)."""
        pieces = [p.strip() for line in text.split("\n") for p in line.split("\r")]
        pieces = [p for p in pieces if p]
        if pieces:
            with self._lock:
                self.text = pieces[-1]

    def line(self) -> str:
        now = time.monotonic()
        with self._lock:
            text = f"  {self.name}: code cell {self.cell}/{self.n_code} `{self.label}` {now - self.cell_started:.0f} s"
            text += f" (page {now - self.started:.0f} s)"
            return text + (f" | {self.text}" if self.text else "")

    def _run(self) -> None:
        while not self._stop.wait(TTY_INTERVAL if self.tty else min(1.0, LOG_FIRST)):
            if self.tty:
                width = _width(self.stream)
                self.stream.write("\r" + self.line()[: width - 1] + "\x1b[K")
                self.stream.flush()
            elif time.monotonic() >= self.next_log:
                self.stream.write(self.line() + "\n")
                self.stream.flush()
                self.next_log = time.monotonic() + LOG_INTERVAL

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 120


class BuildLog:
    """What one book build executed, printed as it happens and kept in ``<build>/timings.json``."""

    def __init__(self, root: Path, build: Path, scale: str, timeout: float | None,
                 stream: TextIO | None = None) -> None:
        from hepnb.config import data_dir

        self.root, self.build, self.scale, self.timeout = root, build, scale, timeout
        self.stream = stream or sys.stderr
        self.path = build / "timings.json"
        self.record = buildreport.new_record(scale)
        data_step = build / "data-times.json"
        if data_step.exists():  # written just before by `python -m hepnb data --record` (make book)
            self.record["data"] = (buildreport.read_record(data_step) or {}).get("data", [])
        try:
            previous = buildreport.read_record(root / buildreport.RECORD, missing_ok=True)
        except Exception:  # a broken committed record must not stop a build: it only informs the start lines
            previous = None
        self.measured = ({p["notebook"]: p for p in previous.get("pages", [])}
                         if previous and previous.get("scale") == scale else {})
        self.data_dir = data_dir()
        self.total = 0
        self.count = 0
        self.pages: dict[str, dict[str, Any]] = {}
        self.finished = False

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _counter(self) -> str:
        self.count += 1
        return f"[{self.count}/{self.total}]" if self.total >= self.count else f"[{self.count}]"

    def cached(self, notebook: str, seconds: float | None) -> None:
        ran = "" if seconds is None else f" (it ran {seconds:.0f} s when cached)"
        self.say(f"{self._counter()} {notebook}: from the execution cache{ran}")

    def execute(self, notebook: str, nb: Any, run: Any) -> Any:
        """Run ``run(hooks, live)`` for ``nb``: start line, live line, per-cell times, end line, record."""
        code = {i: n for n, i in enumerate((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), start=1)}
        before = _data_files(self.data_dir)
        old = self.measured.get(notebook)
        was = f" (measured {old['seconds']:.0f} s)" if old and old.get("seconds") and not old.get("cached") else ""
        self.say(f"{self._counter()} {notebook}: running {len(code)} code cells{was}")
        page: dict[str, Any] = {
            "notebook": notebook, "seconds": None, "cached": False, "cells": [], "created": [], "error": None,
            "knobs": buildreport.knob_values(buildreport.chapter_of(notebook), self.scale),
        }
        live = _Live(self.stream, Path(notebook).name, len(code))
        starts: dict[int, float] = {}
        current: dict[str, Any] = {}

        def on_cell_execute(cell: Any, cell_index: int) -> None:
            n = code.get(cell_index, 0)
            label = buildreport.cell_label(cell.source)
            starts[cell_index] = time.monotonic()
            current.update(cell=n, label=label)
            live.enter(n, label)

        def on_cell_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
            seconds = time.monotonic() - starts.pop(cell_index, time.monotonic())
            page["cells"].append({"cell": code.get(cell_index, 0), "label": buildreport.cell_label(cell.source),
                                  "seconds": round(seconds, 2)})

        def on_cell_error(cell: Any, cell_index: int, execute_reply: Any) -> None:
            content = (execute_reply or {}).get("content", {})
            page["error"] = {**current, "cause": f"{content.get('ename', 'error')}: {content.get('evalue', '')}"}

        hooks = {"on_cell_execute": on_cell_execute, "on_cell_executed": on_cell_executed,
                 "on_cell_error": on_cell_error}
        start = time.monotonic()
        try:
            return run(hooks, live)
        except BaseException as err:
            if page["error"] is None:
                page["error"] = {**current, "cause": _cause(err, self.timeout)}
            raise
        finally:
            live.stop()
            page["seconds"] = round(time.monotonic() - start, 2)
            page["created"] = sorted(_data_files(self.data_dir) - before)
            self.pages[notebook] = page
            self._end_line(page)
            self.save()

    def _end_line(self, page: dict[str, Any]) -> None:
        models = sum(f.startswith("checkpoints/") for f in page["created"])
        if page["error"]:
            self.say(buildreport.failures({"pages": [page]})[0])
            return
        longest = max(page["cells"], key=lambda c: c["seconds"], default=None)
        slow = f"; longest: code cell {longest['cell']}, {longest['seconds']:.0f} s" if longest else ""
        self.say(f"  {page['notebook']}: done in {page['seconds']:.0f} s ({len(page['cells'])} code cells{slow}"
                 f"{f'; {models} models trained' if models else ''})")

    def finish(self, env: Any) -> None:
        """Add every notebook of ``_toc.yml`` this build did not execute (served from the cache, with the seconds it
        took when it was cached), in book order, and write the record."""
        from hepnb.toc import notebooks

        pages = []
        for path in notebooks(self.root):
            name = path.as_posix()
            if name in self.pages:
                pages.append(self.pages[name])
                continue
            data = _exec_data(env, path.with_suffix("").as_posix())
            pages.append({"notebook": name, "seconds": (data or {}).get("runtime"), "cached": data is not None,
                          "not_run": data is None, "cells": [], "created": [], "error": None,
                          "knobs": buildreport.knob_values(buildreport.chapter_of(name), self.scale)})
        self.record["pages"] = pages
        self.finished = True
        self.save()

    def save(self) -> None:
        """Write the record: the pages executed so far (during the build), or every page (after :meth:`finish`)."""
        if not self.finished:
            self.record["pages"] = list(self.pages.values())
        buildreport.write_record(self.path, self.record)


def _cause(err: BaseException, timeout: float | None) -> str:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if isinstance(err, CellTimeoutError):
        return f"timed out after {timeout:g} s (execute.timeout in _config.yml)" if timeout else "timed out"
    if isinstance(err, DeadKernelError):
        return "the kernel died (out of memory, or killed)"
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    first = str(err).strip().splitlines()
    return f"{type(err).__name__}: {first[-1] if first else ''}"


def _exec_data(env: Any, docname: str) -> dict[str, Any] | None:
    try:
        from myst_nb.sphinx_ import NbMetadataCollector

        return NbMetadataCollector.get_exec_data(env, docname)
    except (ImportError, KeyError, AttributeError):
        return None


def _client_class() -> Any:
    import nbclient

    class Client(nbclient.NotebookClient):
        """nbclient's client that also shows each stream message's last line on the live line."""

        live: _Live | None = None

        def output(self, outs: Any, msg: Any, display_id: Any, cell_index: int) -> Any:
            if self.live is not None and msg.get("msg_type") == "stream":
                self.live.saw(msg.get("content", {}).get("text", ""))
            return super().output(outs, msg, display_id, cell_index)

    return Client


def _current_notebook() -> str | None:
    app = _APP
    if app is None or _LOG is None:
        return None
    try:
        docname = app.env.docname
        return Path(app.env.doc2path(docname)).relative_to(Path(app.srcdir)).as_posix()
    except (AttributeError, KeyError, ValueError):
        return None


_APP: Any = None


def execute_coalesced(nb: Any, cwd: str | None = None, km: Any = None, **kwargs: Any) -> Any:
    """``nbclient.execute`` with ``coalesce_streams=True`` unless the caller sets it, then drop blank streams; inside
    a book build, reported by the build's :class:`BuildLog`.

    A bar made with ``leave=False`` erases itself with spaces; once merged, that is a stream of whitespace only,
    which would render as an empty grey block, so such outputs are removed (in place, like ``nbclient.execute``).

    Explained in: the introduction (book/intro.md, "Running it").
    """
    kwargs.setdefault("coalesce_streams", True)
    resources = {"metadata": {"path": cwd}} if cwd is not None else {}
    client_class = _client_class()

    def run(hooks: dict[str, Any], live: _Live | None) -> Any:
        client = client_class(nb=nb, resources=resources, km=km, **{**kwargs, **hooks})
        client.live = live
        return client.execute()

    notebook = _current_notebook()
    if notebook is None or _LOG is None:
        run({}, None)
    else:
        _LOG.execute(notebook, nb, run)
    for cell in nb.cells:
        if cell.get("outputs"):
            cell.outputs = [
                out for out in cell.outputs if out.get("output_type") != "stream" or out.get("text", "").strip()
            ]
    return nb


def _is_notebook(app: Any, docname: str) -> bool:
    try:
        return str(app.env.doc2path(docname)).endswith(".ipynb")
    except Exception:
        return False


def _builder_inited(app: Any) -> None:
    global _LOG, _APP
    from hepnb.config import resolve_scale

    root = Path(app.srcdir)
    build = Path(app.outdir).parent
    try:
        timeout = buildreport.config_timeout(root)
    except Exception:
        timeout = None
    _APP = app
    _LOG = BuildLog(root, build, resolve_scale(), timeout)


def _before_read(app: Any, env: Any, docnames: list[str]) -> None:
    if _LOG is not None:
        _LOG.total = sum(_is_notebook(app, d) for d in docnames)
        if _LOG.total:
            _LOG.say(f"reading {len(docnames)} pages, {_LOG.total} of them notebooks (scale {_LOG.scale})")


def _doctree_read(app: Any, doctree: Any) -> None:
    """A notebook read without being executed came from the execution cache: say so."""
    notebook = _current_notebook()
    if _LOG is None or notebook is None or not notebook.endswith(".ipynb") or notebook in _LOG.pages:
        return
    data = _exec_data(app.env, app.env.docname)
    _LOG.cached(notebook, (data or {}).get("runtime"))


def _build_finished(app: Any, exception: Exception | None) -> None:
    if _LOG is not None:
        _LOG.finish(app.env)


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: route the book's notebook execution through :func:`execute_coalesced`, and report it.

    myst-nb (cache and force modes) executes through ``jupyter_cache.executors.utils.single_nb_execution``, which calls
    the module-level name ``executenb`` (nbclient's ``execute``). If a jupyter-cache release renames it, the build
    stops here with the reason rather than silently storing one output per refresh again.

    Explained in: the introduction (book/intro.md, "Running it").
    """
    import nbclient
    from jupyter_cache.executors import utils

    current = getattr(utils, "executenb", None)
    if current is not execute_coalesced:
        if current is not nbclient.execute:
            raise RuntimeError(
                "hepnb.progress: jupyter_cache.executors.utils.executenb is no longer nbclient.execute "
                f"(found {current!r}); the book build cannot merge progress-bar output. Check the jupyter-cache "
                "version installed with jupyter-book<2 and update hepnb/progress.py."
            )
        utils.executenb = execute_coalesced
    app.connect("builder-inited", _builder_inited)
    app.connect("env-before-read-docs", _before_read)
    app.connect("doctree-read", _doctree_read)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
