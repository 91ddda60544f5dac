"""The decision log: every decision of the adaptive strategy, live or backtested, with what
it saw, what it chose and what came of it, in Parquet files a retrain reads back.

    recorder = DecisionRecorder(engine, on_episode=lambda ep: ep.write(directory))
    recorder.track(order_id, EpisodeInfo(...))  # an adaptive order, before its first decision
    ...                                          # the engine runs; each decision is a row
    table = read_decisions(directory)            # every file under it, checked
    arrays = decision_arrays(table)              # numpy: features, observations, actions, rewards

`track` sets the strategy's `decision_log` hook (None by default: nothing is computed or
kept when the log is off) and switches its FeatureState to recording, so each row also
holds the feature inputs of its step and `replay` recomputes its features offline. Each
row's outcome (`reward_bps`) is the implementation shortfall incurred between this
decision and the next, as the training environment's reward; the episode's final
shortfall, fill rate, status and fallback are filled in on every row when the order ends.
An episode is handed to `on_episode` when its order reaches a final status (or when the
recorder is closed: then its outcome is unknown and left null). One file per episode,
under DIR/date=YYYY-MM-DD/model=VERSION/. docs/ADAPTIVE.md ("Decision log") has the schema.

Logging must never change or stop trading: the hook and the engine listener catch every
error, log a warning and stop logging that order. Pure: numpy and pyarrow, no Django.
pyarrow is imported only when a table is built or read.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from execution.algos.adaptive import (
    ACTION_DIM,
    EXTRA_INPUTS,
    MODES,
    OBS_DIM,
    Adaptive,
    Decision,
    OnnxPolicy,
    Vector,
)
from execution.algos.base import DecisionView
from execution.engine.engine import ExecutionEngine
from execution.engine.events import DomainEvent, ParentStatusChanged, ParentStrategyFallback
from execution.engine.orders import PARENT_TERMINAL
from execution.features import N_FEATURES, NAMES, FeatureState
from execution.features.state import RECORD_FORMAT, ContextInputs, StepInputs

logger = logging.getLogger(__name__)

FORMAT = "oversight.decision-log/2"
# Read too: /1 files, written before `model_expert` existed (read with it null: unknown).
_OLDER_FORMATS = {"oversight.decision-log/1": ("model_expert",)}
_META_FORMAT = b"oversight.format"
_META_FEATURES = b"oversight.features"
_META_OBSERVATION = b"oversight.observation"
_META_ACTION = b"oversight.action"
ACTION_NAMES = ("pace", *(f"mode_{m}" for m in MODES), "dark")
CONTEXT_FIELDS = tuple(ContextInputs.__dataclass_fields__)
STEP_FIELDS = tuple(StepInputs.__dataclass_fields__)
_TERMINAL = frozenset(s.value for s in PARENT_TERMINAL)

Table = Any  # a pyarrow.Table (pyarrow ships no type information)


class DecisionLogError(ValueError):
    """A decision log file or directory that cannot be used; the message names it."""


def _pa() -> Any:
    return importlib.import_module("pyarrow")


def _pq() -> Any:
    return importlib.import_module("pyarrow.parquet")


def schema() -> Any:
    """The columns of a decision log file, in order (docs/ADAPTIVE.md describes each)."""
    pa = _pa()
    f32, f64 = pa.float32(), pa.float64()
    fields = [
        # the episode: one parent order worked by the adaptive strategy in one engine
        ("episode_id", pa.string()),
        ("source", pa.string()),
        ("order_id", pa.string()),
        ("instrument", pa.string()),
        ("scenario", pa.string()),
        ("seed", pa.int64()),
        ("model_version", pa.string()),
        ("model_sha256", pa.string()),
        ("model_expert", pa.string()),
        # the decision
        ("step", pa.int32()),
        ("ts", f64),
        ("urgency", f64),
        ("features_raw", pa.list_(f32, N_FEATURES)),
        ("features_norm", pa.list_(f32, N_FEATURES)),
        ("observation", pa.list_(f32, OBS_DIM)),
        ("feature_step", pa.int32()),
        ("feature_context", pa.list_(f64, len(CONTEXT_FIELDS))),
        ("feature_inputs", pa.list_(f64, len(STEP_FIELDS))),
        ("action", pa.list_(f64, ACTION_DIM)),
        ("pace", f64),
        ("mode", pa.string()),
        ("dark_share", f64),
        # the outcome
        ("filled_qty", pa.int64()),
        ("arrival_mid_ticks", f64),
        ("cost_bps", f64),
        ("next_ts", f64),
        ("reward_bps", f64),
        ("episode_shortfall_bps", f64),
        ("episode_fill_rate", f64),
        ("episode_status", pa.string()),
        ("episode_fallback", pa.string()),
    ]
    metadata = {
        _META_FORMAT: FORMAT.encode(),
        _META_FEATURES: json.dumps(list(NAMES)).encode(),
        _META_OBSERVATION: json.dumps([*NAMES, *EXTRA_INPUTS]).encode(),
        _META_ACTION: json.dumps(list(ACTION_NAMES)).encode(),
    }
    return pa.schema([pa.field(n, t) for n, t in fields], metadata=metadata)


# Columns that may hold nulls: the outcome of an episode that had not ended when it was
# written, and the inputs of a step the strategy did not record.
NULLABLE = frozenset(
    {
        "model_expert",
        "feature_context",
        "feature_inputs",
        "next_ts",
        "reward_bps",
        "episode_shortfall_bps",
    }
)


@dataclass(frozen=True, slots=True)
class EpisodeInfo:
    """Who and where: written on every row of the episode."""

    # unique per order and engine: "S12-P345" live, "SCENARIO:SEED:RUN.FILE" in a backtest
    episode_id: str
    source: str  # "live" or "backtest"
    instrument: str
    scenario: str
    seed: int  # the simulated day's seed
    model_version: str = ""  # the registered version's name; default the `model` parameter


def _safe(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:limit] or "x"


class EpisodeLog:
    """The decisions of one adaptive order in one engine; the strategy's `decision_log` hook."""

    def __init__(
        self, engine: ExecutionEngine, order_id: str, strategy: Adaptive, info: EpisodeInfo
    ) -> None:
        self.engine = engine
        self.order_id = order_id
        self.strategy = strategy
        self.info = info
        self.rows: list[dict[str, Any]] = []
        self._costs: list[float] = []  # ticks × shares at each decision
        self.broken = False
        self.fallback = ""
        self._fallback_cost: tuple[float, float] | None = None  # (ts, cost) when it fell back
        self.status = ""
        self.ended = False
        self._final_cost: float | None = None
        self.final_ts: float | None = None
        self.model_version = info.model_version
        self.model_sha256 = ""
        self.model_expert = ""
        # Taken from the engine on its thread, so `table()` and `write()` never touch it
        # (the worker writes files from another thread while the engine runs on).
        w = engine.orders[order_id]
        self._qty = w.parent.qty
        self._arrival: float | None = None
        self._filled = 0
        self._record_steps: list[Any] | None = None

    # -- the hook, called by the strategy at each decision ---------------------------------

    def __call__(
        self,
        strategy: Adaptive,
        view: DecisionView,
        obs: Vector,
        action: npt.ArrayLike,
        decision: Decision,
    ) -> None:
        if self.broken:
            return
        try:
            self._record(strategy, view, obs, action, decision)
        except Exception:  # logging must never stop trading
            self.broken = True
            logger.warning("decision log of %s stopped", self.info.episode_id, exc_info=True)

    def _record(
        self,
        strategy: Adaptive,
        view: DecisionView,
        obs: Vector,
        action: npt.ArrayLike,
        decision: Decision,
    ) -> None:
        if not self.rows:
            self._identify_model(strategy)
            w = self.engine.orders[self.order_id]
            self._arrival = w.arrival_mid_ticks or self.engine.market.mid_ticks()
        raw = strategy.features.last
        if raw is None:
            raise RuntimeError("the strategy decided before computing its features")
        cost = self._cost_ticks(final=False)
        self._costs.append(cost)
        self.rows.append(
            {
                "step": len(self.rows),
                "ts": float(view.now),
                "urgency": float(strategy.params["urgency"]),
                "features_raw": np.asarray(raw, dtype=np.float32).copy(),
                "features_norm": np.asarray(obs[:N_FEATURES], dtype=np.float32).copy(),
                "observation": np.asarray(obs, dtype=np.float32).copy(),
                "feature_step": strategy.features.steps - 1,
                "action": np.asarray(action, dtype=np.float64).reshape(-1).copy(),
                "pace": decision.pace,
                "mode": decision.mode,
                "dark_share": decision.dark_share,
                "filled_qty": int(view.filled_qty),
                "arrival_mid_ticks": float(self._arrival or 0.0),
                "cost_bps": self._bps(cost),
            }
        )

    def _identify_model(self, strategy: Adaptive) -> None:
        policy = strategy.model  # the file loaded (a gated model's, whichever expert trades)
        if isinstance(policy, OnnxPolicy):
            self.model_sha256 = policy.sha256  # of the bytes loaded
            self.model_expert = strategy.expert  # a gated model's, for this instrument
            self.model_version = self.model_version or str(strategy.params["model"])
        else:  # plugged in directly (training, tests): no file to name
            self.model_version = self.model_version or "plugged"

    # -- outcomes ---------------------------------------------------------------------------

    def _cost_ticks(self, *, final: bool) -> float:
        """Shortfall so far against this engine's arrival mid, ticks × shares: fills and
        fees; with `final`, also the unfilled quantity at the mid at the window's end."""
        w = self.engine.orders[self.order_id]
        p = w.parent
        arrival = self._arrival or w.arrival_mid_ticks or self.engine.market.mid_ticks()
        cost = p.side * (p.notional_ticks - p.filled_qty * arrival) + w.fees
        if final:
            end_mid = w.end_mid_ticks or self.engine.market.mid_ticks()
            cost += p.side * (end_mid - arrival) * (p.qty - p.filled_qty)
        return float(cost)

    def _bps(self, cost_ticks: float) -> float:
        """Ticks × shares as bps of the whole order's arrival value."""
        return cost_ticks / (self._qty * (self._arrival or 1.0)) * 1e4

    def fell_back(self, reason: str, ts: float) -> None:
        """The strategy was replaced: the last decision's interval ends here."""
        if not self.fallback:
            self.fallback = reason
            self._fallback_cost = (ts, self._cost_ticks(final=False))

    def finish(self, status: str, *, ended: bool, ts: float | None = None) -> None:
        """The order reached a final status (`ended`), or is handed over unfinished."""
        self.status = status
        self.ended = ended
        self.final_ts = ts
        self._filled = self.engine.orders[self.order_id].parent.filled_qty
        if ended and self.rows:
            self._final_cost = self._cost_ticks(final=True)
        try:
            self._record_steps = list(self.strategy.features.to_record()["steps"])
        except ValueError:  # the strategy did not record its inputs
            self._record_steps = None

    # -- the table ----------------------------------------------------------------------------

    def _outcomes(self) -> tuple[list[float | None], list[float | None]]:
        """Each row's interval end and reward."""
        if not self.rows:
            return [], []
        ends: list[tuple[float | None, float | None]] = [
            (self.rows[i + 1]["ts"], self._costs[i + 1]) for i in range(len(self.rows) - 1)
        ]
        if self._fallback_cost is not None:
            ends.append(self._fallback_cost)
        elif self.ended:
            ends.append((self.final_ts, self._final_cost))
        else:
            ends.append((None, None))
        next_ts: list[float | None] = []
        rewards: list[float | None] = []
        for cost, (t, end) in zip(self._costs, ends, strict=True):
            next_ts.append(t)
            rewards.append(None if end is None else -self._bps(end - cost))
        return next_ts, rewards

    def table(self) -> Table:
        """The episode's rows as a pyarrow Table of `schema()` (after `finish`)."""
        pa = _pa()
        n = len(self.rows)
        record = self._inputs()
        next_ts, rewards = self._outcomes()
        shortfall = self._bps(self._final_cost) if self._final_cost is not None else None
        info = self.info
        columns: dict[str, list[Any]] = {
            "episode_id": [info.episode_id] * n,
            "source": [info.source] * n,
            "order_id": [self.order_id] * n,
            "instrument": [info.instrument] * n,
            "scenario": [info.scenario] * n,
            "seed": [info.seed] * n,
            "model_version": [self.model_version] * n,
            "model_sha256": [self.model_sha256] * n,
            "model_expert": [self.model_expert] * n,
        }
        for name in (
            "step",
            "ts",
            "urgency",
            "features_raw",
            "features_norm",
            "observation",
            "feature_step",
        ):
            columns[name] = [r[name] for r in self.rows]
        inputs = [record.get(r["feature_step"], (None, None)) for r in self.rows]
        columns["feature_context"] = [context for context, _ in inputs]
        columns["feature_inputs"] = [step for _, step in inputs]
        for name in (
            "action",
            "pace",
            "mode",
            "dark_share",
            "filled_qty",
            "arrival_mid_ticks",
            "cost_bps",
        ):
            columns[name] = [r[name] for r in self.rows]
        columns["next_ts"] = next_ts
        columns["reward_bps"] = rewards
        columns["episode_shortfall_bps"] = [shortfall] * n
        columns["episode_fill_rate"] = [self._filled / self._qty] * n
        columns["episode_status"] = [self.status] * n
        columns["episode_fallback"] = [self.fallback] * n
        sch = schema()
        arrays = []
        for field in sch:
            values = columns[field.name]
            if pa.types.is_fixed_size_list(field.type):
                values = [None if v is None else np.asarray(v).tolist() for v in values]
            arrays.append(pa.array(values, type=field.type))
        return pa.Table.from_arrays(arrays, schema=sch)

    def _inputs(self) -> dict[int, tuple[list[float] | None, list[float | None] | None]]:
        """Feature step -> (context, step inputs) as float lists, from the strategy's record
        taken at `finish` (context filled forward, so each row stands alone); none when it
        did not record."""
        if self._record_steps is None:
            return {r["feature_step"]: (None, None) for r in self.rows}
        out: dict[int, tuple[list[float] | None, list[float | None] | None]] = {}
        context: list[float] | None = None
        for i, (ctx_row, step_row) in enumerate(self._record_steps):
            if ctx_row is not None:
                context = [float(v) for v in ctx_row]
            out[i] = (context, [None if v is None else float(v) for v in step_row])
        return out

    def write(self, directory: str | os.PathLike[str], *, date: str | None = None) -> Path | None:
        """Write the episode as one Parquet file under DIRECTORY/date=…/model=…/; None when
        it has no decision (a model that failed at once). OSError if it cannot be written."""
        if not self.rows:
            return None
        day = date or datetime.now(UTC).date().isoformat()
        model = _safe(self.model_version or "unknown")
        if self.model_sha256:
            model += "-" + self.model_sha256[:12]
        folder = Path(directory) / f"date={day}" / f"model={model}"
        name = f"{self.info.source}-{_safe(self.info.episode_id)}-{uuid.uuid4().hex[:8]}.parquet"
        return write_table(self.table(), folder / name)


