"""Paper-vs-ours claims tables: one row per claim of a paper, our number with its standard error, and a verdict.

Every chapter ends with such a table (explained first in ``book/data/resimulation.ipynb``, then in
``book/adversarial/adversarial.ipynb``). A row is built by :func:`claim` from the measured difference, its error and
the sign the paper reports; the verdict itself is :func:`hepnb.evaluation.stats.verdict`, so the rule is written
once, and :func:`verdict_legend` words that rule for the text under a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hepnb.evaluation.stats import verdict
from hepnb.evaluation.tables import Table, format_pm

__all__ = ["CLAIM_COLUMNS", "claim", "claims_table", "verdict_legend"]

CLAIM_COLUMNS: tuple[str, ...] = ("claim", "paper", "ours", "reproduced")


def claim(text: str, paper: float | str, diff: float, err: float, expected_sign: int, digits: int = 4,
          paper_digits: int = 3, z: float = 2.0) -> dict[str, str]:
    """One row of a claims table.

    ``text``: the claim, worded as what is measured; ``paper``: the paper's number (a float, printed signed with
    ``paper_digits`` decimals) or a description (``"< 0 (Fig. 3)"``); ``diff`` ± ``err``: our measurement (printed
    with ``digits`` decimals); ``expected_sign``: +1 or -1, the sign the paper reports. The ``reproduced`` column is
    ``verdict(diff, err, expected_sign, z)``. A NaN error (one seed) gives "not significant".
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1; got {expected_sign!r}")
    shown = paper if isinstance(paper, str) else f"{float(paper):+.{paper_digits}f}"
    return {"claim": text, "paper": shown, "ours": format_pm(diff, err, digits),
            "reproduced": verdict(diff, err, expected_sign, z)}


def claims_table(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    """The rows of :func:`claim` as a :class:`~hepnb.evaluation.tables.Table` with the standard columns."""
    return Table(rows, columns=CLAIM_COLUMNS, title=title)


def verdict_legend(z: float = 2.0, error: str = "standard errors") -> str:
    """The verdict rule in words (Markdown), for the text under a claims table."""
    return (f'"yes": our number has the paper\'s sign by more than {z:g} {error}; "no (opposite)": it has the '
            f'other sign by as much; "not significant": neither (without an error, e.g. from one seed, every '
            f'verdict is "not significant").')
