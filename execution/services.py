"""Writes: submitting orders, controls, and persisting the engine's events (HackSoft style).

Every broadcast happens after the transaction that wrote it commits (Zulip's
send_event_on_commit): a blotter never shows a fill the database does not have.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from execution.algos.params import (
    ParamError,
    label_of,
    validate_params,
    whole_shares,
    written_plainly_no_exponent,
)
from execution.algos.registry import strategy_class
from execution.engine.orders import PARENT_TERMINAL, ParentStatus
from execution.model_registry import band_problem, expert_for, ticket_version
from execution.models import (
    BLOCKED,
    SUSPENDED,
    ControlRequest,
    Instrument,
    MarketSession,
    OrderEvent,
    ParentOrder,
)
from execution.selectors import market_clock, order_market_day
from execution.session_clock import session_clock
from oversight.audit import audit_record
from oversight.reasons import reason_given
from oversight.risk.models import RiskException
from oversight.risk.pretrade import (
    beyond_override,
    breaches,
    desk_of,
    entered_order_scopes,
    limit_away_problem,
    market_price,
    order_notional_breach,
    order_scopes,
    participation_breach,
    participation_cap,
    refusals,
)
from oversight.risk.services import exception_raise, overrides_lapse
from oversight.roles import TRADE

ORDERS_ALL_GROUP = "orders.all"
logger = logging.getLogger(__name__)


def orders_user_group(user_id: int) -> str:
    return f"orders.user.{user_id}"


def parent_order_submit(
    *,
    user: Any,
    instrument: Instrument,
    side: str,
    quantity: int,
    start_minute: float,
    end_minute: float,
    strategy: str,
    params: dict[str, Any] | None = None,
    limit_price: Decimal | str | None = None,
) -> ParentOrder:
    """Validate and create a parent order; dispatch it to a market worker after commit.

    Raises ValidationError with a message per field.
    """
    errors: dict[str, list[str]] = {}
    if not user.has_perm(TRADE):
        raise ValidationError("you are not allowed to trade")
    if side not in ("buy", "sell"):
        errors.setdefault("side", []).append("must be buy or sell")
    problem = quantity_problem(quantity)
    if problem:
        errors.setdefault("quantity", []).append(problem)
    entered_start = start_minute
    out_of_day = window_problem(start_minute, end_minute)
    if out_of_day:
        errors.setdefault(out_of_day[0], []).append(out_of_day[1])
    else:
        clock = market_clock(instrument)
        if start_minute < clock["minute"]:
            # The market is past the window's start: the order works from now, and says so
            # (the ticket warned). Stored as entered, the blotter, the order page and TCA
            # showed a window it never worked, and its schedule's early part as missed.
            # (to the second; rounded first, as minute × 60 is not always whole in floats)
            start_minute = math.ceil(round(clock["minute"] * 60, 6)) / 60
        if end_minute <= clock["minute"] + 1:
            at = session_clock(clock["minute"] * 60, ms=False)
            errors.setdefault("end_minute", []).append(
                f"the {instrument.symbol} market is at {at} of day {clock['day']}; the "
                "window must end at least a minute after that"
            )
        elif end_minute - start_minute < MIN_WINDOW_MINUTES:
            # A window of a millionth of a minute was accepted (and costed at 410,454,545%
            # participation: a trial); no strategy can work an order in less than a slice.
            errors.setdefault("end_minute", []).append(
                f"the window must last at least {MIN_WINDOW_MINUTES:g} minute"
            )
    limit, problem = clean_limit(limit_price, instrument.tick_size)
    if problem:
        errors.setdefault("limit_price", []).append(problem)
    clean: dict[str, Any] = {}
    try:
        clean = validate_params(strategy_class(strategy).schema(), params or {})
    except ParamError as e:
        errors.setdefault("strategy" if e.key == "strategy" else f"param_{e.key}", []).append(
            e.message
        )
    version = None
    if "model" in clean:
        version, why = ticket_version(clean["model"] if (params or {}).get("model") else "")
        if version is None:
            errors.setdefault("param_model", []).append(why)
        else:
            clean["model"] = version.name
            problem = band_problem(version, instrument)
            if problem:
                errors.setdefault("param_model", []).append(problem)
    expert = expert_for(version, instrument) if version is not None else None
    scopes = order_scopes(
        user=user,
        instrument=instrument,
        strategy=strategy,
        model=version.name if version is not None else "",
        expert=expert["model"] if expert is not None else "",
    )
    if limit is not None and "limit_price" not in errors:
        away = limit_away_problem(
            side=side, limit_price=limit, market=market_price(instrument), scopes=scopes
        )
        if away:
            errors.setdefault("limit_price", []).append(away)
    if errors:
        raise ValidationError(errors)
    refused = refusals(
        user=user, instrument=instrument, side=side, quantity=quantity, scopes=scopes
    )
    if refused:
        _refuse(user, instrument, side, quantity, strategy, refused)
    try:
        with transaction.atomic():
            # The trader's row, which a desk move locks too: a move that committed since
            # the scopes were read puts this order under the new desk's limits and kill
            # switches, checked again here; one that starts now waits for this order,
            # which its open-orders check then sees (a review: an order entered during a
            # move carried its exposure to a desk whose limits it was never checked
            # against).
            list(get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk))
            desk_now = desk_of(user.pk)
            if desk_now != scopes.desk:
                scopes = replace(scopes, desk=desk_now)
                refused = refusals(
                    user=user, instrument=instrument, side=side, quantity=quantity, scopes=scopes
                )
                if refused:
                    raise _ChangedMeanwhile(refused)
            # Again under the instrument's row lock, which restrict() takes too: a
            # restriction that committed since the check above refuses this order.
            if (
                Instrument.objects.select_for_update(no_key=True)
                .filter(pk=instrument.pk, restricted=True)
                .exists()
            ):
                raise _ChangedMeanwhile
            found = breaches(
                user=user,
                instrument=instrument,
                side=side,
                quantity=quantity,
                limit_price=limit,
                start_minute=start_minute,
                end_minute=end_minute,
                scopes=scopes,
                params=clean,
            )
            if beyond_override(found):
                # No override could release it: refused now, not blocked for one that
                # would be refused (the attempt is recorded, as a refusal's is).
                raise _BeyondOverride(beyond_override(found))
            order = ParentOrder.objects.create(
                owner=user,
                instrument=instrument,
                side=side,
                quantity=quantity,
                start_minute=start_minute,
                end_minute=end_minute,
                limit_price=limit,
                strategy=strategy,
                params=clean,
                model_version=version,
                model_expert=expert["model"] if expert is not None else "",
                day=clock["day"],
                desk=scopes.desk,
                status=BLOCKED if found else ParentStatus.NEW.value,
                status_reason="; ".join(str(f) for f in found)[:255],
            )
            submitted = _order_json(order)
            if order.start_minute != entered_start:  # what the trader typed, kept too
                submitted["entered_start_minute"] = entered_start
            audit_record(actor=user, action="order.submit", obj=order, after=submitted)
            if found:
                # Its first event, so open blotters show it (no worker will say anything).
                order_status_set(
                    order, BLOCKED, order.status_reason, previous=ParentStatus.NEW.value
                )
                # Blocked: it waits for a risk manager's override; nothing goes to a worker.
                audit_record(
                    actor=None,
                    action="order.blocked",
                    obj=order,
                    after={"codes": [f.code.value for f in found]},
                    reason=order.status_reason,
                )
                exception_raise(
                    kind="LIMIT_BREACH",
                    code=found[0].code.value,
                    severity=RiskException.WARNING,
                    scope_type="trader",
                    scope_key=user.get_username(),
                    title=f"Order {order.pk} blocked: {', '.join(f.code.value for f in found)}",
                    detail="; ".join(f.message for f in found),
                    suggested_action="review the order; grant a single-use override or reject it",
                    order_id=order.pk,
                    trader_id=user.pk,
                )
            else:
                transaction.on_commit(lambda: dispatch_order(instrument.pk))
    except _BeyondOverride as beyond:
        _refuse(user, instrument, side, quantity, strategy, beyond.found)
    except _ChangedMeanwhile as changed:
        instrument.refresh_from_db()
        found = changed.found or refusals(
            user=user, instrument=instrument, side=side, quantity=quantity, scopes=scopes
        )
        if not found:  # a restriction lifted again as quickly: nothing to name (a review)
            raise ValidationError(
                f"{instrument.symbol}'s restriction changed while the order was entered: "
                "send it again"
            ) from None
        _refuse(user, instrument, side, quantity, strategy, found)
    return order


class _ChangedMeanwhile(Exception):
    """Between the refusal check and the order's creation, the instrument was restricted or
    the trader moved to a desk that refuses the order (`found`: its refusals, or empty)."""

    def __init__(self, found: list[Any] | None = None) -> None:
        super().__init__()
        self.found = found or []


class _BeyondOverride(Exception):
    """The order breaches a limit by more than an override may release (`found`)."""

    def __init__(self, found: list[Any]) -> None:
        super().__init__()
        self.found = found


def _refuse(
    user: Any, instrument: Instrument, side: str, quantity: int, strategy: str, found: list[Any]
) -> NoReturn:
    """A refused order is not created, but the attempt is recorded and raised."""
    with transaction.atomic():
        attempt = {
            "instrument": instrument.symbol,
            "side": side,
            "quantity": quantity,
            "strategy": strategy,
            "codes": [f.code.value for f in found],
        }
        audit_record(
            actor=user,
            action="order.refused",
            after=attempt,
            reason="; ".join(str(f) for f in found),
        )
        exception_raise(
            kind="ORDER_DENIED",
            code=found[0].code.value,
            severity=RiskException.WARNING,
            scope_type="trader",
            scope_key=user.get_username(),
            title=f"Order refused for {user.get_username()}: {found[0].code.value}",
            detail=f"{side} {quantity:,} {instrument.symbol}: "
            + "; ".join(f.message for f in found),
            suggested_action="check with the trader; "
            + (
                "the order is more than an override may release: a smaller order, or a higher limit"
                if any(f.beyond_override for f in found)
                else "the kill switch or restriction stays until reset"
            ),
            trader_id=user.pk,
        )
    field = "instrument" if found[0].code.value == "RESTRICTED_INSTRUMENT" else "__all__"
    raise ValidationError({field: [str(f) for f in found]})


# Beyond any real order: a larger one is a typing error, and the database's 64-bit
# integer could not hold it anyway. Pre-trade limits refuse far smaller orders.
MAX_ORDER_QTY = 10**12
# Within what the price columns hold (18 digits, 6 of them after the point).
MAX_PRICE = Decimal("999999999999")


def window_problem(start_minute: float, end_minute: float) -> tuple[str, str] | None:
    """(field, message) when a window is not within the day, in order; None if it is."""
    if 0 <= start_minute < end_minute <= 390:
        return None
    # Beside the field that is wrong: a start of -1 was marked under End (a trial).
    wrong = "start_minute" if not 0 <= start_minute <= 390 else "end_minute"
    return wrong, "the window must satisfy 0 ≤ start < end ≤ 390"


def quantity_problem(quantity: Any) -> str:
    """Why `quantity` is not an order's quantity, or ""."""
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        return "must be a positive whole number of shares"
    if quantity > MAX_ORDER_QTY:
        return f"must be at most {MAX_ORDER_QTY:,} shares"
    return ""


