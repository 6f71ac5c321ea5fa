"""Progress bars in the built book: live in Jupyter, one final line on the page.

hepnb shows plain text ``tqdm`` bars (the training loop, the generators). In Jupyter each refresh rewrites the same
line. A book build stores what the kernel sent instead, and the kernel sends its output in messages about 0.2 s
apart, so the executor stored every refresh as an output of its own and a cold build showed one grey block per
refresh. This Sphinx extension, listed under ``sphinx: extra_extensions`` in ``_config.yml``, turns on nbclient's
own ``coalesce_streams`` option for the book's executor (myst-nb does not expose it). A cell's stdout and stderr are
then merged into one stream each and its carriage returns applied, so a bar keeps only its final line, e.g.
``epochs: 100%|██████████| 5/5 [00:03<00:00, 1.6it/s]``. Nothing changes inside the kernel, so bars stay live in
Jupyter, and ``tests/test_book_build.py`` builds a small book and counts the lines that remain.

Explained in: the introduction (book/intro.md, "Running it").
"""

from __future__ import annotations

from typing import Any

__all__ = ["execute_coalesced", "setup"]


def execute_coalesced(nb: Any, cwd: str | None = None, km: Any = None, **kwargs: Any) -> Any:
    """``nbclient.execute`` with ``coalesce_streams=True`` unless the caller sets it, then drop blank streams.

    A bar made with ``leave=False`` erases itself with spaces; once merged, that is a stream of whitespace only,
    which would render as an empty grey block, so such outputs are removed (in place, like ``nbclient.execute``).

    Explained in: the introduction (book/intro.md, "Running it").
    """
    import nbclient

    kwargs.setdefault("coalesce_streams", True)
    nb = nbclient.execute(nb, cwd=cwd, km=km, **kwargs)
    for cell in nb.cells:
        if cell.get("outputs"):
            cell.outputs = [
                out for out in cell.outputs if out.get("output_type") != "stream" or out.get("text", "").strip()
            ]
    return nb


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: route the book's notebook execution through :func:`execute_coalesced`.

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
    return {"parallel_read_safe": True, "parallel_write_safe": True}
