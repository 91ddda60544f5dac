"""The adaptive strategy's decision log: what a row holds, that it is what the strategy
computed, the outcomes, the files, and the reader's errors (execution/learning/decision_log.py)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from execution import backtest
from execution.algos import adaptive
from execution.algos.adaptive import DEFAULT_MODEL, Adaptive, Decision, resolve_model
from execution.algos.base import DecisionView, quoted_spread_bps
from execution.engine.engine import ExecutionEngine
from execution.features import N_FEATURES, NAMES, normalise, replay
from execution.learning.decision_log import (
    FORMAT,
    DecisionLogError,
    DecisionRecorder,
    EpisodeInfo,
    EpisodeLog,
    decision_arrays,
    episode_ids,
    feature_record,
    read_decisions,
    schema,
)
from execution.learning.env import ORDER_ID as ENV_ORDER_ID
from execution.learning.env import ExecutionEnv
from execution.sim.episode import ORDER_ID, EpisodeResult, run_episode
from execution.sim.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "execution" / "scenarios" / "demo-midcap-buy.json"
SHIPPED = resolve_model(DEFAULT_MODEL)
pytestmark = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped model")
SEED = 11


def short_scenario() -> Scenario:
    return load_scenario(SCENARIO).with_order(start_minute=60, end_minute=80, quantity=8000)


def short_file(tmp_path: Path) -> Path:
    data = json.loads(SCENARIO.read_text())
    data["order"].update(start_minute=60, end_minute=80, quantity=8000)
    path = tmp_path / "short.json"
    path.write_text(json.dumps(data))
    return path


class Capture:
    """A hook of the test's own: what the strategy computed at each decision."""

    def __init__(self) -> None:
        self.raw: list[np.ndarray] = []
        self.obs: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.decisions: list[Decision] = []
        self.ts: list[float] = []

    def __call__(
        self, s: Adaptive, view: DecisionView, obs: np.ndarray, action: Any, d: Decision
    ) -> None:
        assert s.features.last is not None
        self.raw.append(s.features.last.copy())
        self.obs.append(np.array(obs, copy=True))
        self.actions.append(np.asarray(action, dtype=np.float64).copy())
        self.decisions.append(d)
        self.ts.append(view.now)


def logged_episode(
    out: Path, params: dict[str, Any] | None = None, policy: Any = None
) -> tuple[EpisodeResult, list[EpisodeLog]]:
    """One short adaptive episode with a decision log written under `out`."""
    sc = short_scenario()
    episodes: list[EpisodeLog] = []

    def attach(engine: ExecutionEngine) -> None:
        def done(ep: EpisodeLog) -> None:
            episodes.append(ep)
            ep.write(out, date="2026-01-02")

        recorder = DecisionRecorder(engine, on_episode=done)
        recorder.track(
            ORDER_ID, EpisodeInfo(f"{sc.name}:{SEED}", "backtest", "HBRK", sc.name, SEED)
        )
        if policy is not None:
            strategy = engine.orders[ORDER_ID].strategy
            assert isinstance(strategy, Adaptive)
            strategy.use_policy(policy, adaptive.load_policy(DEFAULT_MODEL).training_range)

    return run_episode(sc, "adaptive", SEED, params or {}, setup=attach), episodes


@pytest.fixture(scope="module")
def episode(tmp_path_factory: pytest.TempPathFactory) -> tuple[EpisodeResult, Path]:
    out = tmp_path_factory.mktemp("log")
    result, episodes = logged_episode(out)
    assert len(episodes) == 1
    return result, out


# -- off by default ---------------------------------------------------------------------------


def test_the_hook_is_off_by_default_and_logging_changes_nothing(
    episode: tuple[EpisodeResult, Path],
) -> None:
    sc = short_scenario()
    seen: list[Any] = []

    def check(engine: ExecutionEngine) -> None:
        strategy = engine.orders[ORDER_ID].strategy
        assert isinstance(strategy, Adaptive)
        seen.append(strategy.decision_log)

    plain = run_episode(sc, "adaptive", SEED, {}, setup=check)
    assert seen == [None]
    logged, _ = episode
    assert plain.fallback == logged.fallback == ""
    assert (plain.shortfall_bps, plain.filled_qty, plain.children) == (
        logged.shortfall_bps,
        logged.filled_qty,
        logged.children,
    )


