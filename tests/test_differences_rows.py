"""Every row of docs/differences.md marked "same" carries an id (`BA-...`, `DMHA-...` in its
Status cell) and is exercised by a test that names it with `@pytest.mark.difference(ID)`;
every id a test names is a row of the table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROW_ID = re.compile(r"`((?:BA|DMHA)-[a-z0-9-]+)`")


def table_rows() -> list[list[str]]:
    """The cells of every body row of the document's tables."""
    rows = []
    for line in (REPO / "docs" / "differences.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith(("| ---", "| Reference item")):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def marked_ids() -> dict[str, list[str]]:
    """Row id -> the tests (`path::name`) whose `pytest.mark.difference` decorator names it."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and ast.unparse(decorator.func) == "pytest.mark.difference"
                ):
                    for arg in decorator.args:
                        test = f"{path.relative_to(REPO)}::{node.name}"
                        found.setdefault(ast.literal_eval(arg), []).append(test)
    return found


def test_every_row_has_five_cells_and_every_same_row_an_id():
    rows = table_rows()
    assert len(rows) > 100
    assert [row[0] for row in rows if len(row) != 5] == []
    same = [row for row in rows if row[3].startswith("same")]
    assert [row[0] for row in same if not ROW_ID.search(row[3])] == []
    ids = [ROW_ID.search(row[3]).group(1) for row in same]
    assert len(ids) == len(set(ids)), "row ids must be unique"


def test_every_same_row_is_exercised_by_a_test_that_names_it():
    rows = table_rows()
    same_ids = {ROW_ID.search(row[3]).group(1) for row in rows if row[3].startswith("same")}
    all_ids = {match.group(1) for row in rows for match in [ROW_ID.search(row[3])] if match}
    marked = marked_ids()
    assert sorted(same_ids - set(marked)) == [], "same rows without a test naming them"
    assert sorted(set(marked) - all_ids) == [], "tests naming rows that do not exist"
