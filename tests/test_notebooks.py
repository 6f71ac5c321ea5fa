"""Structure of every notebook in _toc.yml: one literal parameters cell, no outputs, python3 kernel, no helpers."""

import ast
import json
from pathlib import Path

import pytest

from hepnb.config import repo_root
from hepnb.toc import notebooks, pages

ROOT = repo_root()
NOTEBOOKS = notebooks(ROOT)
REQUIRED_PARAMETERS = {"scale", "device"}  # `make paper` passes -p scale paper -p device cuda to every notebook


def _load(path):
    return json.loads((ROOT / path).read_text())


def _code(cell):
    return "".join(cell["source"])


def _python(source):
    """Cell source as Python, with IPython magics and shell escapes blanked out."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def test_toc_lists_notebooks():
    assert Path("book/getting_started.ipynb") in NOTEBOOKS


def test_every_page_in_book_is_in_the_toc():
    listed = set(pages(ROOT))
    on_disk = {p.relative_to(ROOT) for p in (ROOT / "book").rglob("*")
               if p.suffix in (".ipynb", ".md") and ".ipynb_checkpoints" not in p.parts}
    assert on_disk - listed == set(), "pages not in _toc.yml are neither rendered nor run at paper scale"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=str)
def test_kernel_is_python3(path):
    assert _load(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=str)
def test_no_stored_outputs(path):
    for cell in _load(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path}: a code cell has stored outputs"
            assert cell.get("execution_count") is None, f"{path}: a code cell has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=str)
def test_one_literal_parameters_cell(path):
    cells = _load(path)["cells"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path}: {len(tagged)} cells tagged 'parameters'"
    cell = cells[tagged[0]]
    assert cell["cell_type"] == "code"
    names = set()
    for statement in _python(_code(cell)).body:
        assert isinstance(statement, ast.Assign), f"{path}: parameters cell may only assign values"
        assert len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)
        ast.literal_eval(statement.value)  # raises for anything computed
        names.add(statement.targets[0].id)
    assert REQUIRED_PARAMETERS <= names, f"{path}: parameters cell lacks {REQUIRED_PARAMETERS - names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=str)
def test_parameters_go_straight_to_resolve(path):
    """The first code cell after the parameters calls hepnb.resolve(scale, ...), so -p overrides take effect."""
    cells = _load(path)["cells"]
    start = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    following = next(c for c in cells[start + 1:] if c["cell_type"] == "code")
    calls = [n for n in ast.walk(_python(_code(following))) if isinstance(n, ast.Call)]
    resolving = [c for c in calls if getattr(c.func, "attr", getattr(c.func, "id", None)) == "resolve"]
    assert resolving, f"{path}: the cell after the parameters does not call hepnb.resolve"
    first = resolving[0].args[0] if resolving[0].args else None
    assert isinstance(first, ast.Name) and first.id == "scale", f"{path}: resolve() must receive `scale` first"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=str)
def test_notebooks_define_no_functions(path):
    """Single source of code: algorithms live in hepnb and are shown with literalinclude / inspect.getsource."""
    for cell in _load(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(_python(_code(cell))):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), (
                f"{path}: defines {getattr(node, 'name', 'a lambda')} in the notebook; put it in hepnb")


def test_every_toc_notebook_is_collected_by_nbval():
    """`make test` must run every chapter: a norecursedirs pattern like "data" once silently skipped book/data/."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--nbval-lax", "book"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    collected = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    missing = {str(p) for p in NOTEBOOKS} - collected
    assert not missing, f"notebooks in _toc.yml that pytest does not collect: {sorted(missing)}\n{done.stdout[-2000:]}"


def test_literalincludes_name_existing_objects():
    """A `literalinclude` with `:pyobject:` must find its object (else only `make book -W` notices)."""
    import re

    pattern = re.compile(r"```\{literalinclude\}\s+(\S+)\s*\n:pyobject:\s*(\S+)")
    checked = 0
    for page in NOTEBOOKS:
        cells = _load(page)["cells"]
        for cell in cells:
            if cell["cell_type"] != "markdown":
                continue
            for target, obj in pattern.findall("".join(cell["source"])):
                tree = ast.parse((ROOT / page).parent.joinpath(target).resolve().read_text())
                scope = tree.body
                for name in obj.split("."):
                    found = [n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                             and n.name == name]
                    assert found, f"{page}: {target} has no {obj}"
                    scope = found[0].body
                checked += 1
    assert checked >= 3
