"""Wall time of one full-day TWAP episode on midcap-500k-buy, and events per second.

    python bench/bench_episode.py [--repeat 7] [SCENARIO.json]

Prints the median and best of several runs on one core (one process), the background
events processed per second, and the same day with no strategy, so the engine's share of
the cost shows as a ratio measured in the same run (these machines are noisy).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from execution.cli_args import exit_code, whole  # noqa: E402
from execution.sim.calibration import SESSION_SECONDS  # noqa: E402
from execution.sim.episode import run_episode  # noqa: E402
from execution.sim.market import Market  # noqa: E402
from execution.sim.scenario import ScenarioError, load_scenario  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "scenarios" / "midcap-500k-buy.json"
FALLBACK = ROOT / "execution" / "scenarios" / "demo-midcap-buy.json"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("scenario", nargs="?", type=Path)
    ap.add_argument("--repeat", type=whole(1, 1_000_000), default=7)
    args = ap.parse_args()
    path = args.scenario or (DEFAULT if DEFAULT.exists() else FALLBACK)
    sc = load_scenario(path)
    full_day = sc.with_order(start_minute=0.0, end_minute=390.0)

    run_episode(full_day, "twap", sc.seed)  # warm imports and caches
    episode, market_only, events = [], [], 0
    for k in range(args.repeat):
        r = run_episode(full_day, "twap", sc.seed + k)
        episode.append(r.elapsed_s)
        events = r.background_events
        t = time.perf_counter()
        Market(full_day, sc.seed + k).advance(SESSION_SECONDS)
        market_only.append(time.perf_counter() - t)

    med, best = statistics.median(episode), min(episode)
    print(f"scenario            {sc.name} (full day, TWAP, {full_day.order.quantity:,} shares)")
    print(
        f"machine             {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(f"episode wall time   median {med:.3f} s   best {best:.3f} s   ({args.repeat} runs)")
    print(f"market alone        median {statistics.median(market_only):.3f} s")
    print(f"engine+strategy     {med / statistics.median(market_only):.2f}x the market alone")
    print(f"background events   {events:,} per day, {events / med:,.0f} per second")
    print(f"target              0.5 s per full day: {'met' if med <= 0.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_code(main, ScenarioError))
