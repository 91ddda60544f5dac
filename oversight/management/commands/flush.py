"""Django's flush, which the database refuses for the append-only audit table, except when
the test runner empties a test database between transactional tests."""

from __future__ import annotations

from typing import Any

from django.core import mail
from django.core.management.commands import flush
from django.db import connections

from oversight.audit_guard import audit_guard_lifted


def _test_runner_active() -> bool:
    # setup_test_environment() (Django's runner and pytest-django alike) installs the
    # documented dummy email outbox; it exists nowhere else.
    return hasattr(mail, "outbox")


class Command(flush.Command):
    help = (
        flush.Command.help + " Outside the test runner the audit trail's triggers refuse it: "
        "the audit trail is append-only."
    )

    def handle(self, **options: Any) -> None:
        if not _test_runner_active():
            super().handle(**options)
            return
        with audit_guard_lifted(connections[options["database"]]):
            super().handle(**options)
