"""The firm's pre-trade risk check: the one gate every child order passes on its way out.

The execution policy (policy.py) keeps a child within its own parent order's terms; this
gate holds it within the firm's risk limits and kill switches, whichever strategy or person
produced it. The limits arrive resolved per parent order (the tightest of the firm's, the
desk's, the trader's, the strategy's and the instrument's, see oversight/risk) and may
change at any step; the gate itself only counts and compares. Cancels are never refused
(they reduce risk) but count towards the message rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from execution.engine.policy import DenyReason


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce the position may trade
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class ChildLimits:
    account: str = ""  # whose messages count together for the rate limit (the trader)
    max_child_qty: int | None = None
    max_child_notional: float | None = None  # in the instrument's currency
    price_collar_bps: float | None = None  # a priced child within this of the mid
    max_msgs_per_s: float | None = None  # new, amend and cancel together, per account
    duplicate_window_s: float = 1.0  # an identical child within this is an error
    halted: bool = False  # a kill switch covers the order (or it would add to a REDUCING one)
    halted_reason: str = ""


@dataclass(frozen=True, slots=True)
class CollarBreach:
    order_id: str
    client_order_id: str
    ts: float
    px_ticks: float
    mid_ticks: float
    collar_bps: float

    @property
    def off_bps(self) -> float:
        return abs(self.px_ticks - self.mid_ticks) / self.mid_ticks * 1e4


class RiskGate:
    def __init__(self, tick_size: float) -> None:
        self.tick_size = tick_size
        self.limits: dict[str, ChildLimits] = {}
        self._msgs: dict[str, deque[float]] = {}
        self._recent: dict[str, deque[tuple[float, str, int, int, int | None]]] = {}
        self.breaches: list[CollarBreach] = []  # fills outside the collar, for the console

    def set_limits(self, order_id: str, limits: ChildLimits) -> None:
        self.limits[order_id] = limits

    def _rate(self, account: str, now: float) -> deque[float]:
        q = self._msgs.setdefault(account, deque())
        while q and q[0] <= now - 1.0:
            q.popleft()
        return q

    def check(
        self,
        order_id: str,
        *,
        side: int,
        qty: int,
        px_ticks: int | None,
        venue: str,
        now: float,
        mid_ticks: float,
    ) -> tuple[DenyReason, str] | None:
        """None when the child may go (and it is counted as sent); else why not."""
        lim = self.limits.get(order_id)
        if lim is None:
            return None
        if lim.halted:
            return DenyReason.TRADING_HALTED, lim.halted_reason or "trading is halted"
        if lim.max_child_qty is not None and qty > lim.max_child_qty:
            return DenyReason.MAX_CHILD_QTY, f"{qty} > risk limit {lim.max_child_qty} a child"
        px = px_ticks if px_ticks is not None else mid_ticks
        if lim.max_child_notional is not None:
            value = qty * px * self.tick_size
            if value > lim.max_child_notional:
                return (
                    DenyReason.MAX_CHILD_NOTIONAL,
                    f"{value:,.0f} > risk limit {lim.max_child_notional:,.0f} a child",
                )
        if lim.price_collar_bps is not None and px_ticks is not None and mid_ticks > 0:
            off = abs(px_ticks - mid_ticks) / mid_ticks * 1e4
            if off > lim.price_collar_bps:
                return (
                    DenyReason.PRICE_COLLAR,
                    f"price {off:.0f} bps from the mid, collar {lim.price_collar_bps:g} bps",
                )
        recent = self._recent.setdefault(order_id, deque())
        # A repeat exactly the window later is not within it (a decision every 1 s, the
        # ticket's own minimum, had a fifth of its children denied as duplicates).
        while recent and recent[0][0] <= now - lim.duplicate_window_s:
            recent.popleft()
        # Parts of one decision's child split to a size cap are alike by design; a repeat
        # from an earlier decision within the window is what this guards against.
        if any(r[0] < now and r[1:] == (venue, side, qty, px_ticks) for r in recent):
            return (
                DenyReason.DUPLICATE_ORDER,
                f"the same {qty} at {venue} was sent less than {lim.duplicate_window_s:g} s ago",
            )
        if lim.max_msgs_per_s is not None:
            q = self._rate(lim.account or order_id, now)
            if len(q) + 1 > lim.max_msgs_per_s:
                return (
                    DenyReason.MESSAGE_RATE,
                    f"{len(q) + 1} messages in 1 s > limit {lim.max_msgs_per_s:g}",
                )
        recent.append((now, venue, side, qty, px_ticks))
        self.count_message(order_id, now)
        return None

    def count_message(self, order_id: str, now: float) -> None:
        """A message that went out (new, amend or cancel)."""
        lim = self.limits.get(order_id)
        if lim is not None and lim.max_msgs_per_s is not None:
            self._rate(lim.account or order_id, now).append(now)

    def check_fill(
        self, order_id: str, client_order_id: str, *, ts: float, px_ticks: float, mid_ticks: float
    ) -> None:
        """A fill whose price is outside the collar around the mid is a post-trade break."""
        lim = self.limits.get(order_id)
        if lim is None or lim.price_collar_bps is None or mid_ticks <= 0:
            return
        b = CollarBreach(order_id, client_order_id, ts, px_ticks, mid_ticks, lim.price_collar_bps)
        if b.off_bps > lim.price_collar_bps:
            self.breaches.append(b)
