from __future__ import annotations

import itertools
import math

import pytest

from execution.algos.base import OrderContext
from execution.algos.pretrade import planned_schedule, pretrade_estimate, window_volume_fraction
from execution.algos.registry import strategy_class
from execution.sim.scenario import U_SHAPE_WEIGHTS
from tests.conftest import repo_scenario


def estimate(**over: float):
    args = {
        "quantity": 100_000,
        "adv_shares": 1_000_000,
        "daily_volatility": 0.02,
        "spread_bps": 5.0,
        "window_volume_fraction": 0.5,
        "window_minutes": 195.0,
    }
    args.update(over)
    return pretrade_estimate(**args)


# The law as calibrated (bench/calibrate_pretrade.py): Y·σ·√(Q/ADV)·(ADV/V)^β.
Y, BETA = 0.45, 0.1


def law(sigma_bps: float, q_adv: float, window_share: float) -> float:
    return Y * sigma_bps * math.sqrt(q_adv) * window_share**-BETA


def test_square_root_law_and_half_spread() -> None:
    e = estimate()
    # 10% of ADV in half the day's volume: participation 20%.
    assert e.participation == pytest.approx(0.2)
    assert e.impact_bps == pytest.approx(law(200, 0.1, 0.5))
    assert e.cost_bps == pytest.approx(2.5 + law(200, 0.1, 0.5))


def test_a_squeezed_window_costs_more_but_by_the_tenth_root() -> None:
    """The simulator's impact grows little as the window shrinks: a tenth of the day's
    volume costs (1/0.1)^0.1 = 1.26 times the whole day's, not √10 = 3.16 times."""
    day, squeezed = estimate(window_volume_fraction=1.0), estimate(window_volume_fraction=0.1)
    assert squeezed.impact_bps / day.impact_bps == pytest.approx(10**0.1)


def test_four_times_the_size_doubles_the_impact() -> None:
    small, big = estimate(quantity=10_000), estimate(quantity=40_000)
    assert big.impact_bps == pytest.approx(2 * small.impact_bps)


def test_uncertainty_is_almgren_chriss_linear_schedule() -> None:
    # Half a day on a straight line: sigma * sqrt(T/3).
    e = estimate(window_minutes=195.0)
    assert e.uncertainty_bps == pytest.approx(200 * math.sqrt(0.5 / 3))
    assert estimate(remaining_fraction=0.25).uncertainty_bps == pytest.approx(e.uncertainty_bps / 4)
    # A longer window carries more timing risk.
    assert estimate(window_minutes=390).uncertainty_bps > e.uncertainty_bps


def test_warnings_for_large_orders_and_high_participation() -> None:
    assert estimate(quantity=50_000).warnings == ()
    big = estimate(quantity=150_000)  # 15% of ADV, 30% participation
    assert any("ADV" in w for w in big.warnings)
    assert any("participation" in w for w in big.warnings)
    squeezed = estimate(quantity=50_000, window_volume_fraction=0.1)  # 5% ADV, 50% part.
    assert len(squeezed.warnings) == 1 and "participation" in squeezed.warnings[0]


def test_window_fraction_matches_the_simulator() -> None:
    s = repo_scenario("demo-midcap-buy")
    for a, b in [(0, 390), (45, 225), (10, 11), (300, 390), (0, 30)]:
        assert window_volume_fraction(U_SHAPE_WEIGHTS, a, b) == pytest.approx(
            s.volume_fraction_between(a, b)
        )
    assert window_volume_fraction((1.0,), 0, 195) == pytest.approx(0.5)
    assert window_volume_fraction((2.0, 2.0), 100, 50) == 0.0


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        estimate(quantity=0)
    with pytest.raises(ValueError):
        estimate(window_volume_fraction=0.0)
    with pytest.raises(ValueError):
        window_volume_fraction((), 0, 10)


def test_json_has_units_in_names() -> None:
    j = estimate().to_json()
    assert set(j) >= {"cost_bps", "uncertainty_bps", "participation_pct", "adv_pct", "warnings"}
    assert j["participation_pct"] == pytest.approx(20.0)
    # The limit's measure beside it: the order over the window's whole volume.
    assert j["window_share_pct"] == pytest.approx(20.0)


# -- with the strategy's schedule --------------------------------------------------------


def linear(n: int, end: float = 1.0) -> list[float]:
    return [end * i / n for i in range(n + 1)]


def test_a_straight_schedule_in_volume_time_is_the_plain_estimate() -> None:
    plain = estimate()
    volume = [3.0, 1.0, 1.0, 3.0]  # a U-shaped window, in four slices
    cum = [sum(volume[:i]) / sum(volume) for i in range(5)]
    vwap = estimate(schedule=cum, slice_volume=volume)
    assert vwap.impact_bps == pytest.approx(plain.impact_bps)
    assert vwap.participation == pytest.approx(plain.participation)
    assert vwap.fill_fraction == 1.0 and vwap.warnings == plain.warnings
    # And a straight line in clock time has the Almgren–Chriss timing risk exactly.
    twap_flat = estimate(schedule=linear(4), slice_volume=[1.0] * 4)
    assert twap_flat.uncertainty_bps == pytest.approx(plain.uncertainty_bps)


