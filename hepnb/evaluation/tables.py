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


_SORT_SCRIPT = """<script>(function () {
  var t = document.getElementById("%s");
  if (!t || t.dataset.sortable) { return; }
  t.dataset.sortable = "1";
  Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
    th.style.cursor = "pointer";
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows), up = th.dataset.dir !== "up";
      Array.prototype.forEach.call(t.tHead.rows[0].cells, function (h) { delete h.dataset.dir; });
      th.dataset.dir = up ? "up" : "down";
      rows.sort(function (a, b) {
        var x = a.cells[i].dataset.sort, y = b.cells[i].dataset.sort, nx = parseFloat(x), ny = parseFloat(y);
        var d = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return up ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();</script>"""


class SortableTable(Table):
    """A :class:`Table` whose HTML sorts by any column on a click of its header (a few lines of inline script; in
    a terminal it is a plain table). ``sort_keys``: per row, the numbers a column sorts by (a mean, where the cell
    shows "mean ± error"); a column without one sorts by its text. Explained in ``book/benchmark/benchmark.ipynb``.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], sort_keys: Sequence[Mapping[str, float]] | None = None,
                 columns: Sequence[str] | None = None, title: str | None = None, precision: int = 4):
        super().__init__(rows, columns, title, precision)
        keys = [dict(k) for k in (sort_keys or [{} for _ in self.rows])]
        if len(keys) != len(self.rows):
            raise ValueError(f"sort_keys has {len(keys)} entries for {len(self.rows)} rows")
        self.sort_keys = keys

    def _repr_html_(self) -> str:
        import hashlib

        ident = "hepnb-sortable-" + hashlib.sha256(repr((self.title, self.columns, self.cells())).encode()
                                                   ).hexdigest()[:12]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = []
        for row, cells, keys in zip(self.rows, self.cells(), self.sort_keys):
            tds = []
            for c, text in zip(self.columns, cells):
                key = keys.get(c, text)
                tds.append(f'<td data-sort="{html.escape(str(key), quote=True)}">{html.escape(text)}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return (f'<div style="overflow-x: auto; font-size: 0.8em; white-space: nowrap">'
                f'<table class="hepnb-table hepnb-sortable" id="{ident}">{caption}<thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table></div>' + _SORT_SCRIPT % ident)
