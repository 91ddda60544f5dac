"""Writing the audit trail: every action by a person or by the system, with before/after."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from oversight.models import AuditRecord
from oversight.roles import role_of


def audit_record(
    *,
    actor: Any | None,
    action: str,
    obj: Any | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    request_id: str = "",
    role: str | None = None,
) -> AuditRecord:
    """Append one record. actor None means the system (a worker)."""
    return AuditRecord.objects.create(
        at=timezone.now(),
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_role=role
        if role is not None
        else (role_of(actor) if actor is not None else "system"),
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or ""),
        before=before,
        after=after,
        reason=reason,
        request_id=request_id,
    )


def _request_id(request: Any) -> str:
    return (request.headers.get("X-Request-Id", "") if request is not None else "")[:64]


def on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    audit_record(actor=user, action="auth.login", obj=user, request_id=_request_id(request))


def on_logout(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is not None:
        audit_record(actor=user, action="auth.logout", obj=user, request_id=_request_id(request))


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    # Never the password: only the name that was tried.
    audit_record(
        actor=None,
        role="anonymous",
        action="auth.login_failed",
        after={"username": str(credentials.get("username", ""))[:150]},
        request_id=_request_id(request),
    )
