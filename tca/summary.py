"""Post-trade results per order and per strategy, pure: what the TCA page shows.

Conventions as in tca.metrics: basis points of the arrival price, positive = cost, for
buys and sells alike. An undefined figure (no fills, no known mid, one order's spread) is
None, never NaN or zero, so the page prints a dash instead of a number that looks real.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tca.metrics import filled_shortfall_bps, implementation_shortfall_bps, vwap_slippage_bps

SIDE_SIGN = {"buy": 1, "sell": -1}

# Two-sided 95% Student t quantiles by degrees of freedom. A strategy has a handful of
# live orders, not hundreds of episodes: the normal 1.96 would make the interval too narrow.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z_975 = 1.959964


def t_quantile_975(df: int) -> float:
    """The t distribution's 97.5% quantile; past the table, its Cornish–Fisher expansion
    around the normal (good to three decimals there)."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = _Z_975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFacts:
    """What is known of one finished order. Prices in one unit (currency per share)."""

    order_id: int
    strategy: str
    side: str  # "buy" or "sell"
    qty: int
    filled_qty: int
    arrival_px: float
    avg_px: float | None
    end_mid_px: float | None  # the mid when the order ended
    market_volume: float | None  # shares the whole market traded while the order worked
    market_vwap_px: float | None = None  # the VWAP of those shares
    # Canceled (by its trader, or a kill switch), not left to finish: its fills and costs
    # count, but not against the strategy's fill rate, which it had no chance to reach.
    stopped: bool = False
    # Left paused by its trader until its window ended: the market's volume and VWAP over
    # its window count time it stood still, so its participation and its fills against
    # that VWAP measure the pause, not the strategy (a trial's read -141.77 bps against
    # VWAP, the price having rallied while it stood, and moved its strategy's mean to
    # -74.54). Both are left undefined for it.
    left_paused: bool = False
    # The strategy it was entered with stopped deciding (an adaptive model fell back) and
    # this one finished it; the order still counts under the strategy entered.
    fallback: str = ""
    model: str = ""  # the model version that traded it (an adaptive order)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderResult:
    facts: OrderFacts
    fill_pct: float
    filled_shortfall_bps: float | None  # the filled shares only, against arrival
    total_shortfall_bps: float | None  # the whole order: unfilled shares at the end mid
    participation_pct: float | None  # filled ÷ market volume
    vwap_slippage_bps: float | None  # the fills' average against the market's VWAP


def _clean(bps: float) -> float:
    return 0.0 if bps == 0 else bps  # never print "-0.0"


