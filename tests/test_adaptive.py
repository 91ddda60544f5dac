"""The adaptive strategy: registration, the shipped model, and every fallback to TWAP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from execution import backtest
from execution.algos import adaptive
from execution.algos.adaptive import DEFAULT_MODEL, Adaptive, decode, resolve_model
from execution.algos.registry import strategy_class
from execution.engine.engine import ExecutionEngine
from execution.features import N_FEATURES, TrainingRange
from execution.sim.episode import ORDER_ID, run_episode
from execution.sim.scenario import load_scenario
from tests.adaptive_runs import SCENARIO, run, short_scenario

REPO = Path(__file__).resolve().parents[1]
SHIPPED = resolve_model(DEFAULT_MODEL)
needs_model = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped model")


def assert_fell_back(engine: ExecutionEngine, reason: str) -> None:
    assert engine.fallbacks, "the strategy did not fall back"
    order_id, failed, why = engine.fallbacks[0]
    assert (order_id, failed) == ("A-1", "adaptive")
    assert reason in why
    events = [e for e in engine.events if e.kind == "ParentStrategyFallback"]
    assert len(events) == 1 and events[0].to_strategy == "twap"
    assert reason in events[0].reason
    assert engine.orders["A-1"].parent.status.value == "FILLED"  # TWAP finished the order


def test_registered_with_its_parameters() -> None:
    cls = strategy_class("adaptive")
    assert cls is Adaptive
    names = [p.name for p in cls.schema()]
    assert {"urgency", "model", "range_margin", "decision_interval_s"} <= set(names)


def test_decode_maps_outputs_to_a_decision() -> None:
    d = decode([0.0, 0.0, 1.0, 0.0, 0.0])
    assert d.mode == "midpoint" and d.pace == pytest.approx(1.0) and d.dark_share == 0.5
    assert decode([10.0, 0, 0, 5, -40]).mode == "take"
    assert decode([10.0, 0, 0, 5, -40]).pace == pytest.approx(adaptive.MAX_PACE)
    with pytest.raises(adaptive.PolicyOutputInvalid):
        decode([np.nan, 0, 0, 0, 0])
    with pytest.raises(adaptive.PolicyOutputInvalid):
        decode([0.0, 0.0])


def test_missing_model_falls_back_to_twap(tmp_path: Path) -> None:
    engine = run({"model": str(tmp_path / "nope.onnx")})
    assert_fell_back(engine, "ModelUnavailable")


def test_corrupt_model_falls_back_to_twap(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07not an onnx model at all" * 10)
    engine = run({"model": str(bad)})
    assert_fell_back(engine, "ModelUnavailable")


@needs_model
def test_nan_output_falls_back_to_twap(monkeypatch: pytest.MonkeyPatch) -> None:
    def nan_policy(self: object, obs: np.ndarray, spread: float | None = None) -> np.ndarray:
        return np.full(adaptive.ACTION_DIM, np.nan, dtype=np.float32)

    monkeypatch.setattr(adaptive.OnnxPolicy, "__call__", nan_policy)
    engine = run({})
    assert_fell_back(engine, "PolicyOutputInvalid")


@needs_model
def test_features_out_of_range_fall_back_to_twap(monkeypatch: pytest.MonkeyPatch) -> None:
    narrow = TrainingRange((0.0,) * N_FEATURES, (1e-6,) * N_FEATURES)
    for_order = adaptive.OnnxPolicy.for_order

    def narrow_range(self: adaptive.OnnxPolicy, ctx: object) -> object:
        policy, _, expert = for_order(self, ctx)  # type: ignore[arg-type]
        return policy, narrow, expert  # what the order's features are checked against

    monkeypatch.setattr(adaptive.OnnxPolicy, "for_order", narrow_range)
    engine = run({})
    assert_fell_back(engine, "FeaturesOutOfRange")


@needs_model
def test_shipped_model_completes_an_order_within_its_limits() -> None:
    allowed = frozenset({"LIT-NORTH", "DARK-POOL-1"})
    sc = short_scenario()
    assert {v.name for v in sc.venues} > allowed  # one venue is off limits
    engine = run({}, max_child_qty=300, allowed_venues=allowed)
    assert engine.fallbacks == []
    w = engine.orders["A-1"]
    assert w.parent.status.value == "FILLED"
    submitted = [e for e in engine.events if e.kind == "ChildSubmitted"]
    assert submitted
    assert all(e.venue in allowed and e.qty <= 300 for e in submitted)
    # The only denial allowed: a replacement sent while the cancel it frees is in flight
    # (as the baselines' catch-up does); never a venue, size or participation breach.
    denied = {e.reason for e in engine.events if e.kind == "ChildDenied"}
    assert denied <= {"EXCEEDS_LEAVES"}


@needs_model
def test_shipped_model_runs_a_repo_scenario_episode() -> None:
    r = run_episode(load_scenario(SCENARIO), "adaptive", 7101)
    assert r.fallback == ""
    assert r.fill_rate == 1.0
    assert np.isfinite(r.shortfall_bps)


@needs_model
def test_backtest_model_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sc = tmp_path / "short.json"
    import json

    data = json.loads(SCENARIO.read_text())
    data["order"].update(start_minute=60, end_minute=75, quantity=5000)
    sc.write_text(json.dumps(data))
    out = tmp_path / "r.json"
    args = [str(sc), "--strategies", "adaptive", "--episodes", "2", "--model", str(SHIPPED)]
    assert backtest.main([*args, "--json", str(out)]) == 0
    assert "adaptive" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result[0]["params"]["model"] == str(SHIPPED)
    assert backtest.main([str(sc), "--strategies", "adaptive", "--model", "/no/such.onnx"]) == 2
    assert backtest.main([str(sc), "--strategies", "twap", "--model", str(SHIPPED)]) == 2


def test_onnx_matches_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from execution.learning import train

    cfg = train.Config(hidden=(8, 8))
    theta = train.initial_params(cfg.hidden, 3) + np.random.default_rng(3).normal(
        0, 0.3, train.n_params(cfg.hidden)
    )
    path = tmp_path / "m.onnx"
    train.export_onnx(theta, cfg, path, TrainingRange.documented(), {"config": {}})
    obs = np.random.default_rng(4).uniform(-1, 1, (200, adaptive.OBS_DIM)).astype(np.float32)
    assert train.onnx_agreement(theta, cfg, path, obs) < 1e-5
    # ... and the numpy copy the rollouts run is the same network.
    with torch.no_grad():
        expected = train.torch_module(theta, cfg.hidden)(torch.from_numpy(obs)).numpy()
    got = np.stack([train.NumpyPolicy(theta, cfg.hidden)(o) for o in obs])
    assert np.abs(got - expected).max() < 1e-5


def _constant(pace_logit: float, mode: str, dark: float) -> np.ndarray:
    a = np.zeros(adaptive.ACTION_DIM, dtype=np.float32)
    a[0] = pace_logit
    a[1 + adaptive.MODES.index(mode)] = 1.0
    a[-1] = np.log(dark / (1.0 - dark))
    return a


@pytest.mark.parametrize("name", ["demo-largecap-sell", "demo-midcap-buy"])
def test_the_neutral_action_is_twap_exactly(name: str) -> None:
    """Pace 1, midpoint, 30% dark: the policy's zero point is the TWAP baseline, child for
    child, so whatever a trained policy does differently is its own doing. (The training
    environment sends children of any size, as the shipped models were trained.)"""
    from execution.learning.env import TRAINING_CHILD_SIZE, ExecutionEnv, run_policy

    sc = load_scenario(REPO / "execution" / "scenarios" / f"{name}.json")
    sc = sc.with_order(end_minute=sc.order.start_minute + 45)
    env = ExecutionEnv(lambda seed: sc)
    neutral = _constant(0.0, "midpoint", 0.3)
    for seed in (5, 6):
        twap = run_episode(sc, "twap", seed, TRAINING_CHILD_SIZE)
        ada = run_policy(env, lambda obs: neutral, seed, {"urgency": 0.0})
        assert ada == pytest.approx(twap.shortfall_bps, abs=1e-9), seed
    # And a different action is not TWAP: the comparison can tell them apart.
    slow = run_policy(env, lambda obs: _constant(-0.5, "passive", 0.05), 5, {"urgency": 0.0})
    twap5 = run_episode(sc, "twap", 5, TRAINING_CHILD_SIZE)
    assert slow != pytest.approx(twap5.shortfall_bps, abs=1e-6)


@pytest.mark.parametrize("name", ["demo-largecap-sell", "demo-midcap-buy"])
def test_on_the_volume_schedule_the_neutral_action_is_vwap_exactly(name: str) -> None:
    """With `schedule: volume` the policy works around VWAP's curve: its neutral action is
    the VWAP baseline, child for child (and not TWAP, on a u-shaped day)."""
    sc = load_scenario(REPO / "execution" / "scenarios" / f"{name}.json")
    sc = sc.with_order(start_minute=0, end_minute=60)  # the open, where the curve is steep
    neutral = _constant(0.0, "midpoint", 0.3)
    # The baselines get the dark share exactly as the policy's float32 output decodes
    # (0.3000000028): a dark part too small for a lot is carried to the next child, and
    # a sum that lands a hair either side of a whole share would part the two.
    same = {"dark_fraction": adaptive.decode(neutral).dark_share}

    def setup(engine: Any) -> None:
        engine.orders[ORDER_ID].strategy.use_policy(lambda obs: neutral)

    for seed in (5, 6):
        vwap = run_episode(sc, "vwap", seed, same)
        ada = run_episode(sc, "adaptive", seed, {"schedule": "volume"}, setup=setup)
        assert ada.shortfall_bps == pytest.approx(vwap.shortfall_bps, abs=1e-9), seed
        assert ada.children == vwap.children
        by_time = run_episode(sc, "adaptive", seed, {"schedule": "time"}, setup=setup)
        assert by_time.shortfall_bps == pytest.approx(
            run_episode(sc, "twap", seed, same).shortfall_bps, abs=1e-9
        )
        assert by_time.shortfall_bps != pytest.approx(vwap.shortfall_bps, abs=1e-6)
