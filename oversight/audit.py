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
) -> AuditRecord:
    """Append one record. actor None means the system (a worker)."""
    return AuditRecord.objects.create(
        at=timezone.now(),
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_role=role_of(actor) if actor is not None else "system",
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or ""),
        before=before,
        after=after,
        reason=reason,
        request_id=request_id,
    )
