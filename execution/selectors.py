"""Reads: which orders a user may see, and the event history a blotter replays."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Q, QuerySet

from execution.models import MarketSession, OrderEvent, ParentOrder
from execution.sim.calibration import SESSION_SECONDS
from oversight.roles import TRADE, VIEW_ALL_ORDERS


def orders_visible_to(user: Any) -> QuerySet[ParentOrder]:
    qs = ParentOrder.objects.select_related("instrument", "owner")
    if user.has_perm(VIEW_ALL_ORDERS):
        return qs
    if user.has_perm(TRADE):
        return qs.filter(owner=user)
    return qs.none()


def can_watch_orders(user: Any) -> bool:
    return bool(user.is_authenticated and (user.has_perm(VIEW_ALL_ORDERS) or user.has_perm(TRADE)))


def events_after(
    user: Any, last_seq: dict[int, int], *, limit: int = 5000
) -> tuple[list[dict[str, Any]], bool]:
    """The stored events of the user's visible orders after the sequence numbers given,
    oldest first per order, at most `limit` an order, and whether that was all of them
    (if not, the page must ask again for the rest: it cannot tell them from a gap).
    Of an order not listed, only its latest event: a page that does not show the order
    loads its row whole when it hears of it (a blotter), or only notes where it is (an
    order page), so replaying its whole history was megabytes for nothing."""
    out: list[dict[str, Any]] = []
    complete = True
    for order in orders_visible_to(user).filter(last_seq__gt=0).order_by("id"):
        since = last_seq.get(order.pk)
        if since is None:
            since = order.last_seq - 1
        if order.last_seq <= since:
            continue
        for e in OrderEvent.objects.filter(parent=order, seq__gt=since).order_by("seq")[:limit]:
            out.append({**e.payload, "order_id": order.pk})
        complete = complete and order.last_seq - since <= limit
    return out, complete


def in_chunks(events: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """The events in order, in lists whose JSON stays under about `max_bytes` each (a
    websocket message over Daphne's 1 MiB is closed with 1011: a page back from a network
    gap then reconnected for ever); at least one list, empty if there is nothing."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for e in events:
        n = len(json.dumps(e, separators=(",", ":"), default=str)) + 1
        if chunks[-1] and size + n > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(e)
        size += n
    return chunks


# A day whose market stopped this late has no room left for an order (a window must end at
# least a minute after the clock, by the close): the next session opens the next day. At
# the close itself only, an instrument whose market went idle at 15:59:41 could take no
# order, and so never run to the close again (a trial).
DAY_OVER_S = SESSION_SECONDS - 60.0


def day_over(sim_ts: float) -> bool:
    return sim_ts >= DAY_OVER_S


def order_market_day(order: Any) -> int | None:
    """The market day the order's window is on: its session's (the day it traded on), or
    the day it was entered for; None for an old order that has neither."""
    return order.session.day if order.session_id is not None else order.day


def market_day_next(instrument: Any) -> tuple[int, float]:
    """The (day, simulated seconds after the open) at which the instrument's next market
    session starts: where the last one stopped, unless that day is over (day_over)."""
    last = MarketSession.objects.filter(instrument=instrument).order_by("-pk").first()
    if last is None:
        return 1, 0.0
    if day_over(last.sim_ts):
        return last.day + 1, 0.0
    return last.day, last.sim_ts


def market_days() -> dict[int, int]:
    """Every instrument's current market day, as market_clock reads it (its running
    session's day; else the day its next session opens on), in one query."""
    from django.db.models import OuterRef, Subquery

    from execution.models import Instrument

    last = MarketSession.objects.filter(instrument=OuterRef("pk")).order_by("-pk")
    rows = Instrument.objects.annotate(
        last_day=Subquery(last.values("day")[:1]),
        last_ts=Subquery(last.values("sim_ts")[:1]),
        last_status=Subquery(last.values("status")[:1]),
    ).values_list("pk", "last_day", "last_ts", "last_status")
    days: dict[int, int] = {}
    for iid, day, ts, status in rows:
        if day is None:  # never traded: its first session opens on day 1
            days[iid] = 1
        else:
            running = status == MarketSession.RUNNING
            days[iid] = day if running or not day_over(ts) else day + 1
    return days


def trading_today() -> Q:
    """Parent orders of "today" for the daily limits and the filled notional: each on its
    instrument's current market day. A market at speed runs several trading days in one
    calendar day, and a daily limit summed them all and never reset (a trial: day 1's
    $7.85M refused a day-2 order). An order from before orders had a day: entered since
    midnight UTC."""
    from django.utils import timezone

    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    days = market_days()
    current = Q(pk__in=[])  # matches nothing: no instrument, no order of today
    for iid, day in days.items():
        current |= Q(instrument_id=iid, day=day)
    return current | Q(day__isnull=True, created_at__gte=midnight)


def market_clock(instrument: Any) -> dict[str, Any]:
    """The instrument's simulated clock as a ticket shows it: the running session's time,
    or where the next session will start."""
    running = MarketSession.objects.filter(
        instrument=instrument, status=MarketSession.RUNNING
    ).first()
    if running is not None:
        return {"day": running.day, "minute": running.sim_ts / 60.0, "running": True}
    day, ts = market_day_next(instrument)
    return {"day": day, "minute": ts / 60.0, "running": False}
