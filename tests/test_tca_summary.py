"""The TCA page's figures, pure: per-order shortfall and participation, per-strategy summary."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tca.summary import OrderFacts, order_result, strategy_summaries, t_quantile_975


def facts(**over: Any) -> OrderFacts:
    """Bought 600 of 1,000 at 40.10 against a 40.00 arrival; the mid ended at 40.30."""
    fields: dict[str, Any] = {
        "order_id": 1,
        "strategy": "twap",
        "side": "buy",
        "qty": 1000,
        "filled_qty": 600,
        "arrival_px": 40.0,
        "avg_px": 40.10,
        "end_mid_px": 40.30,
        "market_volume": 6000.0,
    }
    fields.update(over)
    return OrderFacts(**fields)


def test_buy_filled_part_and_unfilled_part_charged_at_the_end_mid() -> None:
    r = order_result(facts())
    assert r.fill_pct == pytest.approx(60.0)
    assert r.filled_shortfall_bps == pytest.approx(25.0)  # 10c over 40.00 on what filled
    # 600 × 0.10 paid + 400 × 0.30 the price ran away, over 1,000 × 40.00 of arrival value.
    assert r.total_shortfall_bps == pytest.approx(45.0)
    assert r.participation_pct == pytest.approx(10.0)


def test_sell_costs_are_positive_when_the_price_falls() -> None:
    r = order_result(facts(side="sell", avg_px=39.90, end_mid_px=39.70))
    assert r.filled_shortfall_bps == pytest.approx(25.0)
    assert r.total_shortfall_bps == pytest.approx(45.0)
    # The same prices as the buy above are a gain for a seller.
    gain = order_result(facts(side="sell"))
    assert gain.filled_shortfall_bps == pytest.approx(-25.0)
    assert gain.total_shortfall_bps == pytest.approx(-45.0)


def test_an_unfilled_order_costs_what_the_mid_moved() -> None:
    r = order_result(facts(filled_qty=0, avg_px=None, end_mid_px=40.20))
    assert r.filled_shortfall_bps is None
    assert r.total_shortfall_bps == pytest.approx(50.0)
    assert r.participation_pct == pytest.approx(0.0)


def test_without_an_end_mid_the_total_is_unknown_unless_nothing_was_left() -> None:
    partial = order_result(facts(end_mid_px=None))
    assert partial.filled_shortfall_bps == pytest.approx(25.0)
    assert partial.total_shortfall_bps is None
    full = order_result(facts(filled_qty=1000, end_mid_px=None))
    assert full.total_shortfall_bps == pytest.approx(25.0)  # nothing left to charge


@pytest.mark.parametrize("volume", [None, 0.0])
def test_participation_is_unknown_without_market_volume(volume: float | None) -> None:
    assert order_result(facts(market_volume=volume)).participation_pct is None


def test_no_cost_is_zero_not_minus_zero() -> None:
    r = order_result(facts(side="sell", avg_px=40.0, filled_qty=1000))
    assert math.copysign(1.0, r.filled_shortfall_bps or 0.0) == 1.0


def test_strategy_summary_means_weights_and_interval() -> None:
    arrival = {"arrival_px": 100.0}
    results = [
        # 10 bps on all 1,000 shares.
        order_result(facts(order_id=1, qty=1000, filled_qty=1000, avg_px=100.10, **arrival)),
        # 30 bps on 3,000 filled; 1,000 left with the mid 20 bps up: total 27.5 bps.
        order_result(
            facts(
                order_id=2, qty=4000, filled_qty=3000, avg_px=100.30, end_mid_px=100.20, **arrival
            )
        ),
        # Nothing filled, nothing known of the mid: counts as an order, not in any mean.
        order_result(
            facts(order_id=3, qty=5000, filled_qty=0, avg_px=None, end_mid_px=None, **arrival)
        ),
        order_result(
            facts(
                order_id=4,
                strategy="pov",
                qty=2000,
                filled_qty=500,
                avg_px=100.05,
                end_mid_px=100.10,
                **arrival,
            )
        ),
    ]
    pov, twap = strategy_summaries(results)
    assert (twap.strategy, twap.orders, twap.qty, twap.filled_qty) == ("twap", 3, 10_000, 4000)
    assert twap.fill_rate_pct == pytest.approx(40.0)
    assert twap.filled.n == 2
    assert twap.filled.mean == pytest.approx(20.0)
    assert twap.filled.weighted_mean == pytest.approx(25.0)  # (10×1,000 + 30×3,000) / 4,000
    assert twap.filled.sd == pytest.approx(math.sqrt(200.0))
    half = 12.706 * math.sqrt(200.0) / math.sqrt(2)  # t with one degree of freedom
    assert twap.filled.ci95_low == pytest.approx(20.0 - half)
    assert twap.filled.ci95_high == pytest.approx(20.0 + half)
    assert twap.total.n == 2
    assert twap.total.mean == pytest.approx(18.75)
    assert twap.total.weighted_mean == pytest.approx(24.0)  # (10×1,000 + 27.5×4,000) / 5,000
    # A strategy with one order: its figures, and no spread to claim.
    assert (pov.orders, pov.filled.n, pov.total.n) == (1, 1, 1)
    assert pov.filled.mean == pytest.approx(5.0)
    assert pov.filled.weighted_mean == pytest.approx(5.0)
    assert pov.total.mean == pytest.approx(8.75)  # (0.05×500 + 0.10×1,500) / (2,000 × 100)
    assert pov.filled.sd is None and pov.filled.ci95_low is None and pov.total.ci95_high is None


def test_a_strategy_with_no_measurable_order_has_no_means() -> None:
    (s,) = strategy_summaries([order_result(facts(filled_qty=0, avg_px=None, end_mid_px=None))])
    assert s.orders == 1 and s.fill_rate_pct == 0.0
    assert s.filled.n == 0 and s.filled.mean is None and s.total.weighted_mean is None


@pytest.mark.parametrize(
    ("df", "t"), [(1, 12.706), (2, 4.303), (30, 2.042), (40, 2.021), (120, 1.980), (10**6, 1.960)]
)
def test_t_quantile(df: int, t: float) -> None:
    assert t_quantile_975(df) == pytest.approx(t, abs=1.5e-3)


def test_fills_against_the_market_vwap_by_side_and_weighted_by_filled_shares() -> None:
    buy = order_result(facts(market_vwap_px=40.05))  # paid 40.10 where the market paid 40.05
    assert buy.vwap_slippage_bps == pytest.approx(0.05 / 40.05 * 1e4)
    sell = order_result(facts(order_id=2, side="sell", avg_px=40.10, market_vwap_px=40.05))
    assert sell.vwap_slippage_bps == pytest.approx(-0.05 / 40.05 * 1e4)  # sold above it
    unknown = order_result(facts(order_id=3, market_vwap_px=None))
    nothing_filled = order_result(facts(order_id=4, filled_qty=0, avg_px=None, market_vwap_px=40.0))
    assert unknown.vwap_slippage_bps is None and nothing_filled.vwap_slippage_bps is None
    big = order_result(facts(order_id=5, filled_qty=900, avg_px=40.00, market_vwap_px=40.05))
    (s,) = strategy_summaries([buy, unknown, nothing_filled, big])
    assert s.vwap.n == 2
    b, g = buy.vwap_slippage_bps, big.vwap_slippage_bps
    assert b is not None and g is not None
    assert s.vwap.mean == pytest.approx((b + g) / 2)
    assert s.vwap.weighted_mean == pytest.approx((600 * b + 900 * g) / 1500)


def test_orders_stopped_by_a_person_or_a_kill_switch_are_not_in_the_fill_rate() -> None:
    """A canceled order had no chance to finish: its fills and costs count, but the fill
    rate is the strategy's over the orders it was left to run."""
    arrival = {"arrival_px": 100.0}
    ran = order_result(facts(order_id=1, qty=1000, filled_qty=900, avg_px=100.1, **arrival))
    stopped = order_result(
        facts(order_id=2, qty=9000, filled_qty=100, avg_px=100.1, stopped=True, **arrival)
    )
    (s,) = strategy_summaries([ran, stopped])
    assert (s.orders, s.stopped, s.filled_qty) == (2, 1, 1000)
    assert s.fill_rate_pct == pytest.approx(90.0)  # not 1,000 / 10,000
    assert s.filled.n == 2  # its fills still count
    (only,) = strategy_summaries([stopped])
    assert only.fill_rate_pct is None and only.stopped == 1


def test_an_order_left_paused_to_its_windows_end_has_no_vwap_or_participation() -> None:
    """The market's VWAP and volume over its window count the time it stood still: a
    trial's read -141.77 bps against VWAP (the price rallied while it stood) and moved its
    strategy's mean to -74.54. Its shortfall still counts, as a stopped order's does."""
    worked = order_result(facts(order_id=1, market_vwap_px=40.05))
    paused = order_result(facts(order_id=2, market_vwap_px=41.50, stopped=True, left_paused=True))
    assert paused.vwap_slippage_bps is None and paused.participation_pct is None
    assert paused.filled_shortfall_bps == worked.filled_shortfall_bps
    (s,) = strategy_summaries([worked, paused])
    assert s.vwap.n == 1 and s.vwap.mean == pytest.approx(worked.vwap_slippage_bps)
    assert s.filled.n == 2
