"""Reads: which orders a user may see, and the event history a blotter replays."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from execution.models import OrderEvent, ParentOrder
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
