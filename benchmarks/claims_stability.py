"""Do a chapter's paper-vs-ours verdicts survive a change of seed?

Executes every notebook of one chapter with papermill at two *disjoint* seed bases (base ``b`` trains seeds
``b, b+1, ..., b+n-1`` and generates its data with seed ``b``: new data and new initialisations, nothing else
changed), reads the verdicts of every claims table from the executed notebooks (:mod:`hepnb.evaluation.stability`)
and prints the fraction of claims whose verdicts reach the same decision, with the rows that differ. Cached data
and checkpoints are reused wherever the settings match, so a second call costs only what changed.

Run: ``.venv/bin/python benchmarks/claims_stability.py --chapter adversarial [--scale book] [--bases 0 100]
[--out runs/stability] [-p name value ...]``, or ``make stability CHAPTER=adversarial``. ``--compare A.ipynb
B.ipynb`` compares two notebooks executed before, without running anything. Target at book scale: >= 90% of
the adversarial chapter's verdicts agree. Always exits 0 unless the arguments or the notebooks are wrong (a benchmark
reports; it does not fail), and prints ``BELOW TARGET`` under the target. Explained in
``book/adversarial/adversarial.ipynb``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from hepnb.config import CHAPTERS, SCALES, repo_root
from hepnb.errors import ConfigError
from hepnb.evaluation.stability import claims_from_notebook, compare

TARGET = 0.9


def chapter_notebooks(chapter: str, root: Path) -> list[Path]:
    """The chapter's notebooks (``book/<chapter>/*.ipynb``); a clear error for an unknown chapter."""
    if chapter not in CHAPTERS or chapter == "getting_started":
        raise ConfigError(f"unknown chapter {chapter!r}; chapters with claims: "
                          f"{', '.join(k for k in CHAPTERS if k != 'getting_started')}")
    found = sorted((root / "book" / chapter).glob("*.ipynb"))
    if not found:
        raise ConfigError(f"chapter {chapter!r} has no notebook under {root / 'book' / chapter}")
    return found


def seeds_of(chapter: str, scale: str, params: dict[str, Any]) -> int:
    """How many consecutive seeds one base uses (the chapter's ``seeds`` or ``ensembles`` knob, or 1)."""
    for name in ("seeds", "ensembles"):
        if name in params:
            return int(params[name])
        knob = CHAPTERS[chapter].get(name)
        if knob is not None:
            return int(knob.at(scale))
    return 1


def execute(notebook: Path, out: Path, scale: str, base: int, params: dict[str, Any]) -> float:
    """Run ``notebook`` with papermill into ``out`` at ``scale`` and seed base ``base``; the seconds it took."""
    import papermill

    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(str(notebook), str(out), parameters={"scale": scale, "seed": base, **params},
                               cwd=str(notebook.parent), progress_bar=False)
    return time.perf_counter() - start


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", help="chapter key (config.CHAPTERS), e.g. adversarial or data")
    parser.add_argument("--scale", default="book", choices=SCALES)
    parser.add_argument("--bases", type=int, nargs=2, default=(0, 100), metavar=("A", "B"),
                        help="the two seed bases (default 0 100)")
    parser.add_argument("--out", default="runs/stability", help="folder for the executed notebooks")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="another notebook parameter, as papermill's -p")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two executed notebooks only")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare(*(claims_from_notebook(p) for p in args.compare)))
        return
    if not args.chapter:
        parser.error("--chapter is required (or --compare A B)")
    root = repo_root()
    params = {k: _value(v) for k, v in args.param}
    for reserved in ("scale", "seed"):
        if reserved in params:
            parser.error(f"-p {reserved} is set by the script (--scale, --bases)")
    notebooks = chapter_notebooks(args.chapter, root)
    a, b = args.bases
    n = seeds_of(args.chapter, args.scale, params)
    if a == b or not (a + n <= b or b + n <= a):
        parser.error(f"seed bases {a} and {b} overlap: each uses {n} consecutive seeds")
    os.environ.setdefault("JUPYTER_PATH", str(Path(sys.prefix) / "share" / "jupyter"))  # the venv's kernel first
    rows: dict[int, list[dict[str, Any]]] = {a: [], b: []}
    for base in (a, b):
        for nb in notebooks:
            out = root / args.out / args.scale / f"base{base}" / nb.name
            print(f"== {nb.relative_to(root)} at scale {args.scale!r}, seed base {base} ({n} seeds) -> "
                  f"{out.relative_to(root)}", flush=True)
            seconds = execute(nb, out, args.scale, base, params)
            print(f"   {seconds:.0f} s", flush=True)
            rows[base] += claims_from_notebook(out, required=False)  # a page without claims adds none
    if not rows[a]:
        raise ConfigError(f"chapter {args.chapter!r} has no claims table in {len(notebooks)} notebook(s)")
    agreement = compare(rows[a], rows[b])
    print(agreement)
    print(f"agreement at scale {args.scale!r}, seed bases {a} and {b}: {agreement.fraction:.2f} "
          f"(target >= {TARGET:.2f}){'  BELOW TARGET' if agreement.fraction < TARGET else ''}; "
          f"contradictions: {agreement.contradictions}")


if __name__ == "__main__":
    main()
