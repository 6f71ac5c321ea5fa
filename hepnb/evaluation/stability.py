"""Do a chapter's verdicts survive a change of seed? Read the claims tables of two executed notebooks and count the
claims whose verdicts agree.

Used by ``benchmarks/claims_stability.py`` (which executes a chapter at two disjoint seed bases with papermill) and
explained in ``book/adversarial/adversarial.ipynb``. Two verdicts *agree* when they reach the same decision: both
"yes", both "no (opposite)", both "no", or both open ("undecided" and "not significant" are the same decision,
that the run could not tell; the sample size an undecided claim needs is itself a noisy plug-in number).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hepnb.errors import HepnbError
from hepnb.evaluation.claims import METADATA_KEY

__all__ = ["decision", "claims_from_notebook", "Agreement", "compare"]

_DECISIONS = {"yes": "yes", "opposite": "opposite", "no": "no", "undecided": "open", "not significant": "open",
              "none": "none"}


def decision(outcome: str) -> str:
    """The decision a verdict's outcome stands for: ``"yes"``, ``"opposite"``, ``"no"``, ``"open"`` or
    ``"none"``."""
    try:
        return _DECISIONS[outcome]
    except KeyError:
        raise ValueError(f"unknown verdict outcome {outcome!r}; known: {sorted(_DECISIONS)}") from None


def claims_from_notebook(path: str | os.PathLike[str], required: bool = True) -> list[dict[str, Any]]:
    """Every claim row of every claims table displayed in an executed notebook (``key``, ``claim``, ``outcome``,
    ``reproduced`` ...), in order. Raises :class:`~hepnb.errors.HepnbError` naming the file if it is not a
    notebook, or if it holds no claims table and ``required`` (not executed, or executed before claims tables
    carried their verdicts); a chapter page without claims gives ``[]`` with ``required=False``."""
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HepnbError(f"{path}: not a readable notebook ({err})") from None
    rows = []
    for cell in cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get(METADATA_KEY)
            if meta:
                rows += meta["rows"]
    if not rows and required:
        raise HepnbError(f"{path}: no claims table in its outputs (was it executed?)")
    keys = [r["key"] for r in rows]
    if len(set(keys)) != len(keys):
        raise HepnbError(f"{path}: claim keys repeat: {sorted({k for k in keys if keys.count(k) > 1})}")
    return rows


@dataclass
class Agreement:
    """The claims two runs share, how many reach the same decision, and those that do not."""

    n: int
    agreeing: int
    disagreeing: list[dict[str, str]] = field(default_factory=list)
    only_one: list[str] = field(default_factory=list)
    contradictions: int = 0  # decided both times, and differently ("yes" in one run, "no (opposite)" in the other)

    @property
    def fraction(self) -> float:
        return self.agreeing / self.n if self.n else float("nan")

    def __str__(self) -> str:
        lines = [f"verdicts that agree: {self.agreeing} of {self.n} claims ({100 * self.fraction:.0f}%); "
                 f"contradictions (decided both times, differently): {self.contradictions}"]
        lines += [f"  differs: {d['claim']}: {d['a']}  |  {d['b']}" for d in self.disagreeing]
        lines += [f"  in one run only: {k}" for k in self.only_one]
        return "\n".join(lines)


def compare(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> Agreement:
    """Match the claim rows of two runs by ``key`` and compare their :func:`decision`; a disagreement between two
    decided verdicts is also counted as a contradiction (an open verdict against a decided one is not)."""
    by_a, by_b = {r["key"]: r for r in a}, {r["key"]: r for r in b}
    shared = [k for k in by_a if k in by_b]
    out = Agreement(len(shared), 0, only_one=[k for k in by_a if k not in by_b] + [k for k in by_b if k not in by_a])
    for k in shared:
        da, db = decision(by_a[k]["outcome"]), decision(by_b[k]["outcome"])
        if da == db:
            out.agreeing += 1
        else:
            out.contradictions += "open" not in (da, db) and "none" not in (da, db)
            out.disagreeing.append({"claim": by_a[k].get("claim", k), "a": by_a[k]["reproduced"],
                                    "b": by_b[k]["reproduced"]})
    return out
