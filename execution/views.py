"""The trader's screens: blotter, order ticket, order detail and controls. Thin: reads go
through selectors, writes through services, the estimate through the pure pretrade module."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from functools import cache
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from execution.algos.adaptive import SMALL_ORDER_LOTS
from execution.algos.base import OrderContext
from execution.algos.params import (
    ParamError,
    validate_params,
    whole_shares,
    written_plainly_no_exponent,
)
from execution.algos.pretrade import planned_schedule, pretrade_estimate, window_volume_fraction
from execution.algos.registry import strategy_class, strategy_names
from execution.forms import PARAM_PREFIX, OrderTicketForm, plain_id, strategy_schemas
from execution.model_registry import (
    approved_names,
    band_problem,
    expert_for,
    ticket_model_words,
    ticket_version,
)
from execution.models import (
    BLOCKED,
    ChildOrder,
    ControlRequest,
    Fill,
    Instrument,
    ModelVersion,
    OrderEvent,
    ParentOrder,
)
from execution.selectors import can_watch_orders, market_clock, orders_visible_to
from execution.services import (
    CONTROLS,
    MIN_WINDOW_MINUTES,
    blocked_expire,
    clean_limit,
    order_control_request,
    order_is_open,
    parent_order_submit,
    quantity_problem,
)
from execution.session_clock import session_clock
from execution.sim.scenario import ScenarioError, parse_scenario
from execution.templatetags.desk_format import price
from execution.worker import sessions_reap
from execution.worker_risk import RISK_DENIALS
from oversight.access_audit import record_denied
from oversight.risk.models import RiskException
from oversight.risk.pretrade import (
    beyond_override,
    breaches,
    limit_away_problem,
    market_price,
    order_scopes,
    refusals,
)
from oversight.risk.selectors import trader_alerts
from oversight.roles import TRADE
from tca.metrics import filled_shortfall_bps

BLOTTER_ROWS = 200
# Child and fill rows per order in the blotter: every working child, and the newest of the
# rest, up to this many; the order page has them all. A busy order has thousands, and the
# blotter drew every one (613 KB of HTML for 18 orders).
SUB_ROWS = 50
# Exceptions shown on an order's page, newest first; the console has every one.
ORDER_EXCEPTIONS = 20
WORKING_CHILD = ("SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _short_clock(ts: float) -> str:
    """09:30 for a whole minute, 09:30:15 otherwise: the blotter's window column is narrow."""
    text = session_clock(ts, ms=False)
    return text[:-3] if text.endswith(":00") else text


def _require_watcher(request: HttpRequest) -> None:
    if not can_watch_orders(request.user):
        raise PermissionDenied("traders and risk managers only")


def _shortfall_bps(order: ParentOrder) -> float | None:
    if order.avg_price is None or not order.arrival_price:
        return None
    bps = filled_shortfall_bps(
        side=1 if order.side == "buy" else -1,
        avg_fill_px=float(order.avg_price),
        arrival_mid=float(order.arrival_price),
    )
    return 0.0 if abs(bps) < 0.05 else bps  # never "-0.0"


@cache
def _scenario_for(instrument_id: int, scenario_json: str) -> Any:
    return parse_scenario(json.loads(scenario_json))