def write_table(table: Table, path: Path) -> Path:
    """Write a decision table to `path` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        _pq().write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class DecisionRecorder:
    """Logs the adaptive orders of one engine; hands each finished episode to `on_episode`.

    It listens to the engine's events (chaining any listener already there) for the
    moment an order's strategy falls back and the moment the order ends.
    """

    def __init__(self, engine: ExecutionEngine, on_episode: Callable[[EpisodeLog], object]) -> None:
        self.engine = engine
        self.on_episode = on_episode
        self.open: dict[str, EpisodeLog] = {}
        self._chained = engine.on_event
        engine.on_event = self._on_event

    def track(self, order_id: str, info: EpisodeInfo) -> EpisodeLog | None:
        """Log an order's decisions if its strategy is the adaptive one (None otherwise)."""
        strategy = self.engine.orders[order_id].strategy
        if not isinstance(strategy, Adaptive):
            return None
        if strategy.features.steps == 0:  # record the inputs, for replay from the log
            strategy.features = FeatureState(record=True)
        log = EpisodeLog(self.engine, order_id, strategy, info)
        strategy.decision_log = log
        self.open[order_id] = log
        return log

    def _on_event(self, ev: DomainEvent) -> None:
        if self._chained is not None:
            self._chained(ev)
        log = self.open.get(ev.order_id)
        if log is None:
            return
        try:
            if isinstance(ev, ParentStrategyFallback):
                log.fell_back(ev.reason, ev.ts)
            elif isinstance(ev, ParentStatusChanged) and ev.status in _TERMINAL:
                del self.open[ev.order_id]
                log.finish(ev.status, ended=True, ts=ev.ts)
                self.on_episode(log)
        except Exception:  # logging must never stop trading
            self.open.pop(ev.order_id, None)
            logger.warning("decision log of %s dropped", log.info.episode_id, exc_info=True)

    def close(self, status: str | None = None) -> None:
        """Hand over the episodes still open (the session stops): outcome unknown.
        `status`: what to record as their status (default: the engine's)."""
        for order_id, log in list(self.open.items()):
            del self.open[order_id]
            try:
                now = status or self.engine.orders[order_id].parent.status.value
                log.finish(now, ended=False)
                self.on_episode(log)
            except Exception:
                logger.warning("decision log of %s dropped", log.info.episode_id, exc_info=True)


