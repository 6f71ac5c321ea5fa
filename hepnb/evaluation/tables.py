"""Tables built from computed values, shown as HTML in the book and as text in a terminal.

Every results table of the book (paper-vs-ours comparisons included) goes through :class:`Table`, so numbers are
never typed into a page by hand. Explained in ``book/getting_started.ipynb``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any


def format_value(value: Any, precision: int = 4) -> str:
    """Floats to ``precision`` significant digits; everything else via ``str``."""
    if isinstance(value, float):
        return f"{value:.{precision}g}"
    return str(value)


class Table:
    """Rows of dicts with a fixed column order; ``_repr_html_`` for notebooks, ``str`` for terminals."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 title: str | None = None, precision: int = 4):
        if columns is None:
            columns = list(dict.fromkeys(key for row in rows for key in row))
        self.rows = [dict(row) for row in rows]
        self.columns = list(columns)
        self.title = title
        self.precision = precision

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], key: str = "item", value: str = "value",
                     title: str | None = None) -> Table:
        """A two-column table from a mapping."""
        return cls([{key: k, value: v} for k, v in mapping.items()], [key, value], title=title)

    def cells(self) -> list[list[str]]:
        return [[format_value(row.get(c, ""), self.precision) for c in self.columns] for row in self.rows]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in self.cells())
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f'<table class="hepnb-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def __str__(self) -> str:
        cells = self.cells()
        widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
        return "\n".join(([self.title] if self.title else []) + lines)

    __repr__ = __str__


def format_pm(value: float, error: float, digits: int = 2, signed: bool = True) -> str:
    """``"+1.23 ± 0.04"``: a value and its uncertainty at ``digits`` decimals, for results tables."""
    sign = "+" if signed else ""
    return f"{value:{sign}.{digits}f} ± {error:.{digits}f}"
