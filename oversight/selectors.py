"""Reads for the audit and user pages (HackSoft style)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from oversight.models import AuditRecord
from oversight.roles import ROLES

User = get_user_model()


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page filters on; blank or None means any."""

    user: str = ""  # a username, or "system" / "anonymous" for records with no person
    # From a part's start: "order." finds every order action, "refused" every refusal
    # (user.role_grant.confirm.refused), "role_grant" every role grant's (a trial's
    # "refused" found nothing when it was a prefix only).
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None  # UTC, inclusive
    until: datetime | None = None  # UTC, inclusive

    def as_query(self) -> dict[str, str]:
        """The non-blank filters as the page's query string spells them."""
        values = {
            "user": self.user,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "since": _iso(self.since),
            "until": _iso(self.until),
        }
        return {k: v for k, v in values.items() if v}


def _iso(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") if at is not None else ""


def audit_records(*, filters: AuditFilters) -> QuerySet[AuditRecord]:
    """Matching records, newest first."""
    qs = AuditRecord.objects.all()
    f = filters
    if f.user:
        qs = qs.filter(
            Q(actor_username__iexact=f.user) | Q(actor__isnull=True, actor_role__iexact=f.user)
        )
    if f.action:
        qs = qs.filter(Q(action__startswith=f.action) | Q(action__contains="." + f.action))
    if f.object_type:
        qs = qs.filter(object_type__iexact=f.object_type)
    if f.object_id:
        qs = qs.filter(object_id=f.object_id)
    if f.since is not None:
        qs = qs.filter(at__gte=f.since)
    if f.until is not None:
        qs = qs.filter(at__lte=f.until)
    return qs.order_by("-seq")


def audit_filter_choices() -> dict[str, list[str]]:
    """Values the filter inputs suggest (datalists): known actions, object types, people."""
    return {
        # order_by(): the model's ordering (seq) would join the DISTINCT, one per record.
        "actions": sorted(
            AuditRecord.objects.order_by().values_list("action", flat=True).distinct()
        ),
        "object_types": sorted(
            AuditRecord.objects.exclude(object_type="")
            .order_by()
            .values_list("object_type", flat=True)
            .distinct()
        ),
        "users": [
            *User.objects.order_by("username").values_list("username", flat=True),
            "system",
            "anonymous",
        ],
    }


def audit_last_verification() -> AuditRecord | None:
    return AuditRecord.objects.filter(action="audit.verify").order_by("-seq").first()


def audit_head_seq() -> int:
    head = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    return head or 0


@dataclass(frozen=True)
class UserRow:
    user: Any
    role: str


def users_with_roles() -> list[UserRow]:
    """Every login with its role ("" for none), by username."""
    users = User.objects.order_by("username").prefetch_related("groups")
    rows = []
    for u in users:
        names = {g.name for g in u.groups.all()}
        rows.append(UserRow(user=u, role=next((r for r in ROLES if r in names), "")))
    return rows


def orders_open_of(user: Any) -> QuerySet[Any]:
    """The user's orders that can still trade: open, or blocked (an override or a kill's
    reset could release it). What a deactivation or a lost trader role leaves behind."""
    from execution.models import BLOCKED, ParentOrder
    from oversight.risk.pretrade import OPEN

    return ParentOrder.objects.filter(owner=user, status__in=[*OPEN, BLOCKED])