def clean_limit(value: Any, tick: Decimal) -> tuple[Decimal | None, str]:
    """A limit price as Decimal (None for no limit), or the problem with it."""
    if value in (None, ""):
        return None, ""
    if isinstance(value, str) and not written_plainly_no_exponent(value):
        return None, "write it with the digits 0-9"  # "８.３０" and "8.3_0" read as 8.30
    try:
        limit = Decimal(str(value))
    except InvalidOperation:
        return None, "must be a price"
    if not limit.is_finite():
        return None, "must be a price"  # NaN or Infinity, which Decimal reads
    if limit <= 0:
        return None, "must be positive"
    if limit > MAX_PRICE:
        return None, f"must be at most {MAX_PRICE:,}"
    if limit % tick != 0:
        return None, f"must be a multiple of the tick size {tick.normalize():f}"
    return limit, ""


def _same_value(now: Any, asked: Any) -> bool:
    if now is None or asked is None:
        return now is None and asked is None
    try:
        return Decimal(str(now)) == Decimal(str(asked))  # 41 is 41.00; 0.3 is 0.30
    except (InvalidOperation, ValueError):
        return bool(now == asked)


def _shown_value(value: Any) -> str:
    from execution.templatetags.desk_format import param_value

    if value is None:
        return "none"
    if isinstance(value, float):
        return param_value(value)  # "30", not "30.0" (a trial): as the order page shows it
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


