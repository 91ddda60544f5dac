from __future__ import annotations

import math

import pytest

from execution.algos.pretrade import pretrade_estimate, window_volume_fraction
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


def test_square_root_law_and_half_spread() -> None:
    e = estimate()
    # participation 100k / 500k = 20%; impact 0.5 * 200 bps * sqrt(0.2)
    assert e.participation == pytest.approx(0.2)
    assert e.impact_bps == pytest.approx(0.5 * 200 * math.sqrt(0.2))
    assert e.cost_bps == pytest.approx(2.5 + 0.5 * 200 * math.sqrt(0.2))


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
