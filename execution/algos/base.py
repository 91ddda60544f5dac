"""The one interface every execution strategy implements, and the schedule-following core.

A strategy sees a DecisionView at each decision step and answers with actions (place a
child, cancel a child). It never talks to a venue: the engine checks every child against
the execution policy and sends it. TWAP, VWAP, POV and IS differ only in their target
schedule; how they follow it (post passively, rest in the dark, take to catch up) is
shared here and routed by one SmartOrderRouter.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from execution.algos.params import ParamError, ParamSpec, validate_params
from execution.algos.router import Place, SmartOrderRouter, VenueInfo, VenueQuoteView

SESSION_SECONDS = 390 * 60.0
FINAL_SWEEP_INTERVAL_S = 5.0
# Decisions in a completing order's last FINAL_SWEEP_INTERVAL_S: often enough for a take
# to follow its cancels, and more than the risk gate's 1 s duplicate window apart, so a
# repeated identical take is not refused as a duplicate.
FINAL_SECONDS_STEP_S = 1.5


@dataclass(frozen=True, slots=True)
class OrderContext:
    """What a strategy knows about its order and instrument before it starts."""

    order_id: str
    side: int  # +1 buy, -1 sell
    qty: int
    start_s: float
    end_s: float
    limit_px_ticks: int | None
    tick_size: float
    reference_price: float
    adv_shares: float
    daily_volatility: float
    spread_ticks: float
    volume_profile: tuple[float, ...]  # bucket weights over the session, summing to 1
    venues: tuple[VenueInfo, ...]
    # The parts of the execution policy a well-behaved strategy plans within (the engine
    # still checks every child; these just keep it from asking for what will be denied).
    allowed_venues: frozenset[str] | None = None
    max_child_qty: int | None = None


@dataclass(frozen=True, slots=True)
class WorkingChild:
    client_order_id: str
    venue: str
    px_ticks: int | None
    leaves_qty: int
    intent: str  # "passive", "dark" or "take"
    sent_at: float
    cancel_pending: bool


@dataclass(frozen=True, slots=True)
class FillView:
    """One fill of this order, as the venue reported it."""

    ts: float
    venue: str
    qty: int
    px_ticks: float
    liquidity: str  # "maker", "taker" or "midpoint"


@dataclass(frozen=True, slots=True)
class DecisionView:
    now: float
    filled_qty: int
    working: tuple[WorkingChild, ...]
    quotes: tuple[VenueQuoteView, ...]
    nbb: int
    nbo: int
    volume_since_start: float  # the whole market, all venues, ours included
    our_volume: float  # this order's fills
    # Lit volume by aggressor side since the open (the whole market, ours included): the
    # difference between two views is the signed trade flow between them.
    market_buy_volume: float = 0.0
    market_sell_volume: float = 0.0
    fills: tuple[FillView, ...] = ()  # this order's fills since its previous decision view
    # Shares the order may still add to its filled and working quantity before the
    # execution policy's participation cap refuses a child (None: no cap). It can be
    # negative: the cap counts the others' volume, which can lag what already works.
    participation_room: float | None = None

    @property
    def others_volume(self) -> float:
        return max(self.volume_since_start - self.our_volume, 0.0)

    @property
    def mid_ticks(self) -> float:
        return (self.nbb + self.nbo) / 2.0


@dataclass(frozen=True, slots=True)
class Cancel:
    client_order_id: str
    reason: str = "REPRICE"


Action = Place | Cancel

COMMON_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("decision_interval_s", "float", 30.0, "Time between decisions.", "s", 1.0, 600.0),
    ParamSpec(
        "catch_up_slices",
        "float",
        1.0,
        "Take liquidity once the order is this many decision slices behind its schedule.",
        "slices",
        0.1,
        20.0,
    ),
    ParamSpec(
        "max_take_ticks",
        "int",
        2,
        "How far beyond the touch an aggressive child may walk the book.",
        "ticks",
        0,
        50,
    ),
    ParamSpec(
        "min_child_qty",
        "int",
        100,
        "Smallest child order sent (a round lot); only the order's last shares go in a "
        "smaller one.",
        "shares",
        1,
        1_000_000,
    ),
    ParamSpec(
        "dark_fraction",
        "float",
        0.3,
        "Share of the resting quantity offered at the midpoint in dark venues.",
        "",
        0.0,
        1.0,
    ),
    ParamSpec(
        "improve_wide_spread",
        "bool",
        True,
        "Post one tick inside the spread when it is wider than one tick.",
    ),
    ParamSpec(
        "complete",
        "bool",
        True,
        "Take whatever is left in the last decision slice so the order finishes.",
    ),
)


def profile_fraction(profile: Sequence[float], a_s: float, b_s: float) -> float:
    """Share of the day's expected volume between two times (piecewise-constant buckets)."""
    if b_s <= a_s:
        return 0.0
    n = len(profile)
    width = SESSION_SECONDS / n

    def cum(t: float) -> float:
        t = min(max(t, 0.0), SESSION_SECONDS)
        b = min(int(t / width), n - 1)
        return sum(profile[:b]) + profile[b] * (t - b * width) / width

    return cum(b_s) - cum(a_s)


