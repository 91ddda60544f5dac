"""Parent and child orders as state machines.

An order changes only by `apply(event)`; each event kind is allowed from a fixed set of
states (the transition tables below), anything else raises InvalidTransition. Fills are
checked for overfill and for a repeated (venue, trade_id), so a retried report can never
count twice.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from execution.engine.events import (
    ChildAccepted,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildDenied,
    ChildEvent,
    ChildFilled,
    ChildRejected,
    ChildSubmitted,
    DomainEvent,
    ParentStatusChanged,
)


class InvalidTransition(Exception):
    pass


class ChildStatus(StrEnum):
    INITIALIZED = "INITIALIZED"
    SUBMITTED = "SUBMITTED"
    DENIED = "DENIED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"


C = ChildStatus
_LIVE = frozenset({C.ACCEPTED, C.PARTIALLY_FILLED, C.PENDING_CANCEL})
CHILD_TRANSITIONS: dict[type[ChildEvent], frozenset[ChildStatus]] = {
    ChildSubmitted: frozenset({C.INITIALIZED}),
    ChildDenied: frozenset({C.INITIALIZED}),
    # A cancel may be requested before the venue's ack or reject has come back.
    ChildAccepted: frozenset({C.SUBMITTED, C.PENDING_CANCEL}),
    ChildRejected: frozenset({C.SUBMITTED, C.PENDING_CANCEL}),
    ChildFilled: _LIVE,
    ChildCancelRequested: frozenset({C.SUBMITTED, C.ACCEPTED, C.PARTIALLY_FILLED}),
    ChildCancelRejected: frozenset({C.PENDING_CANCEL}),
    # A cancel can land while we still wait for the ack (an IOC remainder, an outage).
    ChildCanceled: _LIVE | {C.SUBMITTED},
}
CHILD_TERMINAL = frozenset({C.DENIED, C.REJECTED, C.FILLED, C.CANCELED})


class ChildOrder:
    __slots__ = (
        "_before_cancel",
        "_trade_ids",
        "client_order_id",
        "filled_qty",
        "intent",
        "parent_id",
        "px_ticks",
        "qty",
        "side",
        "status",
        "venue",
    )

    def __init__(
        self,
        *,
        client_order_id: str,
        parent_id: str,
        venue: str,
        side: int,
        qty: int,
        px_ticks: int | None,
        intent: str,
    ) -> None:
        self.client_order_id = client_order_id
        self.parent_id = parent_id
        self.venue = venue
        self.side = side
        self.qty = qty
        self.px_ticks = px_ticks
        self.intent = intent
        self.filled_qty = 0
        self.status = ChildStatus.INITIALIZED
        self._before_cancel = ChildStatus.ACCEPTED
        self._trade_ids: set[str] = set()

    @property
    def leaves_qty(self) -> int:
        return self.qty - self.filled_qty if self.is_open else 0

    @property
    def is_open(self) -> bool:
        return self.status not in CHILD_TERMINAL

    def apply(self, event: ChildEvent) -> None:
        allowed = CHILD_TRANSITIONS.get(type(event))
        if allowed is None or self.status not in allowed:
            raise InvalidTransition(
                f"{self.client_order_id}: {event.kind} not allowed in {self.status}"
            )
        if event.client_order_id != self.client_order_id:
            raise InvalidTransition(
                f"{event.kind} for {event.client_order_id} applied to {self.client_order_id}"
            )
        # While a cancel is pending, only the venue's answer to the order itself may still
        # come, and only once.
        if (
            self.status == C.PENDING_CANCEL
            and isinstance(event, (ChildAccepted, ChildRejected))
            and self._before_cancel != C.SUBMITTED
        ):
            raise InvalidTransition(
                f"{self.client_order_id}: {event.kind} after the venue already answered"
            )
        if isinstance(event, ChildFilled) and event.trade_id in self._trade_ids:
            raise InvalidTransition(f"{self.client_order_id}: duplicate trade {event.trade_id}")
        match event:
            case ChildSubmitted():
                self.status = C.SUBMITTED
            case ChildDenied():
                self.status = C.DENIED
            case ChildAccepted():
                if self.status == C.PENDING_CANCEL:
                    self._before_cancel = C.ACCEPTED
                else:
                    self.status = C.ACCEPTED
            case ChildRejected():
                self.status = C.REJECTED
            case ChildFilled(qty=qty):
                if qty <= 0 or self.filled_qty + qty > self.qty:
                    raise InvalidTransition(
                        f"{self.client_order_id}: fill of {qty} overfills {self.filled_qty}/{self.qty}"
                    )
                self.filled_qty += qty
                self._trade_ids.add(event.trade_id)
                if self.filled_qty == self.qty:
                    self.status = C.FILLED
                elif self.status != C.PENDING_CANCEL:
                    self.status = C.PARTIALLY_FILLED
            case ChildCancelRequested():
                self._before_cancel = self.status
                self.status = C.PENDING_CANCEL
            case ChildCancelRejected():
                self.status = C.PARTIALLY_FILLED if self.filled_qty else self._before_cancel
            case ChildCanceled():
                self.status = C.CANCELED


class ParentStatus(StrEnum):
    NEW = "NEW"
    WORKING = "WORKING"
    PAUSED = "PAUSED"
    PENDING_CANCEL = "PENDING_CANCEL"  # winding down: children being cancelled
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"  # the window ended with quantity left
    REJECTED = "REJECTED"


P = ParentStatus
PARENT_TRANSITIONS: dict[ParentStatus, frozenset[ParentStatus]] = {
    P.NEW: frozenset({P.WORKING, P.REJECTED, P.CANCELED}),
    P.WORKING: frozenset({P.PAUSED, P.PENDING_CANCEL, P.FILLED}),
    P.PAUSED: frozenset({P.WORKING, P.PENDING_CANCEL, P.FILLED}),
    P.PENDING_CANCEL: frozenset({P.CANCELED, P.EXPIRED, P.FILLED}),
}
PARENT_TERMINAL = frozenset({P.FILLED, P.CANCELED, P.EXPIRED, P.REJECTED})
_FILLABLE = frozenset({P.WORKING, P.PAUSED, P.PENDING_CANCEL})


class ParentOrder:
    """Quantities and status of one parent order; children live in the engine."""

    __slots__ = ("_trade_ids", "filled_qty", "notional_ticks", "order_id", "qty", "side", "status")

    def __init__(self, *, order_id: str, side: int, qty: int) -> None:
        if qty <= 0:
            raise ValueError("qty must be positive")
        self.order_id = order_id
        self.side = side
        self.qty = qty
        self.status = ParentStatus.NEW
        self.filled_qty = 0
        self.notional_ticks = 0.0
        self._trade_ids: set[tuple[str, str]] = set()

    @property
    def leaves_qty(self) -> int:
        return 0 if self.status in PARENT_TERMINAL else self.qty - self.filled_qty

    @property
    def avg_px_ticks(self) -> float | None:
        return self.notional_ticks / self.filled_qty if self.filled_qty else None

    @property
    def is_done(self) -> bool:
        return self.status in PARENT_TERMINAL

    def apply(self, event: DomainEvent, *, px_ticks: float | None = None) -> None:
        match event:
            case ParentStatusChanged(status=status):
                new = ParentStatus(status)
                if new not in PARENT_TRANSITIONS.get(self.status, frozenset()):
                    raise InvalidTransition(f"{self.order_id}: {self.status} -> {new} not allowed")
                if new == P.FILLED and self.filled_qty != self.qty:
                    raise InvalidTransition(
                        f"{self.order_id}: FILLED with {self.filled_qty}/{self.qty}"
                    )
                self.status = new
            case ChildFilled(qty=qty, venue=venue, trade_id=trade_id):
                if self.status not in _FILLABLE:
                    raise InvalidTransition(f"{self.order_id}: fill while {self.status}")
                key = (venue, trade_id)
                if key in self._trade_ids:
                    raise InvalidTransition(f"{self.order_id}: duplicate trade {venue}/{trade_id}")
                if qty <= 0 or self.filled_qty + qty > self.qty:
                    raise InvalidTransition(
                        f"{self.order_id}: fill of {qty} overfills {self.filled_qty}/{self.qty}"
                    )
                self._trade_ids.add(key)
                self.filled_qty += qty
                self.notional_ticks += qty * (px_ticks if px_ticks is not None else float(event.px))
            case _:
                raise InvalidTransition(
                    f"{self.order_id}: {event.kind} does not change a parent order"
                )


def ticks_to_px(ticks: float, tick_size: Decimal) -> Decimal:
    """Ticks (possibly a half tick, for midpoint fills) to a price people and databases see."""
    return (Decimal(repr(float(ticks))) * tick_size).normalize()
