"""Almgren & Chriss (2000): the paper's worked example and the model's identities."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.algos.almgren_chriss import (
    ACParams,
    cost_variance,
    expected_cost,
    holdings,
    kappa,
    schedule_fraction,
    simulate_linear_impact,
    trade_list,
)

# Section 3.2 of the paper: 1M shares over 5 days in daily intervals, S0 = $50.
PAPER = ACParams(
    X=1_000_000,
    T=5,
    N=5,
    sigma=math.sqrt(0.9),
    eps=0.0625,
    eta=2.5e-6,
    gamma=2.5e-7,
    lam=1e-6,
)
PAPER_TWAP = dataclasses.replace(PAPER, lam=0.0)
PRICE0 = 50.0


def test_paper_example_holdings() -> None:
    assert [round(x) for x in holdings(PAPER)] == [
        1_000_000,
        542_381,
        290_295,
        148_216,
        62_303,
        0,
    ]


def test_paper_example_costs() -> None:
    assert round(expected_cost(PAPER)) == 910_478
    assert round(expected_cost(PAPER_TWAP)) == 662_500
    assert round(simulate_linear_impact(PAPER, holdings(PAPER), price0=PRICE0)) == 910_478
    assert round(simulate_linear_impact(PAPER_TWAP, holdings(PAPER_TWAP), price0=PRICE0)) == (
        662_500
    )


def test_zero_risk_aversion_is_twap() -> None:
    assert kappa(PAPER_TWAP) == 0.0
    assert holdings(PAPER_TWAP) == pytest.approx([1e6, 8e5, 6e5, 4e5, 2e5, 0.0])
    assert trade_list(PAPER_TWAP) == pytest.approx([2e5] * 5)


def test_optimal_trades_off_cost_against_variance() -> None:
    # The risk-averse schedule pays more impact to carry less inventory risk.
    assert expected_cost(PAPER) > expected_cost(PAPER_TWAP)
    assert cost_variance(PAPER) < cost_variance(PAPER_TWAP)
    # It minimises E + lam V, so the straight line must not beat it on that objective.
    twap_xs = holdings(PAPER_TWAP)
    objective = expected_cost(PAPER) + PAPER.lam * cost_variance(PAPER)
    twap_objective = expected_cost(PAPER, twap_xs) + PAPER.lam * cost_variance(PAPER, twap_xs)
    assert objective < twap_objective


def test_higher_risk_aversion_front_loads() -> None:
    first_holdings = [
        holdings(dataclasses.replace(PAPER, lam=lam))[1] for lam in (0.0, 1e-7, 1e-6, 1e-5, 1e-4)
    ]
    assert all(a > b for a, b in itertools.pairwise(first_holdings))


def test_holdings_must_run_from_x_to_zero() -> None:
    with pytest.raises(ValueError, match="from X"):
        expected_cost(PAPER, [1e6, 5e5, 2e5, 1e5, 5e4, 1.0])
    with pytest.raises(ValueError, match="expected 6 holdings"):
        expected_cost(PAPER, [1e6, 0.0])


def test_rejects_non_convex_impact() -> None:
    with pytest.raises(ValueError, match="eta - gamma"):
        dataclasses.replace(PAPER, eta=1e-7)


def test_schedule_fraction_matches_discrete_holdings_on_the_grid() -> None:
    kappa_t = kappa(PAPER) * PAPER.T
    for k, x in enumerate(holdings(PAPER)):
        assert schedule_fraction(k / PAPER.N, kappa_T=kappa_t) == pytest.approx(
            1 - x / PAPER.X, abs=1e-12
        )


@pytest.mark.parametrize("kappa_t", [0.0, 1e-15, 1e-9, 1e-3, 0.5, 3.0, 20.0, 50.0, 800.0])
def test_schedule_fraction_endpoints_and_monotone(kappa_t: float) -> None:
    assert schedule_fraction(0.0, kappa_T=kappa_t) == 0.0
    assert schedule_fraction(1.0, kappa_T=kappa_t) == 1.0
    grid = [schedule_fraction(i / 200, kappa_T=kappa_t) for i in range(201)]
    assert all(0.0 <= v <= 1.0 for v in grid)
    assert all(a <= b for a, b in itertools.pairwise(grid))
    # Urgency never executes less than the straight line.
    assert all(v >= i / 200 - 1e-12 for i, v in enumerate(grid))


def test_schedule_fraction_limits() -> None:
    assert schedule_fraction(0.3, kappa_T=1e-14) == pytest.approx(0.3)
    assert schedule_fraction(0.3, kappa_T=1e-6) == pytest.approx(0.3, abs=1e-9)
    assert schedule_fraction(-0.5, kappa_T=2.0) == 0.0
    assert schedule_fraction(1.5, kappa_T=2.0) == 1.0
    # kT = 50: almost everything goes in the first tenth of the horizon.
    assert schedule_fraction(0.1, kappa_T=50.0) > 0.99


@st.composite
def params_and_schedule(draw: st.DrawFn) -> tuple[ACParams, list[float]]:
    n = draw(st.integers(min_value=1, max_value=40))
    tau = draw(st.floats(min_value=0.01, max_value=10.0))
    gamma = draw(st.floats(min_value=0.0, max_value=1e-5))
    # Keep eta above gamma tau / 2 so the model is well posed.
    eta = gamma * tau / 2 + draw(st.floats(min_value=1e-8, max_value=1e-4))
    p = ACParams(
        X=draw(st.floats(min_value=-1e7, max_value=1e7).filter(lambda x: abs(x) >= 1)),
        T=tau * n,
        N=n,
        sigma=draw(st.floats(min_value=0.0, max_value=5.0)),
        eps=draw(st.floats(min_value=0.0, max_value=0.5)),
        eta=eta,
        gamma=gamma,
        lam=draw(st.floats(min_value=0.0, max_value=1e-3)),
    )
    if draw(st.booleans()):
        return p, holdings(p)
    # Any schedule from X to 0, including ones that overshoot and trade back.
    inner = draw(st.lists(st.floats(min_value=-1.5, max_value=1.5), min_size=n - 1, max_size=n - 1))
    return p, [p.X, *(p.X * w for w in inner), 0.0]


@given(params_and_schedule(), st.floats(min_value=1.0, max_value=1000.0))
def test_simulated_shortfall_equals_expected_cost(
    case: tuple[ACParams, list[float]], price0: float
) -> None:
    p, xs = case
    simulated = simulate_linear_impact(p, xs, price0=price0)
    assert math.isclose(
        simulated, expected_cost(p, xs), rel_tol=1e-9, abs_tol=1e-9 * abs(p.X) * price0
    )
