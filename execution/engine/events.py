"""The engine's domain events: immutable, ordered, one sequence per parent order.

The web app persists and broadcasts exactly this stream, and a reconnecting blotter
catches up by sequence number, so every event names its parent order and its place in
that order's history. Prices are Decimal here: events are what people and the database see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    order_id: str  # the parent order
    seq: int  # 1, 2, 3, ... within the parent order
    ts: float  # simulated seconds after the open

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentAccepted(DomainEvent):
    side: str
    qty: int
    strategy: str
    params: dict[str, Any] = field(default_factory=dict)
    start_s: float = 0.0
    end_s: float = 0.0
    limit_px: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentStatusChanged(DomainEvent):
    status: str
    previous: str
    reason: str = ""
    # Set on the final status of an order whose window opened: what post-trade analysis
    # needs and only the market knows. The mid when the order ended (its unfilled rest is
    # charged there), the shares the whole market traded while it worked, and their VWAP.
    end_mid_px: Decimal | None = None
    market_volume: float | None = None
    market_vwap_px: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentReplanned(DomainEvent):
    """Resumed with what is left planned over what is left of the window (algos.Replan)."""

    at_s: float
    done: int
    others_volume: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentAmended(DomainEvent):
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentStrategyFallback(DomainEvent):
    """The order's strategy failed; a safe baseline took over within the same limits."""

    from_strategy: str
    to_strategy: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentProgress(DomainEvent):
    filled_qty: int
    leaves_qty: int
    working_qty: int
    avg_px: Decimal | None
    target_qty: int  # where the strategy's schedule says the order should be by now
    mid_px: Decimal | None = None  # the national mid when this was emitted
    market_volume: float = 0.0  # shares the whole market traded since the order started


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildEvent(DomainEvent):
    client_order_id: str
    venue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSubmitted(ChildEvent):
    side: str
    qty: int
    px: Decimal | None  # None: a dark midpoint peg without a limit
    order_type: str  # "limit" or "midpoint"
    tif: str  # "DAY" or "IOC"
    intent: str  # "passive", "dark" or "take": why the router sent it


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildDenied(ChildEvent):
    """The execution policy refused a child the strategy asked for; nothing was sent."""

    side: str
    qty: int
    px: Decimal | None
    reason: str  # a DenyReason value
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildAccepted(ChildEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildRejected(ChildEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildFilled(ChildEvent):
    trade_id: str
    px: Decimal
    qty: int
    liquidity: str  # "maker", "taker" or "midpoint"
    leaves_qty: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildCancelRequested(ChildEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildCancelRejected(ChildEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildCanceled(ChildEvent):
    canceled_qty: int
    reason: str
