"""The background order flow of one simulated day, drawn once per seed.

The whole day is drawn up front from its own random stream, before any strategy acts:
event times, kinds, venues and the uniforms that will size and place them, plus the
fundamental (latent) price path. This is what makes common random numbers exact: a
strategy can change how an event lands on the book (its own orders and impact move the
book) but never which events happen, when, or with which random draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from execution.sim.calibration import SESSION_SECONDS, Calibration
from execution.sim.scenario import Scenario

KIND_MARKET = 0
KIND_LIMIT = 1
KIND_CANCEL = 2
KIND_DARK = 3

STREAM_BACKGROUND = 1
STREAM_OURS = 2


@dataclass(slots=True)
class BackgroundDay:
    """Columns of the day's background events, as Python lists for fast scalar access."""

    times: list[float]
    kinds: list[int]
    venues: list[int]
    u1: list[float]  # side
    u3: list[float]  # placement / meta-order sign flips
    size: list[float]  # unit-mean exponential draw, scaled by each event's mean size
    level: list[int]  # book level (0 = best) for limit orders and cancels, geometric
    cancel_fraction: list[float]
    fundamental: list[float]  # latent price in ticks at each event, before our impact
    liquidity: list[float]  # regime liquidity multiplier at each event

    def __len__(self) -> int:
        return len(self.times)


def seed_entropy(seed: int, stream: int) -> np.random.SeedSequence:
    """The seed whole: a seed under 2**32 is one 32-bit word, as it always was, and a larger
    one more words. (It was cut to its low 32 bits, so seed s and s + 2**32 drew the same
    day: a review's seeds 2**64 - 1 and 10**35 gave the same figures.)"""
    return np.random.SeedSequence([int(seed), stream])


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(seed_entropy(seed, stream))


def _knots(scenario: Scenario) -> list[float]:
    """Times (s) where the event intensity may change: profile buckets and regimes."""
    buckets = len(scenario.volume_profile)
    edges = {SESSION_SECONDS * b / buckets for b in range(buckets + 1)}
    edges.update(r.start_minute * 60.0 for r in scenario.regimes)
    return sorted(e for e in edges if 0.0 <= e <= SESSION_SECONDS)


def intensity_shape(scenario: Scenario, t: float) -> float:
    """Relative event rate at time t: volume-profile weight times the regime's liquidity."""
    buckets = len(scenario.volume_profile)
    b = min(int(t / SESSION_SECONDS * buckets), buckets - 1)
    density = scenario.volume_profile[b] * buckets  # 1.0 for a flat day
    return density * scenario.regime_at(t / 60.0).liquidity_multiplier


def draw_day(scenario: Scenario, cal: Calibration, seed: int) -> BackgroundDay:
    # One generator per column: a column's i-th draw then belongs to the i-th event whatever
    # the day's length, so a regime later in the day leaves the morning exactly as it was.
    (r_time, r_kind, r_venue, r_u1, r_u2, r_u3, r_price) = (
        np.random.default_rng(s) for s in seed_entropy(seed, STREAM_BACKGROUND).spawn(7)
    )
    knots = np.array(_knots(scenario))
    mids = (knots[:-1] + knots[1:]) / 2.0
    shape = np.array([intensity_shape(scenario, float(m)) for m in mids])
    per_second = cal.background_events / SESSION_SECONDS
    cum = np.concatenate([[0.0], np.cumsum(shape * per_second * np.diff(knots))])

    expected = float(cum[-1])
    draws = r_time.exponential(1.0, size=int(expected + 6.0 * np.sqrt(expected) + 64))
    arrivals = np.cumsum(draws)
    while arrivals[-1] < cum[-1]:  # practically never; keeps the day complete regardless
        more = np.cumsum(r_time.exponential(1.0, size=1024)) + arrivals[-1]
        arrivals = np.concatenate([arrivals, more])
    arrivals = arrivals[arrivals < cum[-1]]
    times = np.interp(arrivals, cum, knots)
    n = len(times)

    k = cal.knobs
    lit_w = cal.lit_trades
    weights = np.array(
        [lit_w, lit_w * k.limit_orders_per_trade, lit_w * k.cancels_per_trade, cal.dark_prints]
    )
    cdf = np.cumsum(weights / weights.sum())
    kinds = np.searchsorted(cdf, r_kind.random(n), side="right").clip(0, 3)

    lit_idx = [i for i, v in enumerate(scenario.venues) if v.kind == "lit"]
    dark_idx = [i for i, v in enumerate(scenario.venues) if v.kind == "dark"]
    venue_u = r_venue.random(n)
    venues = _pick(venue_u, scenario, lit_idx)
    if dark_idx:
        dark_venues = _pick(venue_u, scenario, dark_idx)
        venues = np.where(kinds == KIND_DARK, dark_venues, venues)

    u1, u2, u3 = r_u1.random(n), r_u2.random(n), r_u3.random(n)

    # Fundamental price: geometric Brownian, as FORMAT.md's daily_volatility is the
    # standard deviation of the day's log return; variance spread evenly over the session
    # and scaled by the regime's volatility multiplier (squared: it multiplies sigma). The
    # -s**2/2 keeps the price itself a martingale, as the arithmetic path was: no side
    # gains by waiting. The arithmetic path in ticks went below zero at volatilities the
    # format allows (a review: an arrival mid of -15.06 at 0.95, then a traceback).
    vol_mult, liq = _regime_columns(scenario, times)
    dt = np.diff(np.concatenate([[0.0], times]))
    sigma_log_per_sqrt_s = cal.sigma_ticks_per_day / cal.reference_ticks / np.sqrt(SESSION_SECONDS)
    s = sigma_log_per_sqrt_s * vol_mult * np.sqrt(dt)
    log_path = np.cumsum(r_price.standard_normal(n) * s - 0.5 * s * s)
    # Never within a spread of zero, where no book can be quoted: a floor only a day far
    # past any real volatility meets.
    fundamental = np.maximum(cal.reference_ticks * np.exp(log_path), cal.spread_ticks + 1.0)

    return BackgroundDay(
        times=times.tolist(),
        kinds=kinds.astype(int).tolist(),
        venues=venues.astype(int).tolist(),
        u1=u1.tolist(),
        u3=u3.tolist(),
        size=(-np.log1p(-u2 * 0.999999)).tolist(),
        level=np.minimum((-np.log1p(-u3 * 0.999999) / 0.6).astype(int), 9).tolist(),
        cancel_fraction=(0.6 * u2).tolist(),
        fundamental=fundamental.tolist(),
        liquidity=liq.tolist(),
    )


def _regime_columns(scenario: Scenario, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Volatility and liquidity multipliers in force at each event time."""
    starts = np.array([0.0] + [r.start_minute * 60.0 for r in scenario.regimes])
    vol = np.array([1.0] + [r.volatility_multiplier for r in scenario.regimes])
    liq = np.array([1.0] + [r.liquidity_multiplier for r in scenario.regimes])
    at = np.searchsorted(starts, times, side="right") - 1
    return vol[at], liq[at]


def _pick(u: np.ndarray, scenario: Scenario, idx: list[int]) -> np.ndarray:
    shares = np.array([scenario.venues[i].volume_share for i in idx])
    cdf = np.cumsum(shares / shares.sum())
    pos = np.searchsorted(cdf, u, side="right").clip(0, len(idx) - 1)
    chosen: np.ndarray = np.asarray(idx)[pos]
    return chosen
