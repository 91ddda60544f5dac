"""Writes of the risk side: limit requests under four eyes, kill switches, overrides and
the exception console. Each checks who may act, locks what it changes, writes an audit
record in the same transaction, and tells workers, consoles and blotters after commit.

Four eyes: tightening a limit or engaging a kill switch takes one person; loosening a
limit, granting an override and resetting a kill switch take a second risk manager, never
the requester (refused here, and by CHECK constraints in the database).
"""

from __future__ import annotations

import contextlib
import logging
import re
import zlib
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from execution.engine.policy import DenyReason
from oversight.audit import audit_record, four_eyes_refusals_audited
from oversight.reasons import reason_given
from oversight.risk import notify
from oversight.risk.models import (
    LIMIT_SCOPES,
    LIMIT_VALUE,
    Desk,
    DeskMembership,
    ExceptionComment,
    KillSwitch,
    LimitRequest,
    Metric,
    Override,
    RiskException,
    RiskLimit,
    Scope,
)
from oversight.risk.pretrade import (
    beyond_override,
    breaches,
    entered_order_scopes,
    refusals,
)
from oversight.risk.scopes import covers
from oversight.risk.selectors import (
    UNHELD_CANCEL,
    applied_text,
    exception_json,
    kill_applied,
    kill_json,
)
from oversight.roles import (
    MANAGE_RISK,
    TRADE,
    TRADER,
    FourEyesRefused,
    asked_already,
    first_eyes_problem,
    request_unchanged,
    second_eyes_problem,
    set_aside_as,
)

logger = logging.getLogger(__name__)

LIMIT_REQUEST_TTL = timedelta(hours=24)
OVERRIDE_DEFAULT_MINUTES = 30
ESCALATE_AFTER = timedelta(seconds=30)


def _is_risk_manager(user: Any) -> bool:
    return bool(user.is_authenticated and user.has_perm(MANAGE_RISK))


def _require_risk_manager(user: Any, what: str) -> None:
    if not _is_risk_manager(user):
        raise ValidationError(f"only a risk manager may {what}")


ORDER_ID_DIGITS = 18  # a BigAutoField's ids have at most 19 digits; 18 is plenty
KILL_SCOPES = frozenset(s.value for s in Scope)


def scope_check(scope_type: str, scope_key: str, *, kill: bool = False) -> str:
    """The scope's key as stored, or ValidationError naming what is wrong."""
    from execution.algos.registry import strategy_names
    from execution.model_registry import live_gates
    from execution.models import Instrument, ModelVersion, ParentOrder
    from oversight.services import DESK_NAME

    allowed = [s.value for s in (list(Scope) if kill else LIMIT_SCOPES)]
    if scope_type not in allowed:
        raise ValidationError({"scope_type": f"must be one of {', '.join(allowed)}"})
    key = (scope_key or "").strip()
    shown = key if len(key) <= 64 else key[:64] + "…"  # the message, not an echo
    # Names are matched as the desk sees them: "sqnt" means SQNT (as on the restricted
    # list), "eq-1" the desk EQ-1, "Alice" the user alice. A name stored exactly as typed
    # wins; two that differ only in case (older data can hold both) must be typed exactly.
    stored_in = {
        Scope.INSTRUMENT: (Instrument.objects, "symbol"),
        Scope.DESK: (Desk.objects, "name"),
        Scope.TRADER: (get_user_model().objects, "username"),
    }
    if key and scope_type in stored_in:
        manager, column = stored_in[Scope(scope_type)]
        names = list(manager.filter(**{f"{column}__iexact": key}).values_list(column, flat=True))
        if key not in names and len(names) > 1:
            raise ValidationError(
                {"scope_key": f"{shown!r} could be {' or '.join(sorted(names))}: type it exactly"}
            )
        if key not in names and names:
            key = names[0]
    if scope_type == Scope.ORDER and key:
        if not (key.isascii() and key.isdigit() and len(key) <= ORDER_ID_DIGITS):
            raise ValidationError({"scope_key": f"there is no order {shown!r}"})
        # Stored as the workers compare it: "0161" is order 161 (a trial's kill switch on
        # "0161" was accepted, said it would stop the order, and stopped nothing).
        key = str(int(key))
    if scope_type == Scope.STRATEGY and key.lower() in strategy_names():
        key = key.lower()  # "TWAP" is how every page writes twap
    if scope_type == Scope.MODEL and key:
        # A version, or an expert known only from the orders it trades, whatever the case.
        names = set(ModelVersion.objects.filter(name__iexact=key).values_list("name", flat=True))
        names |= set(
            ParentOrder.objects.filter(model_expert__iexact=key).values_list(
                "model_expert", flat=True
            )
        )
        if key not in names and len(names) == 1:
            key = names.pop()
    if scope_type == Scope.FIRM:
        if key:  # not dropped unsaid: whoever sent it may have meant a narrower scope
            raise ValidationError({"scope_key": f"the firm takes no name, got {shown!r}"})
        return ""
    if not key:
        raise ValidationError({"scope_key": f"name the {scope_type}"})
    exists = {
        # A desk's limits may be set before anyone is on it (a new desk is set up so, and
        # then a trader moved there: a move may not lift their old desk's limits). A kill
        # switch needs a desk that is there.
        Scope.DESK: lambda: (
            Desk.objects.filter(name=key).exists() or (not kill and bool(DESK_NAME.fullmatch(key)))
        ),
        Scope.TRADER: lambda: get_user_model().objects.filter(username=key).exists(),
        Scope.STRATEGY: lambda: key in strategy_names(),
        Scope.INSTRUMENT: lambda: Instrument.objects.filter(symbol=key).exists(),
        Scope.ORDER: lambda: ParentOrder.objects.filter(pk=int(key)).exists(),
        # A version, or an expert inside one (registered on its own or not).
        Scope.MODEL: lambda: (
            ModelVersion.objects.filter(name=key).exists()
            or ParentOrder.objects.filter(model_expert=key).exists()
            or any(e["model"] == key for _, experts in live_gates() for e in experts)
        ),
    }[Scope(scope_type)]()
    if not exists:
        raise ValidationError({"scope_key": f"there is no {scope_type} {shown!r}"})
    if scope_type == Scope.ORDER and kill:
        from execution.engine.orders import PARENT_TERMINAL

        status = ParentOrder.objects.filter(pk=int(key)).values_list("status", flat=True)[0]
        if status in {s.value for s in PARENT_TERMINAL}:
            # It cannot trade again: a switch on it halts nothing and would still take two
            # risk managers to reset (a trial's on an expired order).
            raise ValidationError(
                {"scope_key": f"order {key} has ended ({status.lower()}): there is nothing "
                 "to halt"}
            )  # fmt: skip
    if scope_type == Scope.TRADER and not kill:
        # A limit on a trader applies to their orders: on a risk manager or an admin, who
        # cannot trade, it would never apply (a trial set one on "risk").
        user = get_user_model().objects.get(username=key)
        if not user.has_perm(TRADE):
            raise ValidationError(
                {
                    "scope_key": f"{shown!r} is not a trader: a trader's limit applies to their orders"
                }
            )
    return key


def _limit_json(req: LimitRequest) -> dict[str, Any]:
    return {
        "scope": f"{req.scope_type} {req.scope_key}".strip(),
        "metric": req.metric,
        "old_value": None if req.old_value is None else str(req.old_value),
        "new_value": None if req.new_value is None else str(req.new_value),
        "status": req.status,
    }


MAX_LIMIT_VALUE = Decimal(10**12)
# A comment is a note for the next person, broadcast to every console with the exception.
MAX_COMMENT_CHARS = 4000