def _amended_notional_problem(
    order: ParentOrder, limit: Decimal | None, clean: dict[str, Any], scopes: Any
) -> str:
    """The entry check values an order at its limit against the max order notional, and
    blocks it over: entered low and amended up, it got past it (a review). Its own rest
    is in the daily notional already, valued at the market whatever its limit."""
    found = order_notional_breach(
        instrument=order.instrument,
        quantity=int(clean.get("quantity", order.quantity)),
        limit_price=limit,
        scopes=scopes,
    )
    return f"at this limit the order is worth {found.message}" if found else ""


def _reduced_quantity(order: ParentOrder, value: Any) -> int:
    """An amended quantity: smaller than the order's, above what is filled and working
    (as the worker will find them, re-checked there: execution.engine's _reduced_qty)."""
    new = whole_shares(str(value))
    if new is None:
        raise ValidationError(
            {
                "quantity": [
                    "a whole number of shares, written with the digits 0-9 (12,000 or 12000)"
                ]
            }
        )
    # Against the quantity the amends still queued for its worker will leave: 9,000 cut
    # to 6,000 and then "7,000" was accepted here and refused by the worker (a trial).
    queued = [
        int(c.changes["quantity"])
        for c in ControlRequest.objects.filter(
            parent=order, action=ControlRequest.AMEND, applied_at__isnull=True
        ).order_by("pk")
        if "quantity" in (c.changes or {})
    ]
    current = min([order.quantity, *queued])
    if new >= current:
        pending = f" (an amend to {current:,} is waiting for the worker)" if queued else ""
        raise ValidationError(
            {
                "quantity": [
                    f"an amend can only reduce the quantity: enter less than {current:,}" + pending
                ]
            }
        )
    floor = order.filled_qty + order.working_qty
    if new <= order.filled_qty or new < floor:
        # Pausing helps only where something works (a paused order was told to pause).
        how = (
            ": pause the order first to cut into what is working (or cancel it)"
            if order.working_qty and order.status != "PAUSED"
            else " (cancel it to stop here)"
        )
        # Said as what it may be ("not above the 200 filled" read as a cap: a trial).
        least = (
            f"at least {floor:,}: {order.filled_qty:,} filled and {order.working_qty:,} working"
            if order.working_qty
            # "more than the 300 already filled" read backwards on its own (a trial).
            else f"at least {order.filled_qty + 1:,}: {order.filled_qty:,} are filled already"
        )
        raise ValidationError({"quantity": [least + how]})
    return new


