"""What the main navigation says beside its links: how many role grants wait for the person
reading it (a trial: nothing told a second admin or risk manager that one was waiting)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone


def roles_waiting(request: HttpRequest) -> dict[str, Any]:
    """A callable, so the query runs only where the template shows the Roles link."""

    def count() -> int:
        from oversight.models import RoleGrant
        from oversight.services import ROLE_GRANT_TTL, may_confirm_roles

        user = getattr(request, "user", None)
        if not may_confirm_roles(user):
            return 0
        assert user is not None
        # Those this person may confirm: not their own asking, not their own login's.
        return (
            RoleGrant.objects.filter(
                status=RoleGrant.PENDING, requested_at__gte=timezone.now() - ROLE_GRANT_TTL
            )
            .exclude(requested_by=user)
            .exclude(user=user)
            .count()
        )

    return {"roles_waiting": count}
