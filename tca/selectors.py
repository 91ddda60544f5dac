"""Reads for the TCA page: a user's finished orders with what their results need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KT

from execution.engine.orders import ParentStatus
from execution.models import OrderEvent, ParentOrder
from execution.selectors import orders_visible_to
from tca.summary import OrderFacts, OrderResult, order_result

FINISHED = (ParentStatus.FILLED.value, ParentStatus.CANCELED.value, ParentStatus.EXPIRED.value)
TCA_ROWS = 500  # newest first; the page says when there are more


@dataclass(frozen=True, slots=True)
class TcaRow:
    order: ParentOrder
    result: OrderResult


def tca_orders(
    *, user: Any, trader: str = "", instrument: str = "", strategy: str = "", side: str = ""
) -> QuerySet[ParentOrder]:
    """The finished orders the user may see that have an arrival price, newest first, each
    with the market over its window from its final status event (the engine puts the mid
    when the order ended, the market's volume and VWAP there): correlated subqueries in
    the same SELECT, not a query per order. Where that event does not carry them (an order
    cancelled while suspended has no market to ask for its end mid), they are None."""
    final_status = OrderEvent.objects.filter(
        parent=OuterRef("pk"), kind="ParentStatusChanged"
    ).order_by("-seq")

    def final(key: str) -> Subquery:
        return Subquery(final_status.values(v=KT(f"payload__{key}"))[:1])

    qs = (
        orders_visible_to(user)
        .select_related("model_version")
        .filter(status__in=FINISHED, arrival_price__gt=0)
    )
    if trader:
        qs = qs.filter(owner__username=trader)
    if instrument:
        qs = qs.filter(instrument__symbol=instrument)
    if strategy:
        qs = qs.filter(strategy=strategy)
    if side:
        qs = qs.filter(side=side)
    return qs.annotate(
        end_mid_px=final("end_mid_px"),
        end_market_volume=final("market_volume"),
        end_market_vwap_px=final("market_vwap_px"),
    ).order_by("-id")


def _number(value: Any) -> float | None:
    """A JSON payload's number or decimal string (backends return either); None if absent
    or JSON null (which SQLite's text extraction returns as the word "null")."""
    if value is None or value in ("", "null"):
        return None
    return float(value)


def order_facts(order: ParentOrder) -> OrderFacts:
    """An order from tca_orders, as the pure summary takes it."""
    return OrderFacts(
        order_id=order.pk,
        strategy=order.strategy,
        side=order.side,
        qty=order.quantity,
        filled_qty=order.filled_qty,
        arrival_px=float(order.arrival_price),  # tca_orders keeps only orders that have one
        avg_px=float(order.avg_price) if order.avg_price is not None else None,
        end_mid_px=_number(getattr(order, "end_mid_px", None)),
        market_volume=_number(getattr(order, "end_market_volume", None)),
        market_vwap_px=_number(getattr(order, "end_market_vwap_px", None)),
    )


def tca_rows(*, user: Any, limit: int, **filters: str) -> tuple[list[TcaRow], bool]:
    """Up to ``limit`` newest rows, and whether there were more."""
    orders = list(tca_orders(user=user, **filters)[: limit + 1])
    rows = [TcaRow(o, order_result(order_facts(o))) for o in orders[:limit]]
    return rows, len(orders) > limit
