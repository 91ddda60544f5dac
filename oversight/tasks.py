"""Celery tasks of the oversight side: the audit trail's scheduled verification."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="oversight.audit_check_scheduled")
def audit_check_scheduled() -> str:
    """Run by Celery beat (settings.CELERY_BEAT_SCHEDULE): a broken trail is raised on the
    risk console, not left for someone to find by pressing Verify."""
    from oversight.audit_check import audit_check

    check = audit_check(alert=True)
    return "ok" if check.ok else f"broken: {check.problem}"