# -- reading ----------------------------------------------------------------------------------


def log_files(path: Path) -> list[Path]:
    """The decision log files a path names: itself, or every `*.parquet` under it (hidden
    files and folders skipped: a file being written is hidden until it is renamed)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            f
            for f in path.rglob("*.parquet")
            if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts)
        )
        if not files:
            raise DecisionLogError(f"{path}: no decision log files (*.parquet) under it")
        return files
    if path.exists():  # a named pipe or a device: never opened, it could block
        raise DecisionLogError(f"{path}: not a regular file or a folder")
    raise DecisionLogError(f"{path}: no such file or directory")


def _read_one(path: Path) -> Table:
    pa, pq = _pa(), _pq()
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise DecisionLogError(f"{path}: not a readable Parquet file: {e}") from None
    meta = table.schema.metadata or {}
    fmt = meta.get(_META_FORMAT)
    older = _OLDER_FORMATS.get(fmt.decode(errors="replace")) if fmt is not None else None
    if fmt != FORMAT.encode() and older is None:
        found = "none" if fmt is None else repr(fmt.decode(errors="replace"))
        raise DecisionLogError(f"{path}: not a decision log of format {FORMAT} (format {found})")
    try:
        names = json.loads(meta.get(_META_FEATURES, b"null"))
    except ValueError:
        names = None
    if names != list(NAMES):
        raise DecisionLogError(f"{path}: written for another feature set than this version's")
    expected = schema()
    for name in older or ():
        if name not in table.schema.names:  # a column the older format did not have
            table = table.append_column(
                expected.field(name), pa.nulls(table.num_rows, expected.field(name).type)
            )
    for field in expected:
        if field.name not in table.schema.names:
            raise DecisionLogError(f"{path}: column {field.name!r} is missing")
        got = table.schema.field(field.name).type
        if not _same_type(got, field.type):
            raise DecisionLogError(
                f"{path}: column {field.name!r} has type {got}, expected {field.type}"
            )
        if field.name not in NULLABLE and table.column(field.name).null_count:
            raise DecisionLogError(f"{path}: column {field.name!r} has missing values")
    return table.select(expected.names).cast(expected)  # one schema, so files concatenate


def _same_type(got: Any, want: Any) -> bool:
    """Equal types; a list's element field may be named differently ("item", "element")."""
    pa = _pa()
    if pa.types.is_fixed_size_list(want):
        return bool(
            pa.types.is_fixed_size_list(got)
            and got.list_size == want.list_size
            and got.value_type.equals(want.value_type)
        )
    return bool(got.equals(want))


