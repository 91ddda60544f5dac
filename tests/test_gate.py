"""Gated policies: experts by the instrument's quoted spread, in one ONNX file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from execution.algos import adaptive
from execution.algos.adaptive import OBS_DIM, ModelUnavailable, PolicyOutputInvalid, load_policy
from execution.engine.engine import ExecutionEngine
from execution.sim.episode import ORDER_ID, order_spec, run_episode
from execution.sim.market import Market
from tests.adaptive_runs import short_scenario

MODELS = adaptive.MODEL_DIR


def spread_of_short_scenario() -> float:
    inst = short_scenario().instrument
    return inst.spread_ticks * inst.tick_size / inst.reference_price * 1e4


def build(tmp_path: Path, *experts: str) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from execution.learning import gate

    specs = [gate.parse_expert(e) for e in experts]
    out = tmp_path / "gated.onnx"
    gate.export(specs, gate.check_experts(specs), out, "test")
    return out


def test_the_gated_file_is_each_expert_in_its_band(tmp_path: Path) -> None:
    path = build(tmp_path, "policy-v2:4", "policy-v4")
    gated, v2, v4 = load_policy(str(path)), load_policy("policy-v2"), load_policy("policy-v4")
    assert gated.gate is not None
    assert [e.name for e in gated.gate.experts] == ["policy-v2", "policy-v4"]
    assert gated.gate.experts[0].sha256 == v2.sha256
    assert gated.gate.experts[1].training_range == v4.training_range
    rng = np.random.default_rng(3)
    for _ in range(30):
        obs = rng.uniform(-1, 1, OBS_DIM).astype(np.float32)
        np.testing.assert_allclose(gated(obs, 3.99), v2(obs), atol=1e-6)
        np.testing.assert_allclose(gated(obs, 4.0), v4(obs), atol=1e-6)
        np.testing.assert_allclose(gated(obs, 250.0), v4(obs), atol=1e-6)
    assert np.abs(v2(obs) - v4(obs)).max() > 1e-3  # the experts differ, so this shows the gate
    with pytest.raises(PolicyOutputInvalid):
        gated(obs)  # a gated file needs the spread


@pytest.mark.parametrize(("bound", "expert"), [(50.0, "policy-v2"), (1.0, "policy-v4")])
def test_an_order_is_traded_start_to_end_by_its_band_s_expert(
    tmp_path: Path, bound: float, expert: str
) -> None:
    assert 1.0 < spread_of_short_scenario() < 50.0
    path = build(tmp_path, f"policy-v2:{bound:g}", "policy-v4")
    sc = short_scenario()
    got = run_episode(sc, "adaptive", 11, {"model": str(path)})
    want = run_episode(sc, "adaptive", 11, {"model": expert})
    other_expert = "policy-v4" if expert == "policy-v2" else "policy-v2"
    other = run_episode(sc, "adaptive", 11, {"model": other_expert})
    assert got.fallback == "" and want.fallback == ""
    assert got.shortfall_bps == want.shortfall_bps and got.children == want.children
    assert other.shortfall_bps != want.shortfall_bps


def test_features_are_checked_against_the_trading_expert_s_range(tmp_path: Path) -> None:
    path = build(tmp_path, "policy-v2:50", "policy-v4")
    policy = load_policy(str(path))
    sc = short_scenario()
    engine = ExecutionEngine(Market(sc, 11))
    engine.add_order(order_spec(sc, ORDER_ID, "adaptive", {"model": str(path)}, 0.5))
    strategy = engine.orders[ORDER_ID].strategy
    _, training_range, name = policy.for_order(strategy.ctx)
    assert name == "policy-v2"
    assert training_range == load_policy("policy-v2").training_range
    assert training_range != policy.training_range  # not the union the file also carries


def test_a_broken_gate_falls_back_to_twap(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    path = build(tmp_path, "policy-v2:4", "policy-v4")
    model = onnx.load(str(path))
    for p in model.metadata_props:
        if p.key == "gate":
            d = json.loads(p.value)
            d["experts"] = d["experts"][:1]  # one expert, bounded: not a gate
            p.value = json.dumps(d)
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    with pytest.raises(ModelUnavailable, match="bad gate metadata"):
        adaptive.OnnxPolicy(broken)
    for bound in (-1, 10**400):  # a negative band; a number no float can hold
        for prop in model.metadata_props:
            if prop.key == "gate":
                d = json.loads(prop.value)
                d["experts"] = [dict(d["experts"][0], below_bps=bound), d["experts"][0]]
                d["experts"][1]["below_bps"] = None
                prop.value = json.dumps(d)
        odd = tmp_path / f"odd-{bound > 0}.onnx"
        onnx.save(model, str(odd))
        with pytest.raises(ModelUnavailable, match="bad gate metadata"):
            adaptive.OnnxPolicy(odd)
    r = run_episode(short_scenario(), "adaptive", 11, {"model": str(broken)})
    assert "bad gate metadata" in r.fallback and r.filled_qty == r.qty


def test_the_gate_command_refuses_what_it_cannot_build() -> None:
    gate = pytest.importorskip("execution.learning.gate")
    assert gate.parse_expert("policy-v6:5") == ("policy-v6", 5.0)
    assert gate.parse_expert("policy-v4") == ("policy-v4", math.inf)
    for bad, why in [
        ("policy-v6:wide", "not a spread"),
        ("policy-v6:-1", "positive"),
        (":5", "no model"),
    ]:
        with pytest.raises(gate.GateError, match=why):
            gate.parse_expert(bad)
    with pytest.raises(gate.GateError, match="at least two"):
        gate.check_experts([("policy-v2", math.inf)])
    with pytest.raises(gate.GateError, match="the last none"):
        gate.check_experts([("policy-v2", 5.0), ("policy-v4", 9.0)])
    with pytest.raises(gate.GateError, match="must increase"):
        gate.check_experts([("policy-v2", 5.0), ("policy-v4", 3.0), ("policy-v2", math.inf)])
    with pytest.raises(gate.GateError, match="different predictors"):
        gate.check_experts([("policy-v1", 5.0), ("policy-v2", math.inf)])


def shipped_gated() -> list[str]:
    return [m for m in adaptive.shipped_models() if load_policy(m).gate is not None]


def test_the_default_model_is_a_shipped_gated_one() -> None:
    assert adaptive.DEFAULT_MODEL in shipped_gated()


@pytest.mark.parametrize("name", shipped_gated())
def test_a_shipped_gated_model_is_its_card_s_experts(name: str) -> None:
    path = MODELS / f"{name}.onnx"
    card = json.loads(path.with_suffix(".card.json").read_text(encoding="utf-8"))
    gated = load_policy(name)
    assert gated.gate is not None and gated.sha256 == card["sha256"]
    assert [e["model"] for e in card["config"]["experts"]] == [e.name for e in gated.gate.experts]
    rng = np.random.default_rng(7)
    lo = 0.0
    for e in gated.gate.experts:
        expert = load_policy(e.name, e.sha256)  # the shipped file of that hash
        assert expert.training_range == e.training_range
        spread = lo + 0.5 if e.below_bps == math.inf else (lo + e.below_bps) / 2
        for _ in range(10):
            obs = rng.uniform(-1, 1, OBS_DIM).astype(np.float32)
            np.testing.assert_allclose(gated(obs, spread), expert(obs), atol=1e-6)
        lo = e.below_bps
