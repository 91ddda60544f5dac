"""Calibrate the ticket's pre-trade impact model against the simulator.

The estimate (execution/algos/pretrade.py) prices impact as Y·σ·√(Q/ADV)·(ADV/V)^β, with
V the market volume expected in the order's window. This runs a strategy on generated
training days (never the shared scenarios) twice on each day: with the day's order, and
with a tiny one on the same schedule. Both see the same background market event for
event, so the difference of their shortfalls is the big order's impact, with the day's
price moves paired away. It then fits Y for each β by least squares and prints the fit.

    PYTHONPATH=. .venv/bin/python bench/calibrate_pretrade.py --days 400 --jobs 2
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from execution.algos.pretrade import IMPACT_COEFFICIENT, WINDOW_EXPONENT
from execution.cli_args import whole
from execution.learning.scenarios import _profile_fraction, _profile_weights, generate, train_seeds
from execution.sim.episode import run_episode
from execution.sim.scenario import parse_scenario

TINY_SHARES = 100
BASE_OFFSET = 300_000  # generator training seeds from here; no model was trained on them


def one_day(args: tuple[int, str]) -> dict[str, Any] | None:
    seed, strategy = args
    g = generate(seed)
    order, inst = g["order"], g["instrument"]
    if order["quantity"] < 20 * TINY_SHARES:
        return None  # too small to tell its impact from the tiny twin's
    # Both on the schedule itself, in children of any size: in 100-share lots the twin
    # would be one child filled at the start, and the difference would carry the whole
    # window's price move instead of cancelling it (rms 120 bps, not 6).
    params = {"min_child_qty": 1}
    big = run_episode(parse_scenario(g, source=f"gen-{seed}"), strategy, seed, params)
    g["order"] = {**order, "quantity": TINY_SHARES}
    tiny = run_episode(parse_scenario(g, source=f"gen-{seed}-tiny"), strategy, seed, params)
    if big.fill_rate < 0.999 or tiny.fill_rate < 0.999:
        return None  # costed on what did not fill: not what the estimate is for
    share = _profile_fraction(
        _profile_weights(g["volume_profile"]), order["start_minute"], order["end_minute"]
    )
    return {
        "seed": seed,
        "impact_bps": big.shortfall_bps - tiny.shortfall_bps,
        "sigma_bps": inst["daily_volatility"] * 1e4,
        "q_adv": order["quantity"] / inst["adv_shares"],
        "window_share": share,
        "minutes": order["end_minute"] - order["start_minute"],
    }


def fit(rows: list[dict[str, Any]], beta: float) -> tuple[float, float]:
    """Y by least squares through the origin, and the root mean squared error (bps)."""
    xs = [r["sigma_bps"] * math.sqrt(r["q_adv"]) * r["window_share"] ** -beta for r in rows]
    ys = [r["impact_bps"] for r in rows]
    y_coef = sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)
    rmse = math.sqrt(sum((y - y_coef * x) ** 2 for x, y in zip(xs, ys, strict=True)) / len(xs))
    return y_coef, rmse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=whole(1, 100_000), default=400)
    ap.add_argument("--jobs", type=whole(1, 256), default=2)
    ap.add_argument("--strategy", default="vwap", choices=("twap", "vwap", "is"))
    a = ap.parse_args()
    started = time.monotonic()
    seeds = train_seeds(BASE_OFFSET, a.days)
    with ProcessPoolExecutor(a.jobs) as pool:
        rows = [r for r in pool.map(one_day, [(s, a.strategy) for s in seeds]) if r]
    print(
        f"{len(rows)} of {a.days} generated days ({a.strategy}), {time.monotonic() - started:.0f} s"
    )
    for beta in (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5):
        y_coef, rmse = fit(rows, beta)
        print(f"beta {beta:4.2f}: Y {y_coef:5.3f}, rmse {rmse:6.2f} bps")
    # By window length: realised against the model as shipped, and as it was before.
    for lo, hi in ((0, 60), (60, 180), (180, 391)):
        part = [r for r in rows if lo <= r["minutes"] < hi]
        if part:
            real = sum(r["impact_bps"] for r in part) / len(part)
            now = sum(
                IMPACT_COEFFICIENT
                * r["sigma_bps"]
                * math.sqrt(r["q_adv"])
                * r["window_share"] ** -WINDOW_EXPONENT
                for r in part
            ) / len(part)
            before = sum(
                0.5 * r["sigma_bps"] * math.sqrt(r["q_adv"] / r["window_share"]) for r in part
            ) / len(part)
            print(
                f"windows {lo}-{hi} min: {len(part)} days, impact {real:6.2f} bps, "
                f"model {now:6.2f} (before 2026-12-06: {before:6.2f})"
            )


if __name__ == "__main__":
    main()
