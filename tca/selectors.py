"""Reads for the TCA page: a user's finished orders with what their results need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, FloatField, JSONField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Greatest

from execution.algos.adaptive import SMALL_ORDER_LOTS
from execution.engine.orders import ParentStatus
from execution.models import OrderEvent, ParentOrder, adaptive_default_lot
from execution.selectors import orders_visible_to
from tca.summary import OrderFacts, OrderResult, order_result

FINISHED = (ParentStatus.FILLED.value, ParentStatus.CANCELED.value, ParentStatus.EXPIRED.value)
TCA_ROWS = 500  # newest first; the page says when there are more
CURVE_ALONE = f"its curve, no model (under {SMALL_ORDER_LOTS} lots)"


@dataclass(frozen=True, slots=True)
class TcaRow:
    order: ParentOrder
    result: OrderResult


def tca_orders(
    *,
    user: Any,
    trader: str = "",
    instrument: str = "",
    strategy: str = "",
    side: str = "",
    model: str = "",
) -> QuerySet[ParentOrder]:
    """The finished orders the user may see that have an arrival price, newest first, each
    with the market over its window from its final status event (the engine puts the mid
    when the order ended, the market's volume and VWAP there): correlated subqueries in
    the same SELECT, not a query per order. Where that event does not carry them (an order
    cancelled while suspended has no market to ask for its end mid), they are None."""
    # One correlated subquery: the final event's whole payload, read in Python.
    final_status = OrderEvent.objects.filter(
        parent=OuterRef("pk"), kind="ParentStatusChanged"
    ).order_by("-seq")

    qs = (
        orders_visible_to(user)
        .select_related("model_version", "session")
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
    if model:  # a version, or an expert of a gated one, where the expert traded it
        qs = qs.annotate(
            # As a number, whatever JSON number it was stored as ("100" or 100.0: a cast
            # to an integer refuses the second on PostgreSQL, a review).
            _lot=Coalesce(
                Cast(KT("params__min_child_qty"), FloatField()),
                Value(float(adaptive_default_lot())),
            ),
            _size=Greatest("quantity", Coalesce("entered_quantity", "quantity")),
        ).filter(
            Q(model_version__name=model)
            # An order too small for the model records the expert it would have had; it
            # was worked along its curve alone (ParentOrder.by_curve_alone).
            | Q(model_expert=model, _size__gte=F("_lot") * SMALL_ORDER_LOTS)
        )
    return qs.annotate(
        final_payload=Subquery(final_status.values("payload")[:1], output_field=JSONField())
    ).order_by("-id")


def _number(payload: Any, key: str) -> float | None:
    """A payload's number or decimal string (prices are written as strings); None if the
    payload, or the value, is absent."""
    value = payload.get(key) if isinstance(payload, dict) else None
    return None if value is None or value == "" else float(value)


def order_facts(order: ParentOrder) -> OrderFacts:
    """An order from tca_orders, as the pure summary takes it."""
    final = getattr(order, "final_payload", None)
    left_paused = order.left_paused
    return OrderFacts(
        order_id=order.pk,
        strategy=order.strategy,
        side=order.side,
        qty=order.quantity,
        filled_qty=order.filled_qty,
        arrival_px=float(order.arrival_price),  # tca_orders keeps only orders that have one
        avg_px=float(order.avg_price) if order.avg_price is not None else None,
        end_mid_px=_number(final, "end_mid_px"),
        market_volume=_number(final, "market_volume"),
        market_vwap_px=_number(final, "market_vwap_px"),
        # Canceled, or left paused by its trader until the window ended: not the
        # strategy's doing (a trial's paused orders counted against TWAP's fill rate).
        stopped=order.status == "CANCELED" or left_paused,
        left_paused=left_paused,
        fallback=order.fallback_strategy or "",
        model=_model_label(order),
    )


def _model_label(order: ParentOrder) -> str:
    """What traded the order: its version and, for a gated one, the expert (how did v13
    do?); an order too small for the model says so, not the model's name (a note: such
    orders showed 0.00 bps under it)."""
    if order.model_version is None:
        return ""
    if order.by_curve_alone:
        return f"{order.model_version.name} · {CURVE_ALONE}"
    return order.model_version.name + (f" · {order.model_expert}" if order.model_expert else "")


def tca_rows(*, user: Any, limit: int, **filters: str) -> tuple[list[TcaRow], bool]:
    """Up to ``limit`` newest rows, and whether there were more."""
    orders = list(tca_orders(user=user, **filters)[: limit + 1])
    rows = [TcaRow(o, order_result(order_facts(o))) for o in orders[:limit]]
    return rows, len(orders) > limit
