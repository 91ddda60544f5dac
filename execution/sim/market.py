"""The simulated market for one instrument: several venues, background flow, our impact.

Model in one paragraph (docs/SIMULATOR.md has the details and the measured figures): a
latent price (the fundamental Brownian path plus the impact of our own fills) is what
informed participants know. Market orders lean towards it, limit orders are placed and
cancelled on the side it favours, and when a venue's mid strays too far from it the stale
quotes are pulled. So order-book imbalance and the microprice carry real information
about the next mid move, volatility comes out at the scenario's figure, and our own
trading moves the price with a permanent and a decaying part that follow the square-root
law. Our orders reach a venue after its latency and queue behind what was there before.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from execution.sim.background import (
    KIND_DARK,
    KIND_LIMIT,
    KIND_MARKET,
    STREAM_OURS,
    BackgroundDay,
    draw_day,
    rng_for,
)
from execution.sim.calibration import SESSION_SECONDS, Calibration, Knobs, calibrate
from execution.sim.scenario import Outage, Scenario
from execution.sim.venues import BUY, SELL, DarkPool, Execution, LitBook, RestingOrder

# Venue report kinds: what a venue tells the order's owner.
ACCEPTED = "accepted"
REJECTED = "rejected"
FILLED = "filled"
CANCELED = "canceled"
CANCEL_REJECTED = "cancel_rejected"

REJECT_VENUE_UNAVAILABLE = "VENUE_UNAVAILABLE"
REJECT_INVALID = "INVALID_ORDER"
CANCEL_IOC = "IOC_REMAINDER"
CANCEL_VENUE_OUTAGE = "VENUE_OUTAGE"
CANCEL_REQUESTED = "REQUESTED"

_ACT_NEW = 0
_ACT_CANCEL = 1
_ACT_OUTAGE_START = 2
_ACT_OUTAGE_END = 3


@dataclass(frozen=True, slots=True)
class VenueReport:
    kind: str
    oid: str
    ts: float  # seconds after the open
    venue: str
    qty: int = 0
    px_ticks: float = 0.0
    trade_id: str = ""
    liquidity: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A child order as sent to a venue. Lit: limit at px_ticks (IOC or resting).
    Dark: midpoint peg, px_ticks is the limit or None."""

    oid: str
    venue: str
    side: int
    qty: int
    px_ticks: int | None
    ioc: bool = False
    parent: str = ""


@dataclass(slots=True)
class VenueQuote:
    name: str
    kind: str
    up: bool
    bid: int = 0
    bid_qty: float = 0.0
    ask: int = 0
    ask_qty: float = 0.0
    volume: float = 0.0
    # Background size on the best `depth_levels` price levels (one tick apart) of each side.
    bid_depth: float = 0.0
    ask_depth: float = 0.0


@dataclass(slots=True)
class Tape:
    """Running totals of all trades printed (background and ours), for volume-based logic."""

    volume: float = 0.0
    notional_ticks: float = 0.0
    buy_volume: float = 0.0  # lit volume initiated by buyers
    sell_volume: float = 0.0
    trades: int = 0
    last_px_ticks: float = 0.0
    log: list[tuple[float, float, float, int]] | None = (
        None  # (qty, px, aggressor, venue-kind) when kept
    )

    def print_trade(self, qty: float, px_ticks: float, aggressor: int) -> None:
        if self.log is not None:
            self.log.append((qty, px_ticks, aggressor, 0))
        self.volume += qty
        self.notional_ticks += qty * px_ticks
        self.trades += 1
        self.last_px_ticks = px_ticks
        if aggressor == BUY:
            self.buy_volume += qty
        elif aggressor == SELL:
            self.sell_volume += qty


@dataclass(slots=True)
class _Impact:
    """Our net signed fills drive the latent price: permanent and exponentially decaying."""

    scale_ticks: float  # daily sigma in ticks
    adv: float
    permanent: float
    transient: float
    decay_per_s: float
    net: float = 0.0
    transient_net: float = 0.0
    t: float = 0.0

    def ticks(self, now: float) -> float:
        if self.net == 0.0 and self.transient_net == 0.0:
            return 0.0
        j = self.transient_net * math.exp(-(now - self.t) * self.decay_per_s)
        return self.scale_ticks * (
            self.permanent * _ssqrt(self.net / self.adv) + self.transient * _ssqrt(j / self.adv)
        )

    def add(self, now: float, signed_qty: float) -> None:
        self.transient_net = (
            self.transient_net * math.exp(-(now - self.t) * self.decay_per_s) + signed_qty
        )
        self.t = now
        self.net += signed_qty


