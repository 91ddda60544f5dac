"""One smart order router for every strategy.

Three ways to work quantity: post passively on the lit venue where a new order is most
likely to fill soon (its share of the flow against the queue it must wait behind), rest
at the midpoint in dark venues (split by their share of volume), or take liquidity across
lit venues in price order. Every price respects the parent's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

BUY = 1


@dataclass(frozen=True, slots=True)
class VenueInfo:
    name: str
    kind: str  # "lit" or "dark"
    volume_share: float


@dataclass(frozen=True, slots=True)
class VenueQuoteView:
    name: str
    kind: str
    up: bool
    bid: int = 0
    bid_qty: float = 0.0
    ask: int = 0
    ask_qty: float = 0.0
    # Size on the best five price levels of each side (features read it; routing does not).
    bid_depth: float = 0.0
    ask_depth: float = 0.0


@dataclass(frozen=True, slots=True)
class Place:
    venue: str
    qty: int
    px_ticks: int | None  # None: dark midpoint peg without a limit
    ioc: bool
    intent: str  # "passive", "dark" or "take"


class _HasQuotes(Protocol):  # what the router reads of a DecisionView (no import cycle)
    @property
    def quotes(self) -> tuple[VenueQuoteView, ...]: ...
    @property
    def nbb(self) -> int: ...
    @property
    def nbo(self) -> int: ...


class SmartOrderRouter:
    def __init__(self, venues: tuple[VenueInfo, ...]) -> None:
        """`venues`: those this order may use; quotes from any other are ignored."""
        self.share = {v.name: v.volume_share for v in venues}

    def _usable(self, view: _HasQuotes, kind: str) -> list[VenueQuoteView]:
        return [
            q
            for q in view.quotes
            if q.kind == kind
            and q.up
            and q.name in self.share
            and (kind == "dark" or q.ask > q.bid)
        ]

    @staticmethod
    def _within(side: int, px: int, limit: int | None) -> int:
        if limit is None:
            return px
        return min(px, limit) if side == BUY else max(px, limit)

    def has_dark(self, view: _HasQuotes) -> bool:
        return bool(self._usable(view, "dark"))

    def at_touch(
        self, side: int, child: object, view: _HasQuotes, limit: int | None = None
    ) -> bool:
        """Is a resting lit child still at (or better than) the best price on its venue, or
        at the order's limit, past which it may not follow the touch? (One at its limit was
        cancelled and sent again at that same price every decision, to the back of the
        queue: 55 cancels for 8 fills, a trial.)"""
        px = getattr(child, "px_ticks", None)
        venue = getattr(child, "venue", "")
        if limit is not None and px == limit:
            return True
        for q in view.quotes:
            if q.name == venue:
                if not q.up or px is None:
                    return False
                return bool(px >= q.bid) if side == BUY else bool(px <= q.ask)
        return False

    def passive(
        self, side: int, qty: int, view: _HasQuotes, limit: int | None, improve: bool
    ) -> list[Place]:
        lit = self._usable(view, "lit")
        if not lit or qty < 1:
            return []

        def odds(q: VenueQuoteView) -> float:
            queue = q.bid_qty if side == BUY else q.ask_qty
            return self.share.get(q.name, 0.0) / (queue + qty)

        if improve and view.nbo - view.nbb > 1:
            # Alone at a new national best price, one tick inside, on the venue with the most
            # flow: first in the queue, for one tick of price.
            best = max(lit, key=lambda q: self.share.get(q.name, 0.0))
            px = view.nbb + 1 if side == BUY else view.nbo - 1
        else:
            best = max(lit, key=odds)
            px = best.bid if side == BUY else best.ask
        px = self._within(side, px, limit)
        return [Place(best.name, qty, px, False, "passive")]

    def dark(
        self, side: int, qty: int, view: _HasQuotes, limit: int | None, smallest: int = 1
    ) -> list[Place]:
        """Split `qty` across the dark venues by their share of volume. A venue whose part
        would be under `smallest` shares gets none: its part goes to the largest one."""
        dark = self._usable(view, "dark")
        total = sum(self.share.get(q.name, 0.0) for q in dark)
        if not dark or total <= 0 or qty < 1:
            return []
        parts, left = [], qty
        for i, q in enumerate(dark):
            share = self.share.get(q.name, 0.0) / total
            part = left if i == len(dark) - 1 else min(left, round(qty * share))
            parts.append(part)
            left -= part
        slivers = [i for i, part in enumerate(parts) if 0 < part < smallest]
        if slivers:
            biggest = max(range(len(parts)), key=lambda i: parts[i])
            for i in slivers:
                if i != biggest:
                    parts[biggest] += parts[i]
                    parts[i] = 0
        return [
            Place(q.name, part, limit, False, "dark")
            for q, part in zip(dark, parts, strict=True)
            if part >= 1
        ]

    @staticmethod
    def can_take(side: int, view: _HasQuotes, limit: int | None) -> bool:
        """Whether the far touch is within the order's limit."""
        touch = view.nbo if side == BUY else view.nbb
        return limit is None or (touch <= limit if side == BUY else touch >= limit)

    def take(
        self, side: int, qty: int, view: _HasQuotes, limit: int | None, max_ticks: int
    ) -> list[Place]:
        lit = self._usable(view, "lit")
        if not lit or qty < 1:
            return []
        touch = view.nbo if side == BUY else view.nbb
        cap = self._within(side, touch + max_ticks if side == BUY else touch - max_ticks, limit)
        if (side == BUY and cap < touch) or (side != BUY and cap > touch):
            return []  # the limit is behind the touch: nothing to take
        # Visible size at each venue's touch first, best price first; the rest walks the
        # deepest venue up to the cap.
        lit.sort(key=lambda q: (q.ask if side == BUY else -q.bid, -self.share.get(q.name, 0.0)))
        out: list[Place] = []
        left = qty
        for q in lit:
            px = q.ask if side == BUY else q.bid
            if (side == BUY and px > cap) or (side != BUY and px < cap):
                continue
            shown = int(q.ask_qty if side == BUY else q.bid_qty)
            part = min(left, shown)
            if part >= 1:
                out.append(Place(q.name, part, cap, True, "take"))
                left -= part
            if left <= 0:
                break
        if left > 0:
            deepest = max(lit, key=lambda q: self.share.get(q.name, 0.0))
            for i, o in enumerate(out):
                if o.venue == deepest.name:
                    out[i] = Place(o.venue, o.qty + left, cap, True, "take")
                    break
            else:
                out.append(Place(deepest.name, left, cap, True, "take"))
        return out
