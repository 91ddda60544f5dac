"""The execution engine: works parent orders in one simulated market.

It owns the only path from a strategy to a venue: every child a strategy asks for is
checked against the order's execution policy, denied with a reason code or sent, and
every venue report comes back as domain events applied to the order state machines.
Time is the market's simulated clock; nothing here reads wall time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from execution.algos.base import (
    Cancel,
    DecisionView,
    FillView,
    OrderContext,
    Replan,
    Strategy,
    WorkingChild,
)
from execution.algos.registry import strategy_class
from execution.algos.router import Place, VenueInfo, VenueQuoteView
from execution.engine.events import (
    ChildAccepted,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildDenied,
    ChildFilled,
    ChildRejected,
    ChildSubmitted,
    DomainEvent,
    ParentAccepted,
    ParentAmended,
    ParentProgress,
    ParentReplanned,
    ParentStatusChanged,
    ParentStrategyFallback,
)
from execution.engine.orders import (
    PARENT_TERMINAL,
    ChildOrder,
    ChildStatus,
    InvalidTransition,
    ParentOrder,
    ParentStatus,
    ticks_to_px,
)
from execution.engine.policy import (
    ChildCheck,
    DenyReason,
    ExecutionPolicy,
    check_child,
    participation_allowed,
)
from execution.engine.risk import RiskGate
from execution.sim.market import (
    ACCEPTED,
    CANCEL_REJECTED,
    CANCELED,
    FILLED,
    REJECTED,
    Market,
    OrderRequest,
    VenueReport,
)

SIDES = {"buy": 1, "sell": -1}
FALLBACK_STRATEGY = "twap"  # the safe baseline a failed strategy is replaced by


@dataclass(frozen=True, slots=True)
class ParentOrderSpec:
    order_id: str
    side: str
    qty: int
    start_s: float
    end_s: float
    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    limit_px: Decimal | None = None
    max_participation: float | None = 0.5
    max_child_qty: int | None = None
    allowed_venues: frozenset[str] | None = None
    # Resuming an order another engine worked (its worker died): what it had done, and
    # the last sequence number of its event stream, which continues from there.
    prior_filled_qty: int = 0
    prior_notional_ticks: float = 0.0
    prior_seq: int = 0
    prior_children: int = 0  # child ids continue too: they are unique per parent order
    # The order's window so far, for what is measured against it: its arrival mid (the
    # benchmark of its shortfall) and the market's volume and notional since it started
    # (what POV keeps pace with, and the window's VWAP), as the last engine left them.
    prior_arrival_px: Decimal | None = None
    prior_market_volume: float = 0.0
    prior_market_notional_ticks: float = 0.0
    # Where the strategy's schedule starts, if not at start_s: a resumed order keeps the
    # schedule it had (from its window's start), while this engine works it from start_s.
    schedule_start_s: float | None = None
    # A re-plan the order had under the engine that worked it before (kept across a
    # worker loss), as Replan's fields.
    replan: Replan | None = None


# The reason an order left paused by its trader until its window ended expires with: not
# its strategy's doing (post-trade analysis counts it as stopped, as a cancel is).
ENDED_PAUSED = "window ended while paused"
# A working or paused order reports its progress at least this often, fills or not: the
# blotter's time left, the order page's mid and schedule, and its market volume went
# quiet while nothing filled (a trial's chart drew a straight line over two hours).
PROGRESS_EVERY_S = 60.0


@dataclass(slots=True)
class _Working:
    spec: ParentOrderSpec
    parent: ParentOrder
    strategy: Strategy
    policy: ExecutionPolicy
    seq: int = 0
    next_decision: float = 0.0
    progress_at: float = 0.0  # when its last ParentProgress was emitted
    children: dict[str, ChildOrder] = field(default_factory=dict)
    open_children: dict[str, ChildOrder] = field(default_factory=dict)
    child_count: int = 0
    sent_at: dict[str, float] = field(default_factory=dict)
    wind_down_to: ParentStatus | None = None
    wind_down_reason: str = ""
    volume_at_start: float = 0.0
    notional_at_start: float = 0.0
    arrival_mid_ticks: float | None = None
    end_mid_ticks: float | None = None
    volume_in_window: float = 0.0
    notional_in_window: float = 0.0
    fees: float = 0.0
    fills_since_view: list[FillView] = field(default_factory=list)  # for the next DecisionView
    fallback: str = ""  # the baseline strategy that replaced a failed one
    # What the participation cap counts from: our shares and the others' volume when the
    # order last went back to work. A pause (or a worker loss) otherwise saved up headroom
    # that the resume spent in one sweep (a trial: 7,849 shares in 87 s, about 62% of the
    # market's volume, against a 50% cap).
    cap_from_ours: float = 0.0
    cap_from_others: float = 0.0

    @property
    def working_qty(self) -> int:
        return sum(c.leaves_qty for c in self.open_children.values())


class ExecutionEngine:
    def __init__(
        self,
        market: Market,
        *,
        on_event: Callable[[DomainEvent], None] | None = None,
        risk: RiskGate | None = None,
    ) -> None:
        self.market = market
        self.tick = Decimal(repr(market.cal.tick_size))
        # The firm's pre-trade risk gate; a backtest has none (its policy still applies).
        self.risk = risk
        self.fallbacks: list[tuple[str, str, str]] = []  # (order, from strategy, why)
        self.on_event = on_event
        self.events: list[DomainEvent] = []
        self.orders: dict[str, _Working] = {}
        self._child_index: dict[str, _Working] = {}
        sc = market.scenario
        self._venues = tuple(VenueInfo(v.name, v.kind, v.volume_share) for v in sc.venues)
        self._fee_bps = {v.name: v.fee_bps for v in sc.venues}

    # -- orders in ----------------------------------------------------------------------

    def add_order(self, spec: ParentOrderSpec) -> str:
        """Accept a parent order (validating its strategy parameters; ParamError if bad)."""
        if spec.order_id in self.orders:
            raise ValueError(f"order {spec.order_id} already exists")
        if spec.side not in SIDES:
            raise ValueError(f"side must be buy or sell, got {spec.side!r}")
        side = SIDES[spec.side]
        sc = self.market.scenario
        limit_ticks = self._limit_ticks(side, spec.limit_px)
        ctx = OrderContext(
            order_id=spec.order_id,
            side=side,
            qty=spec.qty,
            start_s=spec.start_s if spec.schedule_start_s is None else spec.schedule_start_s,
            end_s=spec.end_s,
            limit_px_ticks=limit_ticks,
            tick_size=sc.instrument.tick_size,
            reference_price=sc.instrument.reference_price,
            adv_shares=sc.instrument.adv_shares,
            daily_volatility=sc.instrument.daily_volatility,
            spread_ticks=sc.instrument.spread_ticks,
            volume_profile=sc.volume_profile,
            venues=self._venues,
            allowed_venues=spec.allowed_venues,
            max_child_qty=spec.max_child_qty,
        )
        strategy = strategy_class(spec.strategy)(ctx, spec.params)
        if spec.replan is not None:
            strategy.replan(spec.replan)
        policy = ExecutionPolicy(
            start_s=spec.start_s,
            end_s=spec.end_s,
            limit_px_ticks=limit_ticks,
            allowed_venues=spec.allowed_venues,
            max_child_qty=spec.max_child_qty,
            max_participation=spec.max_participation,
            participation_grace_qty=max(100, round(0.0005 * sc.instrument.adv_shares)),
        )
        parent = ParentOrder(order_id=spec.order_id, side=side, qty=spec.qty)
        if not 0 <= spec.prior_filled_qty < spec.qty:
            raise ValueError(
                f"prior filled quantity {spec.prior_filled_qty} is not below {spec.qty}"
            )
        parent.filled_qty = spec.prior_filled_qty
        parent.notional_ticks = spec.prior_notional_ticks
        w = _Working(
            spec, parent, strategy, policy, seq=spec.prior_seq, child_count=spec.prior_children
        )
        w.next_decision = max(spec.start_s, self.market.now)
        self.orders[spec.order_id] = w
        self._emit(
            w,
            ParentAccepted,
            side=spec.side,
            qty=spec.qty,
            strategy=spec.strategy,
            params=dict(strategy.params),
            start_s=spec.start_s,
            end_s=spec.end_s,
            limit_px=spec.limit_px,
        )
        return spec.order_id

    # -- controls -----------------------------------------------------------------------

    def pause(self, order_id: str, reason: str = "paused") -> None:
        w = self.orders[order_id]
        self._cancel_all(w, "PAUSE")
        self._status(w, ParentStatus.PAUSED, reason)

    def resume(self, order_id: str, reason: str = "resumed", *, replan: bool = False) -> None:
        """Back to work. With `replan`, what is left is planned over what is left of the
        window (Strategy.replan) instead of caught up with the schedule at once."""
        w = self.orders[order_id]
        self._status(w, ParentStatus.WORKING, reason)
        w.next_decision = self.market.now
        self._cap_from_now(w)
        if replan:
            self.replan(order_id)

    def cap_from_now(self, order_id: str) -> None:
        """The participation cap counts from now (a tighter cap applies from here on)."""
        self._cap_from_now(self.orders[order_id])

    def _cap_from_now(self, w: _Working) -> None:
        p = w.parent
        # Filled only: children still waiting on the pause's cancels count as ours until
        # they go (their shares could still fill).
        w.cap_from_ours = float(p.filled_qty)
        w.cap_from_others = max(self.market.tape.volume - w.volume_at_start - p.filled_qty, 0.0)

    def _cap_counts(self, w: _Working) -> tuple[int, float]:
        """What the participation cap counts now: our filled and working shares, and the
        others' volume, both since the order last went back to work."""
        p = w.parent
        ours = p.filled_qty + w.working_qty - round(w.cap_from_ours)
        others = self.market.tape.volume - w.volume_at_start - p.filled_qty - w.cap_from_others
        return ours, max(others, 0.0)

    def _participation_room(self, w: _Working) -> float | None:
        ours, others = self._cap_counts(w)
        allowed = participation_allowed(w.policy, others)
        return None if allowed is None else allowed - ours

    def replan(self, order_id: str, r: Replan | None = None) -> None:
        """Plan what is left over what is left of the window from now (or as `r` says:
        an order taken up after a worker loss, before this engine has started it)."""
        w = self.orders[order_id]
        if r is None:
            p, tape = w.parent, self.market.tape
            others = max(tape.volume - w.volume_at_start - p.filled_qty, 0.0)
            r = Replan(at_s=self.market.now, done=p.filled_qty, others_volume=others)
        w.strategy.replan(r)
        self._emit(w, ParentReplanned, at_s=r.at_s, done=r.done, others_volume=r.others_volume)

    def cancel(self, order_id: str, reason: str = "canceled") -> None:
        w = self.orders[order_id]
        if w.parent.status == ParentStatus.NEW:
            self._status(w, ParentStatus.CANCELED, reason)
            return
        self._wind_down(w, ParentStatus.CANCELED, reason)

    def _limit_ticks(self, side: int, px: Decimal | str | None) -> int | None:
        if px is None:
            return None
        raw = Decimal(px) / self.tick
        # Round the limit inward: a buy limit never rounds up, a sell never down.
        return math.floor(raw) if side > 0 else math.ceil(raw)

    def amend(self, order_id: str, changes: Mapping[str, Any]) -> None:
        """Change strategy parameters, the limit price ("limit_price": Decimal or None) and/or
        reduce the quantity ("quantity": see _reduced_qty).

        A new limit applies to the policy and the strategy at once, and working children
        priced through it are cancelled now rather than left to fill.
        """
        w = self.orders[order_id]
        if w.parent.is_done or w.parent.status == ParentStatus.PENDING_CANCEL:
            raise InvalidTransition(f"{order_id}: cannot amend a {w.parent.status} order")
        new_qty = self._reduced_qty(w, changes["quantity"]) if "quantity" in changes else None
        params = {k: v for k, v in changes.items() if k not in ("limit_price", "quantity")}
        before, after = w.strategy.amend(params) if params else ({}, {})
        if new_qty is not None:
            before["quantity"], after["quantity"] = w.parent.qty, new_qty
            w.parent.qty = new_qty
            w.strategy.ctx = replace(w.strategy.ctx, qty=new_qty)
            w.strategy.setup()  # what depends on the size (IS's trajectory) follows it
        if "limit_price" in changes:
            side = w.parent.side
            new = self._limit_ticks(side, changes["limit_price"])
            old = w.policy.limit_px_ticks
            before["limit_price"] = str(ticks_to_px(old, self.tick)) if old is not None else None
            after["limit_price"] = str(ticks_to_px(new, self.tick)) if new is not None else None
            w.policy = replace(w.policy, limit_px_ticks=new)
            w.strategy.ctx = replace(w.strategy.ctx, limit_px_ticks=new)
            if new is not None:
                for c in list(w.open_children.values()):
                    through = c.px_ticks is None or (
                        c.px_ticks > new if side > 0 else c.px_ticks < new
                    )
                    if through and c.status != ChildStatus.PENDING_CANCEL:
                        self._request_cancel(w, c, "LIMIT_AMENDED")
        self._emit(w, ParentAmended, before=before, after=after)
        if new_qty is not None and w.parent.status == ParentStatus.WORKING:
            # What is left over what is left of the window, as a resume re-plans: against
            # the old curve a cut order was far ahead of it (2,194 of 2,694 done at a
            # fifth of the window), waited until near the end to trade the rest, and an
            # adaptive order's schedule deviation left its model's training range, a
            # fallback raised as a critical for a trader's ordinary amend (a trial).
            self.replan(order_id)
        if self.risk is not None:
            self.risk.count_message(order_id, self.market.now)
        w.next_decision = self.market.now  # takes effect at the next step, not a slice later

    @staticmethod
    def _reduced_qty(w: _Working, value: Any) -> int:
        """A quantity amend reduces the order, never below what is filled or working: a
        child at a venue can fill until its cancel lands, so cutting into it could leave
        the order overfilled. Pausing first cancels what works, and then it may be cut."""
        p = w.parent
        new = int(value)
        working = sum(c.leaves_qty for c in w.open_children.values())
        if new > p.qty:
            raise InvalidTransition(
                f"{p.order_id}: an amend reduces the quantity; {new:,} is more than {p.qty:,}"
            )
        if new <= p.filled_qty or new < p.filled_qty + working:
            raise InvalidTransition(
                f"{p.order_id}: quantity {new:,} is not above the {p.filled_qty:,} filled and "
                f"{working:,} working; pause the order first to cut into what is working "
                "(or cancel it)"
            )
        return new

    # -- the loop -----------------------------------------------------------------------

    def run_until(self, until: float) -> None:
        while True:
            due = [w.next_decision for w in self.orders.values() if not w.parent.is_done]
            t = min([until, *due])
            self._on_reports(self.market.advance(t))
            now = self.market.now
            for w in list(self.orders.values()):
                if not w.parent.is_done and w.next_decision <= now:
                    self._step(w, now)
            if t >= until:
                break

    def run_to_end(self) -> None:
        end = max((w.spec.end_s for w in self.orders.values()), default=0.0)
        self.run_until(end)
        # Let cancels and late reports land, then close anything still winding down.
        self.run_until(min(end + 1.0, 390 * 60.0))
        self.close_session()

    def close_session(self) -> None:
        """The day is over (or, in a backtest, every window and its last second): nothing
        more is acknowledged. Each order still open ends as its window's end ends it
        (expired; canceled where a cancel was winding it down), its resting children
        cancelled by the close. A live worker reached the close with an order's last
        cancels in flight, and the order was suspended, then read as cancelled by a lost
        worker, with no end mid (a trial)."""
        for w in self.orders.values():
            p = w.parent
            if p.is_done or p.status == ParentStatus.NEW:
                continue  # NEW: its window never opened; whoever holds it decides
            if p.status != ParentStatus.PENDING_CANCEL:
                if w.end_mid_ticks is None:
                    w.end_mid_ticks = self.market.mid_ticks()
                    self._close_window(w)
                paused = p.status == ParentStatus.PAUSED
                self._wind_down(w, ParentStatus.EXPIRED, ENDED_PAUSED if paused else "window ended")
            for c in list(w.open_children.values()):
                self._emit_child(
                    w, c, ChildCanceled, canceled_qty=c.leaves_qty, reason="SESSION_END"
                )
                del w.open_children[c.client_order_id]
            self._finish_wind_down(w)

    @property
    def all_done(self) -> bool:
        return all(w.parent.is_done for w in self.orders.values())

    def _step(self, w: _Working, now: float) -> None:
        p = w.parent
        if p.status == ParentStatus.NEW:
            if now < w.spec.start_s:
                w.next_decision = w.spec.start_s
                return
            self._start(w, now)
        if p.status == ParentStatus.PENDING_CANCEL:
            w.next_decision = now + 1.0
            self._finish_wind_down(w)
            return
        if now >= w.spec.end_s:
            w.end_mid_ticks = self.market.mid_ticks()
            self._close_window(w)
            paused = p.status == ParentStatus.PAUSED
            self._wind_down(w, ParentStatus.EXPIRED, ENDED_PAUSED if paused else "window ended")
            return
        w.next_decision = w.strategy.next_decision_after(now)
        if now - max(w.progress_at, w.spec.start_s) >= PROGRESS_EVERY_S:
            self._progress(w, now)
        if p.status != ParentStatus.WORKING:
            return
        try:
            actions = list(w.strategy.decide(self._view(w, now)))
        except Exception as e:  # any strategy failure, whatever it is
            actions = self._fall_back(w, now, f"{type(e).__name__}: {e}")
        self._apply_actions(w, actions, now)

    def submit_actions(self, order_id: str, actions: list[Cancel | Place]) -> None:
        """Apply a strategy's actions now, outside its own decide() (a learning environment
        that chooses them step by step); the same checks as every other child."""
        w = self.orders[order_id]
        if w.parent.status == ParentStatus.WORKING:
            self._apply_actions(w, actions, self.market.now)

    def _apply_actions(self, w: _Working, actions: list[Cancel | Place], now: float) -> None:
        for action in actions:
            if isinstance(action, Cancel):
                c = w.open_children.get(action.client_order_id)
                if c is not None and c.status != ChildStatus.PENDING_CANCEL:
                    self._request_cancel(w, c, action.reason)
            else:
                self._place(w, action, now)

    def _fall_back(self, w: _Working, now: float, why: str) -> list[Cancel | Place]:
        """A strategy that fails is replaced by the safe baseline (TWAP on the same order
        and limits), which says so in the order's stream; the order keeps trading."""
        failed = w.fallback or w.spec.strategy
        self.fallbacks.append((w.spec.order_id, failed, why))
        if failed != FALLBACK_STRATEGY:
            # The order's own common parameters go with it (lots, dark share, how far to
            # take, whether to complete): with the baseline's defaults a review saw an
            # order asking for 500-share lots and no dark send 614 smaller and 144 dark.
            fallback = strategy_class(FALLBACK_STRATEGY)
            known = {p.name for p in fallback.schema()}
            kept = {k: v for k, v in w.strategy.params.items() if k in known}
            replanned = w.strategy.replanned
            w.strategy = fallback(w.strategy.ctx, kept)
            if replanned is not None:  # and the plan a resume gave it
                w.strategy.replan(replanned)
            w.fallback = FALLBACK_STRATEGY
            self._emit(
                w,
                ParentStrategyFallback,
                from_strategy=failed,
                to_strategy=FALLBACK_STRATEGY,
                reason=why[:200],
            )
            try:
                return list(w.strategy.decide(self._view(w, now)))
            except Exception as e:
                why = f"{type(e).__name__}: {e}"
                self.fallbacks.append((w.spec.order_id, FALLBACK_STRATEGY, why))
        # The baseline itself failed: stop trading this order rather than loop.
        self._wind_down(w, ParentStatus.CANCELED, f"strategy failed: {why}"[:200])
        return []

    def _start(self, w: _Working, now: float) -> None:
        tape, spec = self.market.tape, w.spec
        # A resumed order's window began under another engine: it carries on from there.
        w.volume_at_start = tape.volume - spec.prior_market_volume
        w.notional_at_start = tape.notional_ticks - spec.prior_market_notional_ticks
        if spec.prior_arrival_px is not None:
            w.arrival_mid_ticks = float(spec.prior_arrival_px / self.tick)
        else:
            w.arrival_mid_ticks = self.market.mid_ticks()
        # Counted from here (an order taken up after a worker loss has saved up headroom
        # even with nothing filled: a review); for a new order this is zero, as it was.
        self._cap_from_now(w)
        self._status(w, ParentStatus.WORKING, "started")

    def market_in_window(self, order_id: str) -> tuple[float, float]:
        """The market's volume and notional (ticks) since the order started, ours included
        (zero before it starts)."""
        w = self.orders[order_id]
        if w.arrival_mid_ticks is None:
            return 0.0, 0.0
        if w.end_mid_ticks is not None:  # closed: the window's own totals
            return w.volume_in_window, w.notional_in_window
        tape = self.market.tape
        return tape.volume - w.volume_at_start, tape.notional_ticks - w.notional_at_start

    def _close_window(self, w: _Working) -> None:
        tape = self.market.tape
        w.volume_in_window = tape.volume - w.volume_at_start
        w.notional_in_window = tape.notional_ticks - w.notional_at_start

    def _view(self, w: _Working, now: float) -> DecisionView:
        m = self.market
        quotes = tuple(
            VenueQuoteView(
                q.name, q.kind, q.up, q.bid, q.bid_qty, q.ask, q.ask_qty, q.bid_depth, q.ask_depth
            )
            for q in m.quotes()
        )
        nbb, nbo = m.nbbo()
        working = tuple(
            WorkingChild(
                c.client_order_id,
                c.venue,
                c.px_ticks,
                c.leaves_qty,
                c.intent,
                w.sent_at.get(c.client_order_id, 0.0),
                c.status == ChildStatus.PENDING_CANCEL,
            )
            for c in w.open_children.values()
        )
        fills = tuple(w.fills_since_view)
        w.fills_since_view.clear()
        return DecisionView(
            now=now,
            filled_qty=w.parent.filled_qty,
            working=working,
            quotes=quotes,
            nbb=nbb,
            nbo=nbo,
            volume_since_start=m.tape.volume - w.volume_at_start,
            our_volume=float(w.parent.filled_qty),
            market_buy_volume=m.tape.buy_volume,
            market_sell_volume=m.tape.sell_volume,
            fills=fills,
            participation_room=self._participation_room(w),
        )

    # -- children -----------------------------------------------------------------------

    def _place(self, w: _Working, a: Place, now: float) -> None:
        w.child_count += 1
        cid = f"{w.spec.order_id}-C{w.child_count}"
        p = w.parent
        child = ChildOrder(
            client_order_id=cid,
            parent_id=p.order_id,
            venue=a.venue,
            side=p.side,
            qty=a.qty,
            px_ticks=a.px_ticks,
            intent=a.intent,
        )
        w.children[cid] = child
        working = w.working_qty
        m = self.market
        ours, others = self._cap_counts(w)
        denial = check_child(
            w.policy,
            ChildCheck(
                side=p.side,
                qty=a.qty,
                px_ticks=a.px_ticks,
                venue=a.venue,
                now=now,
                leaves_unallocated=p.qty - p.filled_qty - working,
                ours_qty=ours,
                others_volume=others,
                venue_known=a.venue in m.by_name,
                parent_working=p.status == ParentStatus.WORKING,
            ),
        )
        if denial is None and self.risk is not None:
            denial = self.risk.check(
                p.order_id,
                side=p.side,
                qty=a.qty,
                # A dark child trades at the midpoint; its price is only a cap (the
                # parent's limit), not a price to hold against the collar.
                px_ticks=None if a.intent == "dark" else a.px_ticks,
                venue=a.venue,
                now=now,
                mid_ticks=m.mid_ticks(),
            )
        side = "buy" if p.side > 0 else "sell"
        px = ticks_to_px(a.px_ticks, self.tick) if a.px_ticks is not None else None
        if denial is not None:
            reason, detail = denial
            self._emit_child(
                w,
                child,
                ChildDenied,
                side=side,
                qty=a.qty,
                px=px,
                reason=reason.value,
                detail=detail,
            )
            return
        dark = m.kind_of[m.by_name[a.venue].index] == "dark"
        self._emit_child(
            w,
            child,
            ChildSubmitted,
            side=side,
            qty=a.qty,
            px=px,
            order_type="midpoint" if dark else "limit",
            tif="IOC" if a.ioc else "DAY",
            intent=a.intent,
        )
        w.open_children[cid] = child
        w.sent_at[cid] = now
        self._child_index[cid] = w
        m.submit(OrderRequest(cid, a.venue, p.side, a.qty, a.px_ticks, a.ioc, p.order_id))

    def _request_cancel(self, w: _Working, c: ChildOrder, reason: str) -> None:
        self._emit_child(w, c, ChildCancelRequested, reason=reason)
        if self.risk is not None:
            self.risk.count_message(w.spec.order_id, self.market.now)
        self.market.cancel(c.client_order_id, c.venue)

    def _cancel_all(self, w: _Working, reason: str) -> None:
        for c in list(w.open_children.values()):
            if c.status != ChildStatus.PENDING_CANCEL:
                self._request_cancel(w, c, reason)

    def _wind_down(self, w: _Working, final: ParentStatus, reason: str) -> None:
        # The first cause decides how the order ends: a cancel that lands while the
        # window's end is winding the order down asks for nothing more, and the order
        # expired (it was recorded CANCELED, and TCA read it as stopped by a person).
        if w.wind_down_to is None:
            w.wind_down_to, w.wind_down_reason = final, reason
        self._cancel_all(w, reason.upper().replace(" ", "_"))
        if w.parent.status != ParentStatus.PENDING_CANCEL:
            self._status(w, ParentStatus.PENDING_CANCEL, reason)
        self._finish_wind_down(w)

    def _finish_wind_down(self, w: _Working) -> None:
        if w.open_children or w.parent.status != ParentStatus.PENDING_CANCEL:
            return
        if w.end_mid_ticks is None:
            w.end_mid_ticks = self.market.mid_ticks()
            self._close_window(w)
        if w.parent.filled_qty == w.parent.qty:
            final = ParentStatus.FILLED
        else:
            final = w.wind_down_to or ParentStatus.CANCELED
        self._status(w, final, w.wind_down_reason)

    # -- venue reports ------------------------------------------------------------------

    def _on_reports(self, reports: list[VenueReport]) -> None:
        for r in reports:
            w = self._child_index.get(r.oid)
            if w is None:
                continue
            c = w.children[r.oid]
            if r.kind == ACCEPTED:
                self._emit_child(w, c, ChildAccepted, ts=r.ts)
            elif r.kind == REJECTED:
                self._emit_child(w, c, ChildRejected, ts=r.ts, reason=r.reason)
            elif r.kind == FILLED:
                self._fill(w, c, r)
            elif r.kind == CANCELED:
                if c.is_open:
                    self._emit_child(
                        w, c, ChildCanceled, ts=r.ts, canceled_qty=c.leaves_qty, reason=r.reason
                    )
            elif r.kind == CANCEL_REJECTED and c.status == ChildStatus.PENDING_CANCEL:
                self._emit_child(w, c, ChildCancelRejected, ts=r.ts, reason=r.reason)
            if not c.is_open:
                w.open_children.pop(c.client_order_id, None)
        for w in self.orders.values():
            if w.parent.status == ParentStatus.PENDING_CANCEL:
                self._finish_wind_down(w)

    def _fill(self, w: _Working, c: ChildOrder, r: VenueReport) -> None:
        px = ticks_to_px(r.px_ticks, self.tick)

        def apply_both(ev: ChildFilled) -> None:
            # The child checks first (live, no overfill, no repeated trade id); the parent
            # then checks what only it can see, across children.
            c.apply(ev)
            w.parent.apply(ev, px_ticks=r.px_ticks)

        self._emit(
            w,
            ChildFilled,
            apply=apply_both,
            ts=r.ts,
            client_order_id=c.client_order_id,
            venue=c.venue,
            trade_id=r.trade_id,
            px=px,
            qty=r.qty,
            liquidity=r.liquidity,
            leaves_qty=c.leaves_qty - r.qty,
        )
        w.fees += r.qty * r.px_ticks * self._fee_bps.get(r.venue, 0.0) / 1e4
        w.fills_since_view.append(FillView(r.ts, c.venue, r.qty, r.px_ticks, r.liquidity))
        if self.risk is not None:
            self.risk.check_fill(
                w.spec.order_id,
                c.client_order_id,
                ts=r.ts,
                px_ticks=r.px_ticks,
                mid_ticks=self.market.mid_ticks(),
            )
        p = w.parent
        self._progress(w, r.ts)
        if p.filled_qty == p.qty and p.status in (ParentStatus.WORKING, ParentStatus.PAUSED):
            if w.end_mid_ticks is None:
                w.end_mid_ticks = self.market.mid_ticks()
                self._close_window(w)
            self._status(w, ParentStatus.FILLED, "filled", ts=r.ts)

    def _progress(self, w: _Working, ts: float) -> None:
        p = w.parent
        avg = p.avg_px_ticks
        w.progress_at = ts
        self._emit(
            w,
            ParentProgress,
            ts=ts,
            filled_qty=p.filled_qty,
            leaves_qty=p.qty - p.filled_qty,
            working_qty=w.working_qty,
            avg_px=ticks_to_px(avg, self.tick) if avg is not None else None,
            mid_px=ticks_to_px(self.market.mid_ticks(), self.tick),
            market_volume=round(self.market.tape.volume - w.volume_at_start),
            target_qty=round(p.qty * w.strategy.planned_fraction(ts)),
        )

    # -- emitting -----------------------------------------------------------------------

    def _status(
        self, w: _Working, status: ParentStatus, reason: str, ts: float | None = None
    ) -> None:
        self._emit(
            w,
            ParentStatusChanged,
            apply=w.parent.apply,
            ts=ts,
            status=status.value,
            previous=w.parent.status.value,
            reason=reason,
            **(self._window_close(w) if status in PARENT_TERMINAL else {}),
        )

    def _window_close(self, w: _Working) -> dict[str, Any]:
        """The market over the order's window, for its final status (empty if the window
        never opened: an order cancelled before its start saw no market)."""
        if w.end_mid_ticks is None:
            return {}
        volume, notional = self.market_in_window(w.spec.order_id)
        vwap = round(notional / volume, 4) if volume > 0 else None
        return {
            "end_mid_px": ticks_to_px(w.end_mid_ticks, self.tick),
            "market_volume": round(volume),
            "market_vwap_px": ticks_to_px(vwap, self.tick) if vwap is not None else None,
        }

    def _emit(
        self,
        w: _Working,
        cls: type[Any],
        *,
        apply: Callable[[Any], None] | None = None,
        ts: float | None = None,
        **fields: Any,
    ) -> Any:
        """Build the next event of an order, apply it, and only then record and publish it:
        an event the state machine refuses is never seen by anyone."""
        ev = cls(
            order_id=w.spec.order_id,
            seq=w.seq + 1,
            ts=self.market.now if ts is None else ts,
            **fields,
        )
        if apply is not None:
            apply(ev)
        w.seq += 1
        self.events.append(ev)
        if self.on_event is not None:
            self.on_event(ev)
        return ev

    def _emit_child(
        self, w: _Working, c: ChildOrder, cls: type[Any], ts: float | None = None, **fields: Any
    ) -> Any:
        return self._emit(
            w, cls, apply=c.apply, ts=ts, client_order_id=c.client_order_id, venue=c.venue, **fields
        )


__all__ = ["DenyReason", "ExecutionEngine", "ParentOrderSpec"]
