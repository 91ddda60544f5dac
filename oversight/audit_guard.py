"""Lifting the audit table's append-only triggers (migration 0004) for one transaction.

Only the test runner's flush uses it (oversight/management/commands/flush.py): a test
database must be emptied between transactional tests. It takes the table owner's rights,
as any DBA's bypass would; the hash chain, not the trigger, is what makes tampering
evident.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "oversight_auditrecord"


@contextmanager
def audit_guard_lifted(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Inside one transaction: the triggers off, the body, the triggers back exactly as
    they were. If the body fails, the rollback restores them too."""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses while this transaction's deferred FK checks are pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
            yield
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")
        elif connection.vendor == "sqlite":
            # SQLite cannot disable a trigger: drop it and re-create it from its own SQL.
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [TABLE],
            )
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            yield
            for _, sql in triggers:
                cursor.execute(sql)
        else:
            yield
