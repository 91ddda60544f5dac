"""The execution policy: checked on every child order, whatever the strategy asked for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DenyReason(StrEnum):
    ORDER_NOT_WORKING = "ORDER_NOT_WORKING"
    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    INVALID_QTY = "INVALID_QTY"
    EXCEEDS_LEAVES = "EXCEEDS_LEAVES"
    MAX_CHILD_QTY = "MAX_CHILD_QTY"
    VENUE_NOT_ALLOWED = "VENUE_NOT_ALLOWED"
    LIMIT_PRICE = "LIMIT_PRICE"
    MAX_PARTICIPATION = "MAX_PARTICIPATION"
    # The firm's risk limits and kill switches (risk.py for children; the web app's
    # pre-trade check for parent orders). One fixed set: the console and the blotter show
    # these codes, and people filter and report on them.
    TRADING_HALTED = "TRADING_HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    MAX_CHILD_NOTIONAL = "MAX_CHILD_NOTIONAL"
    PRICE_COLLAR = "PRICE_COLLAR"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    OPPOSITE_SIDE_WORKING = "OPPOSITE_SIDE_WORKING"
    MESSAGE_RATE = "MESSAGE_RATE"
    MAX_ORDER_QTY = "MAX_ORDER_QTY"
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    DAILY_NOTIONAL = "DAILY_NOTIONAL"
    RESTRICTED_INSTRUMENT = "RESTRICTED_INSTRUMENT"


@dataclass(frozen=True, slots=True)
class ExecutionPolicy:
    start_s: float
    end_s: float
    limit_px_ticks: int | None = None  # buy: highest price; sell: lowest
    allowed_venues: frozenset[str] | None = None  # None: every venue of the market
    max_child_qty: int | None = None
    max_participation: float | None = 0.5  # of market volume since the order started
    # Volume is zero at the open, so a participation cap alone would forbid the first
    # child; this many shares may always be working or done on top of the cap.
    participation_grace_qty: int = 100


@dataclass(frozen=True, slots=True)
class ChildCheck:
    side: int
    qty: int
    px_ticks: int | None  # None: midpoint peg without a limit
    venue: str
    now: float
    leaves_unallocated: int  # parent leaves minus what already works at venues
    ours_qty: int  # our filled plus working quantity
    others_volume: float  # market volume by others since the order started
    venue_known: bool
    parent_working: bool = True


def check_child(policy: ExecutionPolicy, c: ChildCheck) -> tuple[DenyReason, str] | None:
    """None when the child may go; else the reason code and a sentence for people."""
    if not c.parent_working:
        return DenyReason.ORDER_NOT_WORKING, "the parent order is not working"
    if not policy.start_s <= c.now < policy.end_s:
        return (
            DenyReason.OUTSIDE_WINDOW,
            f"t={c.now:.3f}s outside [{policy.start_s:.0f}, {policy.end_s:.0f})",
        )
    if c.qty <= 0:
        return DenyReason.INVALID_QTY, f"quantity {c.qty} is not positive"
    if c.qty > c.leaves_unallocated:
        return DenyReason.EXCEEDS_LEAVES, f"{c.qty} > {c.leaves_unallocated} left to allocate"
    if policy.max_child_qty is not None and c.qty > policy.max_child_qty:
        return DenyReason.MAX_CHILD_QTY, f"{c.qty} > max child {policy.max_child_qty}"
    if not c.venue_known or (
        policy.allowed_venues is not None and c.venue not in policy.allowed_venues
    ):
        return DenyReason.VENUE_NOT_ALLOWED, f"venue {c.venue!r} is not allowed"
    lim = policy.limit_px_ticks
    if lim is not None:
        if c.px_ticks is None:
            return DenyReason.LIMIT_PRICE, "an unpriced child cannot honour the order's limit"
        if (c.side > 0 and c.px_ticks > lim) or (c.side < 0 and c.px_ticks < lim):
            return DenyReason.LIMIT_PRICE, f"price {c.px_ticks} ticks through limit {lim}"
    allowed = participation_allowed(policy, c.others_volume)
    if allowed is not None and c.ours_qty + c.qty > allowed:
        return (
            DenyReason.MAX_PARTICIPATION,
            f"{c.ours_qty + c.qty} would exceed {percent(policy.max_participation)} of volume "
            f"({allowed:.0f} allowed)",
        )
    return None


def percent(fraction: float | None) -> str:
    """A fraction as people set it: 0.005 is 0.5%, not "0%" (a trial's limit read so)."""
    return "none" if fraction is None else f"{round(fraction * 100, 4):g}%"


def participation_allowed(policy: ExecutionPolicy, others_volume: float) -> float | None:
    """Our filled plus working shares the participation cap allows, given the others'
    volume since the order started; None without a cap. The strategies size their
    children by it (DecisionView.participation_room) and check_child holds them to it."""
    cap = policy.max_participation
    if cap is None or cap >= 1.0:
        return None
    return cap / (1.0 - cap) * others_volume + policy.participation_grace_qty