def order_result(facts: OrderFacts) -> OrderResult:
    sign = SIDE_SIGN[facts.side]
    filled = None
    if facts.filled_qty > 0 and facts.avg_px is not None:
        filled = _clean(
            filled_shortfall_bps(side=sign, avg_fill_px=facts.avg_px, arrival_mid=facts.arrival_px)
        )
    total = None
    unfilled = facts.qty - facts.filled_qty
    # Nothing left unfilled needs no end mid: the whole order's cost is its fills' cost.
    end_mid = facts.end_mid_px if unfilled else facts.arrival_px
    if end_mid is not None and (facts.filled_qty == 0 or facts.avg_px is not None):
        total = _clean(
            implementation_shortfall_bps(
                side=sign,
                qty=facts.qty,
                filled_qty=facts.filled_qty,
                avg_fill_px=facts.avg_px,
                arrival_mid=facts.arrival_px,
                end_mid=end_mid,
            )
        )
    participation = None
    if facts.market_volume and not facts.left_paused:  # unknown or zero: no share of it
        participation = 100.0 * facts.filled_qty / facts.market_volume
    vwap = None
    if facts.filled_qty > 0 and not facts.left_paused:
        vwap = vwap_slippage_bps(
            side=sign, avg_fill_px=facts.avg_px, market_vwap=facts.market_vwap_px
        )
    return OrderResult(
        facts=facts,
        fill_pct=100.0 * facts.filled_qty / facts.qty,
        filled_shortfall_bps=filled,
        total_shortfall_bps=total,
        participation_pct=participation,
        vwap_slippage_bps=None if vwap is None else _clean(vwap),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """One shortfall measure across a strategy's orders (those where it is defined)."""

    n: int
    mean: float | None
    weighted_mean: float | None  # each order weighted by its shares
    sd: float | None  # sample standard deviation across orders; None below two
    ci95_low: float | None  # t interval of the (unweighted) mean; None below two
    ci95_high: float | None


def spread(pairs: Sequence[tuple[float, float]]) -> Spread:
    """From (value, weight) pairs, one per order."""
    n = len(pairs)
    if n == 0:
        return Spread(n=0, mean=None, weighted_mean=None, sd=None, ci95_low=None, ci95_high=None)
    mean = math.fsum(v for v, _ in pairs) / n
    total_weight = math.fsum(w for _, w in pairs)
    weighted = math.fsum(v * w for v, w in pairs) / total_weight if total_weight > 0 else None
    if n < 2:
        return Spread(
            n=1, mean=mean, weighted_mean=weighted, sd=None, ci95_low=None, ci95_high=None
        )
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v, _ in pairs) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return Spread(
        n=n, mean=mean, weighted_mean=weighted, sd=sd, ci95_low=mean - half, ci95_high=mean + half
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySummary:
    strategy: str
    model: str  # "" but for an adaptive strategy's orders, one summary per model version
    orders: int
    qty: int
    filled_qty: int
    # filled shares ÷ ordered shares, over the orders left to run (None: every one stopped)
    fill_rate_pct: float | None
    stopped: int = 0  # orders canceled by a person or a kill switch
    fell_back: int = 0  # orders another strategy finished (an adaptive model's fallback)
    filled: Spread  # the filled part's shortfall, weighted by filled shares
    total: Spread  # the whole order's shortfall, weighted by ordered shares
    vwap: Spread  # the fills against the market's VWAP, weighted by filled shares


def strategy_summaries(results: Iterable[OrderResult]) -> list[StrategySummary]:
    """One summary per strategy and, for a strategy traded by a model, per model version
    (how did this model do: a trial), in name order. Orders where a measure is undefined
    count towards orders and fill rate but not towards that measure (its n says how many
    did); orders stopped by a person or a kill switch count everywhere but in the fill
    rate."""
    by_strategy: dict[tuple[str, str], list[OrderResult]] = {}
    for r in results:
        by_strategy.setdefault((r.facts.strategy, r.facts.model), []).append(r)
    out = []
    for name, model in sorted(by_strategy):
        rs = by_strategy[(name, model)]
        qty = sum(r.facts.qty for r in rs)
        filled_qty = sum(r.facts.filled_qty for r in rs)
        ran = [r for r in rs if not r.facts.stopped]
        ran_qty = sum(r.facts.qty for r in ran)
        filled = [
            (r.filled_shortfall_bps, float(r.facts.filled_qty))
            for r in rs
            if r.filled_shortfall_bps is not None
        ]
        total = [
            (r.total_shortfall_bps, float(r.facts.qty))
            for r in rs
            if r.total_shortfall_bps is not None
        ]
        vwap = [
            (r.vwap_slippage_bps, float(r.facts.filled_qty))
            for r in rs
            if r.vwap_slippage_bps is not None
        ]
        out.append(
            StrategySummary(
                strategy=name,
                model=model,
                orders=len(rs),
                qty=qty,
                filled_qty=filled_qty,
                fill_rate_pct=(
                    100.0 * sum(r.facts.filled_qty for r in ran) / ran_qty if ran_qty else None
                ),
                stopped=len(rs) - len(ran),
                fell_back=sum(1 for r in rs if r.facts.fallback),
                filled=spread(filled),
                total=spread(total),
                vwap=spread(vwap),
            )
        )
    return out
