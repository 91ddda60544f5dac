"""Reads: which orders a user may see, and the event history a blotter replays."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

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


def events_after(user: Any, last_seq: dict[int, int], *, limit: int = 5000) -> list[dict[str, Any]]:
    """Every stored event of the user's visible orders after the sequence numbers given
    (all events of an order not listed), oldest first per order."""
    out: list[dict[str, Any]] = []
    for order in orders_visible_to(user).filter(last_seq__gt=0).order_by("id"):
        since = last_seq.get(order.pk, 0)
        if order.last_seq <= since:
            continue
        for e in OrderEvent.objects.filter(parent=order, seq__gt=since).order_by("seq")[:limit]:
            out.append({**e.payload, "order_id": order.pk})
    return out


def market_day_next(instrument: Any) -> tuple[int, float]:
    """The (day, simulated seconds after the open) at which the instrument's next market
    session starts: where the last one stopped, unless that day had closed."""
    last = MarketSession.objects.filter(instrument=instrument).order_by("-pk").first()
    if last is None:
        return 1, 0.0
    if last.sim_ts >= SESSION_SECONDS - 1.0:
        return last.day + 1, 0.0
    return last.day, last.sim_ts


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