# Limits counted in whole things: shares and percentages have their own bounds.
WHOLE_METRICS = {Metric.MAX_ORDER_QTY, Metric.MAX_CHILD_QTY}
PERCENT_METRICS = {Metric.MAX_PARTICIPATION_PCT}
# Dollars: to the cent (a trial's "1,000,000.555" was taken as a limit).
MONEY_METRICS = {Metric.MAX_ORDER_NOTIONAL, Metric.DAILY_NOTIONAL, Metric.MAX_CHILD_NOTIONAL}
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# As the page shows limits (2,000,000): commas between groups of exactly three digits.
GROUPED_NUMBER = re.compile(r"-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")


def desk_has_traders(name: str) -> bool:
    """Whether an active trader sits on the desk: a desk limit binds their orders only (a
    trial put a risk manager on a desk, whose limit then read as binding someone)."""
    return DeskMembership.objects.filter(
        desk__name=name, user__is_active=True, user__groups__name=TRADER
    ).exists()


def _parse_value(value: Any, metric: str = "") -> Decimal | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if GROUPED_NUMBER.fullmatch(text):
        text = text.replace(",", "")
    # Plain digits and a point only (or grouped as the page shows them): "1e3", "１２３"
    # (full-width) or "1,5" are numbers to someone, but not what the page shows back.
    if not PLAIN_NUMBER.fullmatch(text):
        raise ValidationError(
            {"new_value": "must be a number written with digits and a point (such as 2500 or "
             "0.5), or empty for no limit"}
        )  # fmt: skip
    try:
        v = Decimal(text)
    except InvalidOperation:
        raise ValidationError({"new_value": "must be a number, or empty for no limit"}) from None
    if not v.is_finite() or v <= 0:
        raise ValidationError({"new_value": "must be a positive number, or empty for no limit"})
    if v > MAX_LIMIT_VALUE:
        # Beyond any real limit; and SQLite keeps decimals as binary floats, exact only to
        # about 15 digits: a larger value could read back wider than its column.
        raise ValidationError({"new_value": f"must be at most {MAX_LIMIT_VALUE:,}"})
    if metric in WHOLE_METRICS and v != v.to_integral_value():
        raise ValidationError({"new_value": "is a number of shares: a whole number"})
    if metric in MONEY_METRICS and v != v.quantize(Decimal("0.01")):
        raise ValidationError({"new_value": "is an amount of dollars: at most two decimal places"})
    if metric in PERCENT_METRICS and v > 100:
        raise ValidationError({"new_value": "is a percentage of the market's volume: at most 100"})
    places = LIMIT_VALUE["decimal_places"]
    if v != v.quantize(Decimal(1).scaleb(-places)):
        # Refused rather than rounded: a limit is exactly what the risk manager typed.
        raise ValidationError({"new_value": f"may have at most {places} decimal places"})
    return v


# -- limits ------------------------------------------------------------------------------


def limit_change_request(
    *,
    user: Any,
    scope_type: str,
    scope_key: str,
    metric: str,
    new_value: Any,
    reason: str,
) -> LimitRequest:
    """Ask for a limit change. A tightening applies at once; anything else waits for a
    second risk manager."""
    _require_risk_manager(user, "request a limit change")
    if metric not in Metric.values:
        raise ValidationError({"metric": f"unknown limit {metric!r}"})
    key = scope_check(scope_type, scope_key)
    value = _parse_value(new_value, metric)
    reason = reason_given(reason, "say why")
    now = timezone.now()
    with transaction.atomic():
        limit, _ = RiskLimit.objects.select_for_update(no_key=True).get_or_create(
            scope_type=scope_type, scope_key=key, metric=metric
        )
        if value == limit.value:
            raise ValidationError({"new_value": "that is the limit already"})
        tightening = value is not None and (limit.value is None or value < limit.value)
        # A newer request replaces any still pending for the same limit.
        for old in LimitRequest.objects.select_for_update(no_key=True).filter(
            scope_type=scope_type, scope_key=key, metric=metric, status=LimitRequest.PENDING
        ):
            old.status = LimitRequest.SUPERSEDED
            old.decision_note = "replaced by a newer request"
            old.save(update_fields=["status", "decision_note"])
            audit_record(actor=user, action="limit.request.superseded", obj=old)
        req = LimitRequest.objects.create(
            scope_type=scope_type,
            scope_key=key,
            metric=metric,
            old_value=limit.value,
            old_version=limit.version,
            new_value=value,
            tightening=tightening,
            reason=reason.strip(),
            requested_by=user,
            requested_at=now,
            expires_at=now + LIMIT_REQUEST_TTL,
        )
        audit_record(
            actor=user, action="limit.request", obj=req, after=_limit_json(req), reason=reason
        )
        if tightening:
            _apply(req, limit, decided_by=None, note="a tightening takes one person")
    return req


def _apply(req: LimitRequest, limit: RiskLimit, *, decided_by: Any, note: str) -> None:
    before = {"value": None if limit.value is None else str(limit.value), "version": limit.version}
    limit.value = req.new_value
    limit.version += 1
    limit.updated_at = timezone.now()
    limit.save(update_fields=["value", "version", "updated_at"])
    req.status = LimitRequest.ACTIVE
    req.decided_by = decided_by
    req.decided_at = limit.updated_at
    req.decision_note = note
    req.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    # A tightening has no second person (decided_by stays empty: the four-eyes CHECK), but
    # it has an author: the one who asked for it made the change.
    audit_record(
        actor=decided_by if decided_by is not None else req.requested_by,
        action="limit.change.active",
        obj=limit,
        before=before,
        after={
            "value": None if limit.value is None else str(limit.value),
            "version": limit.version,
        },
        reason=f"request {req.pk}: {note}",
    )
    payload = {**_limit_json(req), "request": req.pk}
    transaction.on_commit(lambda: notify.workers_wake("limits"))
    transaction.on_commit(lambda: notify.console_send("limit", payload))
    # In its own transactions, order rows first; robust: the change has committed.
    scope = (limit.scope_type, limit.scope_key)
    transaction.on_commit(lambda: blocked_reasons_restate(*scope), robust=True)


@four_eyes_refusals_audited("limit.request.approve", "oversight.LimitRequest", "request_id")
def limit_request_approve(*, user: Any, request_id: int, note: str = "") -> LimitRequest:
    note = reason_given(note, field="note")
    _require_risk_manager(user, "approve a limit change")
    with transaction.atomic():
        req = LimitRequest.objects.select_for_update(no_key=True).get(pk=request_id)
        # A decided one first: approving one's own, already decided, is no try at four
        # eyes (a review: it was recorded as one).
        if req.status != LimitRequest.PENDING:
            raise ValidationError(f"request {req.pk} is {req.status.lower()}, not pending")
        if req.requested_by_id == user.pk:
            raise FourEyesRefused("you cannot approve your own request: a second risk manager must")
        lapsed = first_eyes_problem(
            req.requested_by, MANAGE_RISK, f"limit request {req.pk}", req.requested_at
        )
        if lapsed:
            raise FourEyesRefused(lapsed)
        now = timezone.now()
        if req.expires_at <= now:
            req.status = LimitRequest.EXPIRED
            req.save(update_fields=["status"])
            audit_record(actor=user, action="limit.request.expired", obj=req)
            return req
        limit = RiskLimit.objects.select_for_update(no_key=True).get(
            scope_type=req.scope_type, scope_key=req.scope_key, metric=req.metric
        )
        if limit.version != req.old_version:
            # What was approved is not what was asked: the limit moved since the request.
            req.status = LimitRequest.SUPERSEDED
            req.decision_note = (
                f"void: the limit changed since the request (version {req.old_version} "
                f"then, {limit.version} now)"
            )
            req.save(update_fields=["status", "decision_note"])
            audit_record(actor=user, action="limit.request.void", obj=req, reason=req.decision_note)
            return req
        req.status = LimitRequest.APPROVED
        req.decided_by, req.decided_at = user, now
        req.save(update_fields=["status", "decided_by", "decided_at"])
        audit_record(actor=user, action="limit.request.approved", obj=req, reason=note)
        _apply(req, limit, decided_by=user, note=note or "approved")
    return req