def dispatch_order(instrument_id: int) -> None:
    """Ask a worker to run the instrument's market. The order is already committed as NEW:
    if the broker is unreachable it waits there (and says so in the audit trail) until a
    worker for its instrument runs, rather than failing the trader's request."""
    from execution.tasks import market_session_run

    try:
        market_session_run.delay(instrument_id)
    except Exception as e:  # any broker failure: the order is safe in the database
        logger.warning("could not dispatch market for instrument %s: %s", instrument_id, e)
        audit_record(actor=None, action="market.dispatch_failed", reason=str(e)[:500])


MIN_WINDOW_MINUTES = 1.0


def _amended_participation(
    order: ParentOrder, user: Any, params: dict[str, Any], merged: dict[str, Any]
) -> str:
    """A POV order entered at a rate its participation limit allows, then amended to a
    higher one or told to complete, would skip the check that reads it so (a review: 5%
    accepted under a 10% limit, then amended to 50% and complete). Said as a refusal; an
    order that must go faster is entered anew, under the check."""
    if order.running_strategy != "pov" or not {"participation_rate", "complete"} & set(params):
        return ""
    scopes = order_scopes(
        user=user, instrument=order.instrument, strategy=order.running_strategy,
        order_id=order.pk, desk=order.desk,
    )  # fmt: skip

    def reading(params: dict[str, Any]) -> Any:
        return participation_breach(
            instrument=order.instrument, quantity=order.quantity,
            start_minute=order.start_minute, end_minute=order.end_minute, scopes=scopes,
            params=params,
        )  # fmt: skip

    found = reading(merged)
    if found is None:
        return ""
    if reading(order.running_params()) is not None:
        # Over the limit already (an override let it go): an amend that does not raise
        # it (a lower rate, or no longer told to complete) is not refused.
        before = participation_cap("pov", order.running_params())
        after = participation_cap("pov", merged)
        if before is None or (after is not None and after <= before):
            return ""
    return f"the order would then be read as {found.message}: enter a new order for that"


