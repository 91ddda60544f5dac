"""Backtest execution strategies on scenario files and compare them episode by episode.

    python -m execution.backtest SCENARIO.json [SCENARIO.json ...] \\
        --strategies twap,vwap,pov,is --episodes 200 [--seed S] [--jobs J] \\
        [--param is.risk_aversion=1e-6 ...] [--json results.json] [--decision-log DIR]

Episode k of a scenario uses seed S + k (S defaults to the scenario's own seed), and every
strategy sees the same seeds, so strategies are compared on the same simulated days: the
"vs TWAP" column is the mean of per-episode differences against TWAP. TWAP is always run
as that baseline; when it was not asked for, its row is marked and it is left out of the
JSON. The "fallbacks" column counts the episodes whose strategy failed and was replaced
by TWAP, and a note under the table gives their reasons. With --decision-log DIR, every
decision of the adaptive episodes is written to Parquet files under DIR
(execution/learning/decision_log.py). docs/BACKTEST.md describes the table and the JSON.

Exit status: 0 done, 2 bad arguments / scenario / parameter (nothing is run), 1 the JSON
file or the decision log could not be written, 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from execution.algos.adaptive import (
    SMALL_ORDER_LOTS,
    ModelUnavailable,
    load_policy,
    load_policy_predictor,
    policy_checked,
    resolve_model,
    too_small_for_the_model,
)
from execution.algos.base import quoted_spread_bps
from execution.algos.params import ParamError, validate_params
from execution.algos.registry import strategy_class, strategy_names
from execution.backtest_stats import (
    Z_95,
    mean,
    mean_defined,
    paired_difference,
    standard_error,
)
from execution.cli_args import OneLineParser, output_file, output_folder, whole
from execution.engine.engine import ExecutionEngine
from execution.learning.bands import UNREADABLE_BAND, card_spread_band
from execution.learning.decision_log import DecisionRecorder, EpisodeInfo, EpisodeLog
from execution.learning.model_files import sha256
from execution.sim.calibration import Knobs, calibrate
from execution.sim.episode import ORDER_ID, EpisodeResult, run_episode
from execution.sim.market import Market
from execution.sim.scenario import Scenario, ScenarioError, load_scenario
from tca.summary import t_quantile_975

BASELINE = "twap"
DEFAULT_STRATEGIES = "twap,vwap,pov,is"
DEFAULT_EPISODES = 200
EXIT_OK, EXIT_WRITE_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SESSION_OPEN_MINUTE = 9 * 60 + 30


class UsageError(Exception):
    """A problem with the command line or its inputs, reported as one line, exit status 2."""


# ---------------------------------------------------------------- episodes (worker side)


@functools.lru_cache(maxsize=32)
def _scenario(path: str) -> Scenario:
    return load_scenario(path)


def run_one(
    scenario_file: str,
    strategy: str,
    seed: int,
    params: Mapping[str, Any],
    decision_log: str | None = None,
    log_tag: str = "",
) -> EpisodeResult:
    """One episode. Module-level and fed only picklable arguments, so spawn workers can run it.

    Every process, the parent included when --jobs is 1, re-reads the scenario from its
    file: a Scenario holds a mappingproxy and cannot be pickled, and one code path for every
    --jobs keeps results identical whatever the number of processes. With `decision_log`
    (a directory), an adaptive episode's decisions are written there as it ends, under an
    episode id that `log_tag` (the run and the file's place in it) makes unique.
    """
    scenario = _scenario(scenario_file)
    if decision_log is None or strategy != "adaptive":
        return run_episode(scenario, strategy, seed, params)
    episodes: list[EpisodeLog] = []

    def attach(engine: ExecutionEngine) -> None:
        recorder = DecisionRecorder(engine, on_episode=episodes.append)
        info = EpisodeInfo(
            # The run and the file in it too: two files sharing a scenario name, or two
            # runs into one folder, were one episode to the reader and to the retrain,
            # which dropped an order and counted rows twice (a trial).
            episode_id=f"{scenario.name}:{seed}" + (f":{log_tag}" if log_tag else ""),
            source="backtest",
            instrument=scenario.instrument.symbol,
            scenario=scenario.name,
            seed=seed,
        )
        recorder.track(ORDER_ID, info)

    result = run_episode(scenario, strategy, seed, params, setup=attach)
    for episode in episodes:  # written here, so that a failed write is an error (OSError)
        episode.write(decision_log)
    return result


@dataclass(frozen=True, slots=True)
class _Job:
    index: int  # position in the flat job list, so unordered completions can be put back
    scenario_file: str
    strategy: str
    seed: int
    params: dict[str, Any]
    decision_log: str | None = None
    log_tag: str = ""  # the run and the scenario file's place in it, for the decision log


def _parquet_count(folder: Path | None) -> int:
    return 0 if folder is None else sum(1 for _ in folder.rglob("*.parquet"))


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; only the parent should handle it, so the
    # user sees one "interrupted" line rather than a traceback from every worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_job(job: _Job) -> tuple[int, EpisodeResult]:
    return job.index, run_one(
        job.scenario_file, job.strategy, job.seed, job.params, job.decision_log, job.log_tag
    )


# ---------------------------------------------------------------- the plan


@dataclass
class StrategyRun:
    strategy: str
    params: dict[str, Any]
    requested: bool  # False: TWAP run only as the baseline of the paired difference
    results: list[EpisodeResult | None]

    @property
    def done(self) -> bool:
        return all(r is not None for r in self.results)

    def finished(self) -> list[EpisodeResult]:
        out = [r for r in self.results if r is not None]
        if len(out) != len(self.results):
            raise RuntimeError(f"{self.strategy}: episodes still running")
        return out


@dataclass
class ScenarioRun:
    file: str  # as given on the command line
    scenario: Scenario
    seed: int  # base seed S: episode k uses S + k
    episodes: int
    runs: list[StrategyRun] = field(default_factory=list)
    decision_log: str | None = None  # directory for the adaptive episodes' decisions

    @property
    def done(self) -> bool:
        return all(r.done for r in self.runs)

    @property
    def baseline(self) -> StrategyRun:
        return next(r for r in self.runs if r.strategy == BASELINE)


def _parse_strategies(text: str) -> list[str]:
    names = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not names:
        raise UsageError("--strategies: give at least one strategy, e.g. twap,vwap")
    for name in names:
        try:
            strategy_class(name)
        except ParamError as exc:
            raise UsageError(f"--strategies: {exc.message}") from None
    return names


def _parse_params(items: Sequence[str], run: Sequence[str]) -> dict[str, dict[str, Any]]:
    """--param STRATEGY.NAME=VALUE items -> validated params (defaults filled in) per strategy."""
    raw: dict[str, dict[str, str]] = {name: {} for name in run}
    for item in items:
        target, eq, value = item.partition("=")
        strategy, dot, name = target.partition(".")
        if not (eq and dot and strategy and name):
            raise UsageError(
                f"--param {item!r}: expected STRATEGY.NAME=VALUE, e.g. is.risk_aversion=1e-6"
            )
        try:
            strategy_class(strategy)
        except ParamError as exc:
            raise UsageError(f"--param {target}: {exc.message}") from None
        if strategy not in raw:
            raise UsageError(
                f"--param {target}: strategy {strategy!r} is not being run (see --strategies)"
            )
        raw[strategy][name] = value
    validated: dict[str, dict[str, Any]] = {}
    for strategy, values in raw.items():
        try:
            validated[strategy] = validate_params(strategy_class(strategy).schema(), values)
        except ParamError as exc:
            raise UsageError(f"--param {strategy}.{exc.key}: {exc.message}") from None
    return validated


def _load_scenarios(files: Sequence[str]) -> list[tuple[str, Scenario]]:
    loaded = []
    for path in files:
        try:
            scenario = load_scenario(path)
            calibrate(scenario)  # this simulator's knobs and day size, checked before any run
            for key in Knobs.unknown_knobs(scenario.simulator):
                print(
                    f"note: {path}: simulator.{key} is not a knob of this simulator; ignored",
                    file=sys.stderr,
                )
            for key in scenario.foreign:
                print(
                    f"note: {path}: {key} is not this simulator's (an object of its knobs); "
                    "ignored",
                    file=sys.stderr,
                )
            for key in scenario.ignored:
                print(
                    f"note: {path}: {key} is not a key of the scenario format; ignored",
                    file=sys.stderr,
                )
            spread = scenario.instrument.spread_ticks
            if spread != int(spread):
                # The book's prices are whole ticks: its usual width is a whole number of
                # them (a review found 1.5 quoting as 2 and 2.5 as 2, unsaid).
                print(
                    f"note: {path}: instrument.spread_ticks {spread:g} is simulated as a book "
                    f"{Market.book_spread(spread)} ticks wide at its usual width (prices are "
                    "whole ticks)",
                    file=sys.stderr,
                )
            loaded.append((path, scenario))
        except ScenarioError as exc:
            # File-level errors are keyed by the path itself; do not print it twice.
            detail = exc.message if exc.key == path else str(exc)
            raise UsageError(f"{path}: {detail}") from None
    return loaded


def _plan(args: argparse.Namespace) -> list[ScenarioRun]:
    requested = _parse_strategies(args.strategies)
    to_run = requested if BASELINE in requested else [BASELINE, *requested]
    items = list(args.param or [])
    if args.model is not None:
        if "adaptive" not in to_run:
            raise UsageError("--model: the adaptive strategy is not being run (see --strategies)")
        if not args.model.strip():
            raise UsageError("--model: name a model version (policy-v14) or an ONNX file")
        if any(i.partition("=")[0].strip() == "adaptive.model" for i in items):
            # One of the two was silently dropped (a trial's JSON named the other model).
            raise UsageError(
                "--model and --param adaptive.model both name a model: give one of them"
            )
        items.append(f"adaptive.model={args.model}")
    params = _parse_params(items, to_run)
    model = params.get("adaptive", {}).get("model") if "adaptive" in to_run else None
    if model:
        try:
            # A model named on the command line must be usable: an order would fall back
            # to TWAP on it, and the run would measure TWAP under the model's name.
            policy = policy_checked(load_policy(str(model)))
            if policy.metadata.get("predictor"):
                load_policy_predictor(policy)  # missing or another file: refused here too
        except ModelUnavailable as exc:
            option = "--model" if args.model is not None else "--param adaptive.model"
            raise UsageError(f"{option} {model}: {exc}") from None
    decision_log = None
    if args.decision_log is not None:
        if "adaptive" not in to_run:
            raise UsageError(
                "--decision-log: the adaptive strategy is not being run (see --strategies)"
            )
        problem = output_folder("--decision-log", args.decision_log)
        if problem:
            raise UsageError(problem)
        target = Path(args.decision_log)
        decision_log = str(target.resolve())
    if args.json is not None:
        inputs = [Path(f) for f in args.scenarios]
        if model:
            inputs.append(resolve_model(str(model)))
        problem = output_file("--json", Path(args.json), inputs=inputs)
        if problem:
            raise UsageError(problem)
    band = spread_band(str(model)) if model else None
    plans = []
    for path, scenario in _load_scenarios(args.scenarios):
        if band is not None:
            inst = scenario.instrument
            bps = quoted_spread_bps(inst.spread_ticks, inst.tick_size, inst.reference_price)
            if not band[0] <= bps < band[1]:
                # Run, as asked, but not in silence: the product refuses this order.
                print(
                    f"note: {path}: {model} was trained only for instruments quoting "
                    f"{band[0]:g} to {band[1]:g} bps of spread and this one quotes "
                    f"{bps:.2f} bps; an order would refuse it (an expert outside its band)",
                    file=sys.stderr,
                )
        adv = scenario.instrument.adv_shares
        if scenario.order.quantity > adv:
            # Run, as asked, but said: an order of 50,000,000% of ADV filled 0.0% with no
            # word of why (a trial).
            print(
                f"note: {path}: the order, {scenario.order.quantity:,} shares, is "
                f"{scenario.order.quantity / adv:,.0%} of the instrument's ADV ({adv:,.0f}): "
                "more than the market trades in a day, so expect a low fill rate",
                file=sys.stderr,
            )
        seed = scenario.seed if args.seed is None else args.seed
        last = seed + args.episodes - 1
        if decision_log is not None and last > DECISION_LOG_MAX_SEED:
            # The log's seed column is a 64-bit integer: refused before any episode runs
            # (it failed with a traceback after all of them had, a review).
            where = "--seed" if args.seed is not None else f"{path}: seed"
            raise UsageError(
                f"{where}: episode seeds run to {last}, past the decision log's largest "
                f"seed ({DECISION_LOG_MAX_SEED}); use a smaller seed with --decision-log"
            )
        plan = ScenarioRun(path, scenario, seed, args.episodes, decision_log=decision_log)
        for name in to_run:
            plan.runs.append(
                StrategyRun(name, params[name], name in requested, [None] * args.episodes)
            )
        plans.append(plan)
    return plans


# ---------------------------------------------------------------- running


class Progress:
    """Episodes done / total and elapsed time on stderr.

    A redrawn bar on a terminal; in a log (not a TTY), one line per finished
    scenario/strategy so the log stays readable.
    """

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO, clock: Callable[[], float]) -> None:
        self.total = total
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.tty = stream.isatty()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def episode(self) -> None:
        self.done += 1
        if self.tty:
            self.draw()

    def group(self, scenario: str, strategy: str, episodes: int, seconds: float) -> None:
        if not self.tty:
            print(
                f"done {scenario} {strategy}: {_count(episodes, 'episode')}, {seconds:.1f} s "
                f"({self.done}/{self.total} episodes, {self.elapsed():.1f} s elapsed)",
                file=self.stream,
                flush=True,
            )

    def draw(self) -> None:
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        elapsed = self.elapsed()
        eta = ""
        if 0 < self.done < self.total:
            eta = f", ~{elapsed / self.done * (self.total - self.done):.0f} s left"
        self.stream.write(
            f"\r[{bar}] {self.done}/{self.total} episodes, {elapsed:.1f} s{eta}\x1b[K"
        )
        self.stream.flush()

    def clear(self) -> None:
        """Wipe the bar so a table printed to the same terminal does not land on it."""
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()


def _jobs(plans: Sequence[ScenarioRun]) -> list[tuple[_Job, StrategyRun, int]]:
    out: list[tuple[_Job, StrategyRun, int]] = []
    run_id = uuid.uuid4().hex[:8]
    for f, plan in enumerate(plans):
        path = os.path.abspath(plan.file)
        for run in plan.runs:
            for k in range(plan.episodes):
                job = _Job(
                    len(out),
                    path,
                    run.strategy,
                    plan.seed + k,
                    run.params,
                    plan.decision_log,
                    f"{run_id}.{f + 1}",
                )
                out.append((job, run, k))
    return out


def _completions(jobs: Sequence[_Job], workers: int) -> Iterator[tuple[int, EpisodeResult]]:
    if workers <= 1:
        for job in jobs:
            yield _run_job(job)
        return
    # "spawn" everywhere: fork is unsafe with threads and unavailable on some platforms, and
    # one start method on every OS means one behaviour to test.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes=min(workers, len(jobs)), initializer=_ignore_sigint) as pool:
        yield from pool.imap_unordered(_run_job, jobs, chunksize=1)


def execute(
    plans: Sequence[ScenarioRun],
    workers: int,
    progress: Progress,
    on_scenario_done: Callable[[ScenarioRun], None],
) -> None:
    """Run every episode, filling the plans in place; report each scenario once it is complete."""
    jobs = _jobs(plans)
    slot = {job.index: (run, k) for job, run, k in jobs}
    owner = {id(run): plan for plan in plans for run in plan.runs}
    reported = 0
    for index, result in _completions([job for job, _, _ in jobs], workers):
        run, k = slot[index]
        run.results[k] = result
        progress.episode()
        if run.done:
            plan = owner[id(run)]
            seconds = math.fsum(r.elapsed_s for r in run.finished())
            progress.group(plan.scenario.name, run.strategy, plan.episodes, seconds)
        # Tables come out in command-line order even when a later scenario finishes first.
        while reported < len(plans) and plans[reported].done:
            on_scenario_done(plans[reported])
            reported += 1


# ---------------------------------------------------------------- summaries


def summarise(plan: ScenarioRun, run: StrategyRun) -> dict[str, Any]:
    """The JSON object for one (scenario, strategy); docs/BACKTEST.md lists the keys."""
    results = run.finished()
    shortfall = [r.shortfall_bps for r in results]
    baseline = [r.shortfall_bps for r in plan.baseline.finished()]
    return {
        "scenario": plan.scenario.name,
        "scenario_file": plan.file,
        "strategy": run.strategy,
        "params": dict(run.params),
        # The exact file that traded: a name or a path alone does not say which bytes.
        **(
            {"model_sha256": _model_sha256(str(resolve_model(str(run.params["model"]))))}
            if run.strategy == "adaptive" and run.params.get("model")
            else {}
        ),
        "episodes": len(results),
        "seed": plan.seed,
        "shortfall_bps": shortfall,
        "mean_shortfall_bps": mean(shortfall),
        "stderr_bps": standard_error(shortfall),
        "paired_vs_twap_bps": paired_difference(shortfall, baseline).to_dict(),
        "fill_rate": mean([r.fill_rate for r in results]),
        "participation": mean([r.participation for r in results]),
        "vwap_slippage_bps": mean_defined([r.vwap_slippage_bps for r in results]),
        "elapsed_s": math.fsum(r.elapsed_s for r in results),
        "fallbacks": sum(1 for r in results if r.fallback),
        "fallback_reasons": fallback_reasons(results),
        **(
            {"by_curve_alone": by_curve_alone(plan.scenario.order.quantity, run.params)}
            if run.strategy == "adaptive"
            else {}
        ),
    }


def by_curve_alone(quantity: int, params: Mapping[str, Any]) -> bool:
    """Whether an adaptive order this size is worked along its curve without the model
    (Adaptive.by_curve_alone): its figures are then not the model's (a note: a 100-share
    order showed 0.00 bps under the model's name)."""
    return too_small_for_the_model(quantity, int(params["min_child_qty"]))


def curve_alone_note(plan: ScenarioRun, run: StrategyRun) -> str | None:
    qty = plan.scenario.order.quantity
    if run.strategy != "adaptive" or not by_curve_alone(qty, run.params):
        return None
    lot = int(run.params["min_child_qty"])
    return (
        f"{run.strategy}: {qty:,} sh is under {SMALL_ORDER_LOTS} lots of {lot:,}, so it was "
        "worked along its curve at the midpoint, without the model: these are not the "
        "model's figures"
    )


def spread_band(model: str) -> tuple[float, float] | None:
    """The band of quoted spread, [lo, hi) bps, that a single expert was trained for (its
    model card's `config.spread_band`); None for a model of every spread, a gated one, or
    one without a readable card."""
    try:
        card = json.loads(resolve_model(model).with_suffix(".card.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    band = card_spread_band(card)
    return None if band == UNREADABLE_BAND else band


@functools.cache
def _model_sha256(path: str) -> str:
    return sha256(Path(path))


def fallback_reasons(results: Sequence[EpisodeResult]) -> dict[str, int]:
    """Why episodes fell back (the engine's reason, "Exception: message"), most frequent first."""
    counts: dict[str, int] = {}
    for r in results:
        if r.fallback:
            counts[r.fallback] = counts.get(r.fallback, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def fallback_note(run: StrategyRun) -> str | None:
    """One line under the table: how many episodes fell back and why, by exception type."""
    results = run.finished()
    kinds: dict[str, int] = {}
    for reason, n in fallback_reasons(results).items():
        kind = reason.partition(":")[0].strip() or "unknown"
        kinds[kind] = kinds.get(kind, 0) + n
    if not kinds:
        return None
    fell = sum(kinds.values())
    why = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{run.strategy} fell back to {BASELINE} in {fell} of {len(results)} episodes: {why}"


# The decision log's seed column is a signed 64-bit integer (Parquet int64).
DECISION_LOG_MAX_SEED = 2**63 - 1
# Below this share of the order filled, a strategy's shortfall is not comparable with a
# strategy's that filled it (the footnote under the table says why).
FILLED_ENOUGH = 0.999
PART_FILLED = "\u2020"  # a dagger after the figure


def part_filled_note(run: StrategyRun, fill_rate: float | None) -> str | None:
    """Why a strategy that left much of its order unfilled does not look as cheap as its
    figures say: the scenario format charges the unfilled rest at the window's end mid
    only (Perold), so that rest pays no spread and no impact; over many days the drift
    it is charged averages about zero, and trading little reads as cheap (a review: a 2%
    POV that filled 4.8% of its order was "25.6 bps cheaper than TWAP", CI [-34.0,
    -17.2])."""
    if fill_rate is None or fill_rate >= FILLED_ENOUGH:
        return None
    return (
        f"{PART_FILLED} {run.strategy} filled {fill_rate:.1%} of the order: the rest is charged "
        "only the move to the window's end mid (FORMAT.md), with no cost of trading it, so its "
        "shortfall and its difference from TWAP are not comparable with those of a strategy "
        "that filled the order"
    )


def _clock(minute: float) -> str:
    seconds = round((SESSION_OPEN_MINUTE + minute) * 60)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def scenario_header(plan: ScenarioRun) -> str:
    sc, o = plan.scenario, plan.scenario.order
    window = (
        f"{_clock(o.start_minute)}-{_clock(o.end_minute)} ({o.end_minute - o.start_minute:g} min)"
    )
    adv_pct = o.quantity / sc.instrument.adv_shares * 100
    last = plan.seed + plan.episodes - 1
    seeds = f"seed {plan.seed}" if plan.episodes == 1 else f"seeds {plan.seed}-{last}"
    return (
        f"{sc.name}: {sc.instrument.symbol} {o.side} {o.quantity:,} sh, {window}, "
        f"{adv_pct:.1f}% ADV, {_count(plan.episodes, 'episode')}, {seeds}"
    )


_COLUMNS = (
    "strategy",
    "shortfall (bps)",
    "s.e. (bps)",
    "vs TWAP (bps)",
    "95% CI (bps)",
    "fill (%)",
    "particip. (%)",
    "vs VWAP (bps)",
    "fallbacks",
    "time (s)",
)
_NONE = "-"


def _num(value: float | None, decimals: int, scale: float = 1.0) -> str:
    return _NONE if value is None else f"{value * scale:.{decimals}f}"


def format_table(plan: ScenarioRun) -> str:
    """The scenario's header line and one row per strategy, numbers right-aligned."""
    rows: list[tuple[str, ...]] = []
    part_filled: list[str] = []
    for run in plan.runs:
        s = summarise(plan, run)
        note = part_filled_note(run, s["fill_rate"])
        mark = PART_FILLED if note is not None else ""
        if note is not None:
            part_filled.append(note)
        paired = s["paired_vs_twap_bps"]
        is_baseline = run.strategy == BASELINE
        ci = _NONE
        if not is_baseline and paired["ci95_low"] is not None:
            ci = f"[{paired['ci95_low']:.2f}, {paired['ci95_high']:.2f}]"
        rows.append(
            (
                run.strategy + ("" if run.requested else "*"),
                _num(s["mean_shortfall_bps"], 2) + mark,
                _num(s["stderr_bps"], 2),
                _NONE if is_baseline else _num(paired["mean"], 2) + mark,
                ci,
                _num(s["fill_rate"], 1, 100.0),
                _num(s["participation"], 1, 100.0),
                _num(s["vwap_slippage_bps"], 2),
                str(s["fallbacks"]),
                _num(s["elapsed_s"], 2),
            )
        )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(_COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    lines = [scenario_header(plan), line(_COLUMNS), *(line(r) for r in rows)]
    lines.extend(part_filled)
    lines.extend(note for run in plan.runs if (note := fallback_note(run)) is not None)
    lines.extend(note for run in plan.runs if (note := curve_alone_note(plan, run)) is not None)
    if not all(r.requested for r in plan.runs):
        lines.append(f"* {BASELINE} was not requested: run only as the baseline of 'vs TWAP'.")
    return "\n".join(lines)


def results_json(plans: Sequence[ScenarioRun]) -> list[dict[str, Any]]:
    """One object per requested (scenario, strategy), in command-line order."""
    return [summarise(plan, run) for plan in plans for run in plan.runs if run.requested]


# ---------------------------------------------------------------- command line


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m execution.backtest",
        description="Backtest execution strategies on scenario files (see docs/BACKTEST.md).",
    )
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO.json", help="scenario files")
    parser.add_argument(
        "--strategies",
        default=DEFAULT_STRATEGIES,
        help="comma-separated strategies to run (default: %(default)s; known: "
        + ",".join(strategy_names())
        + "); twap is always run as the baseline of the paired comparison",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="the adaptive strategy's policy (an ONNX file or a shipped version name); "
        "the same as --param adaptive.model=PATH",
    )
    parser.add_argument(
        "--episodes",
        type=whole(1, 100_000),
        default=DEFAULT_EPISODES,
        help="episodes per scenario and strategy (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="base seed S: episode k uses S + k (default: each scenario's own seed)",
    )
    parser.add_argument(
        "--jobs",
        type=whole(1, 256),
        default=1,
        help="worker processes; results do not depend on it (default: %(default)s)",
    )
    parser.add_argument(
        "--param",
        action="append",
        metavar="STRATEGY.NAME=VALUE",
        help="set a strategy parameter, e.g. is.risk_aversion=1e-6 (repeatable)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write per-episode results to this JSON file"
    )
    parser.add_argument(
        "--decision-log",
        metavar="DIR",
        help="write every decision of the adaptive episodes (features, action, outcome) "
        "to Parquet files under DIR (created if needed; see docs/ADAPTIVE.md)",
    )
    return parser


# Below this many episodes the normal interval is visibly narrower than Student's t.
FEW_EPISODES = 30


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits with status 2 on its own usage errors
    _scenario.cache_clear()  # a scenario file may have changed since an earlier in-process call
    try:
        plans = _plan(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    log_dir = Path(args.decision_log) if args.decision_log is not None else None
    logged_before = _parquet_count(log_dir)
    total = sum(len(plan.runs) * plan.episodes for plan in plans)
    progress = Progress(total, sys.stderr, time.monotonic)
    first = True

    def print_table(plan: ScenarioRun) -> None:
        nonlocal first
        progress.clear()
        print(("" if first else "\n") + format_table(plan), flush=True)
        first = False
        if progress.done < progress.total and progress.tty:
            progress.draw()

    try:
        execute(plans, args.jobs, progress, print_table)
    except KeyboardInterrupt:
        progress.clear()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # only the decision log writes files while episodes run
        if args.decision_log is None:
            raise
        progress.clear()
        print(f"error: --decision-log {args.decision_log}: {exc}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    progress.finish()
    if log_dir is not None and _parquet_count(log_dir) == logged_before:
        # An empty folder and no word of it (a trial's model failed at its first decision).
        print(
            f"note: --decision-log {args.decision_log}: no decision was logged; every adaptive "
            "episode fell back before its first decision (see the fallbacks above)",
            file=sys.stderr,
        )
    # Only where an interval was printed: a paired difference (a strategy besides TWAP),
    # from at least two episodes.
    compared = [p.episodes for p in plans if any(r.strategy != "twap" for r in p.runs)]
    few = min(compared, default=0)
    if 1 < few < FEW_EPISODES:
        wider = t_quantile_975(few - 1) / Z_95
        print(
            f"note: {few} episodes: the 95% intervals above use the "
            f"normal quantile ({Z_95}), fair from about {FEW_EPISODES} episodes; with {few}, "
            f"Student's t gives intervals {wider:.1f} times as wide. Run {FEW_EPISODES} or "
            "more before reading them as significant.",
            file=sys.stderr,
        )

    if args.json is not None:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(results_json(plans), fh, indent=1)
                fh.write("\n")
        except OSError as exc:
            print(f"error: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_WRITE_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
