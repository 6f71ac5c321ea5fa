"""The built book reads offline, a progress bar renders as its final line, and the build reports its progress.

Builds a two-page book in a temporary folder with the repository's own ``_config.yml``: a Markdown page with inline
and display math, and a notebook whose cells run tqdm loops (one of ~3 s that refreshes ~60 times, one with
``leave=False``). Then it reads the HTML as a browser without network would: nothing may be loaded from another host,
the MathJax script the pages load must be inside the build, and each bar must leave exactly one line. The build's
terminal output must have a start, live and end line for the notebook, and its timing record every cell's seconds.
A second small book with a notebook that raises must end its report with the notebook, the cell and the cause.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from hepnb.config import repo_root

ROOT = repo_root()
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
N_STEPS = 50

MATH_PAGE = """# Math offline

Inline $E^2 = p^2 + m^2$ and a display:

$$
\\Delta R = \\sqrt{\\Delta y^2 + \\Delta\\phi^2}
$$

Near a minimum the loss is quadratic,
$$\\mathcal L(w+\\epsilon)\\approx\\mathcal L(w)+\\tfrac12\\,\\epsilon^{\\mathsf T}\\mathcal H\\,\\epsilon ,$$
so its eigenvalues are curvatures.
"""

TOC = """format: jb-book
root: book/intro
chapters:
  - file: book/progress
"""

# Each tag that makes a browser fetch something, with the attribute holding the address.
FETCHING = re.compile(r"<(script|link|img|iframe|source|embed)\b[^>]*?\b(src|href)=[\"']([^\"']+)[\"']", re.I)
REMOTE = re.compile(r"^(https?:)?//", re.I)
CSS_REMOTE = re.compile(r"(url\(\s*[\"']?|@import\s+[\"'])(https?:)?//", re.I)
BAR_LINE = re.compile(r"\d+%\|")


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Progress\n\nMath in a notebook too: $p_T > 0$."),
        # mininterval=0.05: about 60 refreshes, each one an output of its own without the merge in hepnb.progress
        nbformat.v4.new_code_cell(
            "import time\nfrom tqdm import tqdm\n\n"
            f"for _ in tqdm(range({N_STEPS}), desc='steps', delay=0.5, mininterval=0.05):\n    time.sleep(0.06)"
        ),
        nbformat.v4.new_code_cell(
            "for _ in tqdm(range(20), desc='inner', leave=False, mininterval=0.05):\n    time.sleep(0.03)\n"
            "print('inner loop done')"
        ),
    ]
    return nb


def _build(src: Path, notebooks: dict[str, nbformat.NotebookNode]) -> subprocess.CompletedProcess:
    """Build a book of ``book/intro.md`` and ``notebooks`` (name -> notebook) in ``src`` as `make book` does."""
    (src / "book").mkdir()
    shutil.copy(ROOT / "_config.yml", src / "_config.yml")
    shutil.copy(ROOT / "book" / "references.bib", src / "book" / "references.bib")
    (src / "_toc.yml").write_text(TOC.split("chapters:")[0] + "chapters:\n"
                                  + "".join(f"  - file: book/{name}\n" for name in notebooks))
    (src / "book" / "intro.md").write_text(MATH_PAGE)
    for name, nb in notebooks.items():
        nbformat.write(nb, src / "book" / f"{name}.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # the venv's python3 kernel, as `make book`
    env["HEPNB_PROGRESS_INTERVAL"] = "0.9"  # a live line every 0.9 s (first after 0.3 s) instead of every minute
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(src), "--builder", "html", "--warningiserror", "--keep-going"],
        env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The small book built with the repository's _config.yml: its folder and the build's terminal output."""
    src = tmp_path_factory.mktemp("small_book")
    done = _build(src, {"progress": _notebook()})
    assert done.returncode == 0, f"jupyter-book build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return src, done.stdout + done.stderr


@pytest.fixture(scope="module")
def html(built: tuple[Path, str]) -> Path:
    """The small book's _build/html folder."""
    return built[0] / "_build" / "html"


def _pages(html: Path) -> list[Path]:
    pages = sorted(html.rglob("*.html"))
    assert html / "book" / "intro.html" in pages and html / "book" / "progress.html" in pages
    return pages


def test_no_page_loads_anything_from_the_network(html: Path) -> None:
    remote = [
        f"{page.relative_to(html)}: <{tag} {attr}={url}>"
        for page in _pages(html)
        for tag, attr, url in FETCHING.findall(page.read_text())
        if REMOTE.match(url) and not (tag.lower() == "link" and "canonical" in url)
    ]
    remote += [
        f"{css.relative_to(html)}: {m.group(0)}"
        for css in html.rglob("*.css")
        for m in CSS_REMOTE.finditer(css.read_text(errors="replace"))
    ]
    assert remote == [], "pages fetch from the internet:\n" + "\n".join(remote)