def test_trading_against_the_volume_curve_costs_more_impact() -> None:
    volume = [3.0, 1.0, 1.0, 3.0]
    cum = [sum(volume[:i]) / sum(volume) for i in range(5)]
    vwap = estimate(schedule=cum, slice_volume=volume)
    twap = estimate(schedule=linear(4), slice_volume=volume)
    # TWAP's quarter of the order in each slice: participation 2× VWAP's in the middle;
    # each slice at its own participation ρ_i, ρ_i^β weighted by what it trades.
    q_over_v = 0.2
    expected = sum(0.25 * (0.25 / (v / 8) * q_over_v) ** BETA for v in volume)
    assert twap.impact_bps == pytest.approx(Y * 200 * 0.1 ** (0.5 - BETA) * expected)
    assert twap.impact_bps > vwap.impact_bps


def test_the_same_trades_cost_the_same_whatever_window_is_drawn_around_them() -> None:
    """An order over 30 minutes, and the same trades in the first 30 minutes of a 390-minute
    window (a front-loaded schedule): one cost, not the longer window's √ of its idle part."""
    q, adv = 200_000, 5_000_000
    short = pretrade_estimate(quantity=q, adv_shares=adv, daily_volatility=0.02, spread_bps=0,
                              window_volume_fraction=1 / 13, window_minutes=30)  # fmt: skip
    done = [0.0, 1.0] + [1.0] * 12  # all of it in the first of 13 equal slices
    long = pretrade_estimate(quantity=q, adv_shares=adv, daily_volatility=0.02, spread_bps=0,
                             window_volume_fraction=1.0, window_minutes=390,
                             schedule=done, slice_volume=[1.0] * 13)  # fmt: skip
    assert long.impact_bps == pytest.approx(short.impact_bps)


def test_a_front_loaded_schedule_trades_risk_for_impact() -> None:
    urgent = [0.0, 0.6, 0.85, 0.95, 1.0]
    fast = estimate(schedule=urgent, slice_volume=[1.0] * 4)
    even = estimate(schedule=linear(4), slice_volume=[1.0] * 4)
    assert fast.uncertainty_bps < even.uncertainty_bps
    assert fast.impact_bps > even.impact_bps


def test_a_schedule_that_does_not_finish_is_costed_on_what_it_fills_and_says_so() -> None:
    pov = estimate(schedule=linear(4, end=0.4), slice_volume=[1.0] * 4)
    assert pov.fill_fraction == pytest.approx(0.4)
    assert pov.participation == pytest.approx(0.08)  # 40% of 100k against 500k
    # What it trades, 4% of ADV, at 8% participation: Y·σ·0.04^(½−β)·0.08^β.
    assert pov.impact_bps == pytest.approx(Y * 200 * 0.04 ** (0.5 - BETA) * 0.08**BETA)
    assert any("fill about 40% of the order" in w for w in pov.warnings)
    # Its ± is per filled share too: a straight line over the window, as the cost is.
    assert pov.uncertainty_bps == pytest.approx(estimate().uncertainty_bps)
    assert pov.to_json()["fill_pct"] == 40.0


@pytest.mark.parametrize(
    ("schedule", "volume"),
    [([0.0], [1.0]), ([0.0, 1.0], [1.0, 1.0]), ([0.0, 1.0], [-1.0]), ([0.0, 0.5, 1.0], [1.0, 0.0])],
)
def test_a_schedule_that_cannot_be_costed_is_an_error(schedule, volume) -> None:
    with pytest.raises(ValueError):
        estimate(schedule=schedule, slice_volume=volume)


def _ctx(qty: int) -> OrderContext:
    return OrderContext(
        order_id="estimate", side=1, qty=qty, start_s=0.0, end_s=390 * 60.0,
        limit_px_ticks=None, tick_size=0.01, reference_price=40.0, adv_shares=1_500_000,
        daily_volatility=0.02, spread_ticks=2, volume_profile=tuple(U_SHAPE_WEIGHTS), venues=(),
    )  # fmt: skip


def test_an_order_of_a_lot_or_less_is_costed_as_trading_at_once() -> None:
    twap = strategy_class("twap")
    spread, _ = planned_schedule(twap, {"min_child_qty": 1}, _ctx(150))
    assert spread[1] == pytest.approx(1 / 390) and spread[-1] == 1.0
    at_once, _ = planned_schedule(twap, {"min_child_qty": 5000}, _ctx(150))
    assert at_once[0] == 0.0 and set(at_once[1:]) == {1.0}
    # In 100-share lots, 1,000 shares are a lot ahead of the curve from the first slice.
    lots, _ = planned_schedule(twap, {}, _ctx(1000))
    assert lots[1] == pytest.approx(1 / 390 + 0.1) and lots[-1] == 1.0
    assert all(b - a == pytest.approx(1 / 390) for a, b in itertools.pairwise(lots[1:351]))
    assert lots[350] < 1.0 == lots[351]  # done at 90% of the window, a lot ahead
