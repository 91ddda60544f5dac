"""Fixtures for the audit and user tests: the shared personas, and a DBA's way past the
audit table's triggers, to tamper with it as someone with the database's keys could."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection

from tests.personas import adam, alice, bob, client_for, make_user, rita

__all__ = ["adam", "alice", "as_dba", "bob", "client_for", "make_user", "on_pg", "only_pg", "rita"]

TABLE = "oversight_auditrecord"


def on_pg() -> bool:
    return connection.vendor == "postgresql"


# The vendor comes from settings alone: no connection is opened to decide.
only_pg = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only (set DATABASE_URL=postgres://...)"
)


@contextmanager
def as_dba() -> Iterator[Any]:
    """A cursor with the append-only triggers out of the way, as the table's owner could
    arrange: disabled on PostgreSQL, dropped (and re-created after) on SQLite."""
    with connection.cursor() as cursor:
        if on_pg():
            # ALTER TABLE refuses while this transaction's deferred FK checks are pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
            try:
                yield cursor
            finally:
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")
            return
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
            [TABLE],
        )
        triggers = cursor.fetchall()
        assert len(triggers) == 2, triggers  # the migration's UPDATE and DELETE guards
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield cursor
        finally:
            for _, sql in triggers:
                cursor.execute(sql)
