"""Celery tasks of the oversight side, run by Celery beat: the audit trail's scheduled
verification, and the lapse of requests nobody decided in time."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="oversight.audit_check_scheduled")
def audit_check_scheduled() -> str:
    """Run by Celery beat (settings.CELERY_BEAT_SCHEDULE): a broken trail is raised on the
    risk console, not left for someone to find by pressing Verify."""
    from oversight.audit_check import audit_check

    check = audit_check(alert=True)
    return "ok" if check.ok else f"broken: {check.problem}"


@shared_task(name="oversight.requests_expire_scheduled")
def requests_expire_scheduled() -> dict[str, int]:
    """Every minute: what has waited too long lapses, each audited as its own kind."""
    from execution.services import blocked_expire
    from oversight.risk.services import limit_requests_expire
    from oversight.services import role_grants_expire

    return {
        "role_grants": role_grants_expire(),
        "limit_requests": limit_requests_expire(),
        "blocked_orders": blocked_expire(),
    }
