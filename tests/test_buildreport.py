"""The build's timing record (hepnb.buildreport): the timeout check names the cell, a knob change marks the chapter
for re-measurement, the estimate uses measured rates, and a foreign file is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hepnb import buildreport
from hepnb.config import CHAPTERS
from hepnb.errors import ConfigError


def _page(notebook: str, cells: list[float], cached: bool = False, **extra: object) -> dict:
    return {"notebook": notebook, "seconds": sum(cells) + 5.0, "cached": cached, "error": None, "created": [],
            "cells": [{"cell": i, "label": f"step_{i}()", "seconds": s} for i, s in enumerate(cells, start=1)],
            "knobs": buildreport.knob_values(buildreport.chapter_of(notebook), "book"), **extra}


def _record(pages: list[dict], data: list[dict] | None = None) -> dict:
    record = buildreport.new_record("book")
    record["pages"], record["data"] = pages, data or []
    return record


def test_chapter_of_maps_pages_to_their_knobs() -> None:
    assert buildreport.chapter_of("book/adversarial/adversarial.ipynb") == "adversarial"
    assert buildreport.chapter_of("book/getting_started.ipynb") == "getting_started"
    assert buildreport.chapter_of("book/notachapter/page.ipynb") is None
    assert buildreport.knob_values("symmetry", "book") == {k: v.book for k, v in CHAPTERS["symmetry"].items()}


def test_cell_label_is_the_first_line_of_code() -> None:
    assert buildreport.cell_label("# train every model\n\ngrid = study.train_grid(splits)\nx = 1") == (
        "grid = study.train_grid(splits)")
    assert buildreport.cell_label("# only a comment") == "(comments only)"
    assert len(buildreport.cell_label("y = " + "a" * 200, width=30)) == 30


def test_timeout_problems_name_the_cell_that_does_not_fit() -> None:
    record = _record([_page("book/data/resimulation.ipynb", [10.0, 400.0]),
                      _page("book/adversarial/adversarial.ipynb", [30.0, 700.0, 20.0])])
    assert buildreport.timeout_problems(record, timeout=1400) == []
    (problem,) = buildreport.timeout_problems(record, timeout=1399)
    assert problem.startswith("book/adversarial/adversarial.ipynb, code cell 2 (`step_2()`): 700 s")
    assert ">= 1400 s" in problem and "1399 s" in problem
    assert len(buildreport.timeout_problems(record, timeout=700)) == 2


def test_a_changed_knob_marks_its_chapter_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    record = _record([_page("book/adversarial/adversarial.ipynb", [1.0]), _page("book/symmetry/symmetry.ipynb", [1.0])])
    assert buildreport.stale_pages(record) == []
    record["pages"][0]["knobs"]["epochs"] += 1
    (message,) = buildreport.stale_pages(record)
    assert message.startswith("book/adversarial/adversarial.ipynb: the adversarial chapter's book-scale knobs")
    now = CHAPTERS["adversarial"]["epochs"].book
    assert f"epochs {now + 1!r} -> {now!r}" in message


def test_estimate_uses_the_measured_rates(tmp_path: Path) -> None:
    data = [{"generator": "resim", "class": "hbb", "seed": 0, "n": 10_000, "seconds": 150.0, "workers": 2,
             "reused": 0, "cached": False},
            {"generator": "resim", "class": "qcd", "seed": 0, "n": 10_000, "seconds": 250.0, "workers": 2,
             "reused": 0, "cached": False},
            {"generator": "dimuon", "class": "z", "seed": 0, "n": 20_000, "seconds": 1.0, "workers": 2,
             "reused": 3, "cached": False}]  # resumed: not a rate
    page = _page("book/adversarial/adversarial.ipynb", [60.0, 540.0], created=["checkpoints/a/1.pt",
                                                                                  "checkpoints/a/2.pt"])
    record = _record([page], data)
    assert buildreport.data_rates(record) == pytest.approx({"resim": 400.0 * 2 / 20_000})
    (tmp_path / "checkpoints" / "a").mkdir(parents=True)
    (tmp_path / "checkpoints" / "a" / "1.pt").write_bytes(b"")
    files = [{"generator": "resim", "class": "wqq", "seed": 0, "n": 10_000, "have": 0},
             {"generator": "resim", "class": "hbb", "seed": 0, "n": 10_000, "have": 10_000}]
    pages = ["book/getting_started.ipynb", "book/adversarial/adversarial.ipynb"]
    lines = buildreport.estimate(record, files, pages, ["book/getting_started.ipynb"], workers=2, data_dir=tmp_path)
    assert lines[0] == "data: 1 of 2 files cached; 1 to generate on 2 workers"
    assert "wqq" in lines[1] and "~3.3 min" in lines[1]  # 10,000 x 0.04 core-s / 2 workers = 200 s
    assert "trains 1 of its 2 models (1 cached)" in lines[-2] and "~10.1 min" in lines[-2]
    assert lines[-1].startswith("estimated total: ~13.4 min")
    unknown = buildreport.estimate(None, files, pages, [], workers=2)
    assert unknown[-1].startswith("estimated total:") and "unmeasured" in unknown[-1]


def test_merge_keeps_what_a_warm_build_did_not_measure() -> None:
    old = _record([_page("book/data/resimulation.ipynb", [5.0]), _page("book/symmetry/symmetry.ipynb", [50.0])],
                  [{"generator": "dimuon", "class": "z", "seed": 0, "n": 10, "seconds": 9.0, "workers": 2}])
    new = _record([_page("book/data/resimulation.ipynb", [7.0]),
                   {**_page("book/symmetry/symmetry.ipynb", []), "cached": True}],
                  [{"generator": "dimuon", "class": "z", "seed": 0, "n": 10, "seconds": 0, "cached": True}])
    merged = buildreport.merge_record(old, new)
    assert [p["cells"][0]["seconds"] for p in merged["pages"]] == [7.0, 50.0]
    assert merged["data"] == old["data"]


def test_report_ends_with_the_failure_and_warns_of_slow_cells() -> None:
    failed = _page("book/rs3l/rs3l.ipynb", [3.0, 2.0])
    failed["error"] = {"cell": 2, "label": "step_2()", "cause": "timed out after 1200 s"}
    lines = buildreport.report(_record([_page("book/symmetry/symmetry.ipynb", [900.0]), failed]), timeout=1200)
    assert any(line.startswith("WARNING book/symmetry/symmetry.ipynb, code cell 1") for line in lines)
    assert lines[-1] == "FAILED book/rs3l/rs3l.ipynb, code cell 2 (`step_2()`): timed out after 1200 s"


def test_a_foreign_or_missing_record_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no timing record"):
        buildreport.read_record(tmp_path / "timings.json")
    assert buildreport.read_record(tmp_path / "timings.json", missing_ok=True) is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pages": []}))
    with pytest.raises(ConfigError, match="bad.json: not a hepnb timing record"):
        buildreport.read_record(bad)
    bad.write_text("{half")
    with pytest.raises(ConfigError, match="bad.json: not a readable timing record"):
        buildreport.read_record(bad)
    path = buildreport.write_record(tmp_path / "ok.json", _record([]))
    assert buildreport.read_record(path)["pages"] == [] and not list(tmp_path.glob(".ok.json.tmp*"))


def test_config_timeout_reads_the_book_config(tmp_path: Path) -> None:
    (tmp_path / "_config.yml").write_text("execute:\n  timeout: 1800\n")
    assert buildreport.config_timeout(tmp_path) == 1800
    (tmp_path / "_config.yml").write_text("execute:\n  timeout: -1\n")
    with pytest.raises(ConfigError, match="execute.timeout"):
        buildreport.config_timeout(tmp_path)