def limit_request_reject(*, user: Any, request_id: int, note: str = "") -> LimitRequest:
    note = reason_given(note, field="note")
    _require_risk_manager(user, "reject a limit change")
    with transaction.atomic():
        req = LimitRequest.objects.select_for_update(no_key=True).get(pk=request_id)
        if req.status != LimitRequest.PENDING:
            raise ValidationError(f"request {req.pk} is {req.status.lower()}, not pending")
        if req.requested_by_id != user.pk and not note:
            # A rejection says why, as a model's does (the form had no field: a trial).
            raise ValidationError(
                {"note": f"say why you reject {req.requested_by.get_username()}'s request"}
            )
        req.status = LimitRequest.REJECTED
        req.decided_at = timezone.now()
        if req.requested_by_id == user.pk:
            req.decision_note = f"withdrawn by the requester. {note}".strip()
        else:
            req.decided_by = user
            req.decision_note = note
        req.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_record(actor=user, action="limit.request.rejected", obj=req, reason=req.decision_note)
    return req


def limit_requests_expire() -> int:
    """Pending requests past their time are EXPIRED (run by the workers' housekeeping)."""
    n = 0
    for req in LimitRequest.objects.filter(
        status=LimitRequest.PENDING, expires_at__lte=timezone.now()
    ):
        with transaction.atomic():
            if LimitRequest.objects.filter(pk=req.pk, status=LimitRequest.PENDING).update(
                status=LimitRequest.EXPIRED
            ):
                audit_record(actor=None, action="limit.request.expired", obj=req)
                n += 1
    return n


# -- kill switches -----------------------------------------------------------------------


def kill_allowed(user: Any, scope_type: str, scope_key: str, *, stored: bool = False) -> bool:
    """May this user engage a kill switch on the scope? Asked before whether the scope
    exists, so a trader cannot learn which order ids and usernames there are from a
    "there is no" that another trader's would answer with a refusal."""
    if _is_risk_manager(user):
        return True
    if not user.has_perm(TRADE):
        return False
    # A trader may stop what they own: their own trading, or one of their orders.
    key = (scope_key or "").strip()
    if scope_type == Scope.TRADER:
        # Before the name is looked up, any case of their own; after, exactly theirs.
        return key == user.get_username() or (
            not stored and key.casefold() == user.get_username().casefold()
        )
    if scope_type == Scope.ORDER:
        from execution.models import ParentOrder

        return (
            key.isascii()
            and key.isdigit()
            and len(key) <= ORDER_ID_DIGITS
            and ParentOrder.objects.filter(pk=int(key), owner=user).exists()
        )
    return False


KILL_REFUSED = (
    "you may not engage this kill switch: traders may stop their own trading or "
    "their own orders; risk managers any scope"
)


# pg_advisory_xact_lock's first key for a kill switch's scope (the second is the scope's
# CRC-32): a fixed int4 no other code uses.
KILL_SCOPE_LOCK_CLASS = 0x4F564B53  # "OVKS"


