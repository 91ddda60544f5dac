"""Evaluate policy models against each other and the baselines on the same days.

Every strategy and model runs the same held-out generated scenarios with the same seeds,
so each comparison is paired by day (docs/BACKTEST.md): the market noise they share
cancels, and the interval is on the difference. Used by the retrain command to put a
candidate beside the approved version it would replace.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from execution.backtest_stats import paired_difference
from execution.cli_args import number, output_file, whole
from execution.learning.scenarios import scenario as generated_scenario
from execution.sim.episode import run_episode
from execution.sim.scenario import Scenario

BASELINES = ("twap", "vwap", "pov", "is")
BASELINES_KNOWN = BASELINES  # what --baselines may name


@dataclass(frozen=True)
class Arm:
    """One thing under evaluation: a baseline strategy, or the adaptive one with a model."""

    label: str
    strategy: str
    params: Mapping[str, Any]


def arms(
    models: Mapping[str, Path], baselines: Sequence[str] = BASELINES, schedule: str = "volume"
) -> list[Arm]:
    out = [Arm(b, b, {}) for b in baselines]
    out += [
        Arm(label, "adaptive", {"model": str(path), "schedule": schedule})
        for label, path in models.items()
    ]
    return out


def _episode(
    task: tuple[Arm, int, Callable[[int], Scenario], float],
) -> tuple[float, str, float]:
    arm, seed, scenario_for, urgency = task
    params = dict(arm.params)
    if arm.strategy == "adaptive":
        params.setdefault("urgency", urgency)
    r = run_episode(scenario_for(seed), arm.strategy, seed, params)
    return r.shortfall_bps, r.fallback, r.fill_rate


def _run(
    tasks: Sequence[tuple[Arm, int, Callable[[int], Scenario], float]], jobs: int, chunksize: int
) -> list[tuple[float, str, float]]:
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            return pool.map(_episode, tasks, chunksize=chunksize)
    return [_episode(t) for t in tasks]


FILLED = 0.999  # a baseline's mean fill rate that counts as finishing its orders


def compare(
    models: Mapping[str, Path],
    seeds: Sequence[int],
    *,
    candidate: str,
    baselines: Sequence[str] = BASELINES,
    scenario_for: Callable[[int], Scenario] = generated_scenario,
    urgency: float = 0.0,
    jobs: int = 1,
    schedule: str = "volume",
) -> dict[str, Any]:
    """Mean shortfall of every arm, and the candidate minus each other arm, paired by day
    (negative: the candidate costs less). JSON-able, for the registry's metrics."""
    all_arms = arms(models, baselines, schedule)
    tasks = [(a, s, scenario_for, urgency) for a in all_arms for s in seeds]
    results = _run(tasks, jobs, chunksize=4)
    n = len(seeds)
    by_arm = {a.label: results[i * n : (i + 1) * n] for i, a in enumerate(all_arms)}
    shortfall = {label: [r[0] for r in rs] for label, rs in by_arm.items()}
    if candidate not in shortfall:
        raise ValueError(f"candidate {candidate!r} is not among the models")
    out: dict[str, Any] = {
        "episodes": n,
        "seeds": [int(seeds[0]), int(seeds[-1])] if n else [],
        "urgency": urgency,
        "schedule": schedule,
        "mean_shortfall_bps": {k: float(np.mean(v)) for k, v in shortfall.items()},
        "fallbacks": {
            k: sum(1 for r in rs if r[1]) for k, rs in by_arm.items() if k not in baselines
        },
        "candidate": candidate,
        "candidate_minus": {
            k: paired_difference(shortfall[candidate], v).to_dict()
            for k, v in shortfall.items()
            if k != candidate
        },
    }
    out["fill_rate"] = {k: float(np.mean([r[2] for r in rs])) for k, rs in by_arm.items()}
    # The cheapest baseline that finished its orders: one that leaves shares unfilled
    # (POV at its rate) pays less only for doing less, and is no yardstick.
    filling = [b for b in baselines if out["fill_rate"][b] >= FILLED]
    best = min(filling or baselines, key=lambda b: out["mean_shortfall_bps"][b])
    out["best_baseline"] = best
    return out


# -- the command: models against TWAP on held-out generated days, by spread -------------


def _ci(d: np.ndarray) -> str:
    if len(d) < 2:
        return "n/a"
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(len(d))
    return f"{d.mean():+.2f} [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] (n={len(d)})"


