"""Decision latency of the adaptive strategy: features, normalising, predictor and policy.

    python bench/bench_decision.py [SCENARIO.json] [--model policy-v2] [--repeat 5]

Runs one episode of the scenario (default: the shared midcap-500k-buy, a full day of
30-second decisions) with the adaptive strategy and records the inputs of every real
decision (the order context, the engine's view, the schedule's target). It then replays
those decisions `--repeat` times, each time through a fresh `FeatureState`, and times each
one with perf_counter_ns, at batch 1, one thread:

- decision: features update + normalise + predictor + observation + policy + decode
  (what `Adaptive.observe` and the policy call do; routing the children is not counted);
- policy alone (the ONNX policy through onnxruntime), predictor alone (the ONNX predictor).

Prints p50, p99 and max in microseconds, with the machine. Target: p99 < 200 µs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from execution.algos.adaptive import (  # noqa: E402
    ModelUnavailable,
    decode,
    load_policy,
    load_policy_predictor,
    observation,
)
from execution.cli_args import exit_code, whole  # noqa: E402
from execution.features import FeatureState, normalise  # noqa: E402
from execution.sim.episode import ORDER_ID, run_episode  # noqa: E402
from execution.sim.scenario import ScenarioError, load_scenario  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "scenarios" / "midcap-500k-buy.json"
FALLBACK = ROOT / "execution" / "scenarios" / "demo-midcap-buy.json"
TARGET_P99_US = 200.0


class Recorder:
    """Stands in for the strategy's FeatureState: records each update's inputs."""

    def __init__(self, inner: FeatureState, calls: list[tuple[Any, Any, float | None]]) -> None:
        self.inner = inner
        self.calls = calls

    def update(self, ctx: Any, view: Any, fills: Any = None, *, target_fraction: Any = None) -> Any:
        self.calls.append((ctx, view, target_fraction))
        return self.inner.update(ctx, view, fills, target_fraction=target_fraction)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stats(ns: list[int]) -> str:
    us = np.asarray(ns, dtype=np.float64) / 1e3
    return (
        f"p50 {np.percentile(us, 50):7.1f}  p99 {np.percentile(us, 99):7.1f}  "
        f"max {us.max():8.1f} µs  (n={len(us)})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("scenario", nargs="?", type=Path)
    ap.add_argument("--model", default="policy-v2", help="policy (default: %(default)s)")
    ap.add_argument("--repeat", type=whole(1, 1_000_000), default=5)
    args = ap.parse_args()
    path = args.scenario or (DEFAULT if DEFAULT.exists() else FALLBACK)
    sc = load_scenario(path)

    calls: list[tuple[Any, Any, float | None]] = []

    def setup(engine: Any) -> None:
        strategy = engine.orders[ORDER_ID].strategy
        strategy.features = Recorder(strategy.features, calls)

    result = run_episode(sc, "adaptive", sc.seed, {"model": args.model}, setup=setup)
    loaded = load_policy(args.model)
    predictor = load_policy_predictor(loaded) if loaded.metadata.get("predictor") else None
    # What trades this order: a gated model's expert for the instrument, and its range.
    first_ctx = calls[0][0]
    policy, training_range, expert = loaded.for_order(first_ctx)
    urgency = 0.0
    margin = 0.5  # the strategy's default range_margin

    decision_ns: list[int] = []
    policy_ns: list[int] = []
    predictor_ns: list[int] = []
    features_ns: list[int] = []
    clock = time.perf_counter_ns
    for rep in range(args.repeat + 1):  # the first pass warms caches and is not counted
        state = FeatureState()
        for c, view, tf in calls:
            t0 = clock()
            raw = state.update(c, view, target_fraction=tf)
            norm = normalise(raw, training_range, margin=margin)
            t1 = clock()
            pred = predictor(norm.values) if predictor is not None else None
            t2 = clock()
            obs = observation(c, norm.values, urgency, pred)
            t3 = clock()
            decode(policy(obs))
            t4 = clock()
            if rep:
                decision_ns.append(t4 - t0)
                features_ns.append(t1 - t0)
                predictor_ns.append(t2 - t1)
                policy_ns.append(t4 - t3)

    ort = __import__("onnxruntime")
    print(f"machine      {cpu_name()}, {os.cpu_count()} cores, {platform.system()}")
    print(
        f"software     Python {platform.python_version()}, numpy {np.__version__}, "
        f"onnxruntime {ort.__version__} (1 thread, CPU provider)"
    )
    print(
        f"episode      {sc.name}, seed {sc.seed}, adaptive {args.model}"
        f"{f' (expert {expert})' if expert else ''}"
        f"{' + ' + loaded.metadata['predictor'] if predictor is not None else ''}: "
        f"{len(calls)} decisions, fallback: {result.fallback or 'none'}"
    )
    print(f"replayed     {args.repeat} times (after one warm-up pass), batch 1")
    print(f"decision     {stats(decision_ns)}")
    print(f"  features   {stats(features_ns)}  (update + normalise)")
    print(f"  predictor  {stats(predictor_ns)}")
    print(f"  policy     {stats(policy_ns)}  (+ decode)")
    p99 = float(np.percentile(np.asarray(decision_ns) / 1e3, 99))
    verdict = "met" if p99 < TARGET_P99_US else "NOT met"
    print(f"target       p99 < {TARGET_P99_US:.0f} µs: {verdict} ({p99:.1f} µs)")
    return 0


if __name__ == "__main__":
    sys.exit(exit_code(main, ScenarioError, ModelUnavailable))
