"""How much each fixed lever of the VWAP baseline moves its cost on held-out generated
days in a band of spreads, paired by day, beside a policy model (a diagnosis for
docs/ADAPTIVE.md: it chooses nothing).

    python bench/levers.py [--days 120] [--offset 73000] [--spread-band 3,5]
        [--model policy-v9] [--jobs 2]

With `--set cadence`, the schedule's levers instead: how often a decision is taken, for
the baselines and the model alike, and the model's urgency and curve; each arm minus
VWAP and minus the model at its defaults (docs/ADAPTIVE.md, "How often to decide").
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
from execution.learning.scenarios import expected_participation, scenario  # noqa: E402
from execution.sim.episode import run_episode  # noqa: E402

LEVERS: dict[str, dict[str, Any]] = {
    "dark share 0.6": {"dark_fraction": 0.6},
    "dark share 0": {"dark_fraction": 0.0},
    "max_take_ticks 0": {"max_take_ticks": 0},
    "improve_wide_spread off": {"improve_wide_spread": False},
    "catch_up_slices 2": {"catch_up_slices": 2.0},
    "decision_interval_s 60": {"decision_interval_s": 60.0},
}

# --set cadence: (strategy, parameters); "model" arms add the model's name and schedule.
CADENCE: dict[str, tuple[str, dict[str, Any]]] = {
    "vwap every 15 s": ("vwap", {"decision_interval_s": 15.0}),
    "twap": ("twap", {}),
    "twap every 15 s": ("twap", {"decision_interval_s": 15.0}),
    "is": ("is", {}),
    "model urgency 0.15": ("model", {"urgency": 0.15}),
    "model urgency 0.3": ("model", {"urgency": 0.3}),
    "model on the time curve": ("model", {"schedule": "time"}),
    "model every 20 s": ("model", {"decision_interval_s": 20.0}),
    "model every 15 s": ("model", {"decision_interval_s": 15.0}),
    "model every 10 s": ("model", {"decision_interval_s": 10.0}),
    "model every 5 s": ("model", {"decision_interval_s": 5.0}),
}


def _paired(cost: dict[str, list[float]], ref: str, keep: list[int]) -> None:
    for name in cost:
        if name == ref:
            continue
        d = [cost[name][i] - cost[ref][i] for i in keep]
        m, h = statistics.mean(d), 1.96 * statistics.stdev(d) / math.sqrt(len(d))
        print(f"  {name:<26} {m:+.2f} [{m - h:+.2f}, {m + h:+.2f}]")


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
    parser.add_argument("--set", choices=("levers", "cadence"), default="levers")
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
    model = {"model": args.model, "schedule": "volume"}
    arms = {"vwap": ("vwap", {})}
    if args.set == "levers":
        arms.update({name: ("vwap", p) for name, p in LEVERS.items()})
        arms[args.model] = ("adaptive", model)
    else:
        arms[args.model] = ("adaptive", model)
        arms.update(
            {
                name: ("adaptive", {**model, **p}) if s == "model" else (s, p)
                for name, (s, p) in CADENCE.items()
            }
        )
    tasks = [(strategy, params, s) for s in seeds for strategy, params in arms.values()]
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        out = pool.map(_one, tasks, chunksize=len(arms))
    k = len(arms)
    cost = {name: out[j::k] for j, name in enumerate(arms)}
    print(
        f"validation days {seeds[0]}-{seeds[-1]} ({len(seeds)} in spread {band} bps); "
        f"VWAP {statistics.mean(cost['vwap']):.2f} bps; each minus VWAP, paired by day:"
    )
    every = list(range(len(seeds)))
    _paired(cost, "vwap", every)
    if args.set == "cadence":
        print(f"each minus {args.model} at its defaults (every 30 s), paired by day:")
        _paired(cost, args.model, every)
        large = [i for i, s in enumerate(seeds) if expected_participation(s) >= 0.1]
        if len(large) >= 2:
            print(f"the {len(large)} days whose order is at least 10% of its window's volume:")
            _paired(cost, "vwap", large)
            print(f"  and minus {args.model}:")
            _paired(cost, args.model, large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