def time_elapsed(ctx: OrderContext, t: float) -> float:
    """Share of the order's window gone by at t (TWAP's schedule)."""
    return min(max((t - ctx.start_s) / (ctx.end_s - ctx.start_s), 0.0), 1.0)


def volume_elapsed(ctx: OrderContext, t: float, window_volume: float) -> float:
    """Share of the window's expected volume traded by t (VWAP's schedule);
    `window_volume` is the window's own share of the day's, computed once per order."""
    t = min(max(t, ctx.start_s), ctx.end_s)
    return min(profile_fraction(ctx.volume_profile, ctx.start_s, t) / window_volume, 1.0)


def window_volume(ctx: OrderContext) -> float:
    """The window's share of the day's expected volume (1 if the profile gives it none)."""
    return profile_fraction(ctx.volume_profile, ctx.start_s, ctx.end_s) or 1.0


def quoted_spread_bps(spread_ticks: float, tick_size: float, price: float) -> float:
    """A quoted spread in bps of the price: what a gated policy selects its expert by."""
    return spread_ticks * tick_size / price * 1e4 if price > 0 else math.inf


@dataclass(frozen=True, slots=True)
class Replan:
    """A resume that re-plans: what is left is spread over what is left of the window,
    along the rest of the strategy's own curve, instead of catching up with the curve at
    once. `at_s`: when; `done`: shares filled then; `others_volume`: the market's volume
    by others since the order started, then (what a participation schedule counts from)."""

    at_s: float
    done: int
    others_volume: float