def _ssqrt(x: float) -> float:
    return math.copysign(math.sqrt(abs(x)), x)


def outage_windows(outages: Iterable[Outage]) -> list[tuple[str, float, float]]:
    """Each venue's outages as the windows it is down in: overlapping or touching ones
    merged. One scheduled end per outage brought a venue back up inside another outage
    that was still running (a review: a venue down 70-150 filled orders from minute 100,
    where a second outage, 90-100, ended)."""
    out: list[tuple[str, float, float]] = []
    for name in dict.fromkeys(o.venue for o in outages):
        spans = sorted((o.start_minute, o.end_minute) for o in outages if o.venue == name)
        start, end = spans[0]
        for s, e in spans[1:]:
            if s <= end:
                end = max(end, e)
            else:
                out.append((name, start, end))
                start, end = s, e
        out.append((name, start, end))
    return out


class Market:
    """One instrument's market for one simulated day, driven forward by `advance(t)`."""

    @staticmethod
    def book_spread(spread_ticks: float) -> int:
        """The book's usual width in whole ticks for a scenario's typical spread (rounded,
        half to even: 2.5 is 2)."""
        return max(1, round(spread_ticks))

    def __init__(self, scenario: Scenario, seed: int, knobs: Knobs | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.cal: Calibration = calibrate(scenario, knobs)
        k = self.cal.knobs
        self.day: BackgroundDay = draw_day(scenario, self.cal, seed)
        self._ours_rng = rng_for(seed, STREAM_OURS)
        self.now = 0.0
        self.spread = self.book_spread(self.cal.spread_ticks)
        self.requote_ticks = self.cal.spread_ticks / 2.0 + k.requote_extra_ticks
        self.lit: list[LitBook] = []
        self.dark: list[DarkPool] = []
        self.by_name: dict[str, LitBook | DarkPool] = {}
        self.kind_of: list[str] = []
        self.latency_s: dict[str, float] = {}
        for i, v in enumerate(scenario.venues):
            venue: LitBook | DarkPool
            if v.kind == "lit":
                venue = LitBook(v.name, i, 0, 0, self.cal.best_depth[i], k.depth_growth_per_level)
                venue.reset(self.cal.reference_ticks, self.spread)
                self.lit.append(venue)
            else:
                venue = DarkPool(v.name, i)
                self.dark.append(venue)
            self.by_name[v.name] = venue
            self.kind_of.append(v.kind)
            self.latency_s[v.name] = v.latency_ms / 1000.0
        self.venue_list: list[LitBook | DarkPool] = [self.by_name[v.name] for v in scenario.venues]
        self.tape = Tape(last_px_ticks=self.cal.reference_ticks)
        self.impact = _Impact(
            scale_ticks=self.cal.sigma_ticks_per_day,
            adv=self.cal.adv_shares,
            permanent=k.impact_permanent,
            transient=k.impact_transient,
            decay_per_s=math.log(2.0) / max(k.impact_half_life_s, 1e-9),
        )
        self._i = 0
        self._impact_ticks = 0.0
        self._impact_t = -math.inf
        self._slope = k.informed_slope_per_tick
        self._requote_steps = max(1, int(k.requote_steps))
        self._flip = k.meta_sign_flip
        self._improve = k.improve_wide_spread
        self._step_in_size = k.step_in_depth
        self._lean = k.provider_lean
        self._informed = k.informed_share
        self._trade_size = self.cal.lit_trade_size
        self._limit_size = self.cal.limit_order_size
        self._dark_size = self.cal.dark_print_size
        self._fundamental = self.cal.reference_ticks
        self._meta_sign = BUY
        self._actions: list[tuple[float, int, int, Any]] = []
        self._action_seq = 0
        self._orders: dict[str, tuple[RestingOrder, LitBook | DarkPool]] = {}
        self._arrivals: dict[str, float] = {}
        self.reports: list[VenueReport] = []
        self._fills: list[Execution] = []
        self.events_processed = 0
        # Called after every background event, for diagnostics; None in normal runs.
        self.observer: Callable[[Market], None] | None = None
        self.executions: list[VenueReport] = []  # every fill of ours, as the venues saw it
        for venue_name, start, end in outage_windows(scenario.outages):
            self._schedule(start * 60.0, _ACT_OUTAGE_START, venue_name)
            self._schedule(end * 60.0, _ACT_OUTAGE_END, venue_name)

    # -- what participants can see ----------------------------------------------------

    def latent_ticks(self) -> float:
        return self._fundamental + self.impact.ticks(self.now)

    def nbbo(self) -> tuple[int, int]:
        up = [b for b in self.lit if b.up]
        if not up:
            return 0, 0
        return max(b.bid for b in up), min(b.ask for b in up)

    def mid_ticks(self) -> float:
        bid, ask = self.nbbo()
        if bid == 0 and ask == 0:
            return self._fundamental
        return (bid + ask) / 2.0

    def quotes(self, depth_levels: int = 5) -> list[VenueQuote]:
        out = []
        for v in self.venue_list:
            if isinstance(v, LitBook):
                bid, bq, ask, aq = v.top()
                bd, ad = v.depth(BUY, depth_levels), v.depth(SELL, depth_levels)
                out.append(VenueQuote(v.name, "lit", v.up, bid, bq, ask, aq, v.volume, bd, ad))
            else:
                out.append(VenueQuote(v.name, "dark", v.up, volume=v.volume))
        return out

    def book(self, venue: str) -> LitBook:
        b = self.by_name[venue]
        if not isinstance(b, LitBook):
            raise KeyError(f"{venue} has no visible book")
        return b

    # -- our order entry ----------------------------------------------------------------

    def submit(self, req: OrderRequest) -> float:
        """Send an order now; it reaches the venue after its latency. Returns arrival time."""
        base = self.latency_s.get(req.venue, self.cal.knobs.default_latency_ms / 1000.0)
        # Latency jitters; drawn from our own stream so background draws stay aligned.
        arrival = self.now + base * (0.75 + 0.5 * float(self._ours_rng.random()))
        self._schedule(arrival, _ACT_NEW, req)
        self._arrivals[req.oid] = arrival
        return arrival

    def cancel(self, oid: str, venue: str) -> float:
        # One session per venue: a cancel never overtakes the order it cancels.
        arrival = self.now + self.latency_s.get(venue, 0.003)
        arrival = max(arrival, self._arrivals.get(oid, 0.0) + 1e-6)
        self._schedule(arrival, _ACT_CANCEL, oid)
        return arrival

    def _schedule(self, t: float, kind: int, payload: Any) -> None:
        self._action_seq += 1
        heapq.heappush(self._actions, (t, self._action_seq, kind, payload))

    # -- the clock ----------------------------------------------------------------------

    def advance(self, until: float) -> list[VenueReport]:
        """Process every background event and pending order action up to `until`.

        Returns the venue reports produced (our acks, fills, cancels, rejects) in time order.
        """
        day = self.day
        times = day.times
        n = len(times)
        actions = self._actions
        until = min(until, SESSION_SECONDS)
        while True:
            t_bg = times[self._i] if self._i < n else math.inf
            t_act = actions[0][0] if actions else math.inf
            if t_act <= t_bg:
                if t_act > until:
                    break
                t, _, kind, payload = heapq.heappop(actions)
                self.now = t
                self._do_action(kind, payload)
            else:
                if t_bg > until:
                    break
                self.now = t_bg
                self._background(self._i)
                self._i += 1
                if self.observer is not None:
                    self.observer(self)
        self.now = max(self.now, until)
        out = self.reports
        self.reports = []
        return out

    # -- background flow ----------------------------------------------------------------

    def _background(self, i: int) -> None:
        day = self.day
        self.events_processed += 1
        now = self.now
        self._fundamental = f = day.fundamental[i]
        imp = self.impact
        if imp.net != 0.0 or imp.transient_net != 0.0:
            if now - self._impact_t > 1.0:  # decays over ~30 min: a 1 s step is plenty
                self._impact_ticks = imp.ticks(now)
                self._impact_t = now
            latent = f + self._impact_ticks
        else:
            latent = f
        liq = day.liquidity[i]
        h = self.requote_ticks
        for b in self.lit:
            if b.up:
                b.liquidity = liq
                d = latent - (b.bid + b.ask) * 0.5
                if d > h or d < -h:
                    self._requote(b, latent)
        kind = day.kinds[i]
        venue = self.venue_list[day.venues[i]]
        if not venue.up:
            stand_in = self._stand_in(venue)
            if stand_in is None:
                return
            venue = stand_in
        u1 = day.u1[i]
        slope = self._slope
        if kind == KIND_DARK:
            assert isinstance(venue, DarkPool)
            # A dark pool crosses at the lit midpoint (FORMAT.md): with no lit quote (every
            # lit venue down) it has none, and does not cross. It crossed at the latent
            # price, which no participant sees (a review).
            bid, ask = self.nbbo()
            if bid == 0 and ask == 0:
                return
            # Dark contra flow leans to the latent price too: fills come when the price is
            # about to move against the resting side (adverse selection, as in real pools).
            mid = (bid + ask) / 2.0
            lean = 0.25 * math.tanh(slope * (latent - mid))
            side = BUY if u1 < 0.5 + lean else SELL
            size = max(1.0, self._dark_size * liq * day.size[i])
            fills = self._fills
            venue.contra_arrives(side, size, mid, fills)
            self.tape.print_trade(size, mid, 0)
            if fills:
                self._report_fills(venue, fills)
            return
        assert isinstance(venue, LitBook)
        d = latent - (venue.bid + venue.ask) * 0.5
        if kind == KIND_MARKET:
            if day.u3[i] < self._flip:
                self._meta_sign = -self._meta_sign
            informed = self._informed
            if u1 < informed:
                side = BUY if u1 / informed < 0.5 + 0.5 * math.tanh(slope * d) else SELL
            else:
                side = self._meta_sign
            self._lit_take(venue, side, max(1.0, self._trade_size * day.size[i]), None)
        elif kind == KIND_LIMIT:
            side = BUY if u1 < 0.5 + self._lean * math.tanh(slope * d) else SELL
            size = max(1.0, self._limit_size * liq * day.size[i])
            if venue.ask - venue.bid > self.spread and day.u3[i] < self._improve:
                px = venue.bid + 1 if side == BUY else venue.ask - 1  # improve a wide spread
            else:
                level = day.level[i]
                px = venue.bid - level if side == BUY else venue.ask + level
            venue.add(side, px, size)
        else:  # KIND_CANCEL: quotes are pulled more on the side the latent price runs at
            side = SELL if u1 < 0.5 + self._lean * math.tanh(slope * d) else BUY
            level = day.level[i]
            px = venue.bid - level if side == BUY else venue.ask + level
            venue.cancel(side, px, day.cancel_fraction[i])

    def _stand_in(self, venue: LitBook | DarkPool) -> LitBook | DarkPool | None:
        """Flow meant for a venue that is down goes to another of the same kind."""
        pool: list[Any] = self.lit if isinstance(venue, LitBook) else self.dark
        for v in pool:
            if v.up:
                return v  # type: ignore[no-any-return]
        return None

    def _requote(self, b: LitBook, latent: float) -> None:
        h = self.requote_ticks
        d = latent - (b.bid + b.ask) * 0.5
        fills = self._fills
        # A few quote changes per event, not an instant jump to the latent price: the book
        # catches up over the next events, so the flow that drives it shows in the queues first.
        for _ in range(self._requote_steps):
            if d > h:
                if b.ask - b.bid > self.spread:
                    b.add(BUY, b.bid + 1, b.default_depth(0) * 0.5)
                else:
                    b.sweep_best(SELL, fills)
            elif d < -h:
                if b.ask - b.bid > self.spread:
                    b.add(SELL, b.ask - 1, b.default_depth(0) * 0.5)
                else:
                    b.sweep_best(BUY, fills)
            else:
                break
            d = latent - (b.bid + b.ask) * 0.5
        if fills:
            # Our stale quotes were picked off by informed flow: taker is the other side.
            for f in fills:
                o = self._orders[f.oid][0]
                self.tape.print_trade(f.qty, f.px_ticks, -o.side)
            self._report_fills(b, fills)

    def _lit_take(self, b: LitBook, side: int, size: float, limit: int | None) -> float:
        fills = self._fills
        left, walked = b.take(side, size, limit, fills)
        for px, qty in walked:
            self.tape.print_trade(qty, float(px), side)
        if fills:
            self._report_fills(b, fills)
        self._step_in(b, side)
        return left

    def _step_in(self, b: LitBook, side: int) -> None:
        """After a take cleared a level, the other side steps up behind it (book resilience).

        Buyers lifting the offer pull bids up with them: the mid moves with the flow and the
        spread returns to its usual width instead of staying gapped until a new order.
        """
        if b.ask - b.bid > self.spread:
            if side == BUY:
                b.add(BUY, b.bid + 1, b.default_depth(0) * self._step_in_size)
            else:
                b.add(SELL, b.ask - 1, b.default_depth(0) * self._step_in_size)

    # -- our orders at the venues --------------------------------------------------------

    def _do_action(self, kind: int, payload: Any) -> None:
        if kind == _ACT_NEW:
            self._arrive(payload)
        elif kind == _ACT_CANCEL:
            self._cancel_arrives(payload)
        elif kind == _ACT_OUTAGE_START:
            self._outage(payload, down=True)
        else:
            self._outage(payload, down=False)

    def _arrive(self, req: OrderRequest) -> None:
        venue = self.by_name.get(req.venue)
        now = self.now
        if venue is None or not venue.up:
            self.reports.append(
                VenueReport(REJECTED, req.oid, now, req.venue, reason=REJECT_VENUE_UNAVAILABLE)
            )
            return
        if (
            req.qty <= 0
            or req.side not in (BUY, SELL)
            or (isinstance(venue, LitBook) and req.px_ticks is None)
        ):
            self.reports.append(
                VenueReport(REJECTED, req.oid, now, req.venue, reason=REJECT_INVALID)
            )
            return
        self.reports.append(VenueReport(ACCEPTED, req.oid, now, req.venue, qty=req.qty))
        if isinstance(venue, DarkPool):
            far = 10**12 if req.side == BUY else -(10**12)
            px = req.px_ticks if req.px_ticks is not None else far
            order = RestingOrder(req.oid, req.side, px, req.qty, parent=req.parent)
            venue.rest(order)
            self._orders[req.oid] = (order, venue)
            return
        assert req.px_ticks is not None
        order = RestingOrder(
            req.oid, req.side, req.px_ticks, req.qty, tif_ioc=req.ioc, parent=req.parent
        )
        self._orders[req.oid] = (order, venue)
        marketable = req.px_ticks >= venue.ask if req.side == BUY else req.px_ticks <= venue.bid
        if marketable:
            fills = self._fills
            _left, walked = venue.take(req.side, order.leaves, req.px_ticks, fills)
            for px, qty in walked:
                self.tape.print_trade(qty, float(px), req.side)
            # One execution report per price level taken, as venues do; background sizes are
            # fractional, so round the running total to keep our fills whole shares.
            done = 0
            running = 0.0
            for px, q in walked:
                running += q
                x = min(round(running), order.leaves) - done
                if x > 0:
                    fills.append(Execution(req.oid, float(px), x, "taker"))
                    done += x
            order.leaves -= done
            self._report_fills(venue, fills)
            self._step_in(venue, req.side)
        if order.leaves > 0:
            if req.ioc:
                self._orders.pop(req.oid, None)
                self.reports.append(
                    VenueReport(
                        CANCELED, req.oid, self.now, req.venue, qty=order.leaves, reason=CANCEL_IOC
                    )
                )
            else:
                venue.rest(order)
        else:
            self._orders.pop(req.oid, None)

    def _cancel_arrives(self, oid: str) -> None:
        entry = self._orders.get(oid)
        if entry is None:
            self.reports.append(
                VenueReport(CANCEL_REJECTED, oid, self.now, "", reason="UNKNOWN_OR_DONE")
            )
            return
        order, venue = entry
        if venue.remove(order):
            del self._orders[oid]
            self.reports.append(
                VenueReport(
                    CANCELED, oid, self.now, venue.name, qty=order.leaves, reason=CANCEL_REQUESTED
                )
            )
        else:
            self.reports.append(
                VenueReport(CANCEL_REJECTED, oid, self.now, venue.name, reason="UNKNOWN_OR_DONE")
            )

    def _outage(self, name: str, *, down: bool) -> None:
        venue = self.by_name[name]
        if down:
            venue.up = False
            for o in venue.clear_ours():
                self._orders.pop(o.oid, None)
                self.reports.append(
                    VenueReport(
                        CANCELED, o.oid, self.now, name, qty=o.leaves, reason=CANCEL_VENUE_OUTAGE
                    )
                )
        else:
            venue.up = True
            if isinstance(venue, LitBook):
                venue.reset(self.latent_ticks(), self.spread)

    def _report_fills(self, venue: LitBook | DarkPool, fills: list[Execution]) -> None:
        now = self.now
        for f in fills:
            entry = self._orders.get(f.oid)
            if entry is None:
                continue
            order = entry[0]
            self.impact.add(now, f.qty * order.side)
            self._impact_t = -math.inf  # our fill moves the latent price now
            report = VenueReport(
                FILLED,
                f.oid,
                now,
                venue.name,
                qty=f.qty,
                px_ticks=f.px_ticks,
                trade_id=venue.next_trade_id(),
                liquidity=f.liquidity,
            )
            self.reports.append(report)
            # The venues' own record of our executions, kept apart from the reports the
            # engine consumes: what post-trade reconciliation checks our books against.
            self.executions.append(report)
            if order.leaves <= 0 and f.liquidity != "taker":
                self._orders.pop(
                    f.oid, None
                )  # a resting order is done; takers are settled by _arrive
        fills.clear()
