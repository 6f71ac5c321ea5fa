"""Paper-vs-ours claims tables: one row per claim of a paper, our number with its error and interval, and a verdict.

Every chapter ends with such a table (explained first in ``book/data/resimulation.ipynb``, then in
``book/adversarial/adversarial.ipynb``). A row is built by :func:`claim` from a measured
:class:`~hepnb.evaluation.stats.Estimate` and the sign the paper reports; the verdict itself is
:func:`hepnb.evaluation.stats.verdict`, so the rule is written once. :func:`claims_table` prints the rule, its
confidence and the sample size under the table (from the rows themselves), and carries the verdicts as output
metadata, so that :mod:`hepnb.evaluation.stability` can read them back from an executed notebook.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hepnb.evaluation.stats import CONFIDENCE, MAX_SEEDS, POWER, Estimate, Verdict, t_critical, verdict
from hepnb.evaluation.tables import Table, format_pm

__all__ = ["CLAIM_COLUMNS", "METADATA_KEY", "claim", "statement", "claims_table", "ClaimsTable", "verdict_legend",
           "undecided"]

CLAIM_COLUMNS: tuple[str, ...] = ("claim", "paper", "ours", "interval", "reproduced")
METADATA_KEY = "hepnb-claims"  # output metadata of a displayed claims table: its title and rows


def claim(text: str, paper: float | str, estimate: Estimate, expected_sign: int, digits: int = 4,
          paper_digits: int = 3, key: str | None = None, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """One row of a claims table.

    ``text``: the claim, worded as what is measured; ``paper``: the paper's number (a float, printed signed with
    ``paper_digits`` decimals) or a description (``"< 0 (Fig. 3)"``); ``estimate``: our measurement (printed as
    mean ± standard error and as its ``confidence`` interval, ``digits`` decimals); ``expected_sign``: +1 or -1,
    the sign the paper reports. ``key`` names the claim across runs (default ``text``; give one where the text
    holds a measured word). The ``reproduced`` column is ``verdict(estimate, expected_sign, confidence)``.
    """
    result = verdict(estimate, expected_sign, confidence)
    shown = paper if isinstance(paper, str) else f"{float(paper):+.{paper_digits}f}"
    lo, hi = estimate.interval(confidence)
    interval = "-" if lo != lo else f"[{lo:+.{digits}f}, {hi:+.{digits}f}]"
    return {**statement(text, shown, format_pm(*estimate, digits), result, key, interval),
            "n": estimate.n, "design": estimate.design, "sample": estimate.sample}


def statement(text: str, paper: str, ours: str, result: Verdict | str, key: str | None = None,
              interval: str = "-") -> dict[str, Any]:
    """A claims-table row whose measurement is not one estimate (a combination of several, a distance with its
    noise level): the wording of ``ours`` and the verdict are the caller's (a :class:`Verdict` or an outcome such
    as ``"yes"`` / ``"no"``)."""
    outcome = result.outcome if isinstance(result, Verdict) else str(result)
    needed = result.needed if isinstance(result, Verdict) else None
    return {"claim": text, "paper": paper, "ours": ours, "interval": interval, "reproduced": str(result),
            "key": key or text, "outcome": outcome, "needed": needed}


def verdict_legend(rows: Sequence[Mapping[str, Any]] = (), confidence: float = CONFIDENCE) -> str:
    """The verdict rule in words (Markdown) with its confidence, sample sizes and critical values, as the rows of a
    claims table used it: printed under every claims table."""
    pct = f"{100 * confidence:g}%"
    parts = []
    seeds = sorted({int(r["n"]) for r in rows if r.get("sample") == "seeds"})
    events = sorted({int(r["n"]) for r in rows if r.get("sample") == "hard events"})
    designs = {r.get("design") for r in rows}
    welch = "; Welch's degrees of freedom for independent trainings" if "independent" in designs else ""
    paired = (" for paired differences, whose two sides share seed, split and data" if "paired" in designs
              else "")
    for n in seeds:
        crit = t_critical(n - 1, confidence) if n > 1 else float("inf")
        parts.append(f"two-sided {pct} Student-t intervals over n = {n} seeds" + (
            f" (critical value {crit:.2f} at n−1 = {n - 1} degrees of freedom{paired}{welch})"
            if n > 1 else " (one seed: no error, no verdict)"))
    for n in events:
        parts.append(f"two-sided {pct} normal intervals from a paired bootstrap over n = {n:,} hard events "
                     f"(critical value {t_critical(float('inf'), confidence):.2f})")
    head = ("Verdicts (`hepnb.evaluation.stats.verdict`): " + "; ".join(parts) + ". ") if parts else ""
    unit = "seeds" if seeds or not events else "hard events"
    limit = f"{MAX_SEEDS} seeds" if unit == "seeds" else "100 times the events"
    return (f'{head}"yes": the {pct} interval lies on the paper\'s side of zero; "no (opposite)": it lies on the '
            f'other side; "undecided (needs ≥N {unit})": it covers zero, and N {unit} would decide a true effect of '
            f'the measured size with {100 * POWER:g}% probability (non-central t); "not significant": it covers '
            f'zero and even {limit} would not decide it; with one seed there is no verdict.')


class ClaimsTable(Table):
    """A claims table: the rows of :func:`claim` under :data:`CLAIM_COLUMNS`, the rule printed beneath
    (:func:`verdict_legend`), and the verdicts in the output metadata under :data:`METADATA_KEY`."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], title: str, confidence: float = CONFIDENCE):
        super().__init__(rows, columns=CLAIM_COLUMNS, title=title)
        self.legend = verdict_legend(rows, confidence)

    def _repr_html_(self) -> str:
        return super()._repr_html_() + f'<p class="hepnb-legend"><small>{_html_legend(self.legend)}</small></p>'

    def __str__(self) -> str:
        return super().__str__() + "\n" + self.legend

    __repr__ = __str__

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, str], dict[str, Any]]:
        keep = ("key", "claim", "outcome", "needed", "reproduced", "ours")
        meta = {"title": self.title, "rows": [{k: row.get(k) for k in keep} for row in self.rows]}
        return {"text/html": self._repr_html_(), "text/plain": str(self)}, {METADATA_KEY: meta}


def _html_legend(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def claims_table(rows: Sequence[Mapping[str, Any]], title: str, confidence: float = CONFIDENCE) -> ClaimsTable:
    """The rows of :func:`claim` as a :class:`ClaimsTable` (standard columns, the rule printed under it)."""
    return ClaimsTable(rows, title, confidence)


def undecided(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The claims a larger run would decide: ``{"claim", "needs"}`` for every undecided row, fewest first."""
    out = [{"claim": r["claim"], "needs": int(r["needed"])} for r in rows if r.get("outcome") == "undecided"]
    return sorted(out, key=lambda r: r["needs"])
