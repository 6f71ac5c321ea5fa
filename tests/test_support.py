"""Small shared pieces: the toc reader, tables, the environment report."""

import pytest

from hepnb.environment import report, versions
from hepnb.evaluation.tables import Table
from hepnb.toc import notebooks, pages


def test_toc_reads_pages_in_order(tmp_path):
    (tmp_path / "book").mkdir()
    for name in ("intro.md", "a.ipynb", "b.md"):
        (tmp_path / "book" / name).write_text("{}")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: X\n    chapters:\n      - file: book/a\n"
        "        sections:\n          - file: book/b\n")
    assert [p.as_posix() for p in pages(tmp_path)] == ["book/intro.md", "book/a.ipynb", "book/b.md"]
    assert [p.as_posix() for p in notebooks(tmp_path)] == ["book/a.ipynb"]


def test_toc_entry_without_file_is_an_error(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/missing\n")
    with pytest.raises(FileNotFoundError, match="book/missing"):
        pages(tmp_path)


def test_table_keeps_order_formats_and_escapes():
    table = Table([{"b": 1.23456789, "a": "<x>"}, {"a": "y"}], title="t")
    assert table.columns == ["b", "a"]
    html = table._repr_html_()
    assert "&lt;x&gt;" in html and "<caption>t</caption>" in html and "1.235" in html
    lines = str(table).splitlines()
    assert lines[0] == "t" and lines[1].split() == ["b", "a"] and lines[3].split() == ["1.235", "<x>"]


def test_versions_and_report():
    assert versions(("torch", "surely-not-a-package")) ["surely-not-a-package"] == "not installed"
    info = report("cpu")
    assert info["device"] == "cpu" and info["hepnb"] != "not installed"
