"""The decision log of a live session, and the identity of live and offline features.

An adaptive order runs through a market worker (the Django code path: the order from the
service, the database, the risk gate, a worker stepped by hand). Its decision log then
holds the features the strategy computed at each decision. Those must be bit-identical
to what the pure code computes offline, twice over: replaying the log's own recorded
feature inputs (`execution.features.replay`), and re-running the pure engine on the same
simulated day with nothing but the scenario and the seed the log names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User

from execution.engine.engine import ExecutionEngine
from execution.features import NAMES, replay
from execution.learning.decision_log import (
    DecisionRecorder,
    EpisodeInfo,
    decision_arrays,
    feature_record,
    read_decisions,
)
from execution.models import Instrument, ParentOrder
from execution.sim.episode import ORDER_ID, run_episode
from execution.sim.scenario import parse_scenario
from tests.personas import approved_model
from tests.stepping import run_to, submit, worker

pytestmark = pytest.mark.django_db(transaction=True)

QTY, END_MINUTE = 20_000, 30


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal bit for bit (NaN equals NaN, -0.0 does not equal 0.0); else the first
    difference, by decision step and feature."""
    assert got.shape == want.shape and got.dtype == want.dtype, what
    a = np.ascontiguousarray(got).view(f"u{got.dtype.itemsize}")
    b = np.ascontiguousarray(want).view(f"u{want.dtype.itemsize}")
    diff = np.argwhere(a != b)
    if len(diff):
        at = tuple(int(i) for i in diff[0])
        name = NAMES[at[1]] if what.startswith("features") and len(at) == 2 else ""
        pytest.fail(
            f"{what}: {len(diff)} values differ, first at {at} {name}: {got[at]!r} != {want[at]!r}"
        )


def adaptive_order(user: User, instrument: Instrument, capture: Any) -> ParentOrder:
    approved_model("policy-v1")
    with capture(execute=False):
        return submit(
            user,
            instrument,
            strategy="adaptive",
            params={"model": "policy-v1"},
            quantity=QTY,
            end_minute=END_MINUTE,
        )


def offline(instrument: Instrument, order: ParentOrder, seed: int, out: Path) -> dict[str, Any]:
    """The same order on the same simulated day, in the pure engine, logged to `out`."""
    data = dict(instrument.scenario)
    data["order"] = {
        "side": order.side,
        "quantity": order.quantity,
        "start_minute": order.start_minute,
        "end_minute": order.end_minute,
        "limit_price": None,
    }
    sc = parse_scenario(data)

    def attach(engine: ExecutionEngine) -> None:
        recorder = DecisionRecorder(engine, on_episode=lambda ep: ep.write(out))
        recorder.track(ORDER_ID, EpisodeInfo("offline", "backtest", "", sc.name, seed))

    run_episode(sc, "adaptive", seed, order.params, setup=attach)
    return decision_arrays(read_decisions(out))


def test_live_features_are_bit_identical_to_offline_features(
    instrument: Instrument,
    alice: User,
    settings: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DECISION_LOG_DIR = tmp_path / "live"
    order = adaptive_order(alice, instrument, django_capture_on_commit_callbacks)
    w = worker(instrument)
    run_to(w, (END_MINUTE + 1) * 60)
    w.release()  # waits for the log files being written
    order.refresh_from_db()
    assert order.status == "FILLED" and order.fallback_strategy == ""

    table = read_decisions(tmp_path / "live")
    rows = table.to_pylist()
    assert w.session is not None
    assert {r["episode_id"] for r in rows} == {f"S{w.session.pk}-{order.engine_id}"}
    assert {(r["source"], r["instrument"], r["seed"]) for r in rows} == {
        ("live", instrument.symbol, w.seed)
    }
    assert {(r["model_version"], r["model_sha256"]) for r in rows} == {
        ("policy-v1", order.model_version.sha256)
    }
    assert {(r["episode_status"], r["episode_fill_rate"]) for r in rows} == {("FILLED", 1.0)}
    live = decision_arrays(table)
    n = len(rows)
    assert n >= END_MINUTE * 2  # a decision every 30 s, more in the final sweep
    assert np.array_equal(live["ts"][:3], [0.0, 30.0, 60.0])
    # Real market features, not a constant vector: the spread, queues and volatility move.
    assert len({tuple(r) for r in live["features_raw"].tolist()}) == n

    # 1. The pure feature code on the inputs the live strategy recorded: the same bits.
    assert_same_bits(replay(feature_record(table)), live["features_raw"], "features_raw (replay)")

    # 2. The pure engine, offline, on the day the log names: the same decisions, bit for bit.
    again = offline(instrument, order, rows[0]["seed"], tmp_path / "offline")
    for key in ("ts", "features_raw", "features_norm", "observation", "action", "reward_bps"):
        assert_same_bits(again[key], live[key], key)

    # The comparison can fail: another simulated day gives other features from step 0.
    other = offline(instrument, order, rows[0]["seed"] + 1, tmp_path / "other")
    assert not np.array_equal(other["features_raw"][:10], live["features_raw"][:10])


def test_a_log_that_cannot_be_written_never_stops_trading(
    instrument: Instrument,
    alice: User,
    settings: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.DECISION_LOG_DIR = blocker / "log"  # cannot be created: its parent is a file
    order = adaptive_order(alice, instrument, django_capture_on_commit_callbacks)
    w = worker(instrument)
    with caplog.at_level(logging.WARNING, logger="execution.worker"):
        run_to(w, (END_MINUTE + 1) * 60)
        w.release()
    order.refresh_from_db()
    assert order.status == "FILLED" and order.fallback_strategy == ""
    assert order.filled_qty == QTY
    assert any("decision log of" in r.getMessage() for r in caplog.records)


def test_the_log_is_off_unless_set(
    instrument: Instrument,
    alice: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DECISION_LOG_DIR = None
    order = adaptive_order(alice, instrument, django_capture_on_commit_callbacks)
    w = worker(instrument)
    run_to(w, 60)
    strategy = w.engine.orders[order.engine_id].strategy
    assert getattr(strategy, "decision_log", "missing") is None
    w.release()


def test_an_order_open_when_the_worker_stops_is_written_without_its_outcome(
    instrument: Instrument,
    alice: User,
    settings: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DECISION_LOG_DIR = tmp_path
    order = adaptive_order(alice, instrument, django_capture_on_commit_callbacks)
    w = worker(instrument)
    run_to(w, 10 * 60)
    w.release()
    order.refresh_from_db()
    assert order.status == "SUSPENDED"
    table = read_decisions(tmp_path)
    a = decision_arrays(table)
    assert a["ts"][-1] == 600.0 and len(a["ts"]) == 21  # minutes 0 to 10, every 30 s
    assert set(table.column("episode_status").to_pylist()) == {"SUSPENDED"}
    # The intervals that ended are known; the last one and the order's outcome are not.
    assert np.all(np.isfinite(a["reward_bps"][:-1])) and np.isnan(a["reward_bps"][-1])
    assert np.all(np.isnan(a["episode_shortfall_bps"]))
    assert a["episode_fill_rate"][0] == order.filled_qty / QTY
