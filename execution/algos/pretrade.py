"""Pre-trade estimate for the order ticket: expected cost, its uncertainty, participation.

Pure (no Django): the ticket's `/orders/estimate/` endpoint is a thin adapter around it.

Model, per share and in basis points of the arrival price:

* Expected cost = half the quoted spread + Y·σ·√(Q/V), the square-root impact law with
  Y = 0.5, σ the daily volatility in bps, Q the order's shares and V the market volume
  expected inside the order's window (ADV × the volume profile's share of the window).
  Using the window's volume rather than the whole day's makes a squeezed window cost more,
  which is what a trader sees when he compresses an order.
* Uncertainty (one standard deviation) is the timing risk of a linear schedule. In
  Almgren–Chriss, trading X shares on a straight line over T has cost variance
  σ²·X²·T/3 (dollars, σ per √day); per share and in bps that is σ_bps·√(T/3) with T in
  trading days (390 minutes). For an order already part done it scales with the
  fraction still to trade.
* Expected participation = Q / V.

Warnings: the order is large against ADV (Q/ADV above 10%) or the expected participation
is above 25%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

IMPACT_COEFFICIENT = 0.5  # Y in the square-root law
SESSION_MINUTES = 390.0
LARGE_ADV_FRACTION = 0.10
HIGH_PARTICIPATION = 0.25


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

    def to_json(self) -> dict[str, object]:
        return {
            "cost_bps": round(self.cost_bps, 2),
            "spread_cost_bps": round(self.spread_cost_bps, 2),
            "impact_bps": round(self.impact_bps, 2),
            "uncertainty_bps": round(self.uncertainty_bps, 2),
            "participation_pct": round(self.participation * 100, 2),
            "adv_pct": round(self.adv_fraction * 100, 2),
            "window_volume": round(self.window_volume),
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
) -> PretradeEstimate:
    """The estimate for one order. `daily_volatility` is a fraction (0.02 = 2%)."""
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
    participation = quantity / window_volume
    adv_fraction = quantity / adv_shares
    half_spread = spread_bps / 2
    impact = IMPACT_COEFFICIENT * sigma_bps * math.sqrt(participation)
    t_days = window_minutes / SESSION_MINUTES
    uncertainty = sigma_bps * math.sqrt(t_days / 3) * remaining
    warnings: list[str] = []
    if adv_fraction > LARGE_ADV_FRACTION:
        warnings.append(f"large order: {adv_fraction:.1%} of ADV (above {LARGE_ADV_FRACTION:.0%})")
    if participation > HIGH_PARTICIPATION:
        warnings.append(
            f"expected participation {participation:.1%} of window volume "
            f"(above {HIGH_PARTICIPATION:.0%}); widen the window"
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
    )
