"""Training scenarios for the adaptive policy: a generator, deterministic from a seed.

Each seed gives one scenario dict in the shared scenario format (validated by
`execution.sim.scenario.parse_scenario`) whose own `seed` is that same number, so one
integer fixes both the instrument and order and the simulated day they meet.

Seeds: the generator accepts only `GENERATOR_SEEDS` (1,000,000 to 2,099,999): training
draws from `TRAIN_SEEDS`, held-out validation from `VALIDATION_SEEDS`. Every evaluation
run uses the fixed scenarios (../shared/scenarios and execution/scenarios), whose seeds are
below 10,000 and whose episodes use seed + k for k < 200 (the backtest's default), so no
simulated day used for training or validation is ever one used for evaluation; the
policy never sees those files at all.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from execution.algos.base import quoted_spread_bps
from execution.sim.scenario import Scenario, parse_scenario

TRAIN_SEEDS = range(1_000_000, 2_000_000)
VALIDATION_SEEDS = range(2_000_000, 2_100_000)
GENERATOR_SEEDS = range(TRAIN_SEEDS.start, VALIDATION_SEEDS.stop)
EVALUATION_SEED_CEILING = 100_000  # every evaluation run's seeds are below this

MIN_ADV_PCT, MAX_ADV_PCT = 0.005, 0.30
# Orders are sized so the window's expected volume can absorb them: at most this share of
# it (the engine's participation limit is 50%; a larger order could not finish at all).
MAX_EXPECTED_PARTICIPATION = 0.4
WINDOW_MINUTES = (30, 60, 90, 120, 180, 240, 390)
_U_SHAPE = (2.0, 1.35, 1.1, 0.95, 0.85, 0.8, 0.75, 0.8, 0.85, 0.95, 1.1, 1.35, 2.2)


def _profile_fraction(weights: list[float], a_min: float, b_min: float) -> float:
    n = len(weights)
    total = sum(weights)
    width = 390.0 / n

    def cum(t: float) -> float:
        b = min(int(t / width), n - 1)
        return (sum(weights[:b]) + weights[b] * (t - b * width) / width) / total

    return cum(b_min) - cum(a_min)


def _profile_weights(profile: Any) -> list[float]:
    if profile == "u_shape":
        return list(_U_SHAPE)
    if profile == "flat":
        return [1.0]
    return [float(w) for w in profile]


def generate(seed: int) -> dict[str, Any]:
    """One training scenario (a JSON-able dict in the shared format) from a generator seed."""
    if seed not in GENERATOR_SEEDS:
        raise ValueError(
            f"generator seeds are {GENERATOR_SEEDS.start}..{GENERATOR_SEEDS.stop - 1}, got {seed}"
        )
    rng = np.random.default_rng(seed)

    def logu(lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    price = round(logu(4.0, 400.0), 2)
    adv = int(round(logu(150_000, 30_000_000), -3))
    vol = round(float(rng.uniform(0.008, 0.05)), 4)
    # Thin, cheap names quote wider; a liquid large cap sits at one tick.
    liquid = math.log10(adv) + 0.5 * math.log10(price)
    base_spread = 1 + max(0.0, 7.5 - liquid) * 1.6
    spread = int(min(max(round(base_spread + rng.normal(0.0, 0.8)), 1), 8))

    r = rng.random()
    if r < 0.7:
        profile: Any = "u_shape"
    elif r < 0.9:
        profile = "flat"
    else:
        profile = [round(float(w), 3) for w in rng.uniform(0.5, 2.0, size=13)]
    weights = _profile_weights(profile)

    length = int(rng.choice(WINDOW_MINUTES))
    start = int(rng.integers(0, 390 - length + 1)) if length < 390 else 0
    end = start + length
    window_share = _profile_fraction(weights, start, end)
    hi_pct = min(MAX_ADV_PCT, MAX_EXPECTED_PARTICIPATION * window_share)
    lo_pct = min(MIN_ADV_PCT, hi_pct)
    pct = logu(lo_pct, hi_pct) if hi_pct > lo_pct else hi_pct
    qty = max(int(round(pct * adv, -2)), 100)

    n_lit = int(rng.choice([1, 2, 2, 3, 3]))
    n_dark = int(rng.choice([0, 1, 1, 2]))
    lit_shares = rng.dirichlet(np.full(n_lit, 3.0))
    dark_total = float(rng.uniform(0.05, 0.3)) if n_dark else 0.0
    dark_shares = rng.dirichlet(np.full(n_dark, 3.0)) if n_dark else np.zeros(0)
    venues: list[dict[str, Any]] = []
    for i, s in enumerate(lit_shares):
        venues.append(
            {"name": f"LIT-{'ABC'[i]}", "kind": "lit", "volume_share": (1 - dark_total) * s}
        )
    for i, s in enumerate(dark_shares):
        venues.append({"name": f"DARK-{'XY'[i]}", "kind": "dark", "volume_share": dark_total * s})
    # Rounded shares must still sum to 1: the last venue takes the remainder.
    for v in venues:
        v["volume_share"] = round(float(v["volume_share"]), 4)
    venues[-1]["volume_share"] = round(1.0 - sum(v["volume_share"] for v in venues[:-1]), 4)

    regimes: list[dict[str, float]] = []
    if rng.random() < 0.35:
        regimes.append(
            {"start_minute": 0, "volatility_multiplier": 1.0, "liquidity_multiplier": 1.0}
        )
        for _ in range(int(rng.integers(1, 3))):
            at = int(rng.integers(start, end))
            if at <= regimes[-1]["start_minute"]:
                continue
            regimes.append(
                {
                    "start_minute": at,
                    "volatility_multiplier": round(logu(0.6, 3.0), 2),
                    "liquidity_multiplier": round(logu(0.4, 1.5), 2),
                }
            )
    outages: list[dict[str, Any]] = []
    if n_lit + n_dark >= 2 and rng.random() < 0.3:
        # Any venue but the only lit one (its flow would have nowhere to go).
        candidates = [v["name"] for v in venues if v["kind"] == "dark" or n_lit > 1]
        venue = str(rng.choice(candidates))
        at = int(rng.integers(start, end))
        outages.append(
            {
                "venue": venue,
                "start_minute": at,
                "end_minute": min(at + int(rng.integers(5, 31)), 390),
            }
        )

    return {
        "name": f"gen-{seed}",
        "description": "generated training scenario (execution.learning.scenarios)",
        "seed": seed,
        "instrument": {
            "symbol": f"G{seed % 100_000:05d}",
            "reference_price": price,
            "tick_size": 0.01,
            "adv_shares": adv,
            "daily_volatility": vol,
            "spread_ticks": spread,
        },
        "order": {
            "side": "buy" if rng.random() < 0.5 else "sell",
            "quantity": qty,
            "start_minute": start,
            "end_minute": end,
            "limit_price": None,
        },
        "venues": venues,
        "volume_profile": profile,
        "regimes": regimes,
        "outages": outages,
    }


def scenario(seed: int) -> Scenario:
    """The generated scenario, parsed and validated."""
    return parse_scenario(generate(seed), source=f"gen-{seed}")


def train_seeds(base: int, n: int) -> list[int]:
    """n training seeds from a base offset, wrapping within TRAIN_SEEDS."""
    size = len(TRAIN_SEEDS)
    return [TRAIN_SEEDS.start + (base + i) % size for i in range(n)]


def validation_seeds(n: int, offset: int = 0) -> list[int]:
    return [VALIDATION_SEEDS.start + offset + i for i in range(n)]


def expected_participation(seed: int) -> float:
    """The generated order's share of its window's expected market volume (the order's
    size against the volume profile the generator drew; at most MAX_EXPECTED_PARTICIPATION
    up to rounding). Known before the order starts, like the spread."""
    g = generate(seed)
    order = g["order"]
    share = _profile_fraction(
        _profile_weights(g["volume_profile"]), order["start_minute"], order["end_minute"]
    )
    return float(order["quantity"]) / (float(g["instrument"]["adv_shares"]) * share)


def quoted_spread(seed: int) -> tuple[float, float]:
    """The generated instrument's quoted spread of a seed: (ticks, bps of its price). A
    production order context changes the order only, never the instrument."""
    inst = generate(seed)["instrument"]
    ticks = float(inst["spread_ticks"])
    return ticks, quoted_spread_bps(ticks, float(inst["tick_size"]), float(inst["reference_price"]))
