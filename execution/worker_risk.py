"""The market worker's risk duties: it holds the firm's limits and kill switches in its
engine's risk gate, stops what a kill switch covers at once, raises exceptions for the
console from what it sees, and reconciles its fills against the venues' own records.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from execution.engine.engine import ENDED_PAUSED
from execution.engine.events import (
    ChildDenied,
    ChildRejected,
    DomainEvent,
    ParentReplanned,
    ParentStatusChanged,
)
from execution.engine.orders import ParentStatus, ticks_to_px
from execution.engine.policy import percent
from execution.engine.risk import ChildLimits
from execution.models import Fill, ParentOrder
from execution.session_clock import session_clock
from oversight.audit import audit_records
from oversight.risk import notify
from oversight.risk.models import (
    KillAck,
    KillSwitch,
    Metric,
    Override,
    RiskException,
    RiskLimit,
)
from oversight.risk.pretrade import position, reduce_only_allows
from oversight.risk.scopes import OrderScopes, covers, tightest
from oversight.risk.selectors import applied_text, kill_applied, kill_json
from oversight.risk.services import exception_cause_over, exception_raise, exception_restate

if TYPE_CHECKING:
    from execution.worker import MarketWorker

# Denials that are the firm's controls at work (the policy's own, such as OUTSIDE_WINDOW,
# are routine). A kill switch's TRADING_HALTED is raised once, as the kill itself.
RISK_DENIALS = {
    "MAX_CHILD_QTY",
    "MAX_CHILD_NOTIONAL",
    "PRICE_COLLAR",
    "DUPLICATE_ORDER",
    "MESSAGE_RATE",
    "MAX_PARTICIPATION",
    "LIMIT_PRICE",
    "VENUE_NOT_ALLOWED",
}
REJECT_BURST = 5  # venue rejects within REJECT_WINDOW_S simulated seconds
# An order whose children the firm's controls deny this often is paused: its strategy is
# asking for what the limits will not let it do, one child after another (a trial's
# overridden order had 20,593 children denied for participation in 20 s, raised as one
# warning). A backtest's order is denied once or twice a day.
DENIAL_STORM = 50  # denials of one order within DENIAL_STORM_WINDOW_S simulated seconds
DENIAL_STORM_WINDOW_S = 60.0
REJECT_WINDOW_S = 10.0
BEHIND_FRACTION = 0.10  # of the order's quantity behind its schedule
# Back on schedule at half the line it was raised at (the larger of that share and a
# lot): an order hovering at the line is not raised and "caught up" at every other step.
CAUGHT_UP_SHARE = 0.5
BEHIND_RESTATE_S = 60.0  # simulated seconds between restatements of a moving lag


@dataclass
class _Lag:
    """An order's behind-schedule warning, as last said on the console."""

    stated_at: float  # simulated seconds
    stated: int  # shares behind, as last said
    worst: int
    over: bool = False  # said to be back on schedule


@dataclass
class _Kill:
    ack_id: int
    orders: set[str] = field(default_factory=set)
    children: int = 0  # child orders it cancelled
    done: bool = False  # every child order of its orders is confirmed gone
    dirty: bool = False  # counts not yet written