# -- the file: layout, schema, round trip ----------------------------------------------------


def test_one_file_per_episode_under_date_and_model(episode: tuple[EpisodeResult, Path]) -> None:
    _, out = episode
    files = list(out.rglob("*"))
    parquet = [f for f in files if f.is_file()]
    assert len(parquet) == 1
    sha = adaptive.load_policy(DEFAULT_MODEL).sha256
    rel = parquet[0].relative_to(out).as_posix()
    assert re.fullmatch(
        rf"date=2026-01-02/model={DEFAULT_MODEL}-{sha[:12]}/backtest-demo-midcap-buy_11-[0-9a-f]{{8}}\.parquet",
        rel,
    ), rel
    assert not any(f.name.startswith(".") for f in files)  # no temporary file left


def test_schema_and_metadata(episode: tuple[EpisodeResult, Path]) -> None:
    _, out = episode
    (path,) = out.rglob("*.parquet")
    raw = pq.read_table(path)
    assert raw.schema.equals(schema())
    meta = raw.schema.metadata
    assert meta == schema().metadata
    assert meta[b"oversight.format"] == FORMAT.encode()
    assert json.loads(meta[b"oversight.features"]) == list(NAMES)
    assert json.loads(meta[b"oversight.observation"])[N_FEATURES:] == list(adaptive.EXTRA_INPUTS)
    assert len(json.loads(meta[b"oversight.action"])) == adaptive.ACTION_DIM


def test_the_docs_list_every_column() -> None:
    doc = (REPO / "docs" / "ADAPTIVE.md").read_text()
    section = doc.split("## Decision log", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.M)
    assert documented == schema().names


def test_round_trip_rows_are_what_the_strategy_computed(tmp_path: Path) -> None:
    """The log's features, observations and actions against a hook of the test's own on the
    same episode: the same bits; and the strategy's own outputs are consistent with them."""
    sc = short_scenario()
    capture = Capture()
    episodes: list[EpisodeLog] = []

    def attach(engine: ExecutionEngine) -> None:
        recorder = DecisionRecorder(engine, on_episode=episodes.append)
        recorder.track(ORDER_ID, EpisodeInfo("e", "backtest", "HBRK", sc.name, SEED))
        strategy = engine.orders[ORDER_ID].strategy
        assert isinstance(strategy, Adaptive)
        log = strategy.decision_log
        assert log is not None

        def both(*args: Any) -> None:
            capture(*args)
            log(*args)

        strategy.decision_log = both

    run_episode(sc, "adaptive", SEED, {}, setup=attach)
    (ep,) = episodes
    path = ep.write(tmp_path)
    assert path is not None
    table = read_decisions(path)
    a = decision_arrays(table)
    n = len(capture.raw)
    assert n >= 35 and table.num_rows == n
    assert a["features_raw"].tobytes() == np.stack(capture.raw).tobytes()
    assert a["observation"].tobytes() == np.stack(capture.obs).tobytes()
    assert a["action"].tobytes() == np.stack(capture.actions).tobytes()
    assert a["ts"].tolist() == capture.ts
    assert table.column("mode").to_pylist() == [d.mode for d in capture.decisions]
    assert a["pace"].tolist() == [d.pace for d in capture.decisions]
    assert a["dark_share"].tolist() == [d.dark_share for d in capture.decisions]
    # The normalised features are the observation's first 21, as normalise gives them.
    tr = adaptive.load_policy(DEFAULT_MODEL).training_range
    assert a["features_norm"].tobytes() == a["observation"][:, :N_FEATURES].tobytes()
    for raw, norm in zip(a["features_raw"], a["features_norm"], strict=True):
        assert normalise(raw, tr).values.tobytes() == norm.tobytes()
    # The recorded inputs replay to the same features.
    assert replay(feature_record(table)).tobytes() == a["features_raw"].tobytes()
    assert np.all(a["urgency"] == 0.0) and np.array_equal(a["step"], np.arange(n))