def _order_refusals(order: ParentOrder) -> list[Any]:
    """What would refuse the order now if it were entered again (kill switches over its
    scopes, a restriction), read against the desk it was entered on."""
    return refusals(
        user=order.owner, instrument=order.instrument, side=order.side,
        quantity=order.quantity - order.filled_qty, scopes=entered_order_scopes(order),
    )  # fmt: skip


def _cannot(action: str, order: ParentOrder) -> str:
    """Why the order cannot take the action in its status, and what it can take."""
    if action == ControlRequest.PAUSE and order.status == ParentStatus.NEW.value:
        # "cannot pause an order that is new" said nothing of why (a trial).
        return (
            "cannot pause an order that has not started: it starts at its window; cancel "
            "it, or amend it, until then"
        )
    return f"cannot {action} an order that is {order.status.lower()}"


CONTROLS = {
    # Not NEW: the engine starts an order at its window, and has no paused-before-start
    # (a pause of an order waiting for its window was accepted here, refused by the
    # worker, and the order started anyway: a review). Cancel it, or amend it.
    ControlRequest.PAUSE: {ParentStatus.WORKING.value},
    ControlRequest.RESUME: {ParentStatus.PAUSED.value, SUSPENDED},
    ControlRequest.CANCEL: {
        ParentStatus.WORKING.value,
        ParentStatus.PAUSED.value,
        ParentStatus.NEW.value,
        SUSPENDED,
        BLOCKED,
    },
    ControlRequest.AMEND: {
        ParentStatus.WORKING.value,
        ParentStatus.PAUSED.value,
        ParentStatus.NEW.value,
    },
}