def test_math_is_marked_up_for_mathjax(html: Path) -> None:
    text = (html / "book" / "intro.html").read_text()
    inline = re.findall(r'<span class="math notranslate nohighlight">', text)
    display = re.findall(r'<div class="math notranslate nohighlight">', text)
    # the $$...$$ inside a paragraph is display math too (myst_dmath_double_inline), not stray dollars
    assert (len(inline), len(display)) == (1, 2)
    assert "$" not in re.sub(r"<script.*?</script>", "", text, flags=re.S)


def test_mathjax_is_served_from_the_build(html: Path) -> None:
    for name in ("book/intro.html", "book/progress.html"):
        page = html / name
        text = page.read_text()
        assert 'class="math' in text, f"{name}: no math to typeset, the test page is wrong"
        scripts = [url for tag, _, url in FETCHING.findall(text) if tag.lower() == "script" and "mathjax" in url.lower()]
        assert len(scripts) == 1, f"{name}: expected one MathJax script, found {scripts}"
        script = (page.parent / scripts[0].split("?")[0]).resolve()
        assert script.is_file() and script.is_relative_to(html.resolve()), f"{name}: {scripts[0]} is not in the build"
        assert script.stat().st_size > 100_000, f"{script} is too small to be MathJax"
        fonts = script.parent / "output" / "chtml" / "fonts" / "woff-v2"
        assert len(list(fonts.glob("*.woff"))) > 10, f"the MathJax fonts are not in the build ({fonts})"


def test_each_progress_bar_renders_as_its_final_line(html: Path) -> None:
    text = (html / "book" / "progress.html").read_text()
    bars = [line for line in text.splitlines() if BAR_LINE.search(line)]
    assert len(bars) == 1, f"expected one progress line, found {len(bars)}:\n" + "\n".join(bars[:10])
    assert f"100%|██████████| {N_STEPS}/{N_STEPS}" in bars[0]
    # the leave=False bar erases itself: no empty output block remains, the cell's print does
    outputs = re.findall(r'<div class="output (?:stream|stderr)[^"]*"><div class="highlight"><pre><span></span>(.*?)</pre>',
                         text, re.S)
    assert [o.strip() != "" for o in outputs] == [True, True], outputs
    assert any("inner loop done" in o for o in outputs)


def test_the_build_prints_a_start_live_and_end_line_per_notebook(built: tuple[Path, str]) -> None:
    out = built[1]
    assert "[1/1] book/progress.ipynb: running 2 code cells" in out
    live = [line for line in out.splitlines() if line.startswith("  progress.ipynb: code cell 1/2 `import time`")]
    assert live, "no live line while the ~3 s cell ran:\n" + out[-3000:]
    assert any("| steps:" in line and "%|" in line for line in live), live  # the cell's bar, as it was then
    assert re.search(r"book/progress\.ipynb: done in \d+ s \(2 code cells; longest: code cell 1, \d+ s\)", out)


def test_the_timing_record_has_every_code_cell(built: tuple[Path, str]) -> None:
    from hepnb import buildreport

    record = buildreport.read_record(built[0] / "_build" / "timings.json")
    (page,) = record["pages"]
    assert page["notebook"] == "book/progress.ipynb" and not page["cached"] and page["error"] is None
    assert [c["cell"] for c in page["cells"]] == [1, 2]
    first, second = (c["seconds"] for c in page["cells"])
    assert 0.06 * N_STEPS <= first < 60 and second >= 20 * 0.03  # the cells sleep that long
    assert first + second <= page["seconds"]


def test_a_failing_notebook_is_named_with_its_cell_and_cause_at_the_end(tmp_path: Path) -> None:
    nb = _notebook()
    nb.cells[2:] = [nbformat.v4.new_code_cell("# the cause comes next\nraise ValueError('no jets left after the cut')"),
                    nbformat.v4.new_code_cell("print('never runs')")]
    done = _build(tmp_path, {"broken": nb})
    assert done.returncode != 0
    report = subprocess.run([sys.executable, "-m", "hepnb", "report", "--build", str(tmp_path / "_build")],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 1
    last = report.stdout.strip().splitlines()[-1]
    assert last == ("FAILED book/broken.ipynb, code cell 2 (`raise ValueError('no jets left after the cut')`): "
                    "ValueError: no jets left after the cut"), report.stdout
    # the build's own output says it as the notebook ends, before Sphinx's traceback
    assert "FAILED book/broken.ipynb, code cell 2" in done.stdout + done.stderr