# -- outcomes -----------------------------------------------------------------------------------


def test_rewards_add_up_to_the_episode_shortfall(episode: tuple[EpisodeResult, Path]) -> None:
    result, out = episode
    table = read_decisions(out)
    a = decision_arrays(table)
    rows = table.to_pylist()
    assert a["cost_bps"][0] == 0.0  # nothing filled before the first decision
    assert np.array_equal(a["next_ts"][:-1], a["ts"][1:])  # each interval ends at the next
    assert a["next_ts"][-1] >= a["ts"][-1]
    assert np.all(np.isfinite(a["reward_bps"]))
    assert -a["reward_bps"].sum() == pytest.approx(result.shortfall_bps, rel=1e-9, abs=1e-9)
    assert np.all(a["episode_shortfall_bps"] == a["episode_shortfall_bps"][0])
    assert a["episode_shortfall_bps"][0] == pytest.approx(result.shortfall_bps, rel=1e-12)
    assert {(r["episode_status"], r["episode_fallback"]) for r in rows} == {("FILLED", "")}
    assert a["episode_fill_rate"][0] == result.fill_rate
    # The cumulative cost is the rewards so far.
    assert np.allclose(a["cost_bps"][1:], -np.cumsum(a["reward_bps"])[:-1], atol=1e-9)


def test_the_rewards_are_the_training_environments_rewards() -> None:
    """External mode (respond): the log's rewards are the ones env.step returns."""
    sc = short_scenario()
    env = ExecutionEnv(scenario_for=lambda seed: sc)
    env.reset(seed=SEED)
    assert env.engine is not None
    episodes: list[EpisodeLog] = []
    recorder = DecisionRecorder(env.engine, on_episode=episodes.append)
    recorder.track(ENV_ORDER_ID, EpisodeInfo("env", "backtest", "HBRK", sc.name, SEED))
    rewards, rng = [], np.random.default_rng(0)
    done = False
    while not done:
        _, reward, done, _, _ = env.step(rng.normal(size=adaptive.ACTION_DIM))
        rewards.append(reward)
    (ep,) = episodes
    a = decision_arrays(ep.table())
    assert np.allclose(a["reward_bps"], rewards, rtol=0, atol=1e-9)
    # The first decision was taken before the log was attached: it is still logged (at
    # respond), but its feature inputs were not recorded.
    assert ep.table().column("feature_inputs").null_count == len(rewards)


def test_a_fallback_ends_the_last_decisions_interval(tmp_path: Path) -> None:
    shipped = adaptive.load_policy("policy-v4")  # any single policy: this one is plugged in
    calls = [0]

    def fails_at_the_sixth(obs: np.ndarray) -> np.ndarray:
        calls[0] += 1
        return shipped(obs) if calls[0] < 6 else np.full(adaptive.ACTION_DIM, np.nan)

    result, episodes = logged_episode(tmp_path, policy=fails_at_the_sixth)
    assert len(episodes) == 1
    assert result.fallback.startswith("PolicyOutputInvalid")
    a = decision_arrays(read_decisions(tmp_path))
    rows = read_decisions(tmp_path).to_pylist()
    assert len(rows) == 5
    assert {r["episode_fallback"] for r in rows} == {result.fallback}
    assert {r["model_version"] for r in rows} == {"plugged"}
    # The fifth decision's interval ends at the sixth decision, where TWAP took over.
    assert a["next_ts"][-1] == a["ts"][-1] + 30.0
    assert np.all(np.isfinite(a["reward_bps"]))
    # The episode's own outcome is the whole order's, TWAP's part included.
    assert a["episode_shortfall_bps"][0] == pytest.approx(result.shortfall_bps, rel=1e-12)
    assert -a["reward_bps"].sum() != pytest.approx(result.shortfall_bps, rel=1e-6)