def order_control_request(
    *,
    user: Any,
    order: ParentOrder,
    action: str,
    changes: dict[str, Any] | None = None,
    reason: str = "",
) -> ControlRequest:
    """A person asks the worker to pause, resume, cancel or amend; it applies it next step."""
    reason = reason_given(reason)
    if action not in CONTROLS:
        known = ", ".join(CONTROLS)
        raise ValidationError(
            {
                "action": [
                    f"unknown action {action!r}: one of {known}"
                    if action
                    else f"missing: one of {known}"
                ]
            }
        )
    if order.owner_id != user.pk or not user.has_perm(TRADE):
        raise ValidationError("only the order's trader may control it")
    # As the row is now (the page's copy may be minutes old); checked again under its lock.
    order = ParentOrder.objects.select_related("instrument", "model_version").get(pk=order.pk)
    if order.status not in CONTROLS[action]:
        raise ValidationError({"action": [_cannot(action, order)]})
    clean: dict[str, Any] = {}
    if action == ControlRequest.RESUME:
        # Re-plan: what is left over what is left of the window, not caught up at once.
        unknown = sorted(set(changes or {}) - {"replan"})
        if unknown:
            raise ValidationError({"changes": [f"a resume takes only replan, not {unknown[0]}"]})
        replan = (changes or {}).get("replan", False)
        # An empty value is not "no": a trial's "replan=" resumed without a re-plan, while
        # leaving the field out re-plans (the view's default).
        if replan not in (True, False, "1", "0", "true", "false", "on"):
            raise ValidationError({"replan": ["yes or no"]})
        if replan in (True, "1", "true", "on"):
            clean = {"replan": True}
        halted = [f for f in _order_refusals(order) if f.code.value == "TRADING_HALTED"]
        if halted:
            # Said now, not as "resume requested" and a cancel by the worker that took it
            # up (a trial resumed a suspended order under a firm halt).
            raise ValidationError(
                {"action": [f"cannot resume: {halted[0].message}; reset the switch first"]}
            )
    elif changes and action != ControlRequest.AMEND:
        raise ValidationError({"changes": [f"a {action} takes no changes"]})
    if action == ControlRequest.AMEND:
        params = {k: v for k, v in (changes or {}).items() if k not in ("limit_price", "quantity")}
        # Against the strategy working it: after a fallback, TWAP (the worker refused an
        # urgency this accepted, a review).
        specs = {p.name: p for p in strategy_class(order.running_strategy).schema()}
        gone = [k for k in params if k not in specs and order.fallback_strategy]
        if gone:
            raise ValidationError(
                {
                    f"param_{gone[0]}": [
                        f"no longer applies: {order.strategy.upper()} fell back and "
                        f"{order.fallback_strategy.upper()} works the order"
                    ]
                }
            )
        # Every field's problem at once, not the first's (a trial fixed one bad field to
        # be told of the next).
        errors: dict[str, list[str]] = {}
        # Each on its own first, so every bad one is named (a trial was told of the first
        # of three); then together, for the rules that bind several.
        for k, v in params.items():
            if k in specs:
                try:
                    specs[k].coerce(v)
                except ParamError as e:
                    errors[f"param_{k}"] = [e.message]
        if not errors:
            try:
                merged = validate_params(specs.values(), {**order.running_params(), **params})
            except ParamError as e:
                errors[f"param_{e.key}"] = [e.message]
            else:
                clean = {k: merged[k] for k in params}
                problem = _amended_participation(order, user, params, merged)
                if problem:
                    key = "participation_rate" if "participation_rate" in params else "complete"
                    errors[f"param_{key}"] = [problem]
        for k in params:
            if k in specs and not specs[k].amendable:  # an unknown one: validate_params said
                errors.setdefault(f"param_{k}", []).append(
                    "cannot be changed while the order works"
                )
        if "quantity" in (changes or {}):
            try:
                clean["quantity"] = _reduced_quantity(order, (changes or {})["quantity"])
            except ValidationError as e:
                errors.update(e.message_dict)
        if "limit_price" in (changes or {}):
            limit, problem = clean_limit((changes or {})["limit_price"], order.instrument.tick_size)
            if not problem:
                market = market_price(order.instrument)  # now, not the window's average
                scopes = entered_order_scopes(order)  # its trader's: only they control it
                problem = limit_away_problem(
                    side=order.side, limit_price=limit, market=market, scopes=scopes
                ) or _amended_notional_problem(order, limit, clean, scopes)
            if problem:
                errors["limit_price"] = [problem]
            else:
                clean["limit_price"] = str(limit) if limit is not None else None
        if errors:
            raise ValidationError(errors)
        # A value the order has already changes nothing: dropped, and an amend of nothing
        # else is refused (a trial's limit 41.00 -> 41.00 was recorded as applied).
        # As the order will be once the amends still queued for its worker are applied:
        # one may undo another (a review: 30 -> 60 queued, then 30 was "already" so).
        current = {**order.running_params(), "limit_price": order.limit_price}
        for queued in ControlRequest.objects.filter(
            parent=order, action=ControlRequest.AMEND, applied_at__isnull=True
        ).order_by("pk"):
            current.update(queued.changes or {})
        same = [k for k in clean if k != "quantity" and _same_value(current.get(k), clean[k])]
        for k in same:
            del clean[k]
        if not clean:
            said = "; ".join(
                f"{label_of(k).lower()} is {_shown_value(current.get(k))} already" for k in same
            )
            raise ValidationError({"changes": [f"nothing to amend{': ' + said if said else ''}"]})
    with transaction.atomic():
        # The order's row lock first (as the workers take it): two clicks cannot both pass.
        # Then what the row says now, not what the page read: a worker may have taken the
        # order up since (a review: a cancel of a suspended order a worker was resuming
        # ended it here while the worker worked it, and the worker's step then failed).
        order = (
            ParentOrder.objects.select_for_update(no_key=True, of=("self",))
            .select_related("instrument", "session", "model_version")
            .get(pk=order.pk)
        )
        if order.status not in CONTROLS[action]:
            raise ValidationError({"action": [_cannot(action, order)]})
        # Only while a worker holds the order does a pending request mean "wait for it".
        # A suspended or blocked order has no worker to apply it (one that was lost may
        # have left requests unapplied): its cancel is done here and now, and a resume
        # may be asked again (it dispatches again). One a worker has just taken up to
        # resume (its session runs; the worker writes WORKING at the end of that step)
        # is held: the request waits for that worker.
        held = order.status not in (SUSPENDED, BLOCKED) or _taken_up(order)
        # A new order no running worker has taken has nothing at a venue either: a cancel
        # waited for a worker that might never come (one that was exiting as it was
        # entered, a review), and a second was refused as "already pending".
        unworked = order.status == ParentStatus.NEW.value and not _taken_up(order)
        pending = (
            set(
                ControlRequest.objects.filter(parent=order, applied_at__isnull=True).values_list(
                    "action", flat=True
                )
            )
            if held
            else set()
        )
        # A pending cancel ends the order, so nothing may follow it; a pause or resume
        # asked twice is one click too many; amends queue.
        waiting = ControlRequest.CANCEL if ControlRequest.CANCEL in pending else action
        if waiting in pending and waiting != ControlRequest.AMEND:
            raise ValidationError(
                {
                    "action": [
                        f"a {waiting} is already pending: the worker applies it at its next step"
                    ]
                }
            )
        clock = market_clock(order.instrument)
        req = ControlRequest.objects.create(
            parent=order,
            action=action,
            changes=clean,
            requested_by=user,
            reason=reason,
            market_day=clock["day"],
            market_ts=clock["minute"] * 60.0,
        )
        before, asked = _asked(order, action, clean)
        if (not held or unworked) and action == ControlRequest.CANCEL:
            # No worker holds it and nothing works at a venue: cancel it here and now.
            _suspended_cancel(order, req, user)
        elif order.status == SUSPENDED and not held:
            transaction.on_commit(lambda: dispatch_order(order.instrument_id))
        # Audit last: the chain's lock is then always taken after any order row lock, as
        # the workers take them, so the two can never wait on each other.
        audit_record(
            actor=user,
            action=f"order.{action}.request",
            obj=order,
            before=before,
            after=asked,
            reason=reason,
        )
    return req


