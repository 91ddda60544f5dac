"""One verification of the audit trail, by a person (the audit page) or on a schedule
(the Celery beat task `oversight.audit_check_scheduled`): the hash chain, then the last
head filed outside the database (oversight/audit_anchor.py). Recorded as `audit.verify`;
a good one files its head; a bad one found on the schedule is raised on the risk console
as a critical (a trial: a broken chain was seen only by whoever pressed Verify)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oversight.audit import audit_record
from oversight.audit_anchor import anchor_problem, file_head
from oversight.audit_chain import ChainReport, audit_chain_verify

# The triggers that make the table append-only (migration 0004), by database.
GUARD_TRIGGERS = {
    "postgresql": ("oversight_auditrecord_append_only", "oversight_auditrecord_no_truncate"),
    "sqlite": ("oversight_auditrecord_no_update", "oversight_auditrecord_no_delete"),
}


def guard_problem() -> str:
    """What is wrong with the database's guard on the trail ("" if nothing): a trigger
    dropped or disabled. The chain still verified with them gone, and said nothing (a
    trial dropped one): records could then be changed, and only a filed head would show it."""
    from django.db import connection

    from oversight.models import AuditRecord

    wanted = GUARD_TRIGGERS.get(connection.vendor)
    if wanted is None:
        return ""
    table = AuditRecord._meta.db_table
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND NOT tgisinternal AND tgenabled <> 'D'",
                [table],
            )
        else:
            cur.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [table],
            )
        present = {row[0] for row in cur.fetchall()}
    gone = [t for t in wanted if t not in present]
    if not gone:
        return ""
    return (
        f"the database no longer guards them: trigger {', '.join(gone)} is missing or "
        "disabled, so records can be changed or deleted; restore it (`manage.py migrate "
        "oversight 0003` then `migrate`, or the SQL in migration 0004) and find out who "
        "removed it"
    )


@dataclass(frozen=True)
class AuditCheck:
    report: ChainReport
    filed_problem: str  # the chain links up, but does not hold the last head filed
    filed: str  # where this check's head was filed ('' if it was not)
    guard_problem: str = ""  # the chain links up, but the table is no longer append-only

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.filed_problem and not self.guard_problem

    @property
    def problem(self) -> str:
        if self.filed_problem or self.guard_problem:
            said = "; and ".join(p for p in (self.filed_problem, self.guard_problem) if p)
            return f"the records link up, but {said}"
        return "" if self.report.ok else self.report.summary()


def audit_check(*, actor: Any = None, request_id: str = "", alert: bool = False) -> AuditCheck:
    """Verify, record the verification (by `actor`, or the system), file the head if all
    is well; with `alert`, raise a failure on the risk console."""
    report = audit_chain_verify()
    filed_problem = anchor_problem() if report.ok else ""
    check = AuditCheck(report, filed_problem, "", guard_problem())
    audit_record(
        actor=actor,
        action="audit.verify",
        after={
            "ok": check.ok,
            "records": report.count,
            "head": report.head,
            "bad_seq": report.bad_seq,
            "bad_id": report.bad_id,
            "problem": report.problem or check.problem,
            **({"scheduled": True} if actor is None else {}),
        },
        request_id=request_id,
    )
    chain_holds = report.ok and not filed_problem
    if chain_holds:
        # Filed even when the guard is gone: the head is what shows a later rewrite.
        check = AuditCheck(report, "", file_head(report.count, report.head), check.guard_problem)
    if check.ok:
        return check
    if alert:
        from oversight.risk.models import RiskException
        from oversight.risk.services import exception_raise

        exception_raise(
            kind="AUDIT_BROKEN",
            severity=RiskException.CRITICAL,
            scope_type="firm",
            title=(
                "The audit trail is no longer append-only"
                if chain_holds
                else "The audit trail does not verify"
            ),
            detail=check.problem,
            suggested_action=(
                "call the admins: compare with the heads filed outside the database; "
                "nothing in the trail after the break is to be trusted until explained"
            ),
            dedupe_key="audit-broken",
        )
    return check
