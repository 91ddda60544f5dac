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


@dataclass(frozen=True)
class AuditCheck:
    report: ChainReport
    filed_problem: str  # the chain links up, but does not hold the last head filed
    filed: str  # where this check's head was filed ('' if it was not)

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.filed_problem

    @property
    def problem(self) -> str:
        if self.filed_problem:
            return f"the records link up, but {self.filed_problem}"
        return "" if self.report.ok else self.report.summary()


def audit_check(*, actor: Any = None, request_id: str = "", alert: bool = False) -> AuditCheck:
    """Verify, record the verification (by `actor`, or the system), file the head if all
    is well; with `alert`, raise a failure on the risk console."""
    report = audit_chain_verify()
    filed_problem = anchor_problem() if report.ok else ""
    check = AuditCheck(report, filed_problem, "")
    audit_record(
        actor=actor,
        action="audit.verify",
        after={
            "ok": check.ok,
            "records": report.count,
            "head": report.head,
            "bad_seq": report.bad_seq,
            "bad_id": report.bad_id,
            "problem": report.problem or filed_problem,
            **({"scheduled": True} if actor is None else {}),
        },
        request_id=request_id,
    )
    if check.ok:
        return AuditCheck(report, "", file_head(report.count, report.head))
    if alert:
        from oversight.risk.models import RiskException
        from oversight.risk.services import exception_raise

        exception_raise(
            kind="AUDIT_BROKEN",
            severity=RiskException.CRITICAL,
            scope_type="firm",
            title="The audit trail does not verify",
            detail=check.problem,
            suggested_action=(
                "call the admins: compare with the heads filed outside the database; "
                "nothing in the trail after the break is to be trusted until explained"
            ),
            dedupe_key="audit-broken",
        )
    return check