# The status a control request asks for.
_ASKED_STATUS = {
    ControlRequest.PAUSE: "PAUSED",
    ControlRequest.RESUME: "WORKING",
    ControlRequest.CANCEL: "CANCELED",
}


def _asked(
    order: ParentOrder, action: str, clean: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A control request as the change it asks for: the fields it concerns as they are,
    and as asked (the audit page showed the whole order "→ —", as if an amend had erased
    its instrument and quantity: a trial)."""
    if action == ControlRequest.AMEND:
        now: dict[str, Any] = {}
        for key in clean:
            if key == "quantity":
                now[key] = order.quantity
            elif key == "limit_price":
                now[key] = str(order.limit_price) if order.limit_price is not None else None
            else:
                now[key] = (order.params or {}).get(key)
        return now, dict(clean)
    return {"status": order.status}, {"status": _ASKED_STATUS[action], **clean}


def order_status_set(locked: ParentOrder, status: str, reason: str, **extra: Any) -> ParentOrder:
    """A status change made outside a worker (a block at entry, a rejection, a cancel while
    no worker holds the order), recorded as the workers record theirs: the order's next
    event, and broadcast after commit, so an open blotter shows it without a reload and a
    blotter catching up replays it. `locked`: the order, row-locked by the caller in this
    transaction (or created in it)."""
    seq = locked.last_seq + 1
    reason = reason[:255]  # the status column's size; the whole text is in the audit trail
    payload = {
        "engine_order_id": locked.engine_id,
        "seq": seq,
        "ts": 0.0,
        "kind": "ParentStatusChanged",
        "status": status,
        "previous": locked.status,
        "reason": reason,
        **extra,
    }
    OrderEvent.objects.create(
        parent=locked, seq=seq, kind="ParentStatusChanged", sim_ts=0.0, payload=payload
    )
    ParentOrder.objects.filter(pk=locked.pk).update(
        status=status, status_reason=reason, last_seq=seq
    )
    message = (locked.owner_id, {**payload, "order_id": locked.pk})
    transaction.on_commit(lambda: broadcast_events([message]))
    locked.status, locked.status_reason, locked.last_seq = status, reason, seq
    return locked


def blocked_expire() -> int:
    """Orders still blocked, or suspended and not taken up again, when their window has
    ended expire, as a worker's would: an override or a resume then would release an
    order with nothing left to work (a suspended one's unfilled rest also counted against
    the day's notional for ever). Run by the workers' housekeeping and when a blotter
    opens."""
    n = 0
    held = ParentOrder.objects.filter(status__in=(BLOCKED, SUSPENDED)).select_related(
        "instrument", "session"
    )
    clocks: dict[int, dict[str, Any]] = {}
    for order in held:
        if order.instrument_id not in clocks:
            clocks[order.instrument_id] = market_clock(order.instrument)
        clock = clocks[order.instrument_id]
        # A suspended order's day is its lost session's, a blocked one's the day it was
        # entered for: once that day has closed, its window is over whatever the minute
        # (after the close the clock reads the next day's 09:30: a suspended order never
        # expired, a review; a blocked one was released by an override and traded on a
        # later day, a trial).
        day = order_market_day(order)
        day_over = day is not None and day < clock["day"]
        if order.end_minute > clock["minute"] and not day_over:
            continue
        with transaction.atomic():
            still = (
                ParentOrder.objects.select_for_update(no_key=True, of=("self",))
                .select_related("session")
                .filter(pk=order.pk, status=order.status)
                .first()
            )
            if still is None or _taken_up(still):
                continue
            why = f"its window ended while it was {still.status.lower()}"
            held_end(still, ParentStatus.EXPIRED.value, why)
            audit_record(actor=None, action="order.expire", obj=order, reason=why)
            n += 1
    return n


def _taken_up(order: ParentOrder) -> bool:
    """A suspended order a worker has just taken up to resume: its session runs, and the
    worker writes WORKING at the end of that step. The session is read again: the
    order's copy may be from before its lock was granted (a worker stopping commits its
    session's status with its orders' suspension)."""
    return (
        order.session_id is not None
        and MarketSession.objects.filter(pk=order.session_id, status=MarketSession.RUNNING).exists()
    )


def _suspended_cancel(order: ParentOrder, req: ControlRequest, user: Any) -> None:
    held_cancel(ParentOrder.objects.select_for_update(no_key=True).get(pk=order.pk), req, user)


def held_cancel(locked: ParentOrder, req: ControlRequest, user: Any = None) -> None:
    """Apply a cancel to an order no worker holds. `locked`: the order, row-locked by the
    caller in this transaction."""
    held_end(
        locked,
        ParentStatus.CANCELED.value,
        f"canceled by {user or req.requested_by} while {locked.status.lower()}",
    )
    now = timezone.now()
    ControlRequest.objects.filter(pk=req.pk).update(applied_at=now, outcome="applied")
    req.applied_at, req.outcome = now, "applied"


def held_end(locked: ParentOrder, status: str, reason: str) -> None:
    """End an order no worker holds (blocked, or suspended by a lost worker): its final
    event, and whatever requests a lost worker left unapplied void with it. `locked`: the
    order, row-locked by the caller in this transaction."""
    order_status_set(
        locked,
        status,
        reason,
        # The market over its window as its lost worker last wrote it; the mid when it
        # ended is unknown (no market runs it), so post-trade analysis says so.
        end_mid_px=None,
        market_volume=round(locked.market_volume),
        market_vwap_px=(
            str(round(locked.market_notional / locked.market_volume, 6))
            if locked.market_volume > 0
            else None
        ),
    )
    ControlRequest.objects.filter(parent=locked, applied_at__isnull=True).update(
        applied_at=timezone.now(), outcome=f"void: the order was {status.lower()}"
    )
    # An override asked for it has nothing left to release: it lapses (it stayed pending
    # for good, its Grant answering "no longer blocked": a trial). After this commits, in
    # its own transaction: a grant and a halt lock an override before its order, and a
    # lapse here, under the order's lock, deadlocked with a grant (a review); a halt that
    # rejects the override itself has done so by then.
    order_id, why = locked.pk, f"lapsed: order {locked.pk} was {status.lower()} ({reason})"
    transaction.on_commit(lambda: overrides_lapse(order_id, why))


def _order_json(o: ParentOrder) -> dict[str, Any]:
    return {
        "id": o.pk,
        "instrument": o.instrument.symbol,
        "side": o.side,
        "quantity": o.quantity,
        "start_minute": o.start_minute,
        "end_minute": o.end_minute,
        "limit_price": str(o.limit_price) if o.limit_price is not None else None,
        "strategy": o.strategy,
        "params": o.params,
        "model_version": (
            {"name": o.model_version.name, "sha256": o.model_version.sha256}
            | ({"expert": o.model_expert} if o.model_expert else {})
            if o.model_version is not None
            else None
        ),
        "status": o.status,
    }


def broadcast_events(messages: list[tuple[int, dict[str, Any]]]) -> None:
    """Send stored events to the blotters: the owner's group and the risk managers'."""
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    by_owner: dict[int, list[dict[str, Any]]] = {}
    for owner_id, ev in messages:
        by_owner.setdefault(owner_id, []).append(ev)
    for owner_id, evs in by_owner.items():
        # sent_at (wall clock, s): lets a blotter or a benchmark see commit-to-screen latency.
        msg = {"type": "order.events", "events": evs, "sent_at": time.time()}
        send(orders_user_group(owner_id), msg)
        send(ORDERS_ALL_GROUP, msg)


def order_is_open(o: ParentOrder) -> bool:
    return o.status not in {s.value for s in PARENT_TERMINAL}
