"""The restricted list: services and selectors (docs/CONTROLS.md, "Restricted list").

Putting an instrument on the list is a tightening and takes one risk manager, at once;
taking it off is a loosening and takes two, as a kill switch's reset does. The list is
what the pre-trade check reads (`Instrument.restricted`, kept in step here, in the same
transaction); every change is audited with its reason.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from oversight.audit import audit_record, four_eyes_refusals_audited
from oversight.reasons import reason_given
from oversight.risk import notify
from oversight.risk.models import Restriction
from oversight.risk.services import _require_risk_manager
from oversight.roles import (
    MANAGE_RISK,
    FourEyesRefused,
    asked_already,
    request_unchanged,
    second_eyes_problem,
    set_aside_as,
)

# An order that is not finished: its instrument's restriction does not stop it (an
# instrument kill switch does), and the page says how many there are.
_LIVE = ("NEW", "WORKING", "PAUSED", "PENDING_CANCEL", "SUSPENDED", "BLOCKED")


def restriction_json(r: Restriction) -> dict[str, Any]:
    return {
        "id": r.pk,
        "symbol": r.instrument.symbol,
        "active": r.active,
        "reason": r.reason,
        "added_by": r.added_by.get_username(),
        "lift_requested_by": r.lift_requested_by.get_username() if r.lift_requested_by else None,
        "lift_reason": r.lift_reason,
        "lifted_by": r.lifted_by.get_username() if r.lifted_by else None,
    }


def working_orders_on(instrument: Any) -> int:
    from execution.models import ParentOrder

    return ParentOrder.objects.filter(instrument=instrument, status__in=_LIVE).count()


def _record(
    user: Any, r: Restriction, action: str, event: str, before: dict[str, Any], reason: str
) -> None:
    """Audit one step of a restriction, and announce it on the console once it commits."""
    audit_record(
        actor=user, action=action, obj=r, before=before, after=restriction_json(r), reason=reason
    )
    payload = {"event": event, "by": user.get_username(), "restriction": restriction_json(r)}
    transaction.on_commit(lambda: notify.console_send("restriction", payload))


def restrict(*, user: Any, symbol: str, reason: str) -> Restriction:
    """Put an instrument on the restricted list: new orders on it are refused from now."""
    from execution.models import Instrument

    _require_risk_manager(user, "restrict an instrument")
    symbol = (symbol or "").strip().upper()
    if not symbol:
        raise ValidationError({"instrument": "choose an instrument"})
    reason = reason_given(reason, "say why (it goes to the audit trail)")
    with transaction.atomic():
        inst = Instrument.objects.select_for_update(no_key=True).filter(symbol=symbol).first()
        if inst is None:
            shown = symbol if len(symbol) <= 64 else symbol[:64] + "…"  # not an echo
            raise ValidationError({"instrument": f"there is no instrument {shown!r}"})
        same = Restriction.objects.filter(instrument=inst, active=True).first()
        if same is not None:
            raise ValidationError(
                f"{symbol} is on the restricted list already (restriction {same.pk}, by "
                f"{same.added_by.get_username()})"
            )
        r = Restriction.objects.create(
            instrument=inst, reason=reason.strip(), added_by=user, added_at=timezone.now()
        )
        before = {"restricted": inst.restricted}
        inst.restricted = True
        inst.save(update_fields=["restricted"])
        _record(user, r, "restriction.add", "added", before, r.reason)
    return r


def _active_locked(restriction_id: int) -> Restriction:
    """The restriction, row-locked for this transaction; ValidationError once lifted."""
    r = (
        Restriction.objects.select_for_update(no_key=True)
        .select_related("instrument")
        .get(pk=restriction_id)
    )
    if not r.active:
        raise ValidationError(f"restriction {r.pk} is lifted already")
    return r


def lift_request(*, user: Any, restriction_id: int, reason: str) -> Restriction:
    _require_risk_manager(user, "ask to lift a restriction")
    reason = reason_given(reason, "say why it may be traded again")
    with transaction.atomic():
        r = _active_locked(restriction_id)
        asked = asked_already(
            r.lift_requested_by, user, MANAGE_RISK, "lift", "a lift", r.lift_requested_at
        )
        if asked:
            raise ValidationError(asked)
        before = restriction_json(r)
        r.lift_requested_by, r.lift_requested_at = user, timezone.now()
        r.lift_reason = reason.strip()
        r.save(update_fields=["lift_requested_by", "lift_requested_at", "lift_reason"])
        # Announced too: the second risk manager learns there is something to approve.
        _record(user, r, "restriction.lift.request", "lift_requested", before, r.lift_reason)
    return r


def lift_decline(
    *, user: Any, restriction_id: int, reason: str = "", asked_at: str | None = None
) -> tuple[Restriction, str]:
    """A standing lift request set aside: the instrument stays restricted, and anyone may
    ask again. Its author withdraws it; another risk manager declines it, saying why."""
    _require_risk_manager(user, "decline a lift")
    with transaction.atomic():
        r = _active_locked(restriction_id)
        verb, note = set_aside_as(
            r.lift_requested_by, user, "lift", f"a lift of restriction {r.pk}", reason
        )
        request_unchanged(r.lift_requested_at, asked_at, f"the lift of restriction {r.pk}")
        before = restriction_json(r)
        r.lift_requested_by, r.lift_requested_at, r.lift_reason = None, None, ""
        r.save(update_fields=["lift_requested_by", "lift_requested_at", "lift_reason"])
        action = f"restriction.lift.{'withdraw' if verb == 'withdrawn' else 'decline'}"
        _record(user, r, action, f"lift_{verb}", before, note)
    return r, verb


@four_eyes_refusals_audited("restriction.lift.approve", "oversight.Restriction", "restriction_id")
def lift_approve(*, user: Any, restriction_id: int, asked_at: str | None = None) -> Restriction:
    """The second risk manager's approval: new orders on the instrument are accepted again."""
    _require_risk_manager(user, "lift a restriction")
    with transaction.atomic():
        r = _active_locked(restriction_id)
        problem = second_eyes_problem(
            r.lift_requested_by,
            user,
            MANAGE_RISK,
            "lift",
            f"the lift of restriction {r.pk}",
            r.lift_requested_at,
        )
        if problem:
            refusal = FourEyesRefused if r.lift_requested_by_id else ValidationError
            raise refusal(problem)
        request_unchanged(r.lift_requested_at, asked_at, f"the lift of restriction {r.pk}")
        before = restriction_json(r)
        r.active, r.lifted_by, r.lifted_at = False, user, timezone.now()
        r.save(update_fields=["active", "lifted_by", "lifted_at"])
        inst = r.instrument
        inst.restricted = False
        inst.save(update_fields=["restricted"])
        _record(user, r, "restriction.lift", "lifted", before, r.lift_reason)
    return r


# -- selectors ---------------------------------------------------------------------------


def restrictions_active() -> QuerySet[Restriction]:
    return (
        Restriction.objects.filter(active=True)
        .select_related("instrument", "added_by", "lift_requested_by")
        .annotate(
            working=Count("instrument__orders", filter=Q(instrument__orders__status__in=_LIVE))
        )
        .order_by("instrument__symbol")
    )


def restrictions_recent(limit: int = 50) -> QuerySet[Restriction]:
    return Restriction.objects.filter(active=False).select_related(
        "instrument", "added_by", "lift_requested_by", "lifted_by"
    )[:limit]


def flagged_without_record() -> QuerySet[Any]:
    """Instruments marked restricted outside this list (a seed, a database change): refused
    at entry all the same; recording them here gives them a reason and a way off."""
    from execution.models import Instrument

    return Instrument.objects.filter(restricted=True).exclude(restrictions__active=True)


def unrestricted_symbols() -> list[str]:
    from execution.models import Instrument

    return list(
        Instrument.objects.exclude(restrictions__active=True).values_list("symbol", flat=True)
    )
