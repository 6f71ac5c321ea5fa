"""How notebooks are run: papermill overrides reach resolve(), nbval sees $HEPNB_SCALE, and a failing cell
fails the book build with this repository's _config.yml."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from hepnb.config import repo_root

ROOT = repo_root()
PROBE = Path(__file__).parent / "fixtures" / "scale_probe.ipynb"
BIN = Path(sys.executable).parent


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "HEPNB_SCALE"}
    env.update(extra)
    return env


def _stdout(nb):
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")


def test_papermill_parameters_reach_resolve(tmp_path):
    out = tmp_path / "out.ipynb"
    subprocess.run([BIN / "papermill", PROBE, out, "-p", "scale", "paper", "-p", "device", "cpu", "--cwd", tmp_path],
                   check=True, capture_output=True, env=_env(HEPNB_SCALE="smoke"))
    nb = nbformat.read(out, 4)
    assert _stdout(nb).strip() == "paper cpu"  # -p scale wins over $HEPNB_SCALE
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "scale = \"paper\"" in injected[0].source


@pytest.mark.parametrize("scale, passes", [("smoke", True), ("book", False)])
def test_nbval_runs_at_the_scale_of_the_environment(tmp_path, scale, passes):
    """The probe's stored output says 'smoke cpu'; nbval checks it, so only HEPNB_SCALE=smoke passes."""
    shutil.copy(PROBE, tmp_path / "probe.ipynb")
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p",
                          "no:cacheprovider", "-c", os.devnull, "--rootdir", tmp_path, tmp_path / "probe.ipynb"],
                         capture_output=True, text=True, cwd=tmp_path, env=_env(HEPNB_SCALE=scale))
    assert (run.returncode == 0) is passes, run.stdout[-2000:]
    if not passes:
        assert "book" in run.stdout  # failed because the kernel saw the other scale, not for another reason


def _mini_book(tmp_path, source):
    """A one-notebook book using this repository's _config.yml verbatim."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book" / "references.bib")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Page"), nbformat.v4.new_code_cell(source)],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nbformat.write(nb, tmp_path / "book" / "page.ipynb")
    # files the book must ignore: caches (pytest writes .pytest_cache/README.md) and pages outside the toc
    (tmp_path / ".pytest_cache").mkdir()
    (tmp_path / ".pytest_cache" / "README.md").write_text("# pytest cache\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "README.md").write_text("# data\n")
    (tmp_path / "README.md").write_text("# repo readme\n")
    return subprocess.run([BIN / "jupyter-book", "build", tmp_path, "--builder", "html", "--warningiserror",
                           "--keep-going"], capture_output=True, text=True, env=_env())


def test_book_build_succeeds_for_a_good_notebook(tmp_path):
    run = _mini_book(tmp_path, "print(6 * 7)")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "42" in (tmp_path / "_build" / "html" / "book" / "page.html").read_text()


def test_book_build_fails_on_a_raising_cell(tmp_path):
    run = _mini_book(tmp_path, "raise RuntimeError('deliberate failure')")
    assert run.returncode != 0
    assert "deliberate failure" in run.stdout + run.stderr
