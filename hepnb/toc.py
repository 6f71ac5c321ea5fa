"""The book's table of contents as a list of pages; used by ``make paper`` and the notebook tests.

``python -m hepnb.toc`` prints every notebook listed in ``_toc.yml`` (one path per line, relative to the repository
root); ``--all`` prints the Markdown pages too. Explained in ``README.md`` (running at paper scale).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hepnb.config import repo_root

SUFFIXES = (".ipynb", ".md")


def _files(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                yield node[key]
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                yield from _files(child)
    elif isinstance(node, list):
        for child in node:
            yield from _files(child)


def pages(root: Path | None = None) -> list[Path]:
    """Every page named in ``<root>/_toc.yml``, in book order, as paths relative to ``root``.

    A toc entry with no file behind it raises ``FileNotFoundError`` naming the entry.
    """
    root = Path(root) if root is not None else repo_root()
    if root is None:
        raise FileNotFoundError("not inside a hepnb checkout: no _toc.yml to read")
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = []
    for entry in _files(toc):
        entry_path = Path(entry)
        candidates = [entry_path] if entry_path.suffix in SUFFIXES else [entry_path.with_suffix(s) for s in SUFFIXES]
        for candidate in candidates:
            if (root / candidate).is_file():
                found.append(candidate)
                break
        else:
            raise FileNotFoundError(f"_toc.yml lists {entry!r} but no {' or '.join(map(str, candidates))} exists")
    return found


def notebooks(root: Path | None = None) -> list[Path]:
    """The ``.ipynb`` pages of :func:`pages`."""
    return [page for page in pages(root) if page.suffix == ".ipynb"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hepnb.toc", description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="list Markdown pages too")
    args = parser.parse_args(argv)
    for page in pages() if args.all else notebooks():
        print(page.as_posix())


if __name__ == "__main__":
    main()