def _estimate(
    instrument: Instrument,
    quantity: int,
    start: float,
    end: float,
    strategy: str = "",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ticket's estimate; with a strategy, costed on that strategy's own schedule
    (execution.algos.pretrade), its parameters as typed so far."""
    scenario = _scenario_for(instrument.pk, json.dumps(instrument.scenario, sort_keys=True))
    inst = scenario.instrument
    spread_bps = inst.spread_ticks * inst.tick_size / inst.reference_price * 1e4
    schedule, slice_volume, note = None, None, ""
    if strategy in strategy_names():
        ctx = OrderContext(
            order_id="estimate",
            side=1,
            qty=quantity,
            start_s=start * 60,
            end_s=end * 60,
            limit_px_ticks=None,
            tick_size=inst.tick_size,
            reference_price=inst.reference_price,
            adv_shares=float(instrument.adv_shares),
            daily_volatility=inst.daily_volatility,
            spread_ticks=inst.spread_ticks,
            volume_profile=tuple(scenario.volume_profile),
            venues=(),
        )
        cls = strategy_class(strategy)
        try:
            schedule, slice_volume = planned_schedule(cls, params or {}, ctx)
        except ParamError as e:
            # The ticket marks the field itself on submit; the estimate goes on meanwhile.
            schedule, slice_volume = planned_schedule(cls, {}, ctx)
            note = f"costed with {cls.label}'s default parameters: {e.key} {e.message}"
    est = pretrade_estimate(
        quantity=quantity,
        adv_shares=float(instrument.adv_shares),
        daily_volatility=inst.daily_volatility,
        spread_bps=spread_bps,
        window_volume_fraction=window_volume_fraction(scenario.volume_profile, start, end),
        window_minutes=end - start,
        schedule=schedule,
        slice_volume=slice_volume,
    )
    out = est.to_json()
    if note:
        out["warnings"].append(note)
    px = float(instrument.reference_price)
    out["cost_usd"] = round(est.cost_bps / 1e4 * quantity * est.fill_fraction * px, 2)
    out["notional_usd"] = round(quantity * px, 2)
    return out


def _denial_details(orders: list[ParentOrder], coids: set[str], every: bool) -> dict[str, str]:
    """The detail of each named denied child (one query for the whole page): what the
    expanded list and the badge say beside the reason code. `every`: the page shows all
    of the orders' children, so all their denials are read (not thousands of names)."""
    if not coids:
        return {}
    events = OrderEvent.objects.filter(parent__in=orders, kind="ChildDenied")
    if not every:
        events = events.filter(payload__client_order_id__in=sorted(coids))
    return {
        str(p.get("client_order_id", "")): str(p.get("detail", ""))
        for p in events.values_list("payload", flat=True)
    }


def _count(model: Any, **where: Any) -> Coalesce:
    rows = model.objects.filter(parent=OuterRef("pk"), **where).order_by().values("parent")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")), 0)


def _with_sub_rows(orders: Any, limit: int = SUB_ROWS) -> Any:
    """Orders with only what a blotter row draws: every working child, the newest `limit`
    of the other children and of the fills, and the counts of them all. A busy order has
    thousands of each, and loading them to draw fifty made the blotter slow to open."""
    risk_denied = ChildOrder.objects.filter(
        parent=OuterRef("pk"), status="DENIED", reason__in=RISK_DENIALS
    ).order_by("-id")
    return orders.prefetch_related(
        Prefetch(
            "children",
            ChildOrder.objects.filter(status__in=WORKING_CHILD),
            to_attr="working_rows",
        ),
        Prefetch(
            "children",
            ChildOrder.objects.exclude(status__in=WORKING_CHILD).order_by("-id")[:limit],
            to_attr="done_rows",
        ),
        Prefetch("fills", Fill.objects.order_by("-id")[:limit], to_attr="fill_rows"),
    ).annotate(
        n_children=_count(ChildOrder),
        n_fills=_count(Fill),
        n_risk_denied=_count(ChildOrder, status="DENIED", reason__in=RISK_DENIALS),
        last_denied_coid=Subquery(risk_denied.values("client_order_id")[:1]),
        last_denied_reason=Subquery(risk_denied.values("reason")[:1]),
    )


def _sub_rows(order: ParentOrder) -> dict[str, Any]:
    """What a row shows of its children and fills, newest first (as the live page adds
    them): from `_with_sub_rows` when the order came through it, else every one."""
    if hasattr(order, "working_rows"):
        # The counts and the three lists are read one after another while a worker may be
        # writing: a child that finished between the two child queries is in both (the
        # later, finished copy is kept: a child's status only moves on), and one added
        # since the counts is shown and counted.
        by_pk = {c.pk: c for c in order.working_rows}
        by_pk.update({c.pk: c for c in order.done_rows})
        children = sorted(by_pk.values(), key=lambda c: -c.pk)
        fills = order.fill_rows
        n_children = max(order.n_children, len(children))
        n_fills = max(order.n_fills, len(fills))
        n_denied = order.n_risk_denied
        last_denied = (order.last_denied_coid, order.last_denied_reason)
        n_working = sum(1 for c in children if c.status in WORKING_CHILD)
    else:
        children = list(order.children.all())[::-1]
        fills = list(order.fills.all())[::-1]
        n_children, n_fills = len(children), len(fills)
        # The refusals a person acts on (the risk console raises the same ones); not the
        # engine's own guards, such as a child for more than is left after a fill
        # (EXCEEDS_LEAVES).
        denied = [c for c in children if c.status == "DENIED" and c.reason in RISK_DENIALS]
        n_denied = len(denied)
        last_denied = (denied[0].client_order_id, denied[0].reason) if denied else (None, "")
        n_working = sum(1 for c in children if c.status in WORKING_CHILD)
    return {
        "children": children,
        "fills": fills,
        "n_children": n_children,
        "n_fills": n_fills,
        "n_working": n_working,
        "n_denied": n_denied,
        "last_denied": last_denied,
    }


def _order_rows(orders: list[ParentOrder], user: Any) -> list[dict[str, Any]]:
    subs = [_sub_rows(o) for o in orders]
    coids = {c.client_order_id for s in subs for c in s["children"] if c.status == "DENIED"}
    coids |= {s["last_denied"][0] for s in subs if s["last_denied"][0]}
    every = not any(hasattr(o, "working_rows") for o in orders)
    details = _denial_details(orders, coids, every)
    # An order no worker has taken up yet is timed by its market's clock, once per
    # instrument (it showed "—" beside an identical order a worker had just taken).
    waiting = {o.instrument_id: o.instrument for o in orders if o.session is None}
    clocks = {i: market_clock(inst)["minute"] * 60 for i, inst in waiting.items()}
    return [
        _order_row(o, user, s, details, clocks.get(o.instrument_id))
        for o, s in zip(orders, subs, strict=True)
    ]


def _order_row(
    order: ParentOrder,
    user: Any,
    sub: dict[str, Any],
    details: dict[str, str],
    market_s: float | None = None,
) -> dict[str, Any]:
    shown_children, shown_fills = sub["children"], sub["fills"]
    coid, reason = sub["last_denied"]
    end_s = order.end_minute * 60
    clock = order.session.sim_ts if order.session else market_s
    time_left = None
    time_left_fmt = ""
    if order_is_open(order) and clock is not None:
        time_left = max(0.0, end_s - max(order.start_minute * 60, clock))
        # Before its window: when it starts, not the window's length (a trial read 2:00:00
        # "left" on an order not yet started).
        waits = order.start_minute * 60 - clock
        # Under a second to go is "started": a market standing still just before the start
        # showed "starts in 0:00:00" for as long as it stood (a trial).
        time_left_fmt = f"starts in {_duration(waits)}" if waits >= 1 else _duration(time_left)
    # Left paused until its window ended: no participation to speak of (as the TCA page:
    # a trial read 0.2% here and "—" there).
    realised = order.filled_qty > 0 and order.market_volume > 0 and not order.left_paused
    if realised:  # what it has done, as the TCA page measures it, once it has traded
        participation = round(100 * order.filled_qty / order.market_volume, 1)
    elif not order_is_open(order):  # a blocked one is open: it waits for an override
        participation = None  # ended without trading: it has no participation to expect
    else:
        try:
            # Along the order's own strategy and parameters, as the ticket estimated it (a
            # POV at 20% read 8% here: the plain estimate spreads the order over the window).
            participation = _estimate(
                order.instrument,
                order.quantity,
                order.start_minute,
                order.end_minute,
                order.running_strategy,
                order.running_params(),
            )["participation_pct"]
        except (ScenarioError, ValueError):
            participation = None
    return {
        "o": order,
        # Half up, in whole numbers, as the live page's Math.round: Python's round(11.85, 1)
        # gave 11.8 where the live row showed 11.9 (a browser test on 711 of 6,000).
        "pct": (2000 * order.filled_qty + order.quantity) // (2 * order.quantity) / 10
        if order.quantity
        else 0,
        "shortfall_bps": _shortfall_bps(order),
        "participation_pct": participation,
        "participation_realised": realised,
        "time_left_s": time_left,
        # The market time the row was drawn at: the page's clock never goes back from it
        # (a blocked order's one event replayed its entry time over it: a trial).
        "clock_s": clock if order_is_open(order) else None,
        "window": f"{_short_clock(order.start_minute * 60)}–{_short_clock(end_s)}",
        # The market day the window is on (a trial: orders of five days all read
        # "09:30–16:00"); an old order without one has none to show.
        "day": order.session.day if order.session else order.day,
        # Newest first, as the live page adds them.
        "children": [
            {"c": c, "at": session_clock(c.sim_ts), "detail": details.get(c.client_order_id, "")}
            for c in shown_children
        ],
        "fills": [{"f": f, "at": session_clock(f.sim_ts)} for f in shown_fills],
        "children_total": sub["n_children"],
        "children_hidden": sub["n_children"] - len(shown_children),
        "fills_total": sub["n_fills"],
        "fills_hidden": sub["n_fills"] - len(shown_fills),
        "working_children": sub["n_working"],
        # The execution policy's refusals are the trader's business too: an order that
        # cannot place its children falls behind, and the row says why.
        "denied": sub["n_denied"],
        "denied_reason": f"{reason}: {details[coid]}" if details.get(coid) else reason,
        "mine": order.owner_id == user.pk and user.has_perm(TRADE),
        "qty_fmt": f"{order.quantity:,}",
        "entered_fmt": f"{order.entered_quantity:,}" if order.entered_quantity is not None else "",
        "filled_fmt": f"{order.filled_qty:,}",
        "working_fmt": f"{order.working_qty:,}",
        "time_left_fmt": time_left_fmt,
        # What the amend dialog offers: the running strategy's (after a fallback, TWAP's).
        "params_json": json.dumps(order.running_params()),
        "allowed": sorted(a for a, states in CONTROLS.items() if order.status in states),
        "open": order_is_open(order) or order.status == BLOCKED,
    }


def _page_config(request: HttpRequest) -> dict[str, Any]:
    return {
        "ws_path": "/ws/blotter/",
        "controls": {a: sorted(s) for a, s in CONTROLS.items()},
        "schemas": strategy_schemas(),
        "row_url": reverse("order_row", args=[0]).replace("/0/", "/{id}/"),
        "control_url": reverse("order_control", args=[0]).replace("/0/", "/{id}/"),
        "detail_url": reverse("order_detail", args=[0]).replace("/0/", "/{id}/"),
        "counted_denials": sorted(RISK_DENIALS),  # what the row's "N denied" counts
        # Every visible order, shown or not: the socket's catch-up replays only what is new.
        "last_seq": {
            str(pk): seq
            for pk, seq in orders_visible_to(request.user)
            .select_related(None)
            .values_list("id", "last_seq")
        },
    }


def _risk_config(request: HttpRequest) -> dict[str, Any] | None:
    """A trader's risk side of the blotter: the alert banner as it stands now (kill
    switches over their orders, escalated exceptions about them), and where to stop their
    trading or ask for an override."""
    if not request.user.has_perm(TRADE):
        return None
    alerts = trader_alerts(request.user)
    return {
        "me": request.user.get_username(),
        "desk": alerts["desk"],
        "kills": alerts["kills"],
        "exceptions": alerts["exceptions"],
        "kill_url": reverse("risk_kill"),
        "preview_url": reverse("risk_kill_preview"),
        "override_url": reverse("risk_override_request"),
    }


def _visible(request: HttpRequest) -> Any:
    return orders_visible_to(request.user).select_related("session")


@login_required
@require_GET
def blotter(request: HttpRequest) -> HttpResponse:
    if not can_watch_orders(request.user):
        # The home page: an admin goes to their own first screen, as after logging in,
        # rather than a "not allowed" page (a trial).
        from oversight.roles import MANAGE_USERS, VIEW_AUDIT

        for perm, page in ((MANAGE_USERS, "user_list"), (VIEW_AUDIT, "audit_list")):
            if request.user.has_perm(perm):
                return redirect(page)
    _require_watcher(request)
    # Anyone watching notices a dead worker: its orders show SUSPENDED, not a frozen WORKING.
    sessions_reap()
    blocked_expire()  # a blocked order whose window has ended shows EXPIRED, not Override
    config = _page_config(request)  # first: a row read after it is never behind it
    config["risk"] = _risk_config(request)
    rows = _order_rows(list(_with_sub_rows(_visible(request))[:BLOTTER_ROWS]), request.user)
    return render(
        request,
        "execution/blotter.html",
        {
            "rows": rows,
            "config": config,
            "can_trade": request.user.has_perm(TRADE),
        },
    )


@login_required
@require_GET
def order_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One blotter row, for an order that appeared after the page loaded."""
    _require_watcher(request)
    order = get_object_or_404(_with_sub_rows(_visible(request)), pk=pk)
    return render(
        request, "execution/_order_row.html", {"r": _order_rows([order], request.user)[0]}
    )


@login_required
@permission_required(TRADE, raise_exception=True)
def order_new(request: HttpRequest) -> HttpResponse:
    # Bound on every POST, an empty one too: `request.POST or None` left a POST with no form
    # fields (a JSON body, or none) unbound, and reading its cleaned data was a 500 (a trial).
    form = OrderTicketForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if request.content_type == "application/json":
            form.add_error(
                None, "the ticket takes form fields (application/x-www-form-urlencoded), not JSON"
            )
        form.check_params()
        # The service is asked even when a parameter is already known to be bad, so the
        # trader sees every field's message at once; it creates nothing unless all pass.
        if not form.is_valid():
            form.check_parsed()
        else:
            d = form.cleaned_data
            try:
                order = parent_order_submit(
                    user=request.user,
                    instrument=d["instrument"],
                    side=d["side"],
                    quantity=d["quantity"],
                    start_minute=d["start_minute"],
                    end_minute=d["end_minute"],
                    strategy=d["strategy"],
                    params=form.raw_params(),
                    limit_price=d["limit_price"],
                )
            except ValidationError as e:
                if hasattr(e, "error_dict"):
                    form.add_service_errors(e.message_dict)
                else:
                    form.add_service_errors({"__all__": e.messages})
            else:
                what = (
                    f"{order.side} {order.quantity:,} {order.instrument.symbol} "
                    f"by {order.strategy.upper()}"
                )
                if order.status == BLOCKED:
                    # Created, but held by pre-trade risk: not a success to celebrate.
                    messages.warning(
                        request,
                        f"Order {order.pk} ({what}) is blocked by pre-trade risk and was not "
                        f"sent: {order.status_reason}. A risk manager may grant an override "
                        "or reject it.",
                    )
                else:
                    messages.success(
                        request,
                        f"Order {order.pk} submitted: {what}"
                        f"{_late_start(order, d['start_minute'])}",
                    )
                return redirect("blotter")
    approved = approved_names()  # one query for the fields and the schemas
    param_fields = form.param_fields(approved)
    return render(
        request,
        "execution/ticket.html",
        {
            "form": form,
            "param_fields": param_fields,
            "param_fields_have_errors": any(pf["errors"] for pf in param_fields),
            # A refusal of the whole order (a kill switch) has no field to stand beside.
            "fields_have_errors": any(k != "__all__" for k in form.errors),
            "schemas": strategy_schemas(approved),
            "kill_switches": _ticket_kills(request.user),
            "instruments": {
                str(i.pk): {
                    "symbol": i.symbol,
                    "tick": _plain(i.tick_size),
                    "px": price(i.reference_price),
                    # Where its market's clock is: an untouched 0-60 window moves there
                    # before any estimate (it stayed at 09:30 with the market at 13:05
                    # until a quantity was typed, and was refused: a trial).
                    "minute": market_clock(i)["minute"],
                }
                for i in Instrument.objects.all()
            },
        },
        status=400 if request.method == "POST" else 200,
    )


def _late_start(order: ParentOrder, entered_start: float) -> str:
    """An order whose window had begun starts at the market's clock, not in the past (it
    would otherwise take at once what its schedule says is behind), and is stored so:
    say so."""
    if order.start_minute - entered_start < 1 / 60:  # a few seconds' lag is no news
        return ""
    entered = session_clock(entered_start * 60, ms=False)
    start = session_clock(order.start_minute * 60, ms=False)
    end = session_clock(order.end_minute * 60, ms=False)
    return (
        f". Its window was to open at {entered}, but the {order.instrument.symbol} market was "
        f"at {start}: it works from then to {end}, on that shorter window's schedule"
    )


def _ticket_kills(user: Any) -> list[dict[str, str]]:
    """The kill switches that would refuse an order from this ticket, said before it is
    filled in: those over the trader (firm, desk, themself) stop every order; those on an
    instrument, strategy or model stop orders that pick it."""
    from oversight.risk.models import KillSwitch
    from oversight.risk.pretrade import desk_of

    desk, name = desk_of(user.pk), user.get_username()
    out = []
    for k in KillSwitch.objects.filter(active=True).exclude(scope_type="order").order_by("pk"):
        if k.scope_type == "desk" and k.scope_key != desk:
            continue
        if k.scope_type == "trader" and k.scope_key != name:
            continue
        every = k.scope_type in ("firm", "desk", "trader")
        halted = k.state == "HALTED"
        where = f"{k.scope_type} {k.scope_key}".strip()
        # Reduce-only refuses only what adds to a position (a trial: the banner said every
        # order was refused, and a reducing sell went through).
        effect = (
            ("" if every else f"; an order on this {k.scope_type} is refused")
            if halted
            else "; only an order that reduces your position without reversing it is accepted"
        )
        out.append(
            {
                "text": f"{where}: {'halted' if halted else 'reduce-only'} by kill switch "
                f"{k.pk} ({k.reason}){effect}"
            }
        )
    return out


@login_required
@require_GET
def order_estimate(request: HttpRequest) -> JsonResponse:
    """The ticket's estimate, and with every answer the kill switches that would refuse
    its order now: the ticket asks again every few seconds, so its banner follows a reset
    (it kept a reset kill switch's warning until a reload: a trial)."""
    if not request.user.has_perm(TRADE):
        return JsonResponse({"error": "traders only"}, status=403)
    typed = request.GET.get("instrument", "")
    instrument = Instrument.objects.filter(pk=int(typed)).first() if plain_id(typed) else None
    if instrument is not None and request.GET.get("quantity", "").strip() == "":
        # Not bad input: a ticket not filled in yet, asking for its banner.
        data: dict[str, Any] = {"error": "enter a quantity for the estimate"}
        status = 200
    else:
        data, status = _order_estimate(request, instrument)
    data["kills"] = [k["text"] for k in _ticket_kills(request.user)]
    if instrument is not None and "market" not in data:
        # Where the market is, with every answer: a ticket without a quantity, or with a
        # window the market has passed, showed no clock or a stale one (a trial).
        clock = market_clock(instrument)
        data["market"] = {**clock, "at": session_clock(clock["minute"] * 60, ms=False)}
    return JsonResponse(data, status=status)


def _order_estimate(
    request: HttpRequest, instrument: Instrument | None
) -> tuple[dict[str, Any], int]:
    """The estimate and its status, or what is wrong and 400; `instrument`: the one the
    ticket names, read once by the caller (None: no such instrument)."""
    # As the ticket reads them (a review: "１０００" was costed as 1000, a side of "x" as a
    # buy, an unknown strategy as none, all without a word).
    for name in ("quantity", "start_minute", "end_minute"):
        raw = request.GET.get(name, "")
        if name == "quantity" and whole_shares(raw) is not None:
            continue  # "12,000", as the ticket takes it
        if not written_plainly_no_exponent(raw):
            return {"error": f"{name}: write it with the digits 0-9"}, 400
    if request.GET.get("side", "buy") not in ("buy", "sell"):
        return {"error": 'side: must be "buy" or "sell"'}, 400
    strategy = request.GET.get("strategy", "")
    if strategy and strategy not in strategy_names():
        return {"error": f"strategy: unknown; one of {', '.join(strategy_names())}"}, 400
    if instrument is None:
        # Named, not "fill in instrument, quantity and window" (a fuzz); and in 0-9 only:
        # int() read "١" and " 1 " as instrument 1.
        shown = request.GET.get("instrument", "")[:40]
        return {
            "error": f"instrument: there is no instrument {shown!r}; choose one from the list"
        }, 400
    raw_qty = request.GET.get("quantity", "").strip()
    quantity = whole_shares(raw_qty)
    if quantity is None:
        # Each field by name: "-5", "12.5" and "abc" were all "fill in quantity and
        # window", where 0 was told exactly what was wrong (a trial).
        if not raw_qty:
            return {"error": "fill in quantity (whole shares) and window (minutes)"}, 400
        return {
            "error": f"quantity: a positive whole number of shares (12,000 or 12000), "
            f"not {raw_qty[:40]!r}"
        }, 400
    try:
        start = float(request.GET.get("start_minute", ""))
        end = float(request.GET.get("end_minute", ""))
    except ValueError:
        return {"error": "fill in the window: start and end, in minutes from the open"}, 400
    problem = quantity_problem(quantity)
    if problem:
        return {"error": f"quantity {problem}"}, 400
    limit, problem = clean_limit(request.GET.get("limit_price", "").strip(), instrument.tick_size)
    if problem:
        return {"error": f"limit price {problem}"}, 400
    if not (0 <= start < end <= 390):
        return {"error": "the window must satisfy 0 ≤ start < end ≤ 390"}, 400
    if end - start < MIN_WINDOW_MINUTES:
        return {"error": f"the window must last at least {MIN_WINDOW_MINUTES:g} minute"}, 400
    try:
        params = {
            key.removeprefix(PARAM_PREFIX): value.strip()
            for key, value in request.GET.items()
            if key.startswith(PARAM_PREFIX) and value.strip() != ""
        }
        clock = market_clock(instrument)
        at = session_clock(clock["minute"] * 60, ms=False)
        # A window that has begun is worked from the market's clock (the worker starts it
        # there): cost what is left of it, not the whole window typed.
        late = start < clock["minute"] < end
        worked_start = clock["minute"] if late else start
        est = _estimate(
            instrument,
            quantity,
            worked_start,
            end,
            request.GET.get("strategy", ""),
            params,
        )
        est["market"] = {**clock, "at": at}
        if end <= clock["minute"]:
            est["warnings"].append(
                f"the {instrument.symbol} market is at {at} of day "
                f"{clock['day']}: this window has already ended"
            )
        elif end <= clock["minute"] + 1:
            est["warnings"].append(
                f"the {instrument.symbol} market is at {at} of day {clock['day']}: this "
                "window ends within a minute, too soon to work an order (it must end at "
                "least a minute after the market's clock)"
            )
        elif late:
            est["warnings"].append(
                f"the {instrument.symbol} market is at {at}: the order would work from then "
                f"to {session_clock(end * 60, ms=False)}, and is costed so"
            )
        side = request.GET.get("side", "buy")
        side = side if side in ("buy", "sell") else "buy"
        # The market's price is read once, and only for a limit (the estimate runs at
        # each keystroke).
        market = market_price(instrument) if limit is not None else Decimal(0)
        if limit is not None:
            est["warnings"].extend(_limit_words(market, side, limit, est))
        # What would refuse the order outright (a kill switch, a restriction): said now,
        # not after the whole ticket is filled in.
        strategy = request.GET.get("strategy", "")
        version, expert = _ticket_model(est, instrument, quantity, strategy, params)
        scopes = order_scopes(
            user=request.user,
            instrument=instrument,
            strategy=strategy if strategy in strategy_names() else "",
            model=version.name if version is not None else "",
            expert=expert["model"] if expert is not None else "",
        )
        for f in refusals(
            user=request.user,
            instrument=instrument,
            side=side,
            quantity=quantity,
            scopes=scopes,
        ):
            est["warnings"].append(f"this order would be refused: {f.message}")
        away = limit_away_problem(side=side, limit_price=limit, market=market, scopes=scopes)
        if away:
            est["warnings"].append(f"this order would be refused: {away}")
        # And the limits that would block it until a risk manager overrides them, or
        # refuse it for being more than an override may release.
        found = breaches(
            user=request.user,
            instrument=instrument,
            side=side,
            quantity=quantity,
            limit_price=limit,
            start_minute=worked_start,  # as the order would be stored
            end_minute=end,
            scopes=scopes,
            lock=False,
            params=params,
        )
        for f in beyond_override(found):
            est["warnings"].append(f"this order would be refused: {f}")
        for f in found:
            if not f.beyond_override:
                est["warnings"].append(
                    f"this order would be blocked until a risk manager overrides it: {f}"
                )
        return est, 200
    except (ScenarioError, ValueError) as e:
        return {"error": str(e)}, 400


FAT_FINGER_BPS = 1000.0  # a limit this far through the market protects nothing


def _limit_room_bps(market: Decimal, side: str, limit: Decimal) -> float:
    """How far, in bps of the market's price, the price may move the order's way before it
    reaches the limit (negative: the limit is beyond the market). `market` > 0."""
    return float((limit - market) / market) * 1e4 * (1 if side == "buy" else -1)


def _limit_words(market: Decimal, side: str, limit: Decimal, est: dict[str, Any]) -> list[str]:
    """What a limit price does to the estimate, which is costed without one: a limit
    the price may cross within the window can leave part of the order unfilled; one
    inside the spread can only rest; one beyond the market leaves the order waiting; one
    far through the market protects nothing (a fat finger's). `market`: its price now."""
    if market <= 0:
        return []
    room = _limit_room_bps(market, side, limit)
    half_spread = est["spread_cost_bps"]
    reach = est["cost_bps"] + 2 * est["uncertainty_bps"]
    about = f"the market (about {price(market)})"
    if abs(room) < 0.05:
        said = f"the limit {price(limit)} is at {about}"
    else:
        way = "above" if (room > 0) == (side == "buy") else "below"
        said = f"the limit {price(limit)} is {abs(room):.1f} bps {way} {about}"
    costed = "the estimate is costed without the limit"
    if room < -half_spread:
        return [
            f"{said}: nothing trades until the price comes to it, so the order may fill "
            f"little or nothing; {costed}"
        ]
    if room < half_spread:
        return [
            f"{said}, inside the spread: the order can only rest at the limit or better "
            f"until the price comes its way, so part of it may be left unfilled; {costed}"
        ]
    if room < reach:
        return [
            f"{said}, inside the expected cost plus two standard deviations ({reach:.1f} "
            f"bps): if the price moves away, part of the order may be left unfilled; {costed}"
        ]
    if room > FAT_FINGER_BPS:
        return [
            f"{said}: that far through the market it protects nothing; check it is the "
            "price you meant"
        ]
    return []


def _ticket_model(
    est: dict[str, Any],
    instrument: Instrument,
    quantity: int,
    strategy: str,
    params: dict[str, str],
) -> tuple[ModelVersion | None, dict[str, Any] | None]:
    """For a strategy with a model: which version, and which of a gated version's experts,
    would trade the order (`est["model"]`), or why none would (a warning); the version and
    the expert."""
    if strategy not in strategy_names():
        return None, None
    schema = strategy_class(strategy).schema()
    if not any(p.name == "model" for p in schema):
        return None, None
    try:
        clean = validate_params(schema, params)
    except ParamError:
        clean = validate_params(schema, {})  # the estimate already says which field is wrong
    version, why = ticket_version(params.get("model", ""))
    if version is None:
        est["warnings"].append(f"model: {why}")
        return None, None
    expert = expert_for(version, instrument)
    est["model"] = ticket_model_words(
        version, instrument, quantity, int(clean["min_child_qty"]), expert
    )
    problem = band_problem(version, instrument)
    if problem:
        est["warnings"].append(f"model: {problem}")
    return version, expert


def _chart_data(order: ParentOrder) -> dict[str, Any]:
    fills: dict[str, dict[str, list[Any]]] = {}
    cum: dict[str, list[Any]] = {"x": [], "y": []}
    target: dict[str, list[Any]] = {"x": [], "y": []}
    mid: dict[str, list[Any]] = {"x": [], "y": []}
    total = 0
    # Only up to the row's last_seq: the page resumes the websocket from there.
    for e in OrderEvent.objects.filter(
        parent=order, seq__lte=order.last_seq, kind__in=("ChildFilled", "ParentProgress")
    ).order_by("seq"):
        p = e.payload
        at = "1970-01-01 " + session_clock(e.sim_ts)
        if e.kind == "ChildFilled":
            v = fills.setdefault(p["venue"], {"x": [], "y": [], "qty": []})
            v["x"].append(at)
            v["y"].append(float(p["px"]))
            v["qty"].append(p["qty"])
            total += int(p["qty"])
            cum["x"].append(at)
            cum["y"].append(total)
        else:
            target["x"].append(at)
            target["y"].append(p["target_qty"])
            if p.get("mid_px") is not None:
                mid["x"].append(at)
                mid["y"].append(float(p["mid_px"]))
    return {
        "fills": fills,
        "cum": cum,
        "target": target,
        "mid": mid,
        "quantity": order.quantity,
        "start_s": order.start_minute * 60,
        "end_s": order.end_minute * 60,
        # Reference prices across the window: an order with no fill yet still has a price
        # axis that means something, and a trader sees where the limit sits.
        "arrival": float(order.arrival_price) if order.arrival_price else None,
        "limit": float(order.limit_price) if order.limit_price is not None else None,
    }


@login_required
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_watcher(request)
    config = _page_config(request)
    order = get_object_or_404(_visible(request).prefetch_related("children", "fills"), pk=pk)
    config["order_id"] = order.pk
    return render(
        request,
        "execution/order_detail.html",
        {
            "r": _order_rows([order], request.user)[0],
            "o": order,
            "chart": _chart_data(order),
            "config": config,
            "controls": ControlRequest.objects.filter(parent=order).select_related("requested_by"),
            "expert": _expert_of(order),
            "curve_alone": order.by_curve_alone,
            "small_lots": SMALL_ORDER_LOTS,
            "exceptions": _exceptions_of(order),
        },
    )


def _exceptions_of(order: ParentOrder) -> list[Any]:
    """The exceptions raised about this order, newest first, in full: the status line keeps
    only 255 characters of a fallback's reason, the exception keeps all of it (a note)."""
    return list(RiskException.objects.filter(order=order).order_by("-id")[:ORDER_EXCEPTIONS])


def _expert_of(order: ParentOrder) -> dict[str, Any] | None:
    """The expert that trades the order, as recorded when it was entered, with its band
    from the version's file while that file still says so (a trial: once the file changed,
    the page dropped the line); for an order entered before the record, from the file."""
    if order.model_version is None:
        return None
    live = expert_for(order.model_version, order.instrument)
    if not order.model_expert:
        return live
    if live is not None and live["model"] == order.model_expert:
        return live
    return {"model": order.model_expert, "band_unknown": True}


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _control_changes(request: HttpRequest) -> dict[str, str]:
    """The amend dialog's non-blank parameter fields; the service validates each one."""
    return {
        key.removeprefix(PARAM_PREFIX): value.strip()
        for key, value in request.POST.items()
        if key.startswith(PARAM_PREFIX) and value.strip() != ""
    }


_CONTROL_FORM = {"csrfmiddlewaretoken", "action", "reason", "next", "order"}


def _only_amendable(request: HttpRequest) -> None:
    """An amend names only what may change (the strategy's parameters, the limit price);
    any other field is refused by name rather than ignored with "nothing to amend"."""
    other = sorted(
        k for k in request.POST if k not in _CONTROL_FORM and not k.startswith(PARAM_PREFIX)
    )
    if other == ["limit_price"]:  # amendable, under the dialog's name
        raise ValidationError("limit_price: send it as param_limit_price, as the amend dialog does")
    if other:
        shown = ", ".join(k[:40] for k in other[:5])
        raise ValidationError(
            f"{shown}: cannot be amended; an amend changes the strategy's parameters, the "
            "limit price and, down, the quantity (param_quantity); for another side or window, "
            "cancel and enter a new order"
        )


@login_required
@require_POST
def order_control(request: HttpRequest, pk: int) -> HttpResponseBase:
    order = orders_visible_to(request.user).filter(pk=pk).first()
    if order is None:
        if ParentOrder.objects.filter(pk=pk).exists():
            # Answered as if there were none (nothing about another's order leaks), but
            # recorded: someone tried to control an order that is not theirs to see.
            record_denied(request, f"order {pk} is not one they may see")
        if _wants_json(request):  # the blotter's script: an answer it can show
            return JsonResponse(
                {"ok": False, "errors": {"__all__": [f"there is no order {pk} you can see"]}},
                status=404,
            )
        raise Http404(f"there is no order {pk} you can see")
    if not (request.user.has_perm(TRADE) and order.owner_id == request.user.pk):
        if _wants_json(request):
            return JsonResponse(
                {"ok": False, "errors": {"__all__": ["only the order's trader may control it"]}},
                status=403,
            )
        raise PermissionDenied("only the order's trader may control it")
    if request.content_type == "application/json":
        said = "controls take form fields (application/x-www-form-urlencoded), not JSON"
        if _wants_json(request):
            return JsonResponse({"ok": False, "errors": {"__all__": [said]}}, status=400)
        messages.error(request, f"Order {order.pk}: {said}")
        return _back(request, order)
    action = request.POST.get("action", "")
    changes = _control_changes(request) if action == ControlRequest.AMEND else None
    if action == ControlRequest.RESUME:
        # Re-planned unless told "0": the dialog ticks it by default, and a client that did
        # not send the field resumed without it, silently (a trial).
        changes = {"replan": request.POST.get("replan", "1")}
    cleared = request.POST.get(PARAM_PREFIX + "limit_price")
    if changes is not None and cleared is not None and not cleared.strip() and order.limit_price:
        # The dialog shows the limit; emptying it removes it (a blank strategy parameter
        # stays as it was: the dialog shows every one, and blank means untouched).
        changes["limit_price"] = ""
    try:
        if action == ControlRequest.AMEND:
            _only_amendable(request)
        req = order_control_request(
            user=request.user,
            order=order,
            action=action,
            changes=changes,
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as e:
        errors = e.message_dict if hasattr(e, "error_dict") else {"__all__": e.messages}
        if _wants_json(request):
            return JsonResponse({"ok": False, "errors": errors}, status=400)
        for key, msgs in errors.items():
            label = "" if key in ("__all__", "action") else key.removeprefix(PARAM_PREFIX) + ": "
            for m in msgs:
                messages.error(request, f"Order {order.pk}: {label}{m}")
        return _back(request, order)
    # One that no worker holds (blocked, or suspended by a lost worker) is canceled here and
    # now (a trial: the message said a worker would apply it).
    text = (
        f"Order {order.pk}: canceled"
        if req.applied_at is not None
        else f"Order {order.pk}: {action} requested; the worker applies it at its next step"
    )
    if action == ControlRequest.RESUME:
        text += (
            " (re-planned: what is left is spread over what is left of the window)"
            if (req.changes or {}).get("replan")
            else " (not re-planned: it catches up with its schedule)"
        )
    if action == ControlRequest.AMEND and (req.changes or {}).get("limit_price"):
        text += _fat_finger_note(order, str(req.changes["limit_price"]))
    if _wants_json(request):
        return JsonResponse(
            {"ok": True, "message": text, "request_id": req.pk, "changes": req.changes}
        )
    # A request that waits for the worker is marked, so the live page can say its outcome.
    waiting = "" if req.applied_at is not None else f"{order.pk}:{action}:{order.status}"
    messages.success(request, text, extra_tags=waiting)
    return _back(request, order)


def _fat_finger_note(order: ParentOrder, limit_text: str) -> str:
    """The ticket's word on a limit far through the market, said on an amend to one too: a
    trial amended a $40.6 sell's limit to $1, and was told only "amend requested"."""
    try:
        limit = Decimal(limit_text)
    except ArithmeticError:
        return ""
    market = market_price(order.instrument)
    if market <= 0:
        return ""
    room = _limit_room_bps(market, order.side, limit)
    if room <= FAT_FINGER_BPS:
        return ""
    way = "above" if order.side == "buy" else "below"
    return (
        f". Note: the limit {price(limit)} is {room:,.0f} bps {way} the market (about "
        f"{price(market)}): that far through the market it protects nothing; check it is the "
        "price you meant"
    )


def _back(request: HttpRequest, order: ParentOrder) -> HttpResponse:
    nxt = request.POST.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return redirect(nxt)
    return redirect("blotter")


@cache
def _plotly_js() -> tuple[bytes, str]:
    from plotly.offline import get_plotlyjs

    body = get_plotlyjs().encode()
    return body, hashlib.sha256(body).hexdigest()[:16]


@require_GET
def plotly_js(request: HttpRequest) -> HttpResponse:
    """plotly.js from the installed plotly package: a trading floor may have no internet."""
    body, etag = _plotly_js()
    quoted = f'"{etag}"'
    if request.headers.get("If-None-Match") == quoted:
        resp = HttpResponse(status=304)
    else:
        resp = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    resp["ETag"] = quoted
    resp["Cache-Control"] = "public, max-age=86400"
    return resp