def test_a_model_that_never_decides_writes_nothing(tmp_path: Path) -> None:
    result, (ep,) = logged_episode(tmp_path, {"model": str(tmp_path / "missing.onnx")})
    assert result.fallback.startswith("ModelUnavailable")
    assert ep.rows == [] and ep.write(tmp_path) is None
    assert ep.table().num_rows == 0 and ep.table().schema.equals(schema())
    assert list(tmp_path.rglob("*.parquet")) == []


def test_a_failing_log_never_stops_the_strategy(tmp_path: Path) -> None:
    """Whatever goes wrong inside the log, the order trades on as if it were off."""
    sc = short_scenario()

    def attach(engine: ExecutionEngine) -> None:
        recorder = DecisionRecorder(engine, on_episode=lambda ep: None)
        log = recorder.track(ORDER_ID, EpisodeInfo("e", "backtest", "HBRK", sc.name, SEED))
        assert log is not None
        log.rows = None  # type: ignore[assignment]  # every record now fails

    broken = run_episode(sc, "adaptive", SEED, {}, setup=attach)
    plain = run_episode(sc, "adaptive", SEED, {})
    assert broken.fallback == "" and broken.shortfall_bps == plain.shortfall_bps


# -- the backtest flag --------------------------------------------------------------------------


def test_backtest_flag_writes_the_adaptive_episodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sc = short_file(tmp_path)
    log = tmp_path / "log"
    args = [str(sc), "--strategies", "twap,adaptive", "--episodes", "2", "--seed", str(SEED)]
    assert backtest.main([*args, "--decision-log", str(log), "--jobs", "2"]) == 0
    capsys.readouterr()
    table = read_decisions(log)
    ids = episode_ids(table)
    assert [i.rsplit(":", 1)[0] for i in ids] == [
        f"demo-midcap-buy:{SEED}",
        f"demo-midcap-buy:{SEED + 1}",
    ]
    (run,) = {i.rsplit(":", 1)[1] for i in ids}  # the run, and the file's place in it
    assert re.fullmatch(r"[0-9a-f]{8}\.1", run), ids
    assert set(table.column("source").to_pylist()) == {"backtest"}  # TWAP is not logged
    # Two files of one scenario name, and the same run again into the folder: each order
    # is its own episode (a trial's two orders were read as one, and a retrain dropped one).
    other = tmp_path / "copy.json"
    other.write_text(sc.read_text())
    assert backtest.main([str(sc), str(other), "--strategies", "adaptive", "--episodes", "1",
                          "--seed", str(SEED), "--decision-log", str(log)]) == 0  # fmt: skip
    capsys.readouterr()
    again = read_decisions(log)
    assert len(episode_ids(again)) == 4
    first_day = table.filter(pc.equal(table.column("seed"), SEED)).num_rows
    assert again.num_rows == table.num_rows + 2 * first_day  # the new two: SEED's, each once
    # Episode SEED's rows are what the strategy computed on that day (a hook of our own).
    capture = Capture()

    def attach(engine: ExecutionEngine) -> None:
        strategy = engine.orders[ORDER_ID].strategy
        assert isinstance(strategy, Adaptive)
        strategy.decision_log = capture

    run_episode(short_scenario(), "adaptive", SEED, {}, setup=attach)
    first = table.filter(pc.equal(table.column("seed"), SEED))
    a = decision_arrays(first)
    assert a["features_raw"].tobytes() == np.stack(capture.raw).tobytes()
    assert a["observation"].tobytes() == np.stack(capture.obs).tobytes()