def read_decisions(path: str | os.PathLike[str]) -> Table:
    """Every decision in a log file, or in every file under a directory (one Table).

    DecisionLogError, naming the file and the problem, for anything that is not a decision
    log of this format and feature set."""
    return read_files(log_files(Path(path)))


def read_files(files: list[Path]) -> Table:
    """Every decision in these files (from `log_files`), as one Table; the same errors."""
    return _pa().concat_tables([_read_one(f) for f in files])


def _matrix(table: Table, name: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    column = table.column(name).combine_chunks()
    width = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=dtype).reshape(len(column), width)


def decision_arrays(table: Table) -> dict[str, npt.NDArray[Any]]:
    """The columns a retrain uses, as numpy arrays (nulls as NaN)."""
    out: dict[str, npt.NDArray[Any]] = {
        "features_raw": _matrix(table, "features_raw", np.float32),
        "features_norm": _matrix(table, "features_norm", np.float32),
        "observation": _matrix(table, "observation", np.float32),
        "action": _matrix(table, "action", np.float64),
    }
    for name in (
        "ts",
        "urgency",
        "pace",
        "dark_share",
        "cost_bps",
        "next_ts",
        "reward_bps",
        "episode_shortfall_bps",
        "episode_fill_rate",
    ):
        col = table.column(name).combine_chunks()
        out[name] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    out["step"] = np.asarray(table.column("step").to_numpy(), dtype=np.int64)
    return out


