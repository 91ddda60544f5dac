"""Measurements of the simulated market: calibration, microstructure, square-root impact.

These are the figures docs/SIMULATOR.md quotes and the slow tests assert. They run the
market with no strategy (calibration, microstructure) or with TWAP orders of several
sizes on common random numbers (impact), so each can be reproduced from a seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from execution.sim.calibration import SESSION_SECONDS
from execution.sim.market import Market
from execution.sim.scenario import Scenario

BUCKET_S = 1800.0


@dataclass(frozen=True, slots=True)
class DayStats:
    volume: float
    time_avg_spread_ticks: float
    realized_vol: float  # sqrt of the sum of squared 5-minute log returns of the mid
    open_to_close: float  # log return, mid at the open to mid at the close
    bucket_volume: tuple[float, ...]  # per 30-minute bucket


def quiet_day(scenario: Scenario, seed: int) -> DayStats:
    """Run the market with no strategy and measure what calibration promises."""
    m = Market(scenario, seed)
    step = 300.0
    mids = [m.mid_ticks()]
    buckets: list[float] = []
    spread_area = 0.0
    last_t = 0.0
    last_spread = _avg_lit_spread(m)
    t = 0.0

    # Time-weight the quoted spread event by event; sample mids and volume on a grid.
    def observe(mk: Market) -> None:
        nonlocal spread_area, last_t, last_spread
        spread_area += last_spread * (mk.now - last_t)
        last_t, last_spread = mk.now, _avg_lit_spread(mk)

    m.observer = observe
    vol_at_bucket_start = 0.0
    while t < SESSION_SECONDS:
        t = min(t + step, SESSION_SECONDS)
        m.advance(t)
        mids.append(m.mid_ticks())
        if t % BUCKET_S == 0 or t == SESSION_SECONDS:
            buckets.append(m.tape.volume - vol_at_bucket_start)
            vol_at_bucket_start = m.tape.volume
    spread_area += last_spread * (SESSION_SECONDS - last_t)
    rets = [math.log(b / a) for a, b in itertools.pairwise(mids)]
    return DayStats(
        volume=m.tape.volume,
        time_avg_spread_ticks=spread_area / SESSION_SECONDS,
        realized_vol=math.sqrt(sum(r * r for r in rets)),
        open_to_close=math.log(mids[-1] / mids[0]),
        bucket_volume=tuple(buckets),
    )


def _avg_lit_spread(m: Market) -> float:
    up = [b.ask - b.bid for b in m.lit if b.up]
    return sum(up) / len(up) if up else 0.0


@dataclass(frozen=True, slots=True)
class Microstructure:
    imbalance_agreement: (
        float  # share of mid moves whose sign the prior top-of-book imbalance called
    )
    microprice_agreement: float  # the same for microprice minus mid
    strong_imbalance_agreement: float  # when |imbalance| > 0.5
    mid_moves: int
    trade_sign_autocorr: tuple[float, ...]  # lags 1..10, lit trades in time order


def microstructure(
    scenario: Scenario, seed: int, until_s: float = SESSION_SECONDS
) -> Microstructure:
    m = Market(scenario, seed)
    m.tape.log = []
    state = {"mid": m.mid_ticks(), "imb": 0.0, "micro": 0.0}
    hits = total = strong_hits = strong_total = micro_hits = micro_total = 0

    def observe(mk: Market) -> None:
        nonlocal hits, total, strong_hits, strong_total, micro_hits, micro_total
        bid, ask = mk.nbbo()
        mid = (bid + ask) / 2.0
        move = mid - state["mid"]
        if move != 0.0:
            sign = 1.0 if move > 0 else -1.0
            imb = state["imb"]
            if imb != 0.0:
                total += 1
                hits += (imb > 0) == (sign > 0)
                if abs(imb) > 0.5:
                    strong_total += 1
                    strong_hits += (imb > 0) == (sign > 0)
            if state["micro"] != 0.0:
                micro_total += 1
                micro_hits += (state["micro"] > 0) == (sign > 0)
        qb = sum(b.bids.get(bid, 0.0) for b in mk.lit if b.up and b.bid == bid)
        qa = sum(b.asks.get(ask, 0.0) for b in mk.lit if b.up and b.ask == ask)
        state["mid"] = mid
        state["imb"] = (qb - qa) / (qb + qa) if qb + qa > 0 else 0.0
        state["micro"] = ((ask * qb + bid * qa) / (qb + qa) - mid) if qb + qa > 0 else 0.0

    m.observer = observe
    m.advance(until_s)
    signs = [s for _, _, s, _ in m.tape.log or [] if s != 0]
    return Microstructure(
        imbalance_agreement=hits / total if total else math.nan,
        microprice_agreement=micro_hits / micro_total if micro_total else math.nan,
        strong_imbalance_agreement=strong_hits / strong_total if strong_total else math.nan,
        mid_moves=total,
        trade_sign_autocorr=tuple(_autocorr(signs, lag) for lag in range(1, 11)),
    )


def _autocorr(xs: Sequence[float], lag: int) -> float:
    n = len(xs)
    if n <= lag + 1:
        return math.nan
    mean = sum(xs) / n
    var = sum((x - mean) ** 2 for x in xs) / n
    cov = sum((xs[i] - mean) * (xs[i + lag] - mean) for i in range(n - lag)) / (n - lag)
    return cov / var if var > 0 else math.nan


@dataclass(frozen=True, slots=True)
class SqrtLawFit:
    fractions: tuple[float, ...]  # Q / ADV
    impact_bps: tuple[float, ...]  # mean cost minus the tiny order's, same seeds
    stderr_bps: tuple[float, ...]
    slope: float  # d log(impact) / d log(Q/V)
    y: float  # impact / (sigma * sqrt(Q/V)), fitted with the slope fixed at 1/2
    y_free: float  # prefactor of the free log-log fit at Q/V = 1


def square_root_law(
    scenario: Scenario,
    seeds: Sequence[int],
    fractions: Sequence[float] = (0.01, 0.03, 0.10, 0.30),
    strategy: str = "twap",
    tiny_fraction: float = 0.0002,
) -> SqrtLawFit:
    """Cost of working Q over the whole day, less a tiny order's on the same seeds."""
    from execution.sim.episode import run_episode  # the engine sits above the market

    adv = scenario.instrument.adv_shares
    base = scenario.with_order(start_minute=0.0, end_minute=390.0, limit_price=None)

    # The market's response to trading spread evenly over the day: children of any size
    # (in 100-share lots the tiny reference order would be four lots, not a trickle).
    params = {"min_child_qty": 1}

    def costs(frac: float) -> list[float]:
        sc = base.with_order(quantity=max(1, round(frac * adv)))
        return [
            run_episode(sc, strategy, s, params, max_participation=None).shortfall_bps
            for s in seeds
        ]

    tiny = costs(tiny_fraction)
    impact, err = [], []
    for frac in fractions:
        diffs = [c - t for c, t in zip(costs(frac), tiny, strict=True)]
        mean = sum(diffs) / len(diffs)
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1))
        impact.append(mean)
        err.append(sd / math.sqrt(len(diffs)))
    sigma_bps = scenario.instrument.daily_volatility * 1e4
    xs = [math.log(f) for f in fractions]
    ys = [math.log(max(i, 1e-9)) for i in impact]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    y_half = sum(i / (sigma_bps * math.sqrt(f)) for i, f in zip(impact, fractions, strict=True)) / n
    y_free = math.exp(my - slope * mx) / sigma_bps
    return SqrtLawFit(tuple(fractions), tuple(impact), tuple(err), slope, y_half, y_free)
