"""Celery tasks of the oversight side, run by Celery beat: the audit trail's scheduled
verification, the lapse of requests nobody decided in time, and the watch on the market
workers' heartbeats."""

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


@shared_task(name="oversight.workers_watch_scheduled")
def workers_watch_scheduled() -> list[int]:
    """Every few seconds, from the oversight worker: market workers that stopped sending
    heartbeats are declared dead, their orders suspended (or cancelled, under a halt), and
    raised. The market workers reap one another, so with every one of them hung nobody
    did, and a kill switch engaged then was neither applied nor said to be waiting (a
    trial)."""
    from execution.worker import HEARTBEAT_STALE_S, sessions_reap

    return sessions_reap(stale_after_s=HEARTBEAT_STALE_S)
