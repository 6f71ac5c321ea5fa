"""The rules a newcomer relies on: a chapter's key is one word in config.CHAPTERS, book/<key>/ and
hepnb/studies/<key>.py; every module says which chapter explains it; papers are named by their authors; no hepnb
module shadows the standard library."""

import ast
import re
import sys

import pytest

from hepnb.config import CHAPTERS, repo_root
from hepnb.toc import notebooks

ROOT = repo_root()
PAGES_WITHOUT_A_FOLDER = {"getting_started"}  # the conventions page: book/getting_started.ipynb, no study module
MODULES = sorted((ROOT / "hepnb").rglob("*.py"))


@pytest.mark.parametrize("key", sorted(set(CHAPTERS) - PAGES_WITHOUT_A_FOLDER))
def test_a_chapter_key_names_its_book_folder_and_its_study(key):
    folder = ROOT / "book" / key
    assert folder.is_dir(), f"config.CHAPTERS has {key!r} but there is no book/{key}/"
    assert any(p.parent == folder for p in (ROOT / nb for nb in notebooks(ROOT))), f"no notebook of book/{key}/ in _toc.yml"
    assert (ROOT / "hepnb" / "studies" / f"{key}.py").is_file(), f"no hepnb/studies/{key}.py for chapter {key!r}"


def test_every_study_and_book_folder_has_a_chapter_key():
    studies = {p.stem for p in (ROOT / "hepnb" / "studies").glob("*.py")} - {"__init__"}
    folders = {p.name for p in (ROOT / "book").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert studies <= set(CHAPTERS), f"study modules without a chapter key: {studies - set(CHAPTERS)}"
    assert folders <= set(CHAPTERS), f"book folders without a chapter key: {folders - set(CHAPTERS)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_names_the_page_that_explains_it(path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert re.search(r"book/\S+\.(ipynb|md)|README", doc), f"{path.relative_to(ROOT)}: its docstring names no chapter"


def test_no_module_shadows_the_standard_library():
    clashes = [str(p.relative_to(ROOT)) for p in MODULES if p.stem in sys.stdlib_module_names]
    assert not clashes, f"hepnb modules named like standard-library modules: {clashes}"


def test_papers_are_named_by_their_authors_not_by_file_numbers():
    files = [p for p in (*MODULES, *(ROOT / "book").rglob("*")) if p.suffix in (".py", ".ipynb", ".md")]
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in files
                 for m in re.finditer(r"[Pp]apers? 00\d", p.read_text())]
    assert not offenders, "name papers by their authors with {cite}:\n" + "\n".join(offenders)
