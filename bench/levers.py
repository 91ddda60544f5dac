"""How much each fixed lever of the VWAP baseline moves its cost on held-out generated
days in a band of spreads, paired by day, beside a policy model (a diagnosis for
docs/ADAPTIVE.md: it chooses nothing).

    python bench/levers.py [--days 120] [--offset 73000] [--spread-band 3,5]
        [--model policy-v9] [--jobs 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from execution.algos.adaptive import ModelUnavailable, load_policy  # noqa: E402
from execution.cli_args import whole  # noqa: E402
from execution.learning.bands import NO_BAND, SPREAD, parse_band, validation_band_seeds  # noqa: E402
from execution.learning.scenarios import scenario  # noqa: E402
from execution.sim.episode import run_episode  # noqa: E402

LEVERS: dict[str, dict[str, Any]] = {
    "dark share 0.6": {"dark_fraction": 0.6},
    "dark share 0": {"dark_fraction": 0.0},
    "max_take_ticks 0": {"max_take_ticks": 0},
    "improve_wide_spread off": {"improve_wide_spread": False},
    "catch_up_slices 2": {"catch_up_slices": 2.0},
    "decision_interval_s 60": {"decision_interval_s": 60.0},
}


def _one(task: tuple[str, dict[str, Any], int]) -> float:
    strategy, params, seed = task
    return run_episode(scenario(seed), strategy, seed, params).shortfall_bps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=whole(2, 100_000), default=120)
    parser.add_argument("--offset", type=whole(0, 99_999), default=73_000)
    parser.add_argument("--spread-band", default="3,5")
    parser.add_argument("--model", default="policy-v9")
    parser.add_argument("--jobs", type=whole(1, 256), default=2)
    args = parser.parse_args()
    try:
        load_policy(args.model)  # a missing or broken file is named now, not as a row of TWAP
    except ModelUnavailable as e:
        parser.error(f"--model: {e}")
    try:
        band = parse_band(args.spread_band, "--spread-band", SPREAD)
        seeds = validation_band_seeds(args.offset, args.days, band, NO_BAND)
    except ValueError as e:
        parser.error(str(e))
    arms = {"vwap": ("vwap", {})}
    arms.update({name: ("vwap", p) for name, p in LEVERS.items()})
    arms[args.model] = ("adaptive", {"model": args.model, "schedule": "volume"})
    tasks = [(strategy, params, s) for s in seeds for strategy, params in arms.values()]
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        out = pool.map(_one, tasks, chunksize=len(arms))
    k = len(arms)
    cost = {name: out[j::k] for j, name in enumerate(arms)}
    print(
        f"validation days {seeds[0]}-{seeds[-1]} ({len(seeds)} in spread {band} bps); "
        f"VWAP {statistics.mean(cost['vwap']):.2f} bps; each minus VWAP, paired by day:"
    )
    for name in list(arms)[1:]:
        d = [a - b for a, b in zip(cost[name], cost["vwap"], strict=True)]
        m, h = statistics.mean(d), 1.96 * statistics.stdev(d) / math.sqrt(len(d))
        print(f"  {name:<26} {m:+.2f} [{m - h:+.2f}, {m + h:+.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
