"""Pre-trade estimate for the order ticket: expected cost, its uncertainty, participation.

Pure (no Django): the ticket's `/orders/estimate/` endpoint is a thin adapter around it.

Model, per share and in basis points of the arrival price:

* Expected cost = half the quoted spread + Y·σ·√(Q/ADV)·(ADV/V)^β, the square-root impact
  law, σ the daily volatility in bps, Q the order's shares and V the market volume expected
  inside the order's window (ADV × the volume profile's share of the window): a squeezed
  window costs more, but far less than √(ADV/V) would say. Y = 0.45 and β = 0.1 are fitted
  to the simulator's own impact (bench/calibrate_pretrade.py: 387 generated training days,
  each traded twice, with the order and with a tiny one on the same background market, so
  their difference is the order's impact; docs/BENCHMARKS.md). Until 2026-12-06 it was
  Y = 0.5 and β = 0.5 (the window's volume in place of the day's), which priced a
  one-hour order at three times what it cost.
* Uncertainty (one standard deviation) is the timing risk of a linear schedule. In
  Almgren–Chriss, trading X shares on a straight line over T has cost variance
  σ²·X²·T/3 (dollars, σ per √day); per share and in bps that is σ_bps·√(T/3) with T in
  trading days (390 minutes). For an order already part done it scales with the
  fraction still to trade.
* Expected participation = Q / V.

With the strategy's schedule (the share of the order it plans to have done at the edges of
equal slices of the window, and the market's expected share of the window's volume in
each slice), the same law is applied slice by slice: impact is Y·σ·(X/ADV)^(½−β) times the
filled shares' average of ρ_i^β, X the shares it trades and ρ_i its participation in slice
i, so a schedule that trades against the volume curve (TWAP in a U-shaped day) or ahead of
it (an urgent IS) costs more than VWAP's, and the same trades cost the same whatever window
is drawn around them; timing risk integrates the
squared share still to trade over the window (σ_bps·√(T/3) for a straight line); and a
schedule that does not finish in the window (POV at a low rate) is costed on what it
fills, with the expected fill said.

Warnings: the order is large against ADV (Q/ADV above 10%), the expected participation
is above 25%, or the schedule leaves part of the order unfilled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from execution.algos.base import OrderContext, Strategy, profile_fraction

IMPACT_COEFFICIENT = 0.45  # Y in the square-root law (bench/calibrate_pretrade.py)
WINDOW_EXPONENT = 0.1  # β: how much a squeezed window adds, (ADV/V)^β
SESSION_MINUTES = 390.0
LARGE_ADV_FRACTION = 0.10
HIGH_PARTICIPATION = 0.25
SLICE_MINUTES = 1.0  # the schedule is costed in slices this long (at most 390 in a day)


@dataclass(frozen=True, slots=True)
class PretradeEstimate:
    cost_bps: float  # expected cost: half spread + impact
    spread_cost_bps: float
    impact_bps: float
    uncertainty_bps: float  # one standard deviation of the cost (timing risk)
    participation: float  # Q / V, a fraction
    adv_fraction: float  # Q / ADV, a fraction
    window_volume: float  # V, shares expected to trade in the window
    warnings: tuple[str, ...] = field(default=())
    fill_fraction: float = 1.0  # of the order, expected done by the window's end
    # Q / V over the whole window: what the participation limit is checked against (a
    # POV order's rate, where that is lower). `participation` is while it trades, and a
    # trial read 1.04% there against a 1% limit that had let the order through at 1.00%.
    window_share: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "cost_bps": round(self.cost_bps, 2),
            "spread_cost_bps": round(self.spread_cost_bps, 2),
            "impact_bps": round(self.impact_bps, 2),
            "uncertainty_bps": round(self.uncertainty_bps, 2),
            "participation_pct": round(self.participation * 100, 2),
            "adv_pct": round(self.adv_fraction * 100, 2),
            "window_volume": round(self.window_volume),
            "fill_pct": round(self.fill_fraction * 100, 1),
            "window_share_pct": round(self.window_share * 100, 2),
            "warnings": list(self.warnings),
        }


def window_volume_fraction(
    profile: Sequence[float], start_minute: float, end_minute: float
) -> float:
    """Share of the day's volume expected in [start, end] for a piecewise-constant profile
    of equal buckets across the 390-minute session (weights need not sum to 1)."""
    total = float(sum(profile))
    if not profile or total <= 0:
        raise ValueError("the volume profile must have positive weights")
    width = SESSION_MINUTES / len(profile)

    def cumulative(minute: float) -> float:
        minute = min(max(minute, 0.0), SESSION_MINUTES)
        full = min(int(minute // width), len(profile))
        acc = float(sum(profile[:full]))
        if full < len(profile):
            acc += profile[full] * (minute - full * width) / width
        return acc / total

    if end_minute <= start_minute:
        return 0.0
    return cumulative(end_minute) - cumulative(start_minute)


def pretrade_estimate(
    *,
    quantity: float,
    adv_shares: float,
    daily_volatility: float,
    spread_bps: float,
    window_volume_fraction: float,
    window_minutes: float,
    remaining_fraction: float = 1.0,
    schedule: Sequence[float] | None = None,
    slice_volume: Sequence[float] | None = None,
) -> PretradeEstimate:
    """The estimate for one order. `daily_volatility` is a fraction (0.02 = 2%).

    `schedule`: the share of the order done at the N+1 edges of N equal slices of the
    window (0 first); `slice_volume`: the market's share of the window's volume in each of
    the N slices. Without them the schedule is a straight line in volume time (VWAP)."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    if adv_shares <= 0:
        raise ValueError("adv_shares must be positive")
    if window_minutes <= 0 or window_volume_fraction <= 0:
        raise ValueError("the window must be non-empty")
    if daily_volatility < 0 or spread_bps < 0:
        raise ValueError("volatility and spread must be non-negative")
    remaining = min(max(remaining_fraction, 0.0), 1.0)
    sigma_bps = daily_volatility * 1e4
    window_volume = adv_shares * window_volume_fraction
    adv_fraction = quantity / adv_shares
    half_spread = spread_bps / 2
    t_days = window_minutes / SESSION_MINUTES
    fill, peak, peak_at = 1.0, 0.0, 0.0
    # The law written by participation ρ = Q/V: Y·σ·(Q/ADV)^(½−β)·ρ^β. A schedule's slices
    # each trade at their own ρ_i, so the same trades cost the same however the window
    # around them is drawn (a 30-minute order, or the first 30 minutes of a longer one).
    if schedule is None:
        participation = quantity / window_volume
        impact = (
            IMPACT_COEFFICIENT
            * sigma_bps
            * adv_fraction ** (0.5 - WINDOW_EXPONENT)
            * participation**WINDOW_EXPONENT
        )
        uncertainty = sigma_bps * math.sqrt(t_days / 3) * remaining
    else:
        fill, rho_beta, risk_days, active, peak, peak_at = _schedule_terms(
            schedule, slice_volume, t_days, quantity / window_volume
        )
        # While it trades: a POV at 50% that is done in minutes participates at 50%, not
        # at its share of the whole window's volume.
        participation = fill * quantity / (window_volume * active) if active > 0 else 0.0
        traded = fill * adv_fraction  # of ADV: what the schedule trades
        impact = IMPACT_COEFFICIENT * sigma_bps * traded ** (0.5 - WINDOW_EXPONENT) * rho_beta
        uncertainty = sigma_bps * math.sqrt(risk_days) * remaining
    warnings: list[str] = []
    if adv_fraction > LARGE_ADV_FRACTION:
        warnings.append(f"large order: {adv_fraction:.1%} of ADV (above {LARGE_ADV_FRACTION:.0%})")
    if participation > HIGH_PARTICIPATION:
        warnings.append(
            f"expected participation {participation:.1%} of window volume "
            f"(above {HIGH_PARTICIPATION:.0%}); widen the window"
        )
    if peak > HIGH_PARTICIPATION and peak > 1.5 * participation:
        # Where: an order told to complete sweeps its rest in the last slice; an urgent
        # one trades most at the start.
        where = (
            "at the end, sweeping what is left"
            if peak_at >= 0.9
            else "at the start, front-loaded"
            if peak_at <= 0.1
            else f"{peak_at:.0%} of the way through the window"
        )
        warnings.append(
            f"the schedule peaks at {peak:.0%} of the market's volume within one minute, "
            f"{where}: the minutes that trade most cost the most"
        )
    if fill < 0.995:
        warnings.append(
            f"this schedule is expected to fill about {fill:.0%} of the order in the window; "
            "the rest is left unfilled (its cost is the price's move, not counted here)"
        )
    return PretradeEstimate(
        cost_bps=half_spread + impact,
        spread_cost_bps=half_spread,
        impact_bps=impact,
        uncertainty_bps=uncertainty,
        participation=participation,
        adv_fraction=adv_fraction,
        window_volume=window_volume,
        warnings=tuple(warnings),
        fill_fraction=fill,
        window_share=quantity / window_volume if window_volume > 0 else 0.0,
    )