def test_backtest_flag_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sc = str(short_file(tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert backtest.main([sc, "--strategies", "twap", "--decision-log", str(tmp_path)]) == 2
    assert "the adaptive strategy is not being run" in capsys.readouterr().err
    bad = str(blocker / "log")
    assert backtest.main([sc, "--strategies", "adaptive", "--decision-log", bad]) == 2
    err = capsys.readouterr().err
    assert f"--decision-log {bad}: cannot create it" in err and "Traceback" not in err
    assert backtest.main([sc, "--strategies", "adaptive", "--decision-log", str(blocker)]) == 2
    assert f"--decision-log {blocker}: is a file, not a folder" in capsys.readouterr().err
    # An empty name is the current folder: it wrote the log into the repository (a trial).
    assert backtest.main([sc, "--strategies", "adaptive", "--decision-log", " "]) == 2
    assert "--decision-log: name a folder" in capsys.readouterr().err


def test_backtest_a_log_that_cannot_be_written_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The directory is fine when checked, but the files cannot go in it: exit 1, one line."""
    log = tmp_path / "log"
    log.mkdir()
    today = datetime.now(UTC).date()
    for day in (today, today + timedelta(days=1)):  # a run that crosses midnight too
        (log / f"date={day.isoformat()}").write_text("a file where a folder goes")
    sc = str(short_file(tmp_path))
    code = backtest.main(
        [sc, "--strategies", "adaptive", "--episodes", "1", "--decision-log", str(log)]
    )
    err = capsys.readouterr().err
    assert code == 1
    last = err.splitlines()[-1]
    assert last.startswith(f"error: --decision-log {log}: ") and "Not a directory" in last
    assert "Traceback" not in err


# -- the reader's errors ------------------------------------------------------------------------


@pytest.fixture
def good(episode: tuple[EpisodeResult, Path]) -> pa.Table:
    _, out = episode
    (path,) = out.rglob("*.parquet")
    return pq.read_table(path)


def test_reading_a_directory_reads_every_file(
    episode: tuple[EpisodeResult, Path], tmp_path: Path, good: pa.Table
) -> None:
    (tmp_path / "a").mkdir()
    pq.write_table(good, tmp_path / "a" / "one.parquet")
    pq.write_table(good, tmp_path / "two.parquet")
    (tmp_path / ".two.parquet.tmp").write_text("half a file")  # being written: skipped
    assert read_decisions(tmp_path).num_rows == 2 * good.num_rows


def test_each_row_names_the_expert_that_decided(episode: tuple[EpisodeResult, Path]) -> None:
    _, out = episode
    table = read_decisions(out)
    loaded = adaptive.load_policy(DEFAULT_MODEL)
    inst = short_scenario().instrument
    if loaded.gate is None:
        want = ""  # a single policy has no expert
    else:
        bps = quoted_spread_bps(inst.spread_ticks, inst.tick_size, inst.reference_price)
        want = loaded.gate.expert(bps).name
        assert want  # the default is gated: a name, not ""
    assert set(table.column("model_expert").to_pylist()) == {want}


def test_a_file_of_the_first_format_reads_with_the_expert_unknown(
    tmp_path: Path, good: pa.Table
) -> None:
    """Files written before the `model_expert` column stay readable (the column is null)."""
    old_meta = {**good.schema.metadata, b"oversight.format": b"oversight.decision-log/1"}
    older = good.drop_columns(["model_expert"]).replace_schema_metadata(old_meta)
    pq.write_table(older, tmp_path / "old.parquet")
    pq.write_table(good, tmp_path / "new.parquet")
    table = read_decisions(tmp_path)
    n = good.num_rows
    assert table.num_rows == 2 * n
    assert table.schema.names == schema().names
    expert = table.column("model_expert").to_pylist()
    assert expert[:n] == good.column("model_expert").to_pylist()  # new.parquet sorts first
    assert expert[n:] == [None] * n
    # Only the column the first format lacked may be missing from it.
    pq.write_table(older.drop_columns(["reward_bps"]), tmp_path / "old.parquet")
    with pytest.raises(DecisionLogError, match="'reward_bps' is missing"):
        read_decisions(tmp_path / "old.parquet")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t, p: p.write_text("not parquet at all"), "not a readable Parquet file"),
        (
            lambda t, p: pq.write_table(t.replace_schema_metadata({}), p),
            f"not a decision log of format {FORMAT} (format none)",
        ),
        (
            lambda t, p: pq.write_table(
                t.replace_schema_metadata(
                    {**t.schema.metadata, b"oversight.features": b'["side"]'}
                ),
                p,
            ),
            "another feature set",
        ),
        (lambda t, p: pq.write_table(t.drop_columns(["reward_bps"]), p), "'reward_bps' is missing"),
        (
            lambda t, p: pq.write_table(
                t.set_column(
                    t.schema.get_field_index("features_raw"),
                    pa.field("features_raw", pa.list_(pa.float32())),
                    pa.array(
                        [r[:-1] for r in t.column("features_raw").to_pylist()],
                        pa.list_(pa.float32()),
                    ),
                ),
                p,
            ),
            "column 'features_raw' has type list<element: float>, expected "
            "fixed_size_list<item: float>[21]",
        ),
        (
            lambda t, p: pq.write_table(
                t.set_column(
                    t.schema.get_field_index("action"),
                    t.schema.field("action"),
                    pa.array([None] * t.num_rows, t.schema.field("action").type),
                ),
                p,
            ),
            "column 'action' has missing values",
        ),
    ],
    ids=["not-parquet", "no-format", "feature-set", "missing-column", "wrong-width", "nulls"],
)
def test_malformed_files_are_refused_naming_file_and_problem(
    tmp_path: Path, good: pa.Table, damage: Any, message: str
) -> None:
    pq.write_table(good, tmp_path / "fine.parquet")
    bad = tmp_path / "zz-bad.parquet"
    damage(good, bad)
    for target in (bad, tmp_path):  # the file itself, or a directory holding it
        with pytest.raises(DecisionLogError) as e:
            read_decisions(target)
        assert str(e.value).startswith(f"{bad}: ")
        assert message in str(e.value)


def test_nothing_to_read(tmp_path: Path) -> None:
    with pytest.raises(DecisionLogError, match="no such file or directory"):
        read_decisions(tmp_path / "nope")
    with pytest.raises(DecisionLogError, match=r"no decision log files \(\*\.parquet\)"):
        read_decisions(tmp_path)
    pipe = tmp_path / "pipe.parquet"
    os.mkfifo(pipe)  # a reader would block on it until a writer came
    with pytest.raises(DecisionLogError, match=r"pipe\.parquet: not a regular file or a folder"):
        read_decisions(pipe)


def test_the_command_line_says_what_a_folder_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m execution.learning.decision_log DIR` printed nothing (a trial)."""
    from execution.learning import decision_log

    sc = short_file(tmp_path)
    log = tmp_path / "log"
    args = [str(sc), "--strategies", "adaptive", "--episodes", "2", "--seed", str(SEED)]
    assert backtest.main([*args, "--decision-log", str(log)]) == 0
    capsys.readouterr()
    table = read_decisions(log)
    assert decision_log.main([str(log)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{table.num_rows:,} decisions in 2 orders"
    assert f"  decisions by source: backtest {table.num_rows:,}" in out
    assert out[-1] == "  orders by end: FILLED 2"
    assert decision_log.main([str(tmp_path / "none")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_a_log_left_empty_by_fallbacks_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every episode fell back at its first decision: the folder stayed empty and the
    backtest said nothing of it (a trial)."""

    def fails(self: object, view: object) -> list[object]:
        raise FloatingPointError("model output is NaN")  # as a model that turns later

    monkeypatch.setattr(Adaptive, "decide", fails)  # --jobs 1: in this process
    sc = short_file(tmp_path)
    args = [str(sc), "--strategies", "adaptive", "--episodes", "1", "--jobs", "1"]
    assert backtest.main([*args, "--decision-log", str(tmp_path / "log")]) == 0
    err = capsys.readouterr().err
    assert "no decision was logged; every adaptive episode fell back" in err
