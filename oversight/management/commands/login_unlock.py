"""manage.py login_unlock USERNAME --reason TEXT: end the locks that failed logins put on a
name (oversight/login_throttle.py), for when no admin can log in to do it on the Users
page, or the name is a superuser's. Recorded in the audit trail as the system, with the
reason."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from oversight.audit import audit_record
from oversight.login_throttle import is_locked, locks_cleared
from oversight.management.ready import require_migrated
from oversight.reasons import reason_given


class Command(BaseCommand):
    help = "Unlock a login that failed logins locked (recorded in the audit trail)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="why: recorded with the unlock")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        name = options["username"]
        try:
            reason = reason_given(
                options["reason"], "say why; the unlock is recorded with its reason"
            )
        except ValidationError as e:
            raise CommandError(f"--reason: {e.messages[0]}") from None
        with transaction.atomic():
            if not is_locked(name):
                raise CommandError(f"{name!r} is not locked")
            user = get_user_model().objects.filter(username=name).first()
            audit_record(
                actor=None,
                action="user.login_unlock",
                obj=user,
                before={"username": name, "login_locks": locks_cleared(name)},
                after={"login_locks": []},
                reason=reason,
            )
        self.stdout.write(f"{name} is unlocked")
