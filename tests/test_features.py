"""The adaptive algorithm's features: known values by hand, ranges on real episodes, and the
live/replay identity that lets training, backtests and live sessions share one pipeline."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.algos.base import (
    REGISTRY,
    SESSION_SECONDS,
    Action,
    DecisionView,
    FillView,
    OrderContext,
    WorkingChild,
)
from execution.algos.router import VenueInfo, VenueQuoteView
from execution.algos.strategies import TWAP
from execution.engine.engine import ExecutionEngine, ParentOrderSpec
from execution.engine.events import ChildFilled
from execution.features import (
    FEATURES,
    INDEX,
    N_FEATURES,
    NAMES,
    FeatureState,
    StepInputs,
    TrainingRange,
    normalise,
    replay,
)
from execution.sim.market import Market
from execution.sim.scenario import Scenario
from execution.sim.venues import BUY, SELL
from tests.conftest import repo_scenario

VENUES = (
    VenueInfo("LIT-A", "lit", 0.5),
    VenueInfo("LIT-B", "lit", 0.3),
    VenueInfo("DARK", "dark", 0.2),
)


def make_ctx(**kw: Any) -> OrderContext:
    base: dict[str, Any] = dict(
        order_id="P1",
        side=1,
        qty=1000,
        start_s=0.0,
        end_s=1000.0,
        limit_px_ticks=None,
        tick_size=0.01,
        reference_price=40.0,
        adv_shares=1_000_000.0,
        daily_volatility=0.02,
        spread_ticks=2.0,
        volume_profile=(1.0,),
        venues=VENUES,
    )
    base.update(kw)
    return OrderContext(**base)


def lit(
    name: str,
    bid: int,
    bid_qty: float,
    ask: int,
    ask_qty: float,
    bid_depth: float = 0.0,
    ask_depth: float = 0.0,
    up: bool = True,
) -> VenueQuoteView:
    return VenueQuoteView(name, "lit", up, bid, bid_qty, ask, ask_qty, bid_depth, ask_depth)


def make_view(
    now: float = 0.0,
    quotes: tuple[VenueQuoteView, ...] | None = None,
    **kw: Any,
) -> DecisionView:
    if quotes is None:
        quotes = (lit("LIT-A", 100, 300, 102, 100),)
    lit_up = [q for q in quotes if q.kind == "lit" and q.up]
    base: dict[str, Any] = dict(
        now=now,
        filled_qty=0,
        working=(),
        quotes=(*quotes, VenueQuoteView("DARK", "dark", True)),
        nbb=max((q.bid for q in lit_up), default=0),
        nbo=min((q.ask for q in lit_up), default=0),
        volume_since_start=0.0,
        our_volume=0.0,
    )
    base.update(kw)
    return DecisionView(**base)


def features(*views: DecisionView, ctx: OrderContext | None = None) -> dict[str, float]:
    state = FeatureState()
    c = ctx or make_ctx()
    for v in views:
        out = state.update(c, v)
    return {n: float(x) for n, x in zip(NAMES, out, strict=True)}


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-6, abs=1e-6)  # the vector is float32


# -- the table ----------------------------------------------------------------------------


def test_the_table_is_the_one_definition_of_order_and_ranges() -> None:
    assert len(set(NAMES)) == N_FEATURES == len(FEATURES)
    assert all(f.lo < f.hi and f.unit is not None and f.description for f in FEATURES)
    assert all(INDEX[f.name] == i for i, f in enumerate(FEATURES))
    assert FeatureState.names == NAMES


# -- each feature by hand -----------------------------------------------------------------


def test_imbalance_and_microprice_at_the_top() -> None:
    # bid 100 x 300, ask 102 x 100: imbalance 0.5, microprice (102·300 + 100·100) / 400.
    state = FeatureState()
    out = state.update(make_ctx(), make_view())
    f = dict(zip(NAMES, map(float, out), strict=True))
    assert f["imbalance_l1"] == 0.5
    assert state.microprice_ticks == (102 * 300 + 100 * 100) / 400 == 101.5
    assert f["microprice_offset_ticks"] == 0.5  # 101.5 - mid 101
    assert f["microprice_offset_spreads"] == 0.25
    assert f["spread_ticks"] == 2.0 and f["spread_vs_typical"] == 1.0
    assert f["bid_queue_shares"] == 300.0 and f["ask_queue_shares"] == 100.0


def test_queues_are_summed_over_the_venues_at_the_national_best_only() -> None:
    quotes = (
        lit("LIT-A", 100, 200, 102, 50, bid_depth=1000, ask_depth=300),
        lit("LIT-B", 99, 500, 102, 50, bid_depth=700, ask_depth=500),
        lit("LIT-C", 101, 999, 103, 999, up=False),  # down: neither best nor depth
    )
    f = features(make_view(quotes=quotes))
    assert f["bid_queue_shares"] == 200 and f["ask_queue_shares"] == 100
    assert f["imbalance_l1"] == approx(1 / 3)
    assert f["imbalance_l5"] == approx((1700 - 800) / 2500)
    # The queue's typical size starts as the first step's mean queue (150): log2(1 + q/150).
    assert f["bid_queue_rel"] == approx(math.log2(1 + 200 / 150))
    assert f["ask_queue_rel"] == approx(math.log2(1 + 100 / 150))


def test_empty_top_and_a_crossed_national_market() -> None:
    f = features(make_view(quotes=(lit("LIT-A", 100, 0, 102, 0),)))
    assert f["imbalance_l1"] == f["microprice_offset_ticks"] == f["imbalance_l5"] == 0.0
    assert f["bid_queue_rel"] == 0.0
    crossed = (lit("LIT-A", 101, 100, 103, 100), lit("LIT-B", 99, 100, 100, 300))
    f = features(make_view(quotes=crossed))
    assert f["spread_ticks"] == -1.0 and f["spread_vs_typical"] == -0.5
    assert abs(f["microprice_offset_spreads"]) <= 0.5


def test_realised_volatility_over_decision_steps() -> None:
    ctx = make_ctx()
    prior = 0.02 * 1e4 / math.sqrt(SESSION_SECONDS)
    q0 = (lit("LIT-A", 99, 100, 101, 100),)  # mid 100
    q1 = (lit("LIT-A", 100, 100, 102, 100),)  # mid 101
    first = features(make_view(0.0, q0), ctx=ctx)
    assert first["vol_30s"] == first["vol_2m"] == approx(prior)  # nothing seen yet
    assert first["vol_2m_vs_daily"] == approx(1.0)
    r = 1e4 * math.log(101 / 100)
    f = features(make_view(0.0, q0), make_view(30.0, q1), ctx=ctx)
    assert f["vol_30s"] == f["vol_2m"] == approx(r / math.sqrt(30))
    f = features(make_view(0.0, q0), make_view(30.0, q1), make_view(60.0, q1), ctx=ctx)
    assert f["vol_30s"] == 0.0  # the last 30 s: no move
    assert f["vol_2m"] == approx(r / math.sqrt(60))
    assert f["vol_2m_vs_daily"] == approx(r / math.sqrt(60) / prior)


def test_a_missing_book_carries_the_last_one_and_skips_the_return() -> None:
    q0 = (lit("LIT-A", 99, 300, 101, 100),)
    q1 = (lit("LIT-A", 100, 100, 102, 100),)
    gone = (lit("LIT-A", 99, 300, 101, 100, up=False),)
    f = features(make_view(0.0, q0), make_view(30.0, gone))
    assert f["imbalance_l1"] == 0.5 and f["spread_ticks"] == 2.0
    f = features(make_view(0.0, q0), make_view(30.0, gone), make_view(60.0, q1))
    # One return, from the last mid seen (t=0) to t=60.
    assert f["vol_2m"] == approx(1e4 * math.log(101 / 100) / math.sqrt(60))


def test_signed_trade_flow_over_one_and_five_minutes() -> None:
    def v(t: float, buy: float, sell: float) -> DecisionView:
        return make_view(t, market_buy_volume=buy, market_sell_volume=sell)

    steps = [v(0, 1000, 1000), v(30, 1300, 1100), v(60, 1300, 1300), v(90, 1300, 1300)]
    f = features(*steps[:2])
    assert f["trade_flow_1m"] == 0.5  # 300 bought, 100 sold
    f = features(*steps[:3])
    assert f["trade_flow_1m"] == 0.0  # 300 each since t=0
    f = features(*steps)
    assert f["trade_flow_1m"] == -1.0  # since t=30: 200 sold
    assert f["trade_flow_5m"] == 0.0
    assert features(steps[0])["trade_flow_1m"] == 0.0  # no interval yet


def test_dark_fill_rate_is_fills_over_resting_exposure() -> None:
    dark_child = WorkingChild("P1-C1", "DARK", None, 600, "dark", 0.0, False)
    lit_child = WorkingChild("P1-C2", "LIT-A", 100, 500, "passive", 0.0, False)
    fills = (
        FillView(10.0, "DARK", 400, 101.0, "midpoint"),
        FillView(12.0, "LIT-A", 100, 100.0, "maker"),
    )
    f = features(make_view(0.0), make_view(30.0, working=(dark_child, lit_child), fills=fills))
    # 1,000 dark shares rested for 30 s (600 left + 400 filled) = 500 share-minutes.
    assert f["dark_fill_rate"] == approx(400 / 500)
    assert features(make_view(0.0), make_view(30.0))["dark_fill_rate"] == 0.0


def test_order_progress_features() -> None:
    view = make_view(250.0, filled_qty=300, volume_since_start=2000.0, our_volume=300.0)
    f = features(view)
    assert f["side"] == 1.0
    assert f["time_remaining_frac"] == 0.75
    assert f["inventory_remaining_frac"] == approx(0.7)
    assert f["schedule_deviation"] == approx(0.3 - 0.25)  # ahead of the linear schedule
    assert f["participation"] == approx(0.15)
    state = FeatureState()
    out = state.update(make_ctx(side=-1), view, target_fraction=0.4)
    assert out[INDEX["schedule_deviation"]] == np.float32(0.3 - 0.4)
    assert out[INDEX["side"]] == -1.0


def test_steps_must_come_in_order_and_start_with_a_context() -> None:
    state = FeatureState()
    state.update(make_ctx(), make_view(30.0))
    with pytest.raises(ValueError, match="time order"):
        state.update(make_ctx(), make_view(10.0))
    with pytest.raises(ValueError, match="context"):
        FeatureState().apply(None, StepInputs.of(make_ctx(), make_view(), ()))


# -- normalisation and the out-of-range flag ----------------------------------------------


def test_normalise_clips_scales_and_flags() -> None:
    raw = np.zeros(N_FEATURES)
    raw[INDEX["imbalance_l1"]] = 0.5
    raw[INDEX["spread_ticks"]] = 2.0
    n = normalise(raw)
    assert n.values.dtype == np.float32 and not n.any_out_of_range
    assert n.values[INDEX["imbalance_l1"]] == 0.5
    assert n.values[INDEX["spread_ticks"]] == np.float32(math.log1p(2) / math.log1p(20))
    raw[INDEX["vol_2m"]] = 25.0  # above the range, within half its width: clipped, not flagged
    raw[INDEX["spread_ticks"]] = 40.0  # 20 + 0.5 · 25 = 32.5 < 40: flagged
    raw[INDEX["participation"]] = math.nan
    n = normalise(raw)
    assert n.values[INDEX["vol_2m"]] == 1.0 and n.values[INDEX["spread_ticks"]] == 1.0
    assert n.values[INDEX["participation"]] == 0.0
    assert set(n.names_out_of_range) == {"spread_ticks", "participation"}


def test_a_fitted_training_range_flags_what_training_never_saw() -> None:
    rows = np.zeros((10, N_FEATURES))
    rows[:, INDEX["spread_ticks"]] = np.linspace(1, 3, 10)
    tr = TrainingRange.fit(rows)
    assert TrainingRange.from_dict(json.loads(json.dumps(tr.to_dict()))) == tr
    raw = np.zeros(N_FEATURES)
    raw[INDEX["spread_ticks"]] = 3.9  # within 3 + 0.5 · 2
    assert not normalise(raw, tr).any_out_of_range
    raw[INDEX["spread_ticks"]] = 4.1
    assert normalise(raw, tr).names_out_of_range == ("spread_ticks",)


@given(
    st.lists(
        st.floats(allow_nan=True, allow_infinity=True), min_size=N_FEATURES, max_size=N_FEATURES
    )
)
def test_normalised_values_are_always_within_minus_one_one(raw: list[float]) -> None:
    n = normalise(np.array(raw))
    assert np.all(np.isfinite(n.values)) and np.all(np.abs(n.values) <= 1.0)
    assert n.out_of_range[~np.isfinite(np.array(raw))].all()


# -- any sequence of steps: bounds, and replay equals live ---------------------------------

quote_st = st.builds(
    lambda name, bid, spread, bq, aq, bd, ad, up: lit(
        name, bid, bq, bid + spread, aq, bq + bd, aq + ad, up
    ),
    st.sampled_from(["LIT-A", "LIT-B"]),
    st.integers(95, 105),
    st.integers(1, 6),
    st.floats(0, 5000),
    st.floats(0, 5000),
    st.floats(0, 20000),
    st.floats(0, 20000),
    st.booleans(),
)
step_st = st.tuples(
    st.floats(0, 120),  # seconds since the previous step
    st.lists(quote_st, min_size=0, max_size=3, unique_by=lambda q: q.name),
    st.floats(0, 3000),  # buy volume in the interval
    st.floats(0, 3000),
    st.integers(0, 200),  # our fills in the interval, in the dark
    st.integers(0, 200),  # ... and lit
    st.integers(0, 500),  # dark shares resting now
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step_st, min_size=1, max_size=25), st.sampled_from([1, -1]))
def test_any_steps_stay_in_bounds_and_replay_bit_for_bit(
    steps: list[tuple[Any, ...]], side: int
) -> None:
    ctx = make_ctx(side=side, qty=100_000, end_s=3000.0)
    state = FeatureState(record=True)
    t = buy = sell = 0.0
    filled = 0
    live = []
    for dt, quotes, b, s, dark_fill, lit_fill, resting in steps:
        t, buy, sell = t + dt, buy + b, sell + s
        filled += dark_fill + lit_fill
        fills = (FillView(t, "DARK", dark_fill, 100.0, "midpoint"),) if dark_fill else ()
        working = (WorkingChild("c", "DARK", None, resting, "dark", 0.0, False),)
        view = make_view(
            t,
            tuple(quotes),
            filled_qty=filled,
            our_volume=float(filled),
            volume_since_start=buy + sell + filled,
            market_buy_volume=buy,
            market_sell_volume=sell,
            working=working,
            fills=fills,
        )
        out = state.update(ctx, view)
        live.append(out)
        f = dict(zip(NAMES, map(float, out), strict=True))
        for name in ("imbalance_l1", "imbalance_l5", "trade_flow_1m", "trade_flow_5m"):
            assert -1.0 <= f[name] <= 1.0
        for name in ("time_remaining_frac", "inventory_remaining_frac", "participation"):
            assert 0.0 <= f[name] <= 1.0
        assert abs(f["microprice_offset_spreads"]) <= 0.5
        assert f["vol_30s"] >= 0 and f["dark_fill_rate"] >= 0 and f["bid_queue_rel"] >= 0
        mp = state.microprice_ticks
        if view.nbo > view.nbb > 0:
            assert mp is not None and view.nbb <= mp <= view.nbo
    record = json.loads(json.dumps(state.to_record()))
    assert replay(record).tobytes() == np.stack(live).tobytes()


# -- real episodes ------------------------------------------------------------------------


class FeatureTWAP(TWAP):
    """TWAP that computes the features inside its decisions, as the adaptive strategy will."""

    name = "feature-twap"

    def __init__(self, ctx: OrderContext, params: Mapping[str, Any] | None = None) -> None:
        self.features = FeatureState(record=True)
        self.vectors: list[np.ndarray[Any, Any]] = []
        self.views: list[DecisionView] = []
        super().__init__(ctx, params)

    def decide(self, view: DecisionView) -> list[Action]:
        target = self.schedule_fraction(view.now)
        self.vectors.append(self.features.update(self.ctx, view, target_fraction=target))
        self.views.append(view)
        return super().decide(view)


def run_live(sc: Scenario, seed: int) -> tuple[ExecutionEngine, FeatureTWAP]:
    REGISTRY.strategies[FeatureTWAP.name] = FeatureTWAP
    try:
        engine = ExecutionEngine(Market(sc, seed))
        o = sc.order
        engine.add_order(
            ParentOrderSpec(
                "P1", o.side, o.quantity, o.start_minute * 60, o.end_minute * 60, "feature-twap"
            )
        )
        engine.run_to_end()
    finally:
        del REGISTRY.strategies[FeatureTWAP.name]
    strategy = engine.orders["P1"].strategy
    assert isinstance(strategy, FeatureTWAP)
    return engine, strategy


SCENARIOS = ("demo-largecap-sell", "demo-midcap-buy", "demo-smallcap-regime")


@pytest.fixture(scope="module")
def episodes() -> dict[tuple[str, int], tuple[ExecutionEngine, FeatureTWAP]]:
    out = {}
    for name in SCENARIOS:
        sc = repo_scenario(name)
        for k in range(2):
            out[name, k] = run_live(sc, sc.seed + k)
    return out


def test_ranges_hold_on_real_episodes(
    episodes: dict[tuple[str, int], tuple[ExecutionEngine, FeatureTWAP]],
) -> None:
    for (name, k), (_, s) in episodes.items():
        x = np.stack(s.vectors)
        assert np.isfinite(x).all()
        for i, f in enumerate(FEATURES):
            assert f.lo <= x[:, i].min() and x[:, i].max() <= f.hi, (name, k, f.name)
        assert not any(normalise(row).any_out_of_range for row in x), (name, k)
        # The inputs are wired: the market moves, trades both ways, and our dark orders fill.
        for feature in ("vol_2m", "trade_flow_1m", "imbalance_l5", "participation"):
            assert np.ptp(x[:, INDEX[feature]]) > 0, (name, k, feature)
        assert x[:, INDEX["dark_fill_rate"]].max() > 0, (name, k)


def test_live_and_replayed_features_are_bit_identical(
    episodes: dict[tuple[str, int], tuple[ExecutionEngine, FeatureTWAP]],
) -> None:
    for (name, k), (_, s) in episodes.items():
        record = json.loads(json.dumps(s.features.to_record()))
        live = np.stack(s.vectors)
        again = replay(record)
        assert again.dtype == np.float32 and again.shape == live.shape == (
            s.features.steps,
            N_FEATURES,
        )
        assert again.tobytes() == live.tobytes(), (name, k)
        # The context is recorded once: it does not change while the order works.
        assert sum(c is not None for c, _ in record["steps"]) == 1


def test_features_are_deterministic_given_a_seed(
    episodes: dict[tuple[str, int], tuple[ExecutionEngine, FeatureTWAP]],
) -> None:
    sc = repo_scenario("demo-midcap-buy")
    _, again = run_live(sc, sc.seed)
    _, first = episodes["demo-midcap-buy", 0]
    _, other = episodes["demo-midcap-buy", 1]
    assert json.dumps(again.features.to_record()) == json.dumps(first.features.to_record())
    assert np.stack(again.vectors).tobytes() == np.stack(first.vectors).tobytes()
    assert np.stack(other.vectors).tobytes() != np.stack(first.vectors).tobytes()


def test_each_fill_reaches_exactly_one_decision_view(
    episodes: dict[tuple[str, int], tuple[ExecutionEngine, FeatureTWAP]],
) -> None:
    for (name, k), (engine, s) in episodes.items():
        seen = [(f.venue, f.qty, f.ts) for v in s.views for f in v.fills]
        last = s.views[-1].now
        events = [e for e in engine.events if isinstance(e, ChildFilled) and e.ts <= last]
        assert seen == [(e.venue, e.qty, e.ts) for e in events], (name, k)
        assert all(f.ts <= v.now for v in s.views for f in v.fills)


def test_quotes_carry_five_levels_of_depth() -> None:
    m = Market(repo_scenario("demo-midcap-buy"), 1)
    m.advance(3600.0)
    for q in m.quotes():
        if q.kind == "lit":
            book = m.book(q.name)
            assert q.bid_depth == book.depth(BUY, 5) >= q.bid_qty > 0
            assert q.ask_depth == book.depth(SELL, 5) >= q.ask_qty > 0
        else:
            assert q.bid_depth == q.ask_depth == 0.0


def test_every_rolling_window_counts_exactly_the_intervals_inside_it() -> None:
    """The windows are summed in one pass; check them against one pass per window, by the
    definitions, on irregular steps that land exactly on window edges (an interval that
    ends at now - W is out) and on steps less than a second apart."""
    from execution.features.state import (
        DARK_WINDOW_S,
        FLOW_LONG_S,
        FLOW_SHORT_S,
        VOL_LONG_S,
        VOL_SHORT_S,
        ContextInputs,
    )

    rng = np.random.default_rng(7)
    gaps = [30.0, 30.0, 0.5, 29.5, 60.0, 120.0, 7.0, 23.0, 300.0, 0.25, 600.0]
    times = np.cumsum([0.0, *rng.choice(gaps, size=120)])
    context = ContextInputs(1, 10_000, 0.0, float(times[-1]) + 1.0, 2.0, 0.02)
    state = FeatureState()
    rows: list[tuple[float, float, float, float, float, int, int]] = []  # t, mid, buy, ...
    buy = sell = 0.0
    for t in times:
        nbb = 10_000 + int(rng.integers(-20, 21))
        buy += float(rng.integers(0, 500))
        sell += float(rng.integers(0, 500))
        leaves, dark_filled = int(rng.integers(0, 300)), int(rng.integers(0, 100))
        step = StepInputs(
            float(t), nbb, nbb + 2, 100.0, 100.0, 500.0, 500.0, 0, 1e5, 0.0,
            buy, sell, leaves, dark_filled, None,
        )  # fmt: skip
        got = state.apply(context, step)
        rows.append((float(t), nbb + 1.0, buy, sell, float(leaves), dark_filled, 0))
        # One pass per window, from the definitions: the intervals ending after now - W.
        ivs = [
            (
                rows[k][0],  # the interval's end
                rows[k][0] - rows[k - 1][0],
                (1e4 * math.log(rows[k][1] / rows[k - 1][1])) ** 2,
                rows[k][2] - rows[k - 1][2],
                rows[k][3] - rows[k - 1][3],
                float(rows[k][5]),
                (rows[k][4] + rows[k][5]) * (rows[k][0] - rows[k - 1][0]),
            )
            for k in range(1, len(rows))
        ]

        def inside(w: float, now: float = float(t), ivs: Any = ivs) -> list[Any]:
            return [iv for iv in reversed(ivs) if iv[0] > now - w]

        def vol(w: float, prior: float = 0.02 * 1e4 / math.sqrt(SESSION_SECONDS)) -> float:
            r2 = dt = 0.0
            for iv in inside(w):
                r2 += iv[2]
                dt += iv[1]
            return math.sqrt(r2 / max(dt, 1.0)) if dt > 0 else prior

        def flow(w: float) -> float:
            b = s = 0.0
            for iv in inside(w):
                b += iv[3]
                s += iv[4]
            return (b - s) / (b + s) if b + s > 0 else 0.0

        filled = exposure = 0.0
        for iv in inside(DARK_WINDOW_S):
            filled += iv[5]
            exposure += iv[6]
        dark = 60.0 * filled / max(exposure, filled) if filled > 0 else 0.0
        want = {
            "vol_30s": vol(VOL_SHORT_S),
            "vol_2m": vol(VOL_LONG_S),
            "trade_flow_1m": flow(FLOW_SHORT_S),
            "trade_flow_5m": flow(FLOW_LONG_S),
            "dark_fill_rate": dark,
        }
        for name, value in want.items():
            assert got[INDEX[name]] == np.float32(value), (name, t)

        # The sums themselves, in float64, to the last bit (float32 features could hide a
        # changed order of additions).
        def sums(w: float, a: int, b: int) -> tuple[float, float]:
            x = y = 0.0
            for iv in inside(w):
                x += iv[a]
                y += iv[b]
            return x, y

        s = state._window_sums(float(t))
        assert (s.r2_short, s.dt_short) == sums(VOL_SHORT_S, 2, 1)
        assert (s.r2_long, s.dt_long) == sums(VOL_LONG_S, 2, 1)
        assert (s.buy_short, s.sell_short) == sums(FLOW_SHORT_S, 3, 4)
        assert (s.buy_long, s.sell_long) == sums(FLOW_LONG_S, 3, 4)
        assert (s.dark_filled, s.dark_exposure) == sums(DARK_WINDOW_S, 5, 6)