def main(argv: list[str] | None = None) -> int:
    """Each model minus TWAP, paired by day, on held-out generated days: overall and by the
    instrument's quoted spread (where the learned policies differ most)."""
    import argparse

    from execution.algos.adaptive import ModelUnavailable, load_policy, resolve_model
    from execution.learning.bands import (
        NO_BAND,
        PARTICIPATION,
        SPREAD,
        parse_band,
        validation_band_seeds,
    )
    from execution.learning.scenarios import (
        VALIDATION_SEEDS,
        expected_participation,
        quoted_spread,
        validation_seeds,
    )

    parser = argparse.ArgumentParser(prog="python -m execution.learning.evaluate")
    parser.add_argument("--models", required=True, help="comma-separated versions or files")
    parser.add_argument("--days", type=whole(2, len(VALIDATION_SEEDS)), default=200)
    parser.add_argument(
        "--offset",
        type=whole(0, len(VALIDATION_SEEDS) - 2),
        default=10_000,
        help="into the validation seeds",
    )
    parser.add_argument("--urgency", type=number(0.0, 1.0), default=0.0)
    parser.add_argument("--jobs", type=whole(1, 256), default=2)
    parser.add_argument("--json", type=Path, help="also write every day's shortfalls here")
    parser.add_argument(
        "--schedule",
        choices=("time", "volume"),
        default="time",
        help="the curve the models work around (the adaptive strategy's `schedule`)",
    )
    parser.add_argument("--baselines", default="twap", help="comma-separated, TWAP first")
    parser.add_argument(
        "--spread-band",
        default="",
        metavar="LO,HI",
        help="only the days whose instrument's quoted spread is in [LO, HI) bps (HI 0: no "
        "upper bound): --days of them, from --offset on",
    )
    parser.add_argument(
        "--participation-band",
        default="",
        metavar="LO,HI",
        help="only the days whose order's expected participation is in [LO, HI)",
    )
    args = parser.parse_args(argv)
    try:
        band = parse_band(args.spread_band, "--spread-band", SPREAD)
        participation = parse_band(args.participation_band, "--participation-band", PARTICIPATION)
    except ValueError as e:
        parser.error(str(e))
    models = [m for m in args.models.split(",") if m.strip()]
    if not models:
        parser.error("--models: name at least one model (a version such as policy-v9, or a file)")
    for m in models:
        try:
            load_policy(m)  # a model that cannot be used would be TWAP under its name
        except ModelUnavailable as e:
            parser.error(f"--models {m}: {e}")
    if args.offset + args.days > len(VALIDATION_SEEDS):
        parser.error(
            f"--offset {args.offset} --days {args.days}: past the last of "
            f"{len(VALIDATION_SEEDS):,} validation days"
        )
    if args.json:
        problem = output_file("--json", args.json, inputs=[resolve_model(m) for m in models])
        if problem:
            parser.error(problem)
    if band == NO_BAND and participation == NO_BAND:
        seeds = validation_seeds(args.days, offset=args.offset)
    else:
        try:
            seeds = validation_band_seeds(args.offset, args.days, band, participation)
        except ValueError as e:
            parser.error(f"--offset {args.offset} --days {args.days}: {e}")
    baselines = [b for b in args.baselines.split(",") if b]
    if not baselines or baselines[0] != "twap":
        parser.error("--baselines must start with twap: every model is compared with it")
    unknown = [b for b in baselines if b not in BASELINES_KNOWN]
    if unknown:
        parser.error(
            f"--baselines: unknown strategy {unknown[0][:40]!r}; the baselines are "
            f"{', '.join(BASELINES_KNOWN)}"
        )
    arms_ = arms({m: Path(m) for m in models}, baselines, args.schedule)
    first = len(baselines)  # the models' columns start here
    tasks = [(a, s, generated_scenario, args.urgency) for s in seeds for a in arms_]
    results = _run(tasks, args.jobs, chunksize=len(arms_))
    sf = np.array([r[0] for r in results]).reshape(len(seeds), len(arms_))
    fallbacks = np.array([bool(r[1]) for r in results]).reshape(len(seeds), len(arms_))
    spreads = [quoted_spread(s) for s in seeds]
    ticks = np.array([t for t, _ in spreads])
    bps = np.array([b for _, b in spreads])
    banded = (band, participation) != (NO_BAND, NO_BAND)
    where = f" in spread {band} bps and participation {participation}" if banded else ""
    print(
        f"validation days {seeds[0]}-{seeds[-1]} ({len(seeds)}{where}), "
        f"urgency {args.urgency:g}, schedule {args.schedule}; "
        "model minus TWAP in bps, paired by day, mean [95% CI]"
    )
    strata = [
        ("spread <= 2 ticks", ticks <= 2),
        ("spread >= 3 ticks", ticks >= 3),
        ("spread < 5 bps", bps < 5),
        ("spread >= 5 bps", bps >= 5),
    ]
    for j, m in enumerate(models, start=first):
        d = sf[:, j] - sf[:, 0]
        print(f"{m}: all {_ci(d)}; fell back on {int(fallbacks[:, j].sum())} days")
        for name, mask in strata:
            print(f"    {name:<18} {_ci(d[mask])}")
        for k, b in enumerate(baselines[1:], start=1):
            print(f"    minus {b:<12} {_ci(sf[:, j] - sf[:, k])}")
    for j, m in enumerate(models[1:], start=first + 1):
        d = sf[:, j] - sf[:, first]
        print(f"{m} minus {models[0]}: all {_ci(d)}")
        for name, mask in strata:
            print(f"    {name:<18} {_ci(d[mask])}")
    if args.json:
        doc = {
            "seeds": [int(s) for s in seeds],
            "urgency": args.urgency,
            "schedule": args.schedule,
            "spread_ticks": ticks.tolist(),
            "spread_bps": bps.tolist(),
            "expected_participation": [expected_participation(s) for s in seeds],
            "shortfall_bps": {a.label: sf[:, k].tolist() for k, a in enumerate(arms_)},
            "fallback": {a.label: fallbacks[:, k].tolist() for k, a in enumerate(arms_)},
        }
        args.json.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
