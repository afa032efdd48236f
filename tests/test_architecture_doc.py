"""docs/architecture.md names every module and package under src/balr/ (and nothing that is
gone), and every source file and function keeps to the size limits unless the doc lists it."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "balr"
DOC = REPO_ROOT / "docs" / "architecture.md"
INDEX_HEADING = "## Where things are: every module"
#: paths the index may name that are not modules: the doc's own prose, the shipped data
NOT_MODULES = ("src/", "tests/", "defaults/", "ge2e/")
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60


def _index_section() -> str:
    """The module index of the doc: from its heading to the next `## ` heading."""
    text = DOC.read_text(encoding="utf-8")
    assert INDEX_HEADING in text, f"{DOC}: no '{INDEX_HEADING}' section"
    section = text.split(INDEX_HEADING, 1)[1]
    return section.split("\n## ", 1)[0]


def _modules_on_disk() -> set[str]:
    """`mod.py`, `pkg/mod.py` and `pkg/` (a package: a folder with an __init__.py, or
    `resources/`) for every module under src/balr, relative to it."""
    found = {"resources/"}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" and path.parent != PACKAGE:
            found.add(f"{path.parent.relative_to(PACKAGE).as_posix()}/")
        else:
            found.add(relative)
    return found


def _modules_named(section: str) -> set[str]:
    """The module paths written in backticks at the start of a list item or after a comma."""
    return set(re.findall(r"`([a-z_0-9/]+(?:\.py|/))`", section))


def test_every_module_is_named_in_the_architecture_doc():
    named = _modules_named(_index_section())
    on_disk = _modules_on_disk()
    assert sorted(on_disk - named) == [], "modules missing from docs/architecture.md"
    # a path named there that is not a module under src/balr (a removed or moved module)
    stale = {name for name in named - on_disk if not name.startswith(NOT_MODULES)}
    assert sorted(stale) == [], "docs/architecture.md names modules that do not exist"


def test_the_doc_parser_sees_a_missing_module():
    """The check above can fail: a module absent from the doc is reported."""
    section = _index_section().replace("`calibration/split.py`", "`calibration/spilt.py`")
    named = _modules_named(section)
    assert "calibration/split.py" in _modules_on_disk() - named


def _oversized() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            found.append(relative)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    found.append(f"{relative}:{node.name}")
    return found


def test_files_and_functions_keep_to_the_size_limits_or_say_why():
    """A file over 450 lines or a function over 60 is listed in the doc's module index, as
    `path` or `path:function`, with its reason."""
    section = _index_section()
    unexplained = [name for name in _oversized() if f"`{name}`" not in section]
    assert unexplained == [], "over the size limits and not explained in docs/architecture.md"
