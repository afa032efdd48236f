"""docs/differences.md cites balr's code by file and name, and every cited name exists there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "differences.md"
#: a balr file in backticks, then the names that follow it: `src/balr/x.py` `f`, `C.m`
CITATION = re.compile(r"`(src/balr/[\w/]+\.py)`((?:(?:,| )\s*`[A-Za-z_][\w.]*`)*)")


def defined_names(path: Path) -> set[str]:
    """Functions, classes, methods (`Class.method` or bare) and module-level assigned names."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            methods = [item.name for item in node.body if isinstance(item, ast.FunctionDef)]
            names.update(methods)
            names.update(f"{node.name}.{method}" for method in methods)
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_balr_citations_have_no_line_numbers():
    stale = re.findall(r"`src/balr/[^`]*:\d[^`]*`", DOC.read_text())
    assert stale == [], "cite balr by file and function/class name, not line numbers"


def test_cited_balr_files_and_names_exist():
    missing = []
    for match in CITATION.finditer(DOC.read_text()):
        path = REPO_ROOT / match.group(1)
        if not path.is_file():
            missing.append(match.group(1))
            continue
        names = re.findall(r"`([A-Za-z_][\w.]*)`", match.group(2))
        missing += [f"{match.group(1)} {n}" for n in names if n not in defined_names(path)]
    assert missing == []
