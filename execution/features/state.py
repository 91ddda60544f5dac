"""Features computed incrementally, one decision step at a time, from what a strategy sees.

`FeatureState.update(ctx, view)` is the only way features are made, in training, in
backtests and in live sessions. It first reduces the step to a few plain numbers
(`ContextInputs`, `StepInputs`: the national best bid and offer and their queues, depth,
the tape's cumulative buy and sell volume, our fills and dark exposure), then `apply`
updates the rolling windows from those numbers alone. A state made with `record=True`
keeps each step's numbers; `to_record()` is plain JSON-able data, and `replay(record)` runs
them through a fresh state and gives back the same float32 vectors bit for bit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

import numpy as np

from execution.algos.base import SESSION_SECONDS, DecisionView, FillView, OrderContext
from execution.features.spec import N_FEATURES, NAMES, Vector

RECORD_FORMAT = "oversight.features.inputs/1"

VOL_SHORT_S = 30.0
VOL_LONG_S = 120.0
FLOW_SHORT_S = 60.0
FLOW_LONG_S = 300.0
DARK_WINDOW_S = 600.0
QUEUE_HALF_LIFE_S = 1800.0
_HISTORY_S = max(VOL_SHORT_S, VOL_LONG_S, FLOW_SHORT_S, FLOW_LONG_S, DARK_WINDOW_S)


@dataclass(frozen=True, slots=True)
class ContextInputs:
    """The parts of the OrderContext features use (recorded again only when they change)."""

    side: int
    qty: int
    start_s: float
    end_s: float
    typical_spread_ticks: float
    daily_volatility: float

    @classmethod
    def of(cls, ctx: OrderContext) -> ContextInputs:
        return cls(
            int(ctx.side),
            int(ctx.qty),
            float(ctx.start_s),
            float(ctx.end_s),
            float(ctx.spread_ticks),
            float(ctx.daily_volatility),
        )


@dataclass(frozen=True, slots=True)
class StepInputs:
    """One decision step reduced to what the features need."""

    now: float
    nbb: int  # national best bid and offer, ticks; 0, 0 when no lit venue is up
    nbo: int
    bid_qty: float  # size at the national best, summed over the lit venues quoting it
    ask_qty: float
    bid_depth: float  # size on the best five levels of each side, summed over lit venues
    ask_depth: float
    filled_qty: int
    market_volume: float  # the whole market since the order started, ours included
    our_volume: float
    market_buy_volume: float  # cumulative lit volume by aggressor side since the open
    market_sell_volume: float
    dark_leaves: int  # our quantity resting in dark venues now
    dark_filled: int  # our dark fills since the previous step
    target_fraction: float | None  # the strategy's schedule now; None: linear in time

    @classmethod
    def of(
        cls,
        ctx: OrderContext,
        view: DecisionView,
        fills: Sequence[FillView],
        target_fraction: float | None = None,
    ) -> StepInputs:
        nbb, nbo = int(view.nbb), int(view.nbo)
        bid_qty = ask_qty = bid_depth = ask_depth = 0.0
        dark = {v.name for v in ctx.venues if v.kind == "dark"}
        for q in view.quotes:
            if q.kind == "dark":
                dark.add(q.name)
            elif q.up:
                if q.bid == nbb:
                    bid_qty += q.bid_qty
                if q.ask == nbo:
                    ask_qty += q.ask_qty
                bid_depth += q.bid_depth
                ask_depth += q.ask_depth
        return cls(
            now=float(view.now),
            nbb=nbb,
            nbo=nbo,
            bid_qty=float(bid_qty),
            ask_qty=float(ask_qty),
            bid_depth=float(bid_depth),
            ask_depth=float(ask_depth),
            filled_qty=int(view.filled_qty),
            market_volume=float(view.volume_since_start),
            our_volume=float(view.our_volume),
            market_buy_volume=float(view.market_buy_volume),
            market_sell_volume=float(view.market_sell_volume),
            dark_leaves=int(sum(c.leaves_qty for c in view.working if c.venue in dark)),
            dark_filled=int(sum(f.qty for f in fills if f.venue in dark)),
            target_fraction=None if target_fraction is None else float(target_fraction),
        )

    @property
    def book_valid(self) -> bool:
        return self.nbb > 0 and self.nbo > 0


_CONTEXT_FIELDS = tuple(f.name for f in fields(ContextInputs))
_STEP_FIELDS = tuple(f.name for f in fields(StepInputs))
_INT_FIELDS = frozenset({"side", "qty", "nbb", "nbo", "filled_qty", "dark_leaves", "dark_filled"})


def _from_row(cls: type[Any], names: tuple[str, ...], row: Sequence[Any]) -> Any:
    if len(row) != len(names):
        raise ValueError(f"a recorded row has {len(row)} values, expected {len(names)}")
    values = [
        v if v is None else int(v) if n in _INT_FIELDS else float(v)
        for n, v in zip(names, row, strict=True)
    ]
    return cls(*values)


@dataclass(frozen=True, slots=True)
class _Interval:
    """What happened between two decision steps."""

    t_end: float
    ret_dt: float  # seconds the mid return spans (0: no return, the book was missing)
    r2_bps: float  # squared mid log return, bps²
    buy: float  # buyer- and seller-initiated lit volume
    sell: float
    dark_filled: float
    dark_exposure: float  # share-seconds resting in dark venues


@dataclass(frozen=True, slots=True)
class _Book:
    nbb: int
    nbo: int
    bid_qty: float
    ask_qty: float
    bid_depth: float
    ask_depth: float


def _ratio(a: float, b: float) -> float:
    return (a - b) / (a + b) if a + b > 0 else 0.0


def _clip01(x: float) -> float:
    return min(max(x, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class _Sums:
    """The rolling windows' sums at one step."""

    r2_short: float  # squared returns and the seconds they span, VOL_SHORT_S
    dt_short: float
    r2_long: float  # the same over VOL_LONG_S
    dt_long: float
    buy_short: float  # aggressor volume, FLOW_SHORT_S
    sell_short: float
    buy_long: float  # FLOW_LONG_S
    sell_long: float
    dark_filled: float  # DARK_WINDOW_S
    dark_exposure: float