def episode_ids(table: Table) -> list[str]:
    return sorted(set(table.column("episode_id").to_pylist()))


def feature_record(table: Table, episode_id: str | None = None) -> dict[str, Any]:
    """One episode's feature inputs as a FeatureState record, for `features.replay`."""
    episodes = episode_ids(table)
    if episode_id is None:
        if len(episodes) != 1:
            raise DecisionLogError(f"the table holds {len(episodes)} episodes: name one")
        episode_id = episodes[0]
    elif episode_id not in episodes:
        raise DecisionLogError(f"no episode {episode_id!r} in the table")
    pc = importlib.import_module("pyarrow.compute")
    rows = table.filter(pc.equal(table.column("episode_id"), episode_id)).to_pylist()
    rows.sort(key=lambda r: r["step"])
    steps: list[list[Any]] = []
    for k, row in enumerate(rows):
        if row["feature_step"] != k or row["feature_inputs"] is None:
            raise DecisionLogError(
                f"episode {episode_id!r}: feature inputs are missing at step {k}"
            )
        context = row["feature_context"]
        steps.append([None if context is None else list(context), list(row["feature_inputs"])])
    return {
        "format": RECORD_FORMAT,
        "context_fields": list(CONTEXT_FIELDS),
        "step_fields": list(STEP_FIELDS),
        "steps": steps,
    }


