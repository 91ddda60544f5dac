"""Whether the database is set up for a command that reads it: a command run on a new
database answered with Django's traceback ("no such table: auth_user"), not with what to
do (a trial)."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import Error as DatabaseError


def require_migrated(alias: str = DEFAULT_DB_ALIAS) -> None:
    """CommandError naming what to run when the database is unreachable or has migrations
    not yet applied."""
    connection = connections[alias]
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor == "sqlite" and name and ":memory:" not in name:
        from pathlib import Path

        if not name.startswith("file:") and not Path(name).exists():
            # Not created by asking: opening it made an empty file, which the next
            # command then took for a database (a trial).
            raise CommandError(
                f"the database {name} does not exist yet: run `manage.py migrate`, or "
                "`python3 scripts/dev.py run` once, first"
            )
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        raise CommandError(f"the database cannot be read: {exc}".strip()) from None
    if plan:
        raise CommandError(
            f"the database is not set up ({len(plan)} migration"
            f"{'' if len(plan) == 1 else 's'} not applied): run `manage.py migrate`, or "
            "`python3 scripts/dev.py run` once, first"
        )
