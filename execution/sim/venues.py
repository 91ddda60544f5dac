"""Venues: a lit limit order book with real queue positions, and a dark midpoint pool.

Prices are integer ticks. The lit book keeps the background (other participants') size
per price level and, separately, our own resting orders with the background size still
ahead of each, so that price-time priority holds: our order fills only once what was
ahead of it has traded or been cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUY = 1
SELL = -1


@dataclass(slots=True, eq=False)
class RestingOrder:
    """One of our orders as the venue sees it."""

    oid: str
    side: int
    px: int  # ticks; for dark orders the limit (or a sentinel far away when none)
    leaves: int
    ahead: float = 0.0  # background shares ahead of us at this level
    tif_ioc: bool = False
    parent: str = ""


@dataclass(slots=True)
class Execution:
    """A fill of one of our orders, as the venue reports it."""

    oid: str
    px_ticks: float
    qty: int
    liquidity: str  # "maker", "taker" or "midpoint"


@dataclass(slots=True, eq=False)
class LitBook:
    name: str
    index: int
    bid: int
    ask: int
    base_depth: float  # mean background size at the best level at liquidity multiplier 1
    depth_growth: float
    bids: dict[int, float] = field(default_factory=dict)
    asks: dict[int, float] = field(default_factory=dict)
    our_bids: dict[int, list[RestingOrder]] = field(default_factory=dict)
    our_asks: dict[int, list[RestingOrder]] = field(default_factory=dict)
    up: bool = True
    volume: float = 0.0
    trade_seq: int = 0
    liquidity: float = 1.0  # the regime's multiplier, set by the market before each event

    # -- book shape -------------------------------------------------------------------

    def default_depth(self, level: int) -> float:
        return self.base_depth * (1.0 + self.depth_growth * level) * self.liquidity

    def reset(self, latent: float, spread: int) -> None:
        """Rebuild a fresh book around the latent price (at start and after an outage)."""
        self.bid = round(latent - spread / 2.0)
        self.ask = self.bid + spread
        self.bids = {self.bid - k: self.default_depth(k) for k in range(5)}
        self.asks = {self.ask + k: self.default_depth(k) for k in range(5)}

    def level(self, side: int, px: int) -> float:
        """Background size at a price on one side, created at its default depth if unseen."""
        book = self.bids if side == BUY else self.asks
        q = book.get(px)
        if q is None:
            best = self.bid if side == BUY else self.ask
            q = self.default_depth(abs(best - px))
            book[px] = q
        return q

    def _has_ours(self, side: int, px: int) -> bool:
        ours = self.our_bids if side == BUY else self.our_asks
        return px in ours

    def _advance_best(self, side: int) -> None:
        """The best level on a side is empty: move outward to the next non-empty level."""
        if side == BUY:
            self.bids.pop(self.bid, None)
            self.bid -= 1
            for _ in range(64):
                if self.bids.get(self.bid, 1.0) > 0.0 or self.bid in self.our_bids:
                    break
                self.bids.pop(self.bid, None)
                self.bid -= 1
            self.level(BUY, self.bid)
        else:
            self.asks.pop(self.ask, None)
            self.ask += 1
            for _ in range(64):
                if self.asks.get(self.ask, 1.0) > 0.0 or self.ask in self.our_asks:
                    break
                self.asks.pop(self.ask, None)
                self.ask += 1
            self.level(SELL, self.ask)

    # -- trading against the book -----------------------------------------------------

    def take(
        self, aggressor: int, qty: float, limit_px: int | None, fills: list[Execution]
    ) -> tuple[float, list[tuple[int, float]]]:
        """A marketable order of `aggressor` side walks the opposite side up to limit_px.

        Our resting orders on the opposite side fill in their queue position (into
        `fills`). Returns the quantity left and the (price, quantity) of each level hit.
        """
        rest_side = -aggressor
        walked: list[tuple[int, float]] = []
        while qty > 0:
            px = self.ask if aggressor == BUY else self.bid
            if limit_px is not None and (px > limit_px if aggressor == BUY else px < limit_px):
                break
            before = qty
            qty = self._trade_level(rest_side, px, qty, fills)
            if before > qty:
                walked.append((px, before - qty))
            if self._level_empty(rest_side, px):
                self._advance_best(rest_side)
            elif qty > 0:
                break  # only a fraction of a share is left against our own resting order
        return qty, walked

    def _level_empty(self, side: int, px: int) -> bool:
        book = self.bids if side == BUY else self.asks
        return book.get(px, 0.0) <= 0.0 and not self._has_ours(side, px)

    def _trade_level(self, side: int, px: int, qty: float, fills: list[Execution]) -> float:
        """Trade up to qty against one level of resting `side`, in time priority."""
        book = self.bids if side == BUY else self.asks
        ours_by_px = self.our_bids if side == BUY else self.our_asks
        bg = self.level(side, px)
        ours = ours_by_px.get(px)
        traded = 0.0
        if ours:
            eaten_bg = 0.0
            for o in ours:
                take_bg = min(qty, max(o.ahead - eaten_bg, 0.0))
                eaten_bg += take_bg
                qty -= take_bg
                if qty <= 0:
                    break
                # Background sizes are fractional: forgive float dust when sizing our fill.
                x = min(int(qty + 1e-6), o.leaves)
                if x > 0:
                    o.leaves -= x
                    qty -= x
                    traded += x
                    fills.append(Execution(o.oid, float(px), x, "maker"))
                if qty < 1 - 1e-6:
                    break
            rest = min(qty, bg - eaten_bg) if qty > 0 else 0.0
            eaten_bg += max(rest, 0.0)
            qty -= max(rest, 0.0)
            for o in ours:
                o.ahead = max(o.ahead - eaten_bg, 0.0)
            bg = max(bg - eaten_bg, 0.0)
            traded += eaten_bg
            live = [o for o in ours if o.leaves > 0]
            if live:
                ours_by_px[px] = live
            else:
                del ours_by_px[px]
        else:
            hit = min(qty, bg)
            bg -= hit
            qty -= hit
            traded += hit
        book[px] = bg
        self.volume += traded
        return qty

    # -- passive background changes -----------------------------------------------------

    def add(self, side: int, px: int, qty: float) -> None:
        book = self.bids if side == BUY else self.asks
        book[px] = book.get(px, 0.0) + qty
        if side == BUY and px > self.bid:
            self.bid = px
        elif side == SELL and px < self.ask:
            self.ask = px

    def cancel(self, side: int, px: int, fraction: float) -> None:
        """Background cancels a fraction of a level; cancels are spread through the queue."""
        book = self.bids if side == BUY else self.asks
        bg = book.get(px)
        if not bg:
            return
        gone = bg * fraction
        ours = (self.our_bids if side == BUY else self.our_asks).get(px)
        if ours:
            for o in ours:
                o.ahead = max(o.ahead - gone * (o.ahead / bg), 0.0)
        book[px] = bg - gone
        best = self.bid if side == BUY else self.ask
        if px == best and book[px] < 1.0 and not ours:
            self._advance_best(side)

    def sweep_best(self, side: int, fills: list[Execution]) -> None:
        """Quotes on a stale best level are pulled as the latent price moves through them.

        Any of our orders there are picked off by the informed trader who moves the price:
        what stood ahead of them trades first (that is what lets the price through), then
        ours; the background behind them cancels.
        """
        px = self.bid if side == BUY else self.ask
        ours = (self.our_bids if side == BUY else self.our_asks).get(px)
        if ours:
            need = max(o.ahead for o in ours) + sum(o.leaves for o in ours) + 1.0
            self._trade_level(side, px, need, fills)
        if not self._has_ours(side, px):
            self._advance_best(side)

    def rest(self, order: RestingOrder) -> None:
        side = order.side
        ours = self.our_bids if side == BUY else self.our_asks
        queue = ours.setdefault(order.px, [])
        book = self.bids if side == BUY else self.asks
        if side == BUY and order.px > self.bid:
            self.bid = order.px
            book.setdefault(order.px, 0.0)
        elif side == SELL and order.px < self.ask:
            self.ask = order.px
            book.setdefault(order.px, 0.0)
        order.ahead = (
            book.get(order.px, 0.0)
            if book.get(order.px) is not None
            else self.level(side, order.px)
        )
        queue.append(order)

    def remove(self, order: RestingOrder) -> bool:
        ours = self.our_bids if order.side == BUY else self.our_asks
        queue = ours.get(order.px)
        if not queue or order not in queue:
            return False
        queue.remove(order)
        if not queue:
            del ours[order.px]
            best = self.bid if order.side == BUY else self.ask
            book = self.bids if order.side == BUY else self.asks
            if order.px == best and book.get(order.px, 0.0) < 1.0:
                self._advance_best(order.side)
        return True

    def resting(self) -> list[RestingOrder]:
        return [o for q in self.our_bids.values() for o in q] + [
            o for q in self.our_asks.values() for o in q
        ]

    def clear_ours(self) -> list[RestingOrder]:
        gone = self.resting()
        self.our_bids.clear()
        self.our_asks.clear()
        return gone

    def top(self) -> tuple[int, float, int, float]:
        return self.bid, self.bids.get(self.bid, 0.0), self.ask, self.asks.get(self.ask, 0.0)

    def depth(self, side: int, levels: int) -> float:
        book = self.bids if side == BUY else self.asks
        best = self.bid if side == BUY else self.ask
        step = -1 if side == BUY else 1
        return sum(book.get(best + step * k, 0.0) for k in range(levels))

    def next_trade_id(self) -> str:
        self.trade_seq += 1
        return f"{self.name}-{self.trade_seq:07d}"


@dataclass(slots=True, eq=False)
class DarkPool:
    """No visible book: our resting orders cross at the lit midpoint with contra arrivals."""

    name: str
    index: int
    up: bool = True
    volume: float = 0.0
    trade_seq: int = 0
    buys: list[RestingOrder] = field(default_factory=list)
    sells: list[RestingOrder] = field(default_factory=list)

    def contra_arrives(
        self, side: int, qty: float, mid_ticks: float, fills: list[Execution]
    ) -> None:
        """A background order of `side` arrives; it crosses with our opposite orders first."""
        ours = self.sells if side == BUY else self.buys
        self.volume += qty
        for o in ours:
            if qty < 1:
                break
            if (o.side == BUY and mid_ticks > o.px) or (o.side == SELL and mid_ticks < o.px):
                continue  # the midpoint is through our limit: no cross
            x = min(int(qty), o.leaves)
            o.leaves -= x
            qty -= x
            fills.append(Execution(o.oid, mid_ticks, x, "midpoint"))
        if ours:
            ours[:] = [o for o in ours if o.leaves > 0]

    def rest(self, order: RestingOrder) -> None:
        (self.buys if order.side == BUY else self.sells).append(order)

    def remove(self, order: RestingOrder) -> bool:
        queue = self.buys if order.side == BUY else self.sells
        if order in queue:
            queue.remove(order)
            return True
        return False

    def resting(self) -> list[RestingOrder]:
        return [*self.buys, *self.sells]

    def clear_ours(self) -> list[RestingOrder]:
        gone = self.resting()
        self.buys.clear()
        self.sells.clear()
        return gone

    def next_trade_id(self) -> str:
        self.trade_seq += 1
        return f"{self.name}-{self.trade_seq:07d}"