def summary(table: Table) -> list[str]:
    """What a folder holds, as the command line prints it: decisions, orders, and their
    split by source, model version and expert, and by how the orders ended."""
    from collections import Counter

    def said(counts: Counter[str]) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))

    lines = [f"{table.num_rows:,} decisions in {len(episode_ids(table)):,} orders"]
    for column in ("source", "model_version", "model_expert"):
        by = Counter(value or "-" for value in table.column(column).to_pylist())
        lines.append(f"  decisions by {column}: {said(by)}")
    ends = {
        eid: "fell back" if fallback else (status or "not ended")
        for eid, status, fallback in zip(
            table.column("episode_id").to_pylist(),
            table.column("episode_status").to_pylist(),
            table.column("episode_fallback").to_pylist(),
            strict=True,
        )
    }
    lines.append(f"  orders by end: {said(Counter(ends.values()))}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """python -m execution.learning.decision_log DIR: what a decision log folder holds
    (it printed nothing: a trial)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(
        prog="python -m execution.learning.decision_log",
        description="Summarise a decision log folder (its Parquet files, checked).",
    )
    ap.add_argument("folder", help="the folder --decision-log wrote into")
    args = ap.parse_args(argv)
    try:
        table = read_decisions(args.folder)
    except (DecisionLogError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(summary(table)))
    return 0


__all__ = [
    "FORMAT",
    "DecisionLogError",
    "DecisionRecorder",
    "EpisodeInfo",
    "EpisodeLog",
    "decision_arrays",
    "episode_ids",
    "feature_record",
    "log_files",
    "read_decisions",
    "read_files",
    "schema",
    "summary",
    "write_table",
]


if __name__ == "__main__":
    raise SystemExit(main())