class WorkerRisk:
    def __init__(self, worker: MarketWorker) -> None:
        self.w = worker
        self.scopes: dict[str, OrderScopes] = {}
        self.owner: dict[str, int] = {}
        # Orders a risk manager released past the participation limit (an override that
        # names MAX_PARTICIPATION): the limit does not cap their children either.
        self.participation_overridden: set[str] = set()
        self.applied: dict[int, _Kill] = {}  # kill switch id -> its ack in this session
        self.stopped: dict[str, str] = {}  # engine order id -> why it was stopped
        self._fallbacks_seen = 0
        self._breaches_seen = 0
        self._venues_up: dict[str, bool] = {}
        self._rejects: dict[str, deque[float]] = {}
        self._denials: dict[str, deque[float]] = {}  # engine order id -> denial times
        self.step_audits: list[dict[str, Any]] = []  # written with the step's own records
        self._behind: dict[str, _Lag] = {}  # engine order id -> its warning
        self._audits_due: list[dict[str, Any]] = []  # written at the end of refresh()

    def snapshot(self) -> dict[str, Any]:
        """What a step's bookkeeping changes before its commit: restored if it fails, so
        the step written again raises and acknowledges what it would have."""
        return {
            "fallbacks_seen": self._fallbacks_seen,
            "breaches_seen": self._breaches_seen,
            "venues_up": dict(self._venues_up),
            "rejects": {k: deque(v) for k, v in self._rejects.items()},
            "denials": {k: deque(v) for k, v in self._denials.items()},
            "behind": {k: replace(v) for k, v in self._behind.items()},
            "applied": {k: replace(a, orders=set(a.orders)) for k, a in self.applied.items()},
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self._fallbacks_seen = snap["fallbacks_seen"]
        self._breaches_seen = snap["breaches_seen"]
        self._venues_up = snap["venues_up"]
        self._rejects = snap["rejects"]
        self._denials = snap["denials"]
        self._behind = snap["behind"]
        self.applied = snap["applied"]

    # -- orders ---------------------------------------------------------------------------

    def track(self, order: ParentOrder) -> None:
        eid = order.engine_id
        self.scopes[eid] = OrderScopes(
            trader=order.owner.get_username(),
            desk=order.desk,
            strategy=order.strategy,
            instrument=self.w.instrument.symbol,
            order=str(order.pk),
            model=order.model_version.name if order.model_version is not None else "",
            expert=order.model_expert,
        )
        self.owner[eid] = order.owner_id
        codes = Override.objects.filter(order_id=order.pk, status=Override.USED).values_list(
            "codes", flat=True
        )
        if any("MAX_PARTICIPATION" in (c or []) for c in codes):
            # Granted "for these breaches only": the order was still held to the limit
            # child by child, fell behind, and expired 1,737 of 3,000 short (a trial).
            # It keeps the execution policy's own cap.
            self.participation_overridden.add(eid)

    def refresh(self) -> None:
        """Read limits and kill switches; put them in the gate; stop what a kill covers."""
        engine = self.w.engine
        open_ids = [eid for eid, wk in engine.orders.items() if not wk.parent.is_done]
        if not open_ids or engine.risk is None:
            return
        keys: set[tuple[str, str]] = set()
        for eid in open_ids:
            keys |= self.scopes[eid].scope_keys()
        rows = list(
            RiskLimit.objects.filter(
                Q(*[Q(scope_type=t, scope_key=k) for t, k in keys], _connector=Q.OR),
                value__isnull=False,
            ).values_list("scope_type", "scope_key", "metric", "value")
        )
        kills = list(
            KillSwitch.objects.filter(active=True).select_related("engaged_by").order_by("pk")
        )
        for eid in open_ids:
            sc = self.scopes[eid]
            lim = tightest(rows, sc)

            def value(metric: str, lim: dict[str, tuple[Decimal, str]] = lim) -> float | None:
                return float(lim[metric][0]) if metric in lim else None

            kill = self._kill_for(eid, sc, kills)
            max_qty = value(Metric.MAX_CHILD_QTY)
            engine.risk.set_limits(
                eid,
                ChildLimits(
                    account=sc.trader,
                    max_child_qty=int(max_qty) if max_qty is not None else None,
                    max_child_notional=value(Metric.MAX_CHILD_NOTIONAL),
                    price_collar_bps=value(Metric.PRICE_COLLAR_BPS),
                    max_msgs_per_s=value(Metric.MAX_MSGS_PER_S),
                    halted=kill is not None,
                    halted_reason=f"kill switch {kill.pk}: {kill.reason}" if kill else "",
                ),
            )
            self._size_children_within(eid, max_qty, value(Metric.MAX_CHILD_NOTIONAL))
            pct = value(Metric.MAX_PARTICIPATION_PCT)
            wk = engine.orders[eid]
            if (
                pct is not None
                and eid not in self.participation_overridden
                and (wk.policy.max_participation is None or pct / 100 < wk.policy.max_participation)
            ):
                from dataclasses import replace

                wk.policy = replace(wk.policy, max_participation=pct / 100)
                # From now: counted from the order's start, a cap tightened under an order
                # that had traded more stopped it until the market's volume caught up (a
                # trial's order traded nothing for 66 minutes of market time).
                engine.cap_from_now(eid)
            if kill is not None:
                self._stop(eid, kill)
        if self._audits_due:
            audit_records(self._audits_due)
            self._audits_due = []
        for ack in self.applied.values():
            if ack.dirty:
                KillAck.objects.filter(pk=ack.ack_id).update(
                    orders=len(ack.orders), children_canceled=ack.children
                )
                ack.dirty = False

    def _size_children_within(
        self, eid: str, max_qty: float | None, max_notional: float | None
    ) -> None:
        """The strategy splits its children to the tightest child limits, as it does to
        the order's own cap, rather than ask for children the gate will deny (a trial's
        order with a 60,000-share minimum child under a 50,000 limit had about 100 denied
        and expired 82% filled). The value limit is read at the dearest price a child
        may carry."""
        wk = self.w.engine.orders.get(eid)
        if wk is None:
            return
        caps = [c for c in (wk.spec.max_child_qty,) if c]
        if max_qty is not None:
            caps.append(int(max_qty))
        if max_notional is not None:
            # At the dearest price a child of this order may carry: a buy's take walks
            # max_take_ticks past the ask, never past its limit (at the mid, a review's
            # 20-tick takes were denied 25 times); a sell rests at the ask, or at its
            # limit above it. A tick and 2% to spare for moves.
            market = self.w.engine.market
            _, ask = market.nbbo()
            top = float(ask) if ask > 0 else market.mid_ticks()
            limit = wk.policy.limit_px_ticks
            if wk.parent.side > 0:
                worst = top + int(wk.strategy.params.get("max_take_ticks", 0))
                worst = min(worst, limit) if limit is not None else worst
            else:
                worst = max(top, limit) if limit is not None else top
            worst += 1
            price = worst * float(self.w.instrument.tick_size)
            if price > 0:
                caps.append(max(1, int(max_notional / (price * 1.02))))
        cap = min(caps) if caps else None
        if wk.strategy.ctx.max_child_qty != cap:
            wk.strategy.ctx = replace(wk.strategy.ctx, max_child_qty=cap)

    def _kill_for(self, eid: str, sc: OrderScopes, kills: list[KillSwitch]) -> KillSwitch | None:
        for k in kills:
            if not covers(k.scope_type, k.scope_key, sc):
                continue
            if k.state == KillSwitch.HALTED:
                return k
            # REDUCING: an order that adds to (or flips) the trader's position stops, with
            # their earlier open orders counted as the entry check counts them.
            pos = position(trader_id=self.owner[eid], instrument_id=self.w.instrument.pk)
            if not reduce_only_allows(pos, self._earlier_leaves(eid), self._signed_leaves(eid)):
                return k
        return None

    def _signed_leaves(self, eid: str) -> int:
        p = self.w.engine.orders[eid].parent
        return (p.qty - p.filled_qty) * (1 if p.side > 0 else -1)

    def _earlier_leaves(self, eid: str) -> list[int]:
        """The signed rest of the same trader's open orders on this market entered before
        this one (every order of an instrument is in its one market worker)."""
        pk = self.w._orders[eid].pk
        return [
            self._signed_leaves(other)
            for other, o in sorted(self.w._orders.items(), key=lambda item: item[1].pk)
            if o.pk < pk
            and self.owner.get(other) == self.owner[eid]
            and other in self.w.engine.orders
            and not self.w.engine.orders[other].parent.is_done
        ]

    def _stop(self, eid: str, kill: KillSwitch) -> None:
        engine = self.w.engine
        wk = engine.orders[eid]
        ack = self.applied.get(kill.pk)
        if ack is None:
            row = KillAck.objects.create(
                kill=kill, session=self.w.session, applied_at=timezone.now()
            )
            ack = self.applied[kill.pk] = _Kill(row.pk)
        if eid in self.stopped:
            return
        why = f"kill switch {kill.pk}: {kill.reason}"[:200]
        self.stopped[eid] = why
        ack.orders.add(eid)
        ack.done = False  # settled again once this order's children are gone too
        ack.children += len(wk.open_children)
        ack.dirty = True
        if not wk.parent.is_done:
            engine.cancel(eid, why)
            # Each order the kill stops, on its own record: the trail had the engage
            # alone, and could not say what became of one order (a trial). Written
            # together at the end of refresh(), in its transaction: the chain's lock is
            # then held for one write, not from the first order's on (bench_kill); and
            # before the step's control refusals, which the kill may cause (a review found
            # "pause refused" ahead of the kill's cancel when they were written later).
            self._audits_due.append(
                dict(
                    actor=None,
                    action="order.cancel",
                    obj=self.w._orders[eid],
                    reason=f"canceled by {why} (engaged by {kill.engaged_by.get_username()})",
                    after={"kill_switch": kill.pk, "state": kill.state},
                )
            )

    def kills_settle(self) -> None:
        """Acknowledge each kill once its orders have no child order left at a venue."""
        engine = self.w.engine
        for ack in list(self.applied.values()):
            if ack.done:
                continue
            if all(not engine.orders[e].open_children for e in ack.orders):
                KillAck.objects.filter(pk=ack.ack_id).update(done_at=timezone.now())
                ack.done = True
                # Every console's card says what was applied, as it lands, not on reload.
                row = KillAck.objects.select_related("kill__engaged_by").get(pk=ack.ack_id)
                payload = {
                    **kill_json(row.kill),
                    "applied_text": applied_text(**kill_applied(row.kill)),
                }
                transaction.on_commit(lambda p=payload: notify.console_send("kill", p))

    def _denial_storm(self, eid: str, evs: list[ChildDenied], cause_at: Any) -> None:
        """Pause an order whose children were denied DENIAL_STORM times within the window,
        and raise it as critical: it is for a person to amend, resume or cancel."""
        q = self._denials.setdefault(eid, deque())
        q.extend(ev.ts for ev in evs)
        now = evs[-1].ts
        while q and q[0] < now - DENIAL_STORM_WINDOW_S:
            q.popleft()
        wk = self.w.engine.orders[eid]
        if len(q) < DENIAL_STORM or wk.parent.status != ParentStatus.WORKING:
            return
        n = len(q)
        q.clear()
        reasons = ", ".join(sorted({ev.reason for ev in evs}))
        why = f"{n} child orders denied in {DENIAL_STORM_WINDOW_S:g} s ({reasons})"
        self.w.engine.pause(eid, f"paused by the worker: {why}")
        o = self.w._orders[eid]
        exception_raise(
            kind="DENIAL_STORM",
            severity=RiskException.CRITICAL,
            scope_type="order",
            scope_key=str(o.pk),
            title=f"Order {o.pk} paused: {why}",
            detail=f"the last: {evs[-1].detail}",
            suggested_action="amend the order (quantity, window, participation) or cancel "
            "it; resumed as it is, it will be denied again",
            order_id=o.pk,
            trader_id=o.owner_id,
            dedupe_key=f"denial-storm:{o.pk}",
            cause_at=cause_at,
        )
        self.step_audits.append(
            dict(actor=None, action="order.pause", obj=o, reason=f"paused by the worker: {why}")
        )

    def kills_pending(self) -> bool:
        return any(not a.done for a in self.applied.values())

    # -- exceptions from what the worker sees --------------------------------------------

    def after_step(self, events: list[DomainEvent], cause_at: Any) -> None:
        """Inside the step's transaction: raise what the step showed."""
        engine = self.w.engine
        symbol = self.w.instrument.symbol
        orders = self.w._orders
        # A step's denials of one order for one reason are one write and one broadcast: a
        # tight collar denied ~900 children an order, each raised on its own, and the
        # steps grew slow enough for the workers to be declared dead (a trial).
        denied: dict[tuple[str, str], list[ChildDenied]] = {}
        for ev in events:
            if isinstance(ev, ChildDenied) and ev.reason in RISK_DENIALS:
                denied.setdefault((ev.order_id, ev.reason), []).append(ev)
        for (order_id, reason), evs in denied.items():
            o = orders[order_id]
            exception_raise(
                kind="ORDER_DENIED",
                code=reason,
                severity=RiskException.WARNING,
                scope_type="order",
                scope_key=str(o.pk),
                title=f"Child order denied on order {o.pk}: {reason}",
                detail=evs[-1].detail,
                suggested_action="check the strategy's parameters and the limit",
                order_id=o.pk,
                trader_id=o.owner_id,
                cause_at=cause_at,
                times=len(evs),
            )
        by_order: dict[str, list[ChildDenied]] = {}
        for (order_id, _), evs in denied.items():
            by_order.setdefault(order_id, []).extend(evs)
        for order_id, evs in by_order.items():
            self._denial_storm(order_id, evs, cause_at)
        for ev in events:
            if isinstance(ev, ChildRejected):
                child = engine.orders[ev.order_id].children.get(ev.client_order_id)
                q = self._rejects.setdefault(child.venue if child else "", deque())
                q.append(ev.ts)
                while q and q[0] < ev.ts - REJECT_WINDOW_S:
                    q.popleft()
                if len(q) >= REJECT_BURST:
                    exception_raise(
                        kind="REJECT_BURST",
                        severity=RiskException.WARNING,
                        scope_type="instrument",
                        scope_key=symbol,
                        title=f"{len(q)} venue rejects in {REJECT_WINDOW_S:g} s on {symbol}",
                        detail=f"last: {ev.reason}",
                        suggested_action="check the venue's status; consider pausing orders",
                        cause_at=cause_at,
                    )
        for oid, failed, why in engine.fallbacks[self._fallbacks_seen :]:
            o = orders[oid]
            exception_raise(
                kind="STRATEGY_FAILURE",
                severity=RiskException.CRITICAL,
                scope_type="order",
                scope_key=str(o.pk),
                title=f"Strategy {failed} failed on order {o.pk}; fell back to TWAP",
                detail=why,
                suggested_action="the order trades on TWAP within its limits; review or cancel it",
                order_id=o.pk,
                trader_id=o.owner_id,
                cause_at=cause_at,
            )
        self._fallbacks_seen = len(engine.fallbacks)
        assert engine.risk is not None
        tick = Decimal(repr(self.w.market.cal.tick_size))
        for b in engine.risk.breaches[self._breaches_seen :]:
            o = orders[b.order_id]
            # One exception per order, counted again with each fill while it is open (as
            # denials are): a tight collar must not bury the console in criticals.
            exception_raise(
                kind="FILL_OUTSIDE_COLLAR",
                severity=RiskException.CRITICAL,
                scope_type="order",
                scope_key=str(o.pk),
                title=f"Fills outside the {b.collar_bps:g} bps collar on order {o.pk}",
                detail=f"the last: {b.client_order_id} at {ticks_to_px(b.px_ticks, tick)}, "
                # To a hundredth: "1 bps from the mid" read as no breach of a 1 bps collar.
                f"{b.off_bps:.2f} bps from the mid {ticks_to_px(b.mid_ticks, tick)}",
                suggested_action="check the venue print and the order; pause it if in doubt",
                order_id=o.pk,
                trader_id=o.owner_id,
                dedupe_key=f"collar:{o.pk}",
                cause_at=cause_at,
            )
        self._breaches_seen = len(engine.risk.breaches)
        for q in self.w.market.quotes(depth_levels=0):
            was = self._venues_up.get(q.name, True)
            if was and not q.up:
                exception_raise(
                    kind="VENUE_OUTAGE",
                    severity=RiskException.CRITICAL,
                    scope_type="instrument",
                    scope_key=symbol,
                    title=f"Venue {q.name} is down for {symbol}",
                    detail="working child orders there are cancelled by the venue; the router "
                    "avoids it until it is back",
                    suggested_action="watch fill rates; pause large orders if liquidity is thin",
                    dedupe_key=f"outage:{symbol}:{q.name}",
                    cause_at=cause_at,
                    reopen=True,
                )
            elif q.up and not was:
                exception_cause_over(
                    dedupe_key=f"outage:{symbol}:{q.name}",
                    title=f"Venue {q.name} was down for {symbol}: back up",
                    detail=f"back up at {session_clock(self.w.market.now, ms=False)} market "
                    "time; the router sends to it again",
                    suggested_action="check that its fills resumed, then resolve",
                )
            self._venues_up[q.name] = q.up
        for ev in events:
            if not (
                isinstance(ev, ParentStatusChanged)
                and ev.status == "EXPIRED"
                and ev.reason != ENDED_PAUSED
            ):
                continue
            wk = engine.orders[ev.order_id]
            p = wk.parent
            # Told to finish, and did not, for a reason other than its trader's pause: a
            # limit the price never came back to, denials, thin liquidity. Nothing said so
            # when a few shares were left (a trial's order ended 47 short of 28,000).
            if wk.strategy.params.get("complete") and p.filled_qty < p.qty:
                o = orders[ev.order_id]
                limit = wk.policy.limit_px_ticks
                exception_raise(
                    kind="ORDER_INCOMPLETE",
                    severity=RiskException.WARNING,
                    scope_type="order",
                    scope_key=str(o.pk),
                    title=f"Order {o.pk} expired {p.qty - p.filled_qty:,} shares short",
                    detail=f"told to finish in its last slice; filled {p.filled_qty:,} of "
                    f"{p.qty:,}"
                    + (f", limit {ticks_to_px(limit, tick)}" if limit is not None else ""),
                    suggested_action="tell the trader; the rest needs a new order if wanted",
                    order_id=o.pk,
                    trader_id=o.owner_id,
                    cause_at=cause_at,
                )
        now = self.w.market.now
        replanned = {ev.order_id for ev in events if isinstance(ev, ParentReplanned)}
        for eid, wk in engine.orders.items():
            p = wk.parent
            lag = self._behind.get(eid)
            if eid in replanned and lag is not None and not lag.over:
                # Its schedule was redrawn (a resume or a cut that re-plans what is left
                # over what is left): not caught up, but on a new plan (a trial read
                # "caught up" on an order that had filled nothing, then counted it twice).
                lag.over = True
                exception_cause_over(
                    dedupe_key=f"behind:{orders[eid].pk}",
                    title=f"Order {orders[eid].pk} was {lag.worst:,} shares behind schedule: "
                    "re-planned",
                    detail=f"re-planned at {session_clock(now, ms=False)} market time: what is "
                    f"left over what is left of the window; filled {p.filled_qty:,} of {p.qty:,}",
                    suggested_action="watch it on its new plan; resolve",
                )
                continue
            if p.is_done:
                if lag is not None and not lag.over and p.filled_qty == p.qty:
                    self._behind_over(orders[eid], lag, f"filled all {p.qty:,} shares")
                self._behind.pop(eid, None)
                continue
            if p.status.value != "WORKING":
                continue
            if not wk.strategy.keeps_schedule:
                # A POV order follows the market's volume, not a schedule it must keep: its
                # curve of expected volume is no promise (a trial's was "2,000 behind" at
                # entry).
                continue
            target = p.qty * wk.strategy.planned_fraction(now)
            # A lag under a lot is not behind: the strategy sends whole lots, so it is
            # never closer to its curve than that (a 60-share order "11 shares behind").
            behind = target - p.filled_qty
            lot = wk.strategy.lot(p.qty - p.filled_qty)
            is_behind = behind > BEHIND_FRACTION * p.qty and behind >= lot
            shares = round(behind)
            if lag is not None and not lag.over:
                # A lot is a tenth of a small order or more: the band is then the lot's.
                if behind <= CAUGHT_UP_SHARE * max(BEHIND_FRACTION * p.qty, lot):
                    self._behind_over(
                        orders[eid], lag, f"filled {p.filled_qty:,} of {p.qty:,}, on schedule"
                    )
                    continue
                # Still behind, or not yet back: restated at most once a simulated minute,
                # when the lag moved (between the two lines too, or it kept a lag long gone).
                lag.worst = max(lag.worst, shares)
                if now - lag.stated_at < BEHIND_RESTATE_S or shares == lag.stated:
                    continue
                lag.stated_at, lag.stated = now, shares
                exception_restate(
                    dedupe_key=f"behind:{orders[eid].pk}",
                    **self._behind_words(orders[eid], wk, target, shares, lag.worst),
                )
                continue
            if not is_behind:
                continue
            # Behind for the first time, or again after catching up: an occurrence, counted
            # on its warning if that is still open (its worst goes on), else a new one
            # with a worst of its own (a review found a resolved one's carried over).
            o = orders[eid]
            worst = shares
            if lag is not None and (
                RiskException.objects.filter(dedupe_key=f"behind:{o.pk}")
                .exclude(status=RiskException.RESOLVED)
                .exists()
            ):
                worst = max(lag.worst, shares)
            self._behind[eid] = _Lag(stated_at=now, stated=shares, worst=worst)
            exception_raise(
                reopen=lag is not None,
                kind="BEHIND_SCHEDULE",
                severity=RiskException.WARNING,
                scope_type="order",
                scope_key=str(o.pk),
                order_id=o.pk,
                trader_id=o.owner_id,
                dedupe_key=f"behind:{o.pk}",
                cause_at=cause_at,
                **self._behind_words(o, wk, target, shares, worst),
            )

    def _behind_words(
        self, o: ParentOrder, wk: Any, target: float, shares: int, worst: int
    ) -> dict[str, str]:
        p = wk.parent
        detail = f"filled {p.filled_qty:,} of {p.qty:,}; schedule says {target:,.0f}"
        if worst > shares:
            detail += f"; {worst:,} behind at its worst"
        action = "check liquidity and the limit price; amend urgency"
        cap = wk.policy.max_participation
        if wk.strategy.held_by_participation and cap is not None:
            # Why it is behind, where the answer is ours: the strategy sizes its children
            # within the cap, so it trades no faster than that.
            detail += (
                f"; held at its participation cap, {percent(cap)} of the market's volume "
                "(the tighter of the execution policy's cap and any participation limit)"
            )
            action = (
                "it trades as fast as its participation cap allows: extend the window or cut "
                "the quantity, or ask for a higher limit if one holds it"
            )
        return {
            "title": f"Order {o.pk} is {shares:,} shares behind schedule",
            "detail": detail,
            "suggested_action": action,
        }

    def _behind_over(self, o: ParentOrder, lag: _Lag, now_words: str) -> None:
        """An order behind its schedule is back on it: said on its warning, which stays
        open for a person to resolve, as a venue back up does."""
        lag.over = True
        exception_cause_over(
            dedupe_key=f"behind:{o.pk}",
            title=f"Order {o.pk} was {lag.worst:,} shares behind schedule: caught up",
            detail=f"caught up at {session_clock(self.w.market.now, ms=False)} market time; "
            f"{now_words}",
            suggested_action="nothing to do if that was expected; resolve",
        )

    # -- post-trade reconciliation -------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Our recorded fills of this session against the venues' own execution records.
        A break raises a critical exception; returns the breaks."""
        session = self.w.session
        assert session is not None
        prefix = f"S{session.pk}:"
        tick = Decimal(repr(self.w.market.cal.tick_size))
        venue: dict[tuple[str, str], tuple[int, Decimal]] = {}
        for r in self.w.market.executions:
            venue[(r.venue, prefix + r.trade_id)] = (r.qty, Decimal(repr(r.px_ticks)) * tick)
        ours = {
            (f.venue, f.trade_id): (f.quantity, f.price)
            for f in Fill.objects.filter(trade_id__startswith=prefix, instrument=self.w.instrument)
        }
        breaks: list[str] = []
        for key, (qty, px) in venue.items():
            got = ours.get(key)
            if got is None:
                # A fill the venue made but we have not written yet is not a break if it is
                # still in the engine's unpublished events.
                if not self._unpublished(key[1][len(prefix) :]):
                    breaks.append(f"{key[0]} {key[1]}: at the venue, not in our books")
            elif got[0] != qty or got[1].compare(px.quantize(got[1])) != 0:
                breaks.append(
                    f"{key[0]} {key[1]}: venue {qty} @ {px.normalize()}, ours {got[0]} @ {got[1].normalize()}"
                )
        for key in ours.keys() - venue.keys():
            breaks.append(f"{key[0]} {key[1]}: in our books, not at the venue")
        if breaks:
            exception_raise(
                kind="RECON_BREAK",
                severity=RiskException.CRITICAL,
                scope_type="instrument",
                scope_key=self.w.instrument.symbol,
                title=f"{len(breaks)} reconciliation break(s) on {self.w.instrument.symbol}",
                detail="; ".join(breaks[:10]),
                suggested_action="stop trading the instrument and investigate before the close",
                dedupe_key=f"recon:{session.pk}",
            )
        return breaks

    def _unpublished(self, trade_id: str) -> bool:
        from execution.engine.events import ChildFilled

        return any(
            isinstance(e, ChildFilled) and e.trade_id == trade_id
            for e in self.w.engine.events[self.w._published :]
        )