def _vol(r2: float, dt: float, prior: float) -> float:
    # Steps less than a second apart (an amendment, a resume) do not blow it up.
    return math.sqrt(r2 / max(dt, 1.0)) if dt > 0 else prior


def _dark_rate(filled: float, exposure: float) -> float:
    # A share counts as resting at least a second: at most 60 per minute.
    return 60.0 * filled / max(exposure, filled) if filled > 0 else 0.0


class FeatureState:
    """Rolling feature windows for one parent order. Feed it every decision step, in order."""

    names: tuple[str, ...] = NAMES

    def __init__(self, *, record: bool = False) -> None:
        self._ctx: ContextInputs | None = None
        self._prev: StepInputs | None = None
        self._book: _Book | None = None
        self._mid: tuple[float, float] | None = None  # last valid mid (ticks) and its time
        self._intervals: deque[_Interval] = deque()
        self._typical_queue: float | None = None
        self._typical_t = 0.0
        self._rows: list[list[Any]] | None = [] if record else None
        self.last: Vector | None = None
        self.steps = 0

    # -- feeding ------------------------------------------------------------------------

    def update(
        self,
        ctx: OrderContext,
        view: DecisionView,
        fills: Sequence[FillView] | None = None,
        *,
        target_fraction: float | None = None,
    ) -> Vector:
        """One decision step. `fills`: this order's fills since the previous step (default:
        the view's own); `target_fraction`: the strategy's schedule now (default linear)."""
        step = StepInputs.of(ctx, view, view.fills if fills is None else fills, target_fraction)
        return self.apply(ContextInputs.of(ctx), step)

    def apply(self, context: ContextInputs | None, step: StepInputs) -> Vector:
        """The same from already reduced inputs (what a record holds)."""
        if context is None and self._ctx is None:
            raise ValueError("the first step needs the order's context")
        prev = self._prev
        if prev is not None and step.now < prev.now:
            raise ValueError(f"steps must come in time order: {step.now} after {prev.now}")
        new_context = context if context is not None and context != self._ctx else None
        if self._rows is not None:
            saved = None if new_context is None else list(astuple(new_context))
            self._rows.append([saved, list(astuple(step))])
        if new_context is not None:
            self._ctx = new_context
        assert self._ctx is not None
        c, s = self._ctx, step

        mid = (s.nbb + s.nbo) / 2.0 if s.book_valid else None
        if prev is not None:
            dt = s.now - prev.now
            ret_dt, r2 = 0.0, 0.0
            if mid is not None and self._mid is not None:
                ret_dt = s.now - self._mid[1]
                r2 = (1e4 * math.log(mid / self._mid[0])) ** 2
            self._intervals.append(
                _Interval(
                    t_end=s.now,
                    ret_dt=ret_dt,
                    r2_bps=r2,
                    buy=max(s.market_buy_volume - prev.market_buy_volume, 0.0),
                    sell=max(s.market_sell_volume - prev.market_sell_volume, 0.0),
                    dark_filled=float(s.dark_filled),
                    # What rested over the interval: what still rests plus what filled.
                    dark_exposure=float(s.dark_leaves + s.dark_filled) * dt,
                )
            )
            while len(self._intervals) > 1 and self._intervals[0].t_end <= s.now - _HISTORY_S:
                self._intervals.popleft()
        if mid is not None:
            self._mid = (mid, s.now)
            self._book = _Book(s.nbb, s.nbo, s.bid_qty, s.ask_qty, s.bid_depth, s.ask_depth)
            q = 0.5 * (s.bid_qty + s.ask_qty)
            if self._typical_queue is None:
                self._typical_queue = q
            else:
                a = -math.expm1(-(s.now - self._typical_t) * math.log(2.0) / QUEUE_HALF_LIFE_S)
                self._typical_queue += a * (q - self._typical_queue)
            self._typical_t = s.now
        self._prev = s
        self.steps += 1
        self.last = np.array(self._values(c, s), dtype=np.float32)
        return self.last

    # -- the features -------------------------------------------------------------------

    def _window_sums(self, now: float) -> _Sums:
        """Every rolling window's sums in one pass from the newest interval back (each sum
        adds its terms in the same order a pass per window would: the same floats)."""
        r2_s = dt_s = r2_l = dt_l = 0.0
        buy_s = sell_s = buy_l = sell_l = 0.0
        dark_filled = dark_exposure = 0.0
        # The same tests, in the same order, as one pass per window: a window takes the
        # newest intervals until the first one ending at or before now - W, and stops
        # there (written `not t <= cut`, so even a NaN time is treated as before).
        cut_dark, cut_flow_long = now - DARK_WINDOW_S, now - FLOW_LONG_S
        cut_vol_long, cut_flow_short = now - VOL_LONG_S, now - FLOW_SHORT_S
        cut_vol_short = now - VOL_SHORT_S
        in_fl = in_vl = in_fs = in_vs = True
        for iv in reversed(self._intervals):
            t = iv.t_end
            if t <= cut_dark:
                break
            dark_filled += iv.dark_filled
            dark_exposure += iv.dark_exposure
            in_fl = in_fl and not t <= cut_flow_long
            if in_fl:
                buy_l += iv.buy
                sell_l += iv.sell
            in_vl = in_vl and not t <= cut_vol_long
            if in_vl:
                r2_l += iv.r2_bps
                dt_l += iv.ret_dt
            in_fs = in_fs and not t <= cut_flow_short
            if in_fs:
                buy_s += iv.buy
                sell_s += iv.sell
            in_vs = in_vs and not t <= cut_vol_short
            if in_vs:
                r2_s += iv.r2_bps
                dt_s += iv.ret_dt
        return _Sums(
            r2_s, dt_s, r2_l, dt_l, buy_s, sell_s, buy_l, sell_l, dark_filled, dark_exposure
        )

    def _values(self, c: ContextInputs, s: StepInputs) -> list[float]:
        window = c.end_s - c.start_s
        elapsed = _clip01((s.now - c.start_s) / window) if window > 0 else 1.0
        filled = s.filled_qty / c.qty
        target = elapsed if s.target_fraction is None else s.target_fraction
        prior = c.daily_volatility * 1e4 / math.sqrt(SESSION_SECONDS)  # bps/√s

        b = self._book
        spread = imb1 = imb5 = bid_q = ask_q = bid_rel = ask_rel = 0.0
        if b is not None:
            spread = float(b.nbo - b.nbb)
            imb1 = _ratio(b.bid_qty, b.ask_qty)
            imb5 = _ratio(b.bid_depth, b.ask_depth)
            bid_q, ask_q = b.bid_qty, b.ask_qty
            typical = max(self._typical_queue or 0.0, 1.0)
            bid_rel = math.log2(1.0 + bid_q / typical)
            ask_rel = math.log2(1.0 + ask_q / typical)
        micro = 0.5 * spread * imb1  # microprice - mid, in the form that cancels nothing
        w = self._window_sums(s.now)
        vol_long = _vol(w.r2_long, w.dt_long, prior)
        values = [
            float(c.side),
            1.0 - elapsed if window > 0 else 0.0,
            _clip01((c.qty - s.filled_qty) / c.qty),
            filled - target,
            s.our_volume / s.market_volume if s.market_volume > 0 else 0.0,
            spread,
            spread / c.typical_spread_ticks if c.typical_spread_ticks > 0 else 0.0,
            micro,
            micro / max(abs(spread), 1.0),
            imb1,
            imb5,
            bid_q,
            ask_q,
            bid_rel,
            ask_rel,
            _vol(w.r2_short, w.dt_short, prior),
            vol_long,
            vol_long / prior if prior > 0 else 0.0,
            _ratio(w.buy_short, w.sell_short),
            _ratio(w.buy_long, w.sell_long),
            _dark_rate(w.dark_filled, w.dark_exposure),
        ]
        assert len(values) == N_FEATURES
        return values

    @property
    def microprice_ticks(self) -> float | None:
        """The national microprice now (ticks), for charts; None before any book."""
        b = self._book
        if b is None:
            return None
        return (b.nbb + b.nbo) / 2.0 + 0.5 * (b.nbo - b.nbb) * _ratio(b.bid_qty, b.ask_qty)

    # -- record and replay --------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """Every step's inputs so far, as plain JSON-able data (needs record=True)."""
        if self._rows is None:
            raise ValueError("this FeatureState was made without record=True")
        return {
            "format": RECORD_FORMAT,
            "context_fields": list(_CONTEXT_FIELDS),
            "step_fields": list(_STEP_FIELDS),
            "steps": [[None if c is None else list(c), list(s)] for c, s in self._rows],
        }


def iter_record(record: Mapping[str, Any]) -> Iterator[tuple[ContextInputs | None, StepInputs]]:
    if record.get("format") != RECORD_FORMAT:
        raise ValueError(f"not a feature input record of format {RECORD_FORMAT}")
    if tuple(record["context_fields"]) != _CONTEXT_FIELDS or (
        tuple(record["step_fields"]) != _STEP_FIELDS
    ):
        raise ValueError("the record's fields are not this version's")
    for ctx_row, step_row in record["steps"]:
        context = None if ctx_row is None else _from_row(ContextInputs, _CONTEXT_FIELDS, ctx_row)
        yield context, _from_row(StepInputs, _STEP_FIELDS, step_row)


def replay(record: Mapping[str, Any]) -> Vector:
    """Run a record's inputs through a fresh FeatureState: one row of features per step."""
    state = FeatureState()
    rows = [state.apply(c, s) for c, s in iter_record(record)]
    if not rows:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    return np.stack(rows)