def _schedule_terms(
    done: Sequence[float], slice_volume: Sequence[float] | None, t_days: float, q_over_v: float
) -> tuple[float, float, float, float, float, float]:
    """(expected fill, the filled shares' average ρ_i^β (ρ_i the participation in slice i),
    timing-risk days, the share
    of the window's volume in the slices where it trades, the highest participation in
    one slice, and where that slice is as a fraction of the window) of a piecewise-linear
    schedule. Risk days: ∫ (share of the filled part still to trade)² dt
    over the window, exact for straight segments: (a² + ab + b²)/3 per slice."""
    n = len(done) - 1
    if n < 1:
        raise ValueError("a schedule needs at least two edges")
    volume = list(slice_volume) if slice_volume is not None else [1.0 / n] * n
    if len(volume) != n or any(v < 0 for v in volume) or sum(volume) <= 0:
        raise ValueError("one non-negative volume share per slice of the schedule")
    total_volume = sum(volume)
    edges = [min(max(float(x), 0.0), 1.0) for x in done]
    fill = edges[-1] - edges[0]
    weighted, risk, active, peak, peak_at = 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        q = max(edges[i + 1] - edges[i], 0.0)  # of the order
        v = volume[i] / total_volume  # of the window's volume
        if q > 0:
            if v <= 0:
                raise ValueError("the schedule trades in a slice where the market trades none")
            weighted += q * (q / v * q_over_v) ** WINDOW_EXPONENT
            active += v
            if q / v * q_over_v > peak:
                peak, peak_at = q / v * q_over_v, (i + 0.5) / n
        # What is still to trade of what the schedule fills, per filled share: the same
        # basis as the cost (the unfilled rest's risk is the warning's business).
        a, b = (
            (edges[-1] - edges[i]) / fill if fill > 0 else 0.0,
            (edges[-1] - edges[i + 1]) / fill if fill > 0 else 0.0,
        )
        risk += (a * a + a * b + b * b) / 3 * (t_days / n)
    return fill, (weighted / fill if fill > 0 else 0.0), risk, active, peak, peak_at


