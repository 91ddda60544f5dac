"""Every row lock the product takes is FOR NO KEY UPDATE (select_for_update(no_key=True)).

FOR UPDATE also blocks the KEY SHARE lock that PostgreSQL's foreign-key check takes on a
referenced row: a worker writing children and fills under an order a control had locked
waited for it, and two such waits could deadlock (tests/audit/test_desk_move_race.py
shows the wait). NO KEY UPDATE still keeps two lockers apart."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("execution", "oversight", "tca")


def full_row_locks(source: str) -> list[int]:
    """Lines of select_for_update calls without no_key=True."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "select_for_update"
            and not any(
                k.arg == "no_key" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
        ):
            found.append(node.lineno)
    return found


def test_the_check_finds_a_full_row_lock() -> None:
    assert full_row_locks("Order.objects.select_for_update().get(pk=1)") == [1]
    assert full_row_locks("q.select_for_update(of=('self',), no_key=False)") == [1]
    assert full_row_locks("q.select_for_update(no_key=True, of=('self',))") == []


def test_every_row_lock_leaves_foreign_key_checks_alone() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for line in full_row_locks(path.read_text("utf-8"))
    ]
    assert not offenders, f"select_for_update without no_key=True at {', '.join(offenders)}"