class Strategy(ABC):
    """Base of every strategy. Subclasses set name, label, extra params and the schedule."""

    replanned: Replan | None = None
    # Whether the order keeps to a schedule it can be behind: not a strategy that follows
    # the volume the market actually trades (POV), whose curve is an expectation.
    keeps_schedule: ClassVar[bool] = True

    name: ClassVar[str]
    label: ClassVar[str]
    extra_params: ClassVar[tuple[ParamSpec, ...]] = ()
    default_overrides: ClassVar[dict[str, Any]] = {}

    def __init__(self, ctx: OrderContext, params: Mapping[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.params = validate_params(self.schema(), params or {})
        allowed = ctx.venues
        if ctx.allowed_venues is not None:
            allowed = tuple(v for v in ctx.venues if v.name in ctx.allowed_venues)
        self.router = SmartOrderRouter(allowed)
        self._dark_owed = 0.0  # shares of dark share not yet sent (see rest())
        # Whether the last decision sent less than it asked for, for the participation
        # cap (see within_participation): why an order is behind, for the console.
        self.held_by_participation = False
        self.setup()

    @classmethod
    def schema(cls) -> tuple[ParamSpec, ...]:
        common = tuple(
            replace(p, default=cls.default_overrides[p.name])
            if p.name in cls.default_overrides
            else p
            for p in COMMON_PARAMS
        )
        return (*cls.extra_params, *common)

    def setup(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Recompute anything derived from params (called again after an amendment)."""

    def amend(self, changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        specs = {p.name: p for p in self.schema()}
        for key in changes:
            if key in specs and not specs[key].amendable:
                raise ParamError(key, "cannot be changed while the order works")
        merged = validate_params(self.schema(), {**self.params, **changes})
        before = {k: self.params[k] for k in changes}
        self.params = merged
        self._dark_owed = 0.0  # owed under the old parameters (a dark share of 0 means none)
        self.setup()
        return before, {k: merged[k] for k in changes}

    @property
    def decision_interval_s(self) -> float:
        return float(self.params["decision_interval_s"])

    def in_last_slice(self, now: float) -> bool:
        """The completion sweep's part of the window: the last decision slice, and never
        less than FINAL_SWEEP_INTERVAL_S. The sweep cancels what rests and takes the rest,
        and a take waits for those cancels to land (the execution policy does not allocate
        shares that still rest), so it needs at least one decision after them: with a 1 s
        interval the last slice was the window's last second, and an order told to
        complete expired short."""
        return now + max(self.decision_interval_s, FINAL_SWEEP_INTERVAL_S) >= self.ctx.end_s

    def next_decision_after(self, now: float) -> float:
        """In the last slice, decide more often so the completion sweep can mop up; in the
        window's last FINAL_SWEEP_INTERVAL_S, every FINAL_SECONDS_STEP_S. A sweep that has to cancel
        what rests before it can take the rest needs a decision after those cancels land
        (only an order told to complete sweeps; a POV's last seconds are as they were):
        one made 3 s before the end had none left, and the order expired short (a trial
        saw 7% of an IS order left so)."""
        step = self.decision_interval_s
        end = self.ctx.end_s
        if self.in_last_slice(now):
            step = min(step, FINAL_SWEEP_INTERVAL_S)
            if self.params.get("complete") and now + FINAL_SWEEP_INTERVAL_S >= end:
                step = min(step, FINAL_SECONDS_STEP_S)
        elif self.params.get("complete") and end - max(step, FINAL_SWEEP_INTERVAL_S) > now:
            # An order told to complete decides at the start of its last slice, never past
            # it: off the decision grid (after an amend or a resume), the decision before
            # the slice could fall 72 ms short of it, the next 72 ms before the end, and
            # the sweep had no time for its cancels to land (a trial's order expired 47
            # shares short). Never at `now` itself, whatever the floats make of it.
            return min(now + step, end - max(step, FINAL_SWEEP_INTERVAL_S))
        return min(now + step, end)

    @abstractmethod
    def schedule_fraction(self, t: float) -> float:
        """Planned fraction of the order done by time t (for charts and schedule deviation)."""

    def replan(self, r: Replan) -> None:
        """From now on, plan what is left over what is left of the window (Replan)."""
        self.replanned = r

    def planned_fraction(self, t: float) -> float:
        """The fraction of the order planned done by t: the schedule, or after a re-plan,
        what was done then plus the rest of the curve's share of what was left, so the
        order is on plan at the re-plan and done where the curve is done."""
        r = self.replanned
        if r is None:
            return self.schedule_fraction(t)
        q = self.ctx.qty
        done = min(r.done, q)
        f0 = self.schedule_fraction(r.at_s)
        rest = (
            1.0 if f0 >= 1.0 else min(max((self.schedule_fraction(t) - f0) / (1.0 - f0), 0.0), 1.0)
        )
        return (done + (q - done) * rest) / q if q > 0 else 1.0

    def targets(self, view: DecisionView) -> tuple[float, float]:
        """Shares the order should have done now, and by the next decision."""
        q = self.ctx.qty
        nxt = min(view.now + self.decision_interval_s, self.ctx.end_s)
        return q * self.planned_fraction(view.now), q * self.planned_fraction(nxt)

    def decide(self, view: DecisionView) -> list[Action]:
        return self.shape(self._decide(view), view)

    def shape(self, actions: list[Action], view: DecisionView) -> list[Action]:
        """The children as the execution policy will take them: split at the max child
        size, then sized within the participation cap."""
        return self.within_participation(self.cap_child_qty(actions), view)

    def within_participation(self, actions: list[Action], view: DecisionView) -> list[Action]:
        """Size the children, in the order they go, within the participation cap's room,
        in whole lots; what does not fit is not sent (the order falls behind and catches
        up as the market trades). Without it a far-behind order asked for more than the
        cap at every decision and had each child refused (1-2 refusals an episode on the
        shared mid-cap scenarios, and a refusal storm pauses a live order); a professional
        algorithm trades at its cap instead. The engine still checks every child."""
        room = view.participation_room
        self.held_by_participation = False
        if room is None:
            return actions
        lot = self.lot(self.ctx.qty - view.filled_qty)
        left = math.floor(room)
        sized: list[Action] = []
        for a in actions:
            if not isinstance(a, Place):
                sized.append(a)
                continue
            qty = a.qty if a.qty <= left else left // lot * lot
            self.held_by_participation |= qty < a.qty
            if qty >= 1:
                sized.append(a if qty == a.qty else replace(a, qty=qty))
                left -= qty
        return sized

    def cap_child_qty(self, actions: list[Action]) -> list[Action]:
        """Split any child larger than the policy's max_child_qty into parts of the cap; a
        last part under the minimum child size shares the one before it, where that leaves
        both at least a lot (2,050 at a cap of 1,000: 1,000, 525, 525, not 1,000, 1,000,
        50). The cap is the policy's and wins over the minimum."""
        cap = self.ctx.max_child_qty
        if cap is None:
            return actions
        smallest = int(self.params["min_child_qty"])
        sliced: list[Action] = []
        for a in actions:
            if not (isinstance(a, Place) and a.qty > cap):
                sliced.append(a)
                continue
            parts = [cap] * (a.qty // cap) + ([a.qty % cap] if a.qty % cap else [])
            if len(parts) > 1 and parts[-1] < smallest <= (parts[-2] + parts[-1]) // 2:
                pair = parts[-2] + parts[-1]
                parts[-2:] = [pair - pair // 2, pair // 2]
            sliced.extend(replace(a, qty=q) for q in parts)
        return sliced

    def lot(self, leaves: int) -> int:
        """The smallest child worth sending: the minimum child size, or what is left of
        the order when that is less."""
        return max(1, min(int(self.params["min_child_qty"]), leaves))

    def rest(self, add: int, dark_share: float, view: DecisionView, improve: bool) -> list[Action]:
        """Rest `add` shares: about `dark_share` of them at the midpoint in dark venues, the
        rest passively on a lit venue, no part under the minimum child size unless it is
        all of `add`. A dark part too small to send this time is owed and sent with a
        later one, so the dark share holds over the order (a 30% share of 150 shares would
        otherwise be a 45-share child, or nothing dark at all)."""
        ctx = self.ctx
        smallest = min(int(self.params["min_child_qty"]), add)
        dark_qty = 0
        if self.router.has_dark(view):
            wanted = add * dark_share + self._dark_owed
            dark_qty = min(int(wanted), add)
            self._dark_owed = 0.0
            if 1 <= dark_qty < smallest:
                dark_qty, self._dark_owed = 0, wanted  # too small to send yet: owed
            elif dark_qty and add - dark_qty < smallest:
                dark_qty = add  # a lit remainder under the minimum goes dark with the rest
        out: list[Action] = []
        if dark_qty:
            out.extend(self.router.dark(ctx.side, dark_qty, view, ctx.limit_px_ticks, smallest))
        placed_dark = sum(a.qty for a in out if isinstance(a, Place))
        if add - placed_dark >= 1:
            out.extend(
                self.router.passive(ctx.side, add - placed_dark, view, ctx.limit_px_ticks, improve)
            )
        return out

    def take_now(
        self,
        want: int,
        kept: list[WorkingChild],
        resting_qty: int,
        free: int,
        view: DecisionView,
        actions: list[Action],
    ) -> tuple[int, list[WorkingChild], int, int]:
        """Take up to `want` shares now, appending the orders to `actions`. If fewer are free,
        the resting children are cancelled (dark ones first) so that the rest of the take
        can go at the next decision, once the venues have confirmed: until then their
        shares are still working there and may fill, and a take that counted on them was
        refused as more than the order has left (EXCEEDS_LEAVES, on every order that
        finished with a child resting: a trial).
        Returns (shares taken, kept children, their resting quantity, free quantity).
        With the far touch past the order's limit nothing can be taken, so nothing resting
        is cancelled for it (they were, every decision, and sent again at the same limit:
        55 cancels for 8 fills, a trial)."""
        if not self.router.can_take(self.ctx.side, view, self.ctx.limit_px_ticks):
            return 0, kept, resting_qty, free
        if want > free and kept:
            for c in sorted(kept, key=lambda c: c.intent != "dark"):
                actions.append(Cancel(c.client_order_id, "CATCH_UP"))
            kept, resting_qty = [], 0
        want = min(want, free)
        taken = 0
        if want > 0:
            orders = self.router.take(
                self.ctx.side, want, view, self.ctx.limit_px_ticks, self.params["max_take_ticks"]
            )
            actions.extend(orders)
            taken = sum(o.qty for o in orders)
            free -= taken
        return taken, kept, resting_qty, free

    def _decide(self, view: DecisionView) -> list[Action]:
        ctx, p = self.ctx, self.params
        side = ctx.side
        actions: list[Action] = []
        target_now, target_next = self.targets(view)
        live = [c for c in view.working if not c.cancel_pending]
        working_qty = sum(c.leaves_qty for c in view.working)
        leaves = ctx.qty - view.filled_qty
        last_slice = self.in_last_slice(view.now)
        if last_slice and p["complete"]:
            target_now = target_next = float(ctx.qty)

        # Passive orders that lost the touch are repriced: cancelled now, replaced below.
        for c in live:
            if c.intent == "passive" and not self.router.at_touch(
                side, c, view, self.ctx.limit_px_ticks
            ):
                actions.append(Cancel(c.client_order_id))
        kept = [
            c
            for c in live
            if c.intent != "take"
            and not any(
                isinstance(a, Cancel) and a.client_order_id == c.client_order_id for a in actions
            )
        ]
        resting_qty = sum(c.leaves_qty for c in kept)
        free = leaves - working_qty

        behind = target_now - view.filled_qty
        slice_qty = max(target_next - target_now, 1.0)
        lot = self.lot(leaves)
        taking = 0
        finishing = last_slice and p["complete"]
        # Behind by less than a lot is not behind: a smaller take would be a sliver.
        if behind > max(p["catch_up_slices"] * slice_qty, lot - 1) or finishing:
            # Only an order told to complete sweeps its whole rest at the end; any other
            # catches up to its schedule (a POV order's last slice is no licence to take
            # the book: its target is still a share of the market's volume).
            want = int(min(leaves if finishing else behind, leaves))
            if lot > 1:  # behind by 99.99 of a 100-share lot takes the lot, not 99
                want = min(max(want, lot), leaves)
            taking, kept, resting_qty, free = self.take_now(
                want, kept, resting_qty, free, view, actions
            )

        desired_resting = target_next - view.filled_qty - taking
        add = int(min(desired_resting - resting_qty, free))
        if add >= 1 and not last_slice:
            # Less than a lot wanted: rest a lot, a little ahead of the schedule.
            add = min(max(add, lot), free)
            if not self.waits_for_cancels(add, lot, leaves, view, actions, taking):
                actions.extend(self.rest(add, p["dark_fraction"], view, p["improve_wide_spread"]))
        return actions

    @staticmethod
    def waits_for_cancels(
        add: int, lot: int, leaves: int, view: DecisionView, actions: list[Action], taken: int
    ) -> bool:
        """Whether a child under a lot would go only because shares are still held by
        cancels in flight (a repriced 100-share child, and 50 of a 150-share order sent
        beside it): then it waits, and the lot goes once they land."""
        if add >= lot:
            return False
        cancelling = {a.client_order_id for a in actions if isinstance(a, Cancel)}
        staying = sum(
            c.leaves_qty
            for c in view.working
            if not c.cancel_pending and c.client_order_id not in cancelling
        )
        return add < leaves - staying - taken


@dataclass
class _Registry:
    strategies: dict[str, type[Strategy]] = field(default_factory=dict)


REGISTRY = _Registry()


def register(cls: type[Strategy]) -> type[Strategy]:
    REGISTRY.strategies[cls.name] = cls
    return cls
