"""The market matches its scenario, with no strategy trading, over 20 seeds (slow).

These are the promises docs/SIMULATOR.md makes, checked on the repo's own scenarios and,
where ../shared/scenarios exists (CI), on the shared ones too.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from execution.sim.diagnostics import microstructure, quiet_day, square_root_law
from execution.sim.scenario import Scenario, load_scenario
from tests.conftest import REPO_SCENARIOS, SHARED_SCENARIOS, shared_scenario_paths

pytestmark = pytest.mark.slow
SEEDS = range(1000, 1020)


def calm(paths: list[Path]) -> list[Path]:
    """Scenarios without regimes: on those, ADV and daily volatility are the day's own."""
    return [p for p in paths if not load_scenario(p).regimes]


CASES = calm(sorted(REPO_SCENARIOS.glob("*.json"))) + calm(shared_scenario_paths())


@pytest.fixture(scope="module", params=CASES, ids=lambda p: p.stem)
def days(request: pytest.FixtureRequest) -> tuple[Scenario, list]:
    sc = load_scenario(request.param)
    return sc, [quiet_day(sc, s) for s in SEEDS]


def test_day_volume_within_10_percent_of_adv(days: tuple[Scenario, list]) -> None:
    sc, ds = days
    mean = statistics.mean(d.volume for d in ds)
    assert abs(mean / sc.instrument.adv_shares - 1) <= 0.10


def test_time_averaged_spread_within_30_percent(days: tuple[Scenario, list]) -> None:
    sc, ds = days
    mean = statistics.mean(d.time_avg_spread_ticks for d in ds)
    assert abs(mean / sc.instrument.spread_ticks - 1) <= 0.30


def test_realised_volatility_within_25_percent(days: tuple[Scenario, list]) -> None:
    sc, ds = days
    rv = statistics.mean(d.realized_vol**2 for d in ds) ** 0.5
    assert abs(rv / sc.instrument.daily_volatility - 1) <= 0.25


def test_volume_follows_the_profile(days: tuple[Scenario, list]) -> None:
    sc, ds = days
    buckets = [statistics.mean(d.bucket_volume[i] for d in ds) for i in range(13)]
    total = sum(buckets)
    for i, b in enumerate(buckets):
        expected = sc.volume_fraction_between(30 * i, 30 * (i + 1))
        assert abs(b / total - expected) <= 0.2 * expected + 0.005
    if sc.volume_profile_name == "u_shape":
        middle = buckets[1:-1]
        assert buckets[0] > max(middle) and buckets[-1] > max(middle)


MICRO = [REPO_SCENARIOS / "demo-midcap-buy.json", SHARED_SCENARIOS / "midcap-500k-buy.json"]


@pytest.mark.parametrize("path", MICRO, ids=lambda p: p.stem)
def test_imbalance_predicts_the_next_mid_move_and_trade_signs_persist(path: Path) -> None:
    if not path.exists():
        pytest.skip("../shared/scenarios is not here")
    stats = [microstructure(load_scenario(path), s) for s in (1, 2, 3)]
    agreement = statistics.mean(m.imbalance_agreement for m in stats)
    microprice = statistics.mean(m.microprice_agreement for m in stats)
    assert agreement > 0.58 and microprice > 0.58
    assert statistics.mean(m.strong_imbalance_agreement for m in stats) > agreement
    lag1 = statistics.mean(m.trade_sign_autocorr[0] for m in stats)
    lag5 = statistics.mean(m.trade_sign_autocorr[4] for m in stats)
    assert lag1 > 0.1 and 0 < lag5 < lag1


def test_impact_follows_the_square_root_law(midcap: Scenario) -> None:
    fit = square_root_law(midcap, seeds=range(2000, 2006))
    assert all(a < b for a, b in zip(fit.impact_bps, fit.impact_bps[1:], strict=False))
    assert 0.35 <= fit.slope <= 0.65
    assert 0.3 <= fit.y <= 1.5