def planned_schedule(
    strategy: type[Strategy], params: Mapping[str, Any], ctx: OrderContext
) -> tuple[list[float], list[float]]:
    """The strategy's own plan for the order, as `pretrade_estimate` takes it: the share
    done at the edges of one-minute slices of the window, and the market's share of the
    window's volume in each. An order told to complete takes what its schedule leaves in
    the last slice, as the strategies do. Raises ParamError for parameters the strategy
    refuses."""
    planner = strategy(ctx, params)
    span = ctx.end_s - ctx.start_s
    n = max(1, min(390, math.ceil(span / 60 / SLICE_MINUTES)))
    edges = [ctx.start_s + span * i / n for i in range(n + 1)]
    done = [planner.schedule_fraction(t) for t in edges]
    if planner.params.get("complete") and done[-1] < 1.0:
        done[-1] = 1.0
    lot = min(int(planner.params.get("min_child_qty", 1)), ctx.qty)
    if lot > 1:
        # Children go in whole lots, up to a lot ahead of the curve (base.Strategy.rest):
        # costed a lot ahead from the first slice, so a 150-share order with a 5,000-share
        # minimum is costed at once, as it trades, not spread over its window. (Not as
        # steps: the law is fitted to smooth schedules, and the simulator's impact follows
        # the shares done, not how they are bunched within minutes.)
        done = [d if d <= 0 else min(1.0, d + lot / ctx.qty) for d in done]
    volume = [profile_fraction(ctx.volume_profile, a, b) for a, b in pairwise(edges)]
    return done, volume