def _kill_scope_lock(scope_type: str, scope_key: str) -> None:
    """Serialise engaging switches over one scope from the check for one already there to
    the commit: three clicks at once made three switches over one instrument, each to be
    reset under four eyes (a trial, on PostgreSQL). SQLite's BEGIN IMMEDIATE already holds
    the database's one write lock (oversight/env.py)."""
    if connection.vendor != "postgresql":
        return
    crc = zlib.crc32(f"{scope_type}\x00{scope_key}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [KILL_SCOPE_LOCK_CLASS, crc - 2**31])


def halts_apply_to_unheld() -> int:
    """Every active halt cancels the orders in its scope that no running worker holds. A
    halt engaged while a worker was hung left that worker's orders to it; declared dead,
    it could not apply the halt, and the orders were suspended, resumable, instead of
    cancelled (a trial froze every market worker and engaged a firm halt). Run after
    orders are suspended; the records are the system's, naming the switch."""
    return sum(
        _blocked_cancel(k, None)
        for k in KillSwitch.objects.filter(active=True, state=KillSwitch.HALTED)
        .select_related("engaged_by")
        .order_by("pk")
    )


def _blocked_cancel(k: KillSwitch, user: Any | None) -> int:
    """A halt cancels everything in scope: the workers cancel what they hold, and this the
    orders no worker holds (blocked, released and not yet taken up, or suspended by a
    stopped or lost worker), which could otherwise trade once the switch was reset (a
    trial; a review: a suspended order's rest went on counting against the daily notional
    and could be resumed after the reset). Locks as a grant takes
    them, pending overrides first, then the orders, each in key order (a review found a
    halt and a grant deadlocking); the audit chain after both."""
    from django.db.models import Q

    from execution.models import BLOCKED, SUSPENDED, MarketSession, ParentOrder
    from execution.services import held_end
    from oversight.risk.selectors import orders_in_scope

    # A suspended order a running worker has taken up to resume is that worker's to cancel.
    no_worker = Q(session__isnull=True) | ~Q(session__status=MarketSession.RUNNING)
    unheld = (
        Q(status=BLOCKED) | Q(status="NEW", session__isnull=True) | Q(no_worker, status=SUSPENDED)
    )
    ids = list(
        orders_in_scope(k.scope_type, k.scope_key).filter(unheld).values_list("pk", flat=True)
    )
    if not ids:
        return 0
    pending = list(
        Override.objects.select_for_update(no_key=True)
        .filter(order_id__in=ids, status=Override.PENDING)
        .order_by("pk")
    )
    orders = list(
        ParentOrder.objects.select_for_update(no_key=True, of=("self",))
        .filter(unheld, pk__in=ids)
        .order_by("pk")
    )
    now = timezone.now()
    by = (user or k.engaged_by).get_username()
    for order in orders:
        was = order.status.lower()
        if user is None and was == "suspended":
            was = "suspended by its lost worker"  # it was working when the switch engaged
        why = UNHELD_CANCEL.format(pk=k.pk) + f"{by}) while {was}"
        held_end(order, "CANCELED", why)
        audit_record(actor=user, action="order.cancel", obj=order, reason=why)
    canceled = {o.pk for o in orders}
    for ov in pending:
        if ov.order_id not in canceled:
            continue
        ov.status, ov.granted_at = Override.REJECTED, now
        if user is not None and ov.requested_by_id != user.pk:  # who decided; the
            ov.granted_by = user  # constraint keeps it another than the asker
        ov.decision_note = f"the order was canceled by kill switch {k.pk}"
        ov.save(update_fields=["status", "granted_by", "granted_at", "decision_note"])
        audit_record(actor=user, action="override.reject", obj=ov, reason=ov.decision_note)
        payload = {"id": ov.pk, "order": ov.order_id, "status": ov.status}
        transaction.on_commit(lambda payload=payload: notify.console_send("override", payload))
    if user is None and orders:
        # Applied by the system after a lost worker: the cards open on consoles said "not
        # applied yet" until reloaded (a review).
        transaction.on_commit(
            lambda: notify.console_send(
                "kill", {**kill_json(k), "applied_text": applied_text(**kill_applied(k))}
            )
        )
    return len(orders)


def kill_switch_engage(
    *, user: Any, scope_type: str, scope_key: str = "", reason: str, state: str = "HALTED"
) -> KillSwitch:
    """Halt (or restrict to reducing orders) everything in scope, at once. One person."""
    if scope_type in KILL_SCOPES and not kill_allowed(user, scope_type, scope_key):
        # Not a bad value but a role's limit: refused as a permission (403), as the preview is.
        raise PermissionDenied(KILL_REFUSED)
    key = scope_check(scope_type, scope_key, kill=True)
    if not kill_allowed(user, scope_type, key, stored=True):
        raise PermissionDenied(KILL_REFUSED)
    if state not in (KillSwitch.HALTED, KillSwitch.REDUCING):
        raise ValidationError({"state": "must be HALTED or REDUCING"})
    reason = reason_given(reason, "say why")
    with transaction.atomic():
        _kill_scope_lock(scope_type, key)
        # Already stopped by one as strict or stricter: a second would only need a second
        # reset. A halt over a reduce-only switch is an escalation, and goes ahead.
        stricter = (
            [KillSwitch.HALTED]
            if state == KillSwitch.HALTED
            else [KillSwitch.HALTED, KillSwitch.REDUCING]
        )
        same = KillSwitch.objects.filter(
            active=True, scope_type=scope_type, scope_key=key, state__in=stricter
        ).first()
        if same is not None:
            where = f"{scope_type} {key}".strip()
            raise ValidationError(
                f"kill switch {same.pk} already {same.state.lower()} {where} "
                f"(engaged by {same.engaged_by.get_username()}): nothing more to stop"
            )
        k = KillSwitch.objects.create(
            scope_type=scope_type,
            scope_key=key,
            state=state,
            reason=reason.strip(),
            engaged_by=user,
            engaged_at=timezone.now(),
        )
        if state == KillSwitch.HALTED:
            _blocked_cancel(k, user)  # order rows first, the audit chain after (as workers)
        # The workers first, the moment it commits: every other notice can wait for them.
        transaction.on_commit(lambda: notify.workers_wake("kill", kill=k.pk))
        audit_record(actor=user, action="kill.engage", obj=k, after=kill_json(k), reason=reason)
        exception_raise(
            kind="KILL_SWITCH",
            # The whole firm stopped is critical (it escalates if nobody acknowledges it);
            # a narrower scope is a warning.
            severity=RiskException.CRITICAL if scope_type == Scope.FIRM else RiskException.WARNING,
            scope_type=scope_type,
            scope_key=key,
            title=f"Kill switch {k.pk} engaged: {scope_type} {key}".strip() + f" ({state.lower()})",
            detail=f"by {user.get_username()}: {reason.strip()}",
            suggested_action="confirm every working order in scope is stopped; reset under four eyes when safe",
            dedupe_key=f"kill:{k.pk}",
        )
        payload = kill_json(k)
        transaction.on_commit(lambda: notify.console_send("kill", payload))
        transaction.on_commit(lambda: _tell_traders_of_kill(payload))
    return k


def _tell_traders_of_kill(payload: dict[str, Any]) -> None:
    """Each trader the kill covers (their trading, desk, or one of their orders; a firm,
    strategy or instrument kill covers every trader with orders today)."""
    from execution.models import ParentOrder

    scope_type, key = payload["scope_type"], payload["scope_key"]
    owners = ParentOrder.objects.all()
    if scope_type == Scope.TRADER:
        owners = owners.filter(owner__username=key)
    elif scope_type == Scope.DESK:
        owners = owners.filter(owner__desk_membership__desk__name=key)
    elif scope_type == Scope.ORDER:
        owners = owners.filter(pk=int(key))
    elif scope_type == Scope.MODEL:  # the version's, and those it trades as an expert
        owners = owners.filter(Q(model_version__name=key) | Q(model_expert=key))
    else:
        since = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        owners = owners.filter(created_at__gte=since)
    for owner in set(owners.values_list("owner_id", flat=True)):
        notify.trader_alert(owner, "kill", payload)


def kill_switch_reset_request(*, user: Any, kill_id: int, reason: str) -> KillSwitch:
    _require_risk_manager(user, "ask for a kill switch reset")
    reason = reason_given(reason, "say why it is safe to trade again")
    with transaction.atomic():
        k = KillSwitch.objects.select_for_update(no_key=True).get(pk=kill_id)
        if not k.active:
            raise ValidationError(f"kill switch {k.pk} is already reset")
        asked = asked_already(
            k.reset_requested_by, user, MANAGE_RISK, "reset", "a reset", k.reset_requested_at
        )
        if asked:
            raise ValidationError(asked)
        k.reset_requested_by, k.reset_requested_at = user, timezone.now()
        k.reset_reason = reason.strip()
        k.save(update_fields=["reset_requested_by", "reset_requested_at", "reset_reason"])
        audit_record(actor=user, action="kill.reset.request", obj=k, reason=reason)
        payload = kill_json(k)
        transaction.on_commit(lambda: notify.console_send("kill", payload))
    return k


def kill_switch_reset_decline(
    *, user: Any, kill_id: int, reason: str = "", asked_at: str | None = None
) -> tuple[KillSwitch, str]:
    """A standing reset request set aside: the switch stays engaged, and anyone may ask
    again. Its author withdraws it; another risk manager declines it, saying why (a
    request nobody means to approve should not wait for someone who might)."""
    _require_risk_manager(user, "decline a kill switch reset")
    with transaction.atomic():
        k = KillSwitch.objects.select_for_update(no_key=True).get(pk=kill_id)
        if not k.active:
            raise ValidationError(f"kill switch {k.pk} is already reset")
        verb, note = set_aside_as(
            k.reset_requested_by, user, "reset", f"a reset of kill switch {k.pk}", reason
        )
        request_unchanged(k.reset_requested_at, asked_at, f"the reset of kill switch {k.pk}")
        before = kill_json(k)
        k.reset_requested_by, k.reset_requested_at, k.reset_reason = None, None, ""
        k.save(update_fields=["reset_requested_by", "reset_requested_at", "reset_reason"])
        action = "kill.reset.withdraw" if verb == "withdrawn" else "kill.reset.decline"
        audit_record(actor=user, action=action, obj=k, before=before, after=kill_json(k),
                     reason=note)  # fmt: skip
        payload = kill_json(k)
        transaction.on_commit(lambda: notify.console_send("kill", payload))
    return k, verb


@four_eyes_refusals_audited("kill.reset.approve", "oversight.KillSwitch", "kill_id")
def kill_switch_reset_approve(
    *, user: Any, kill_id: int, asked_at: str | None = None, note: str = ""
) -> KillSwitch:
    """The second risk manager's approval: trading in scope may start again (new orders;
    stopped orders stay stopped). `note`: the approver's own words, recorded beside the
    request's reason (a trial's were dropped)."""
    _require_risk_manager(user, "reset a kill switch")
    note = reason_given(note, field="note") if (note or "").strip() else ""
    with transaction.atomic():
        k = KillSwitch.objects.select_for_update(no_key=True).get(pk=kill_id)
        if not k.active:
            raise ValidationError(f"kill switch {k.pk} is already reset")
        problem = second_eyes_problem(
            k.reset_requested_by,
            user,
            MANAGE_RISK,
            "reset",
            f"the reset of kill switch {k.pk}",
            k.reset_requested_at,
        )
        if problem:
            # Nobody asked: a plain refusal; one's own, or a lapsed asker: four eyes'.
            refusal = FourEyesRefused if k.reset_requested_by_id else ValidationError
            raise refusal(problem)
        request_unchanged(k.reset_requested_at, asked_at, f"the reset of kill switch {k.pk}")
        before = kill_json(k)
        k.active, k.reset_by, k.reset_at = False, user, timezone.now()
        k.save(update_fields=["active", "reset_by", "reset_at"])
        audit_record(
            actor=user,
            action="kill.reset",
            obj=k,
            before=before,
            after={**kill_json(k), **({"approval_note": note} if note else {})},
            reason=k.reset_reason + (f"; approved: {note}" if note else ""),
        )
        # Its console exception has nothing left to handle: closed, saying by whom.
        for e in RiskException.objects.filter(
            dedupe_key=f"kill:{k.pk}",
            status__in=[RiskException.OPEN, RiskException.ACKNOWLEDGED],
        ):
            exception_resolve(
                user=user,
                exception_id=e.pk,
                resolution=f"kill switch {k.pk} reset by "
                f"{k.reset_requested_by.get_username()} and {user.get_username()}",
            )
        payload = kill_json(k)
        transaction.on_commit(lambda: notify.console_send("kill", payload))
        transaction.on_commit(lambda: _tell_traders_of_kill(payload))
    return k


# -- overrides ---------------------------------------------------------------------------


def overrides_lapse(order_id: int, why: str) -> int:
    """The pending overrides of an order that has ended lapse, audited and said to the
    console. Locks the overrides only (as a grant and a halt take them, before the order)."""
    from execution.models import ParentOrder

    n = 0
    with transaction.atomic():
        for ov in Override.objects.select_for_update(no_key=True).filter(
            order_id=order_id, status=Override.PENDING
        ):
            if not ParentOrder.objects.filter(pk=order_id, status__in=ENDED).exists():
                break
            _override_lapsed(ov, why)
            n += 1
    return n


def _override_lapsed(ov: Override, note: str) -> None:
    """A pending override (locked) lapses by itself: saved, audited, said to the console."""
    ov.status, ov.decision_note = Override.REJECTED, _fits(note, 2000)
    ov.save(update_fields=["status", "decision_note"])
    audit_record(actor=None, action="override.lapse", obj=ov, reason=ov.decision_note)
    payload = {"id": ov.pk, "order": ov.order_id, "status": ov.status}
    transaction.on_commit(lambda: notify.console_send("override", payload))


ENDED = ("FILLED", "CANCELED", "EXPIRED", "REJECTED")


def overrides_lapse_for_trader(user: Any, why: str) -> int:
    """The pending overrides of the orders of a trader who can no longer trade (deactivated,
    or their role taken away) lapse at once, audited and said to the console: none could be
    granted (_owner_cannot_trade), yet they stood on the console as grantable until someone
    tried (a review). Inside the caller's transaction."""
    n = 0
    for ov in Override.objects.select_for_update(no_key=True).filter(
        order__owner=user, status=Override.PENDING
    ):
        _override_lapsed(ov, f"lapsed: {why}")
        n += 1
    return n


def _owner_cannot_trade(order: Any) -> str:
    """Why a blocked order may not be released for its trader, or "": one deactivated, or
    no longer a trader, could not pause, amend or cancel it (a trial: two risk managers
    released a deactivated trader's order, which filled 1,136 shares nobody could stop but
    with a kill switch)."""
    owner = order.owner
    if owner.is_active and owner.has_perm(TRADE):
        return ""
    why = "is deactivated" if not owner.is_active else "no longer trades"
    return (
        f"order {order.pk}'s trader {owner.get_username()} {why}: it is not released, since "
        "nobody could then control it; it expires at its window's end, or an order kill "
        "switch ends it now"
    )


def override_request(*, user: Any, order_id: int, reason: str) -> Override:
    from execution.models import BLOCKED, ParentOrder

    order = ParentOrder.objects.filter(pk=order_id).first()
    if order is None:
        raise ValidationError({"order": f"there is no order {order_id}"})
    if order.owner_id != user.pk and not _is_risk_manager(user):
        raise ValidationError("only the order's trader or a risk manager may ask for an override")
    if order.status != BLOCKED:
        raise ValidationError(f"order {order.pk} is {order.status.lower()}, not blocked")
    cannot = _owner_cannot_trade(order)
    if cannot:
        raise ValidationError(cannot)
    reason = reason_given(reason, "say why the order should go ahead")
    with transaction.atomic():
        # Checked again under the order's lock: one that ended meanwhile (expired, cancelled,
        # halted) would leave this request pending for good (a review).
        order = ParentOrder.objects.select_for_update(no_key=True).get(pk=order.pk)
        if order.status != BLOCKED:
            raise ValidationError(f"order {order.pk} is {order.status.lower()}, not blocked")
        if Override.objects.filter(order=order, status=Override.PENDING).exists():
            raise ValidationError(f"an override for order {order.pk} is already pending")
        # The reason's codes, and only codes: a reason restated after a limit change may
        # say the order is within its limits (a review found that sentence taken as one).
        known = {r.value for r in DenyReason}
        codes = [
            code for c in order.status_reason.split("; ") if (code := c.split(":")[0]) in known
        ]
        # And what it breaches now: the reason is cut at 255 characters, and a long one
        # lost its last code, so the grant always failed on it (a review).
        now = _findings_now(order, lock=False)[1]  # read only: the grant checks again, locked
        beyond = beyond_override(now)
        if beyond:  # a limit lowered since it was blocked: no grant could release it
            raise ValidationError(
                f"order {order.pk} cannot be released by an override: "
                + "; ".join(str(f) for f in beyond)
            )
        codes += [f.code.value for f in now if f.code.value not in codes]
        ov = Override.objects.create(
            order=order,
            codes=codes,
            reason=reason.strip(),
            requested_by=user,
            requested_at=timezone.now(),
        )
        audit_record(
            actor=user,
            action="override.request",
            obj=ov,
            after={"order": order.pk, "codes": codes},
            reason=reason,
        )
        payload = {"id": ov.pk, "order": order.pk, "codes": codes, "by": user.get_username()}
        transaction.on_commit(lambda: notify.console_send("override", payload))
    return ov


def _findings_now(order: Any, *, lock: bool = True) -> tuple[list[Any], list[Any]]:
    """What would refuse the order now (no override helps) and what it breaches now
    (`lock`: the daily-notional limit rows locked, as a release needs)."""
    scopes = entered_order_scopes(order)
    now_refused = refusals(
        user=order.owner, instrument=order.instrument, side=order.side,
        quantity=order.quantity, scopes=scopes,
    )  # fmt: skip
    found = breaches(
        user=order.owner, instrument=order.instrument, side=order.side,
        quantity=order.quantity, limit_price=order.limit_price,
        start_minute=order.start_minute, end_minute=order.end_minute, scopes=scopes,
        order_id=order.pk, lock=lock, params=order.params,
    )  # fmt: skip
    return now_refused, found


def blocked_reasons_restate(scope_type: str, scope_key: str) -> int:
    """The reason of each blocked order a changed limit's scope covers, as its limits
    stand now: it kept the figures it was blocked with ("> 1,000,000 (firm)" under a limit
    since raised or lowered), and an order a loosening had put within every limit still
    read as a breach. It stays blocked either way: releasing it is a person's decision (an
    override), not a side effect of a limit change. Restated as its next event, so open
    blotters show it; returns how many changed. Each order in its own transaction, and
    one that fails is logged and skipped: the limit change it follows has committed."""
    from execution.models import BLOCKED, ParentOrder
    from execution.services import order_status_set

    n = 0
    blocked = ParentOrder.objects.filter(status=BLOCKED).select_related(
        "instrument", "owner", "model_version"
    )
    for candidate in blocked:
        if not covers(scope_type, scope_key, entered_order_scopes(candidate)):
            continue
        try:
            with transaction.atomic():
                # The order's row alone: its trader's too (select_related without `of`)
                # made a lock cycle with a grant or a halt, which lock the trader first
                # (a review: "deadlock detected" on PostgreSQL).
                order = (
                    ParentOrder.objects.select_for_update(no_key=True, of=("self",))
                    .select_related("instrument", "owner", "model_version")
                    .filter(pk=candidate.pk, status=BLOCKED)
                    .first()
                )
                if order is None:
                    continue
                refused, found = _findings_now(order, lock=False)
                # A breach no override may now release says so, as entry would (a trial's
                # read "> 1,200" and still offered Override).
                said = [*refused, *((beyond_override([f]) or [f])[0] for f in found)]
                reason = "; ".join(str(f) for f in said) or (
                    "within its limits as they stand now (a limit changed since it was "
                    "blocked): an override releases it, or its trader may enter it again"
                )
                if reason[:255] != order.status_reason:
                    order_status_set(order, BLOCKED, reason)
                    # Its console exception says what the order says (a trial's kept the
                    # figures it was blocked with).
                    for key in (
                        RiskException.objects.filter(kind="LIMIT_BREACH", order_id=order.pk)
                        .exclude(status=RiskException.RESOLVED)
                        .values_list("dedupe_key", flat=True)
                    ):
                        exception_restate(
                            dedupe_key=key,
                            title=f"Order {order.pk} blocked: "
                            + (", ".join(f.code.value for f in said) or "within its limits now"),
                            detail="; ".join(f.message for f in said) or reason,
                            suggested_action="review the order; grant a single-use override "
                            "or reject it",
                        )
                    n += 1
        except DatabaseError:
            logger.exception("blocked order %s: its reason was not restated", candidate.pk)
    return n


def _recheck_blocked(order: Any, ov: Override) -> str:
    """The override covers the breaches it was asked for, as things stood then. Checked
    again now: a kill switch or restriction since refuses (ValidationError); a limit the
    order now breaches as well (the desk's day filled up meanwhile, an opposite order of
    its trader's) is returned, said, for the caller to lapse the request."""
    now_refused, found = _findings_now(order)
    if now_refused:
        raise ValidationError(
            f"order {order.pk} cannot go to the market now: "
            + "; ".join(str(f) for f in now_refused)
        )
    beyond = beyond_override(found)
    if beyond:  # grown past what an override may release (a lower limit, a fuller day)
        return (
            f"order {order.pk} cannot be released by an override now: "
            + "; ".join(str(f) for f in beyond)
            + ". It stays blocked and this request has lapsed"
        )
    new = [f for f in found if f.code.value not in ov.codes]
    if not new:
        return ""
    return (
        f"since override {ov.pk} was asked for, order {order.pk} also breaches: "
        + "; ".join(str(f) for f in new)
        + ". It stays blocked and this request has lapsed; ask again: a new request covers all of them"
    )


@four_eyes_refusals_audited("override.grant", "oversight.Override", "override_id")
def override_grant(
    *, user: Any, override_id: int, minutes: int = OVERRIDE_DEFAULT_MINUTES, note: str = ""
) -> Override:
    """Release the blocked order, for this order and these breaches only, if a worker picks
    it up before the override expires."""
    from execution.models import BLOCKED, ParentOrder

    # The grant is the decision to let an order past the firm's limits: the one who makes
    # it says why, as the trader who asked did (a trial granted four breaches with none).
    note = reason_given(note, "say why this order may go past its limits", field="note")

    _require_risk_manager(user, "grant an override")
    from execution.services import blocked_expire

    # An order whose window or day is over expires first, and its request lapses: the
    # grant then says so (a trial granted one the day after; nothing had expired it).
    blocked_expire()
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        raise ValidationError(
            {"minutes": f"a whole number between 1 and 1440, not {minutes!r}"}
        ) from None
    if not 1 <= minutes <= 24 * 60:
        raise ValidationError({"minutes": f"between 1 and 1440, not {minutes}"})
    lapsed = ""
    owner_id = (
        Override.objects.filter(pk=override_id).values_list("order__owner_id", flat=True).first()
    )
    with transaction.atomic():
        # The order's trader first, then the override and the order: the order in which a
        # deactivation or a role change takes them (the user, then its pending overrides).
        # Without it a grant read the trader as active while a deactivation waited on the
        # override's lock, released the order, and the deactivation found nothing left to
        # lapse: a released order nobody could control (a review, on PostgreSQL).
        if owner_id is not None:
            list(
                get_user_model()
                .objects.select_for_update(no_key=True)
                .filter(pk=owner_id)
                .values_list("pk", flat=True)
            )
        ov = Override.objects.select_for_update(no_key=True).get(pk=override_id)
        if ov.requested_by_id == user.pk:
            raise FourEyesRefused("you cannot grant your own request: a second person must")
        if ov.status != Override.PENDING:
            raise ValidationError(_not_pending(ov))
        order = ParentOrder.objects.select_for_update(no_key=True).get(pk=ov.order_id)
        if order.owner_id == user.pk:
            # A trader made risk manager granted an override of their own order (a trial).
            raise FourEyesRefused(
                "you cannot grant an override of your own order: a risk manager other "
                "than its trader must"
            )
        # Asked as the order's trader, or as a risk manager: a role lost or changed since
        # lapses the request (a trial granted one whose trader had been made an admin).
        asked_as = TRADE if ov.requested_by_id == order.owner_id else MANAGE_RISK
        lapsed = first_eyes_problem(
            ov.requested_by, asked_as, f"override {ov.pk}", since=ov.requested_at
        ) or _owner_cannot_trade(order)
        if lapsed:  # ended for good: saved, and said after this transaction commits
            ov.status, ov.decision_note = Override.REJECTED, f"lapsed: {lapsed}"[:2000]
            ov.save(update_fields=["status", "decision_note"])
            audit_record(actor=user, action="override.lapse", obj=ov, reason=lapsed)
        elif order.status != BLOCKED:
            raise ValidationError(f"order {order.pk} is no longer blocked")
        else:
            lapsed = _recheck_blocked(order, ov)
            if lapsed:
                # Ended, so that a new request may be made for every breach (with this one
                # pending, "ask again" met "already pending": a review).
                ov.status, ov.decision_note = Override.REJECTED, f"lapsed: {lapsed}"[:2000]
                ov.save(update_fields=["status", "decision_note"])
                audit_record(actor=user, action="override.lapse", obj=ov, reason=lapsed)
            else:
                _override_release(user, ov, order, minutes, note)
    if lapsed:
        raise ValidationError(lapsed)
    return ov


def _override_release(user: Any, ov: Override, order: Any, minutes: int, note: str) -> None:
    """Grant `ov` (pending, locked) and release its order (blocked, locked)."""
    from execution.selectors import market_clock
    from execution.services import dispatch_order
    from execution.session_clock import session_clock

    market = market_clock(order.instrument)
    if order.day is not None and order.day < market["day"]:
        # Its window was on a day that has closed (an override released an order blocked
        # on day 2 to trade on day 3: a trial).
        raise ValidationError(
            f"order {order.pk} was entered for day {order.day} of {order.instrument.symbol}, "
            f"whose market is now on day {market['day']}: its window is over, there is "
            "nothing left to release; its trader may enter a new order"
        )
    clock = market["minute"]
    if order.end_minute <= clock + 1:  # the ticket's rule: at least a minute to work
        raise ValidationError(
            f"order {order.pk}'s window ends at {session_clock(order.end_minute * 60, ms=False)}"
            f" and the {order.instrument.symbol} market is at "
            f"{session_clock(clock * 60, ms=False)}: there is nothing left to release; "
            "its trader may enter a new order"
        )
    now = timezone.now()
    ov.status, ov.granted_by, ov.granted_at = Override.GRANTED, user, now
    ov.expires_at, ov.decision_note = now + timedelta(minutes=int(minutes)), note
    ov.save(update_fields=["status", "granted_by", "granted_at", "expires_at", "decision_note"])
    order.status = "NEW"
    order.status_reason = f"override {ov.pk} by {user.get_username()}: {order.status_reason}"[:255]
    order.save(update_fields=["status", "status_reason"])
    audit_record(
        actor=user,
        action="override.grant",
        obj=ov,
        after={"order": order.pk, "codes": ov.codes, "expires_at": ov.expires_at.isoformat()},
        reason=note,
    )
    instrument_id = order.instrument_id
    transaction.on_commit(lambda: dispatch_order(instrument_id))
    payload = {"id": ov.pk, "order": order.pk, "status": ov.status}
    transaction.on_commit(lambda: notify.console_send("override", payload))
    # The breach it was raised for is decided: resolved, by the granter, saying so (it
    # stayed open on the console after the release, a trial). After commit, each in a
    # transaction of its own: an exception's row is locked before the audit chain, and
    # this transaction has written to the chain already.
    resolution = f"released by override {ov.pk} ({user.get_username()}): {note}"[:480]
    order_id = order.pk
    transaction.on_commit(lambda: _breaches_resolved(user, order_id, resolution))


def _breaches_resolved(user: Any, order_id: int, resolution: str) -> None:
    for pk in (
        RiskException.objects.filter(order_id=order_id, kind="LIMIT_BREACH")
        .exclude(status=RiskException.RESOLVED)
        .values_list("pk", flat=True)
    ):
        with contextlib.suppress(ValidationError):  # resolved by someone meanwhile
            exception_resolve(user=user, exception_id=pk, resolution=resolution)


def _not_pending(ov: Override) -> str:
    """Why an override can no longer be decided, with a lapse's own words."""
    if ov.shown_status == "lapsed":  # "is rejected (lapsed: …)" read as someone's refusal
        why = ov.decision_note.removeprefix("lapsed:").strip()
        return f"override {ov.pk} has lapsed ({why}), not pending"
    return f"override {ov.pk} is {ov.status.lower()}, not pending"


def _fits(text: str, size: int) -> str:
    """`text` for a column of `size`: whole, or its start saying where the rest is."""
    more = "… (the whole note is in the audit trail)"
    return text if len(text) <= size else text[: size - len(more)] + more


def override_reject(*, user: Any, override_id: int, note: str = "") -> Override:
    note = reason_given(note, field="note")
    from execution.models import ParentOrder

    _require_risk_manager(user, "reject an override")
    with transaction.atomic():
        ov = Override.objects.select_for_update(no_key=True).get(pk=override_id)
        if ov.status != Override.PENDING:
            raise ValidationError(_not_pending(ov))
        ov.status, ov.decision_note = Override.REJECTED, note
        if ov.requested_by_id != user.pk:
            ov.granted_by = user  # who decided; the constraint keeps it a second person
        ov.granted_at = timezone.now()
        ov.save(update_fields=["status", "decision_note", "granted_by", "granted_at"])
        blocked = (
            ParentOrder.objects.select_for_update(no_key=True)
            .filter(pk=ov.order_id, status="BLOCKED")
            .first()
        )
        if blocked is not None:
            from execution.services import order_status_set

            # As an event, so the trader's open blotter shows it refused without a reload.
            order_status_set(blocked, "REJECTED", _fits(f"override refused: {note}", 255))
        audit_record(actor=user, action="override.reject", obj=ov, reason=note)
    return ov


# -- the exception console ---------------------------------------------------------------


def exception_raise(
    *,
    kind: str,
    severity: str,
    scope_type: str,
    scope_key: str = "",
    title: str,
    detail: str = "",
    suggested_action: str = "",
    code: str = "",
    order_id: int | None = None,
    trader_id: int | None = None,
    dedupe_key: str = "",
    cause_at: Any = None,
    times: int = 1,
    reopen: bool = False,
) -> RiskException:
    """Raise (or count again, if the same one is still open) an exception for the console;
    `times`: how many occurrences this call stands for (a step's denials of one order for
    one reason, counted in one write and one broadcast).

    Broadcast after commit; the caller's transaction decides whether it happened.
    """
    now = timezone.now()
    key = dedupe_key or f"{kind}:{code}:{scope_type}:{scope_key}:{order_id or ''}"
    with transaction.atomic():
        e = (
            RiskException.objects.select_for_update(no_key=True)
            .filter(dedupe_key=key, status__in=[RiskException.OPEN, RiskException.ACKNOWLEDGED])
            .first()
        )
        if e is not None:
            e.count += times
            e.last_at = now
            e.detail = detail or e.detail
            # Said as the cause says it now: a venue down again after "back up" stayed a
            # warning titled "back up", and "2 active risk managers again" stood over one
            # (two reviews). The severity only rises while it is open.
            e.title = title[:200]
            e.suggested_action = suggested_action[:200] or e.suggested_action
            fields = ["count", "last_at", "detail", "title", "suggested_action"]
            if SEVERITY_ORDER.index(severity) < SEVERITY_ORDER.index(e.severity):
                e.severity = severity
                fields.append("severity")
            # `reopen`: a new occurrence of a cause said to be over (a venue down again, an
            # order behind again): an acknowledgement of the last one does not cover it,
            # and the trail says it came back (a trial found one left acknowledged, its
            # return recorded nowhere).
            reopened = reopen and e.status == RiskException.ACKNOWLEDGED
            if reopened:
                e.status, e.acked_by, e.acked_at = RiskException.OPEN, None, None
                fields += ["status", "acked_by", "acked_at"]
            e.save(update_fields=fields)
            if reopen:
                audit_record(
                    actor=None,
                    action="exception.recur",
                    obj=e,
                    after={"title": e.title, "count": e.count, "reopened": reopened},
                )
        else:
            e = RiskException.objects.create(
                kind=kind,
                code=code,
                severity=severity,
                scope_type=scope_type,
                scope_key=scope_key,
                order_id=order_id,
                trader_id=trader_id,
                title=title[:200],
                detail=detail,
                suggested_action=suggested_action[:200],
                dedupe_key=key[:200],
                count=times,
                cause_at=cause_at or now,
                raised_at=now,
                last_at=now,
            )
            audit_record(
                actor=None,
                action="exception.raise",
                obj=e,
                after={"kind": kind, "severity": severity, "title": title[:200]},
            )
        payload = exception_json(e)
        transaction.on_commit(lambda: notify.console_send("exception", payload))
    return e


def exception_restate(*, dedupe_key: str, title: str, detail: str, suggested_action: str) -> int:
    """Say an open exception's cause as it stands now, without counting it again: an order
    behind its schedule is one occurrence whose lag moves (its warning kept the lag of the
    step it was raised at, however far behind the order fell or caught up). Not audited,
    as a count-up is not: the raise and the resolution are. Broadcast; returns how many
    were open (0 or 1): one a risk manager resolved stays resolved."""
    return _exception_say(dedupe_key, title, detail, suggested_action, over=False)


def exception_cause_over(*, dedupe_key: str, title: str, detail: str, suggested_action: str) -> int:
    """The cause of an open exception is over (a venue is back up): it is said on the
    exception, which drops to a warning (no longer pinned above what still needs a
    person, once someone has acknowledged it: an escalated one nobody has looked at stays
    on top, exceptions_open) and stays open for a risk manager to resolve (a trial: "Venue
    LIT-NORTH is down" stayed an escalated critical long after the venue filled again).
    Audited and broadcast; returns how many were open (0 or 1)."""
    return _exception_say(dedupe_key, title, detail, suggested_action, over=True)


def _exception_say(
    dedupe_key: str, title: str, detail: str, suggested_action: str, *, over: bool
) -> int:
    with transaction.atomic():
        e = (
            RiskException.objects.select_for_update(no_key=True)
            .filter(dedupe_key=dedupe_key[:200])
            .exclude(status=RiskException.RESOLVED)
            .first()
        )
        if e is None:
            return 0
        before = {"severity": e.severity, "title": e.title}
        e.title, e.detail = title[:200], detail
        e.suggested_action = suggested_action[:200]
        e.last_at = timezone.now()
        fields = ["title", "detail", "suggested_action", "last_at"]
        if over:
            e.severity = RiskException.WARNING
            fields.append("severity")
        e.save(update_fields=fields)
        if over:
            audit_record(
                actor=None,
                action="exception.cause_over",
                obj=e,
                before=before,
                after={"severity": e.severity, "title": e.title},
            )
        payload = exception_json(e)
        transaction.on_commit(lambda: notify.console_send("exception", payload))
    return 1


SEVERITY_ORDER = [RiskException.CRITICAL, RiskException.WARNING, RiskException.INFO]


def _exception_change(user: Any, exception_id: int, action: str, **changes: Any) -> RiskException:
    _require_risk_manager(user, "handle exceptions")
    with transaction.atomic():
        e = RiskException.objects.select_for_update(no_key=True).get(pk=exception_id)
        before = {
            "status": e.status,
            "assigned_to": e.assigned_to.get_username() if e.assigned_to_id else "",
        }
        for k, v in changes.items():
            setattr(e, k, v)
        e.save()
        after = {
            "status": e.status,
            "assigned_to": e.assigned_to.get_username() if e.assigned_to_id else "",
        }
        audit_record(
            actor=user,
            action=f"exception.{action}",
            obj=e,
            before=before,
            after=after,
            reason=changes.get("resolution", ""),
        )
        payload = exception_json(e)
        transaction.on_commit(lambda: notify.console_send("exception", payload))
        if e.trader_id and e.escalated_at:
            tid = e.trader_id
            transaction.on_commit(lambda: notify.trader_alert(tid, "exception", payload))
    return e


def exception_acknowledge(*, user: Any, exception_id: int) -> RiskException:
    e = RiskException.objects.get(pk=exception_id)
    if e.status != RiskException.OPEN:
        raise ValidationError(f"exception {e.pk} is {e.status.lower()}, not open")
    return _exception_change(
        user,
        exception_id,
        "acknowledge",
        status=RiskException.ACKNOWLEDGED,
        acked_by=user,
        acked_at=timezone.now(),
    )


def exception_assign(*, user: Any, exception_id: int, assignee: str) -> RiskException:
    target = get_user_model().objects.filter(username=assignee).first()
    if target is None or not target.has_perm(MANAGE_RISK):
        raise ValidationError({"assignee": f"{assignee!r} is not a risk manager"})
    return _exception_change(user, exception_id, "assign", assigned_to=target)


def exception_resolve(*, user: Any, exception_id: int, resolution: str) -> RiskException:
    resolution = reason_given(resolution, "say how it was resolved", field="resolution")
    e = RiskException.objects.get(pk=exception_id)
    if e.status == RiskException.RESOLVED:
        raise ValidationError(f"exception {e.pk} is already resolved")
    return _exception_change(
        user,
        exception_id,
        "resolve",
        status=RiskException.RESOLVED,
        resolved_by=user,
        resolved_at=timezone.now(),
        resolution=resolution.strip(),
    )


def exceptions_resend(*order_ids: int) -> int:
    """The orders' unresolved exceptions, sent to the console again after commit: they have
    ended, and each is marked so live, and counted for "resolve them all" (a review: the
    mark waited for the exception's next event, or a reload). One query for all the orders
    (a kill ends hundreds in a step). Returns how many."""
    sent = 0
    for e in (
        RiskException.objects.filter(order_id__in=order_ids)
        .exclude(status=RiskException.RESOLVED)
        .select_related("order", "assigned_to", "acked_by", "resolved_by")
    ):
        payload = exception_json(e)
        transaction.on_commit(lambda p=payload: notify.console_send("exception", p))
        sent += 1
    return sent


def exceptions_resolve_ended(*, user: Any, resolution: str, seen: int | None = None) -> int:
    """Resolve, with one resolution, every unresolved warning or notice about an order
    that has ended (a trial: the console filled with them; criticals one by one). Each is resolved and audited on its
    own, as if resolved by hand; returns how many."""
    from oversight.risk.selectors import exceptions_open_about_ended

    _require_risk_manager(user, "handle exceptions")
    resolution = reason_given(resolution, "say how they were resolved", field="resolution")
    with transaction.atomic():
        # Locked as they are read: one resolved by hand meanwhile is not resolved again.
        # Not another risk manager's case: assigned to them, it is theirs to close (a
        # trial's "investigating: do not close" was resolved by a colleague's sweep).
        ids = list(
            exceptions_open_about_ended(user=user)
            .select_for_update(no_key=True, of=("self",))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not ids:
            raise ValidationError(
                "no unresolved warning or notice is about an order that has ended"
            )
        if seen is not None and seen != len(ids):
            # What the page showed, or nothing: more had come since (a trial resolved
            # two never on screen).
            raise ValidationError(
                f"{len(ids)} are about orders that have ended now, not the {seen} you saw: "
                "look again before resolving them"
            )
        now = timezone.now()
        for pk in ids:
            _exception_change(
                user,
                pk,
                "resolve",
                status=RiskException.RESOLVED,
                resolved_by=user,
                resolved_at=now,
                resolution=resolution.strip(),
            )
    return len(ids)


def exception_comment(*, user: Any, exception_id: int, text: str) -> ExceptionComment:
    _require_risk_manager(user, "comment on exceptions")
    if not (text or "").strip():
        raise ValidationError({"text": "write something"})
    if len(text.strip()) > MAX_COMMENT_CHARS:
        raise ValidationError(
            {
                "text": f"a comment may have at most {MAX_COMMENT_CHARS:,} characters; attach the rest elsewhere"
            }
        )
    with transaction.atomic():
        e = RiskException.objects.get(pk=exception_id)
        c = ExceptionComment.objects.create(
            exception=e, author=user, at=timezone.now(), text=text.strip()
        )
        audit_record(actor=user, action="exception.comment", obj=e, after={"comment": c.text})
        payload = {**exception_json(e), "comment": {"by": user.get_username(), "text": c.text}}
        transaction.on_commit(lambda: notify.console_send("exception", payload))
    return c


def exceptions_escalate(*, after: timedelta = ESCALATE_AFTER) -> int:
    """Critical exceptions nobody acknowledged in time: marked escalated (they stay at the
    top of the console) and shown to their trader too."""
    now = timezone.now()
    n = 0
    for e in RiskException.objects.filter(
        severity=RiskException.CRITICAL,
        status=RiskException.OPEN,
        escalated_at=None,
        raised_at__lte=now - after,
    ):
        with transaction.atomic():
            if not RiskException.objects.filter(pk=e.pk, escalated_at=None).update(
                escalated_at=now
            ):
                continue
            e.escalated_at = now
            audit_record(actor=None, action="exception.escalate", obj=e)
            payload = exception_json(e)
            transaction.on_commit(lambda p=payload: notify.console_send("exception", p))
            if e.trader_id:
                tid = e.trader_id
                transaction.on_commit(
                    lambda p=payload, t=tid: notify.trader_alert(t, "exception", p)
                )
            n += 1
    return n
