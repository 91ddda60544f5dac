"""The short-horizon predictor: it beats its simple baselines on held-out days, its ONNX file
matches torch, a policy that names it gets its value, and a bad predictor file falls back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from execution.algos import adaptive
from execution.algos.adaptive import Adaptive, ModelUnavailable, load_policy, resolve_model
from execution.features import normalise
from execution.learning import predictor as P
from execution.learning.scenarios import validation_seeds
from tests.adaptive_runs import run

PREDICTOR = resolve_model("predictor-v1")
POLICY = resolve_model("policy-v2")
needs_predictor = pytest.mark.skipif(not PREDICTOR.is_file(), reason="no shipped predictor")
needs_files = pytest.mark.skipif(
    not (PREDICTOR.is_file() and POLICY.is_file()), reason="no shipped predictor / policy-v2"
)
# Validation days no training, early stopping, held-out report or policy validation uses.
TEST_SLICE = validation_seeds(20, offset=70_000)


def test_auc_and_accuracy_by_hand() -> None:
    assert P.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert P.auc([0.0, 0.0, 0.0], [0, 1, 1]) == pytest.approx(0.5)  # ties count half
    assert P.accuracy([-1.0, 2.0, 0.5], [0, 1, 0]) == pytest.approx(2 / 3)


@needs_predictor
def test_predictor_beats_its_baselines_on_held_out_days() -> None:
    ds = P.build_dataset(TEST_SLICE)
    x, y = ds.labelled()
    assert len(y) > 2000 and 0.4 < y.mean() < 0.6
    signal = P.load_predictor("predictor-v1").batch(ds.x[ds.moved])
    assert np.all(np.abs(signal) <= 1.0)
    base = P.baselines(x, y, train_up_share=0.5)
    best_auc = max(b["auc"] for b in base.values())
    best_acc = max(b["accuracy"] for b in base.values())
    assert P.auc(signal, y) > best_auc
    assert P.accuracy(signal, y) > best_acc


def test_training_and_export_agree_with_onnxruntime(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    ds = P.build_dataset(validation_seeds(3, offset=71_000))
    x, y = ds.labelled()
    cfg = P.Config(epochs=2, hidden=(8,))
    net, history = P.fit(cfg, x, y, x, y)
    assert len(history) == 2
    path = tmp_path / "p.onnx"
    P.export_onnx(net, path, {"format": P.PREDICTOR_FORMAT, "inputs": json.dumps(P.INPUTS)})
    served = P.OnnxPredictor(path).batch(ds.x[ds.moved])
    expected = P.predict_torch(net, x)
    assert np.abs(served - expected).max() < 1e-5


def test_shipped_predictor_matches_its_weights_in_torch() -> None:
    """The shipped file's initializers, loaded into the torch module, give what
    onnxruntime gives (the export is faithful)."""
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    if not PREDICTOR.is_file():
        pytest.skip("no shipped predictor")
    from onnx import numpy_helper

    card = json.loads(PREDICTOR.with_suffix(".card.json").read_text())
    net = P.make_module(card["config"]["hidden"])
    weights = {
        i.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(i).copy())
        for i in onnx.load(str(PREDICTOR)).graph.initializer
    }
    net.load_state_dict(weights)
    ds = P.build_dataset(validation_seeds(2, offset=71_100))
    served = P.load_predictor(str(PREDICTOR)).batch(ds.x)
    expected = P.predict_torch(net.eval(), ds.x[:, P.INPUT_INDEX])
    assert np.abs(served - expected).max() < 1e-5


@needs_files
def test_a_policy_with_a_predictor_gets_its_value_in_its_observation() -> None:
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def setup(strategy: Adaptive) -> None:
        observe = strategy.observe

        def recording(view: Any) -> Any:
            obs = observe(view)
            assert strategy.features.last is not None
            seen.append((obs, strategy.features.last.copy()))
            return obs

        strategy.observe = recording  # type: ignore[method-assign]

    engine = run({"model": "policy-v2"}, setup)
    assert not engine.fallbacks
    assert load_policy("policy-v2").metadata["predictor"] == "predictor-v1"
    pred = P.load_predictor("predictor-v1")
    values = [obs[-1] for obs, _ in seen]
    expected = [pred(normalise(raw).values) for _, raw in seen]
    assert len(seen) > 10
    np.testing.assert_allclose(values, expected, atol=1e-6)
    assert np.std(values) > 0.01  # a live signal, not a constant


def test_a_policy_without_a_predictor_sees_zero() -> None:
    if not resolve_model("policy-v1").is_file():
        pytest.skip("no policy-v1")
    seen: list[float] = []

    def setup(strategy: Adaptive) -> None:
        observe = strategy.observe

        def recording(view: Any) -> Any:
            obs = observe(view)
            seen.append(float(obs[-1]))
            return obs

        strategy.observe = recording  # type: ignore[method-assign]

    engine = run({"model": "policy-v1"}, setup)
    assert not engine.fallbacks and seen and set(seen) == {0.0}


@needs_files
@pytest.mark.parametrize("problem", ["missing", "corrupt", "another file"])
def test_a_bad_predictor_file_falls_back_to_twap(
    problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A models folder with policy-v2 and a bad predictor-v1 beside it.
    shutil.copy(POLICY, tmp_path / "policy-v2.onnx")
    bad = tmp_path / "predictor-v1.onnx"
    if problem == "corrupt":
        bad.write_bytes(b"not an onnx file")
    elif problem == "another file":
        shutil.copy(PREDICTOR, bad)
        with bad.open("ab") as f:
            f.write(b"\0")  # still loads, but is not the file the policy was trained with
    monkeypatch.setattr(adaptive, "MODEL_DIR", tmp_path)
    engine = run({"model": "policy-v2"})
    assert engine.fallbacks, "the strategy did not fall back"
    _, failed, why = engine.fallbacks[0]
    assert failed == "adaptive" and "ModelUnavailable" in why and "predictor" in why
    assert engine.orders["A-1"].parent.status.value == "FILLED"  # TWAP finished the order


def test_load_predictor_refuses_a_policy_file(tmp_path: Path) -> None:
    if not POLICY.is_file():
        pytest.skip("no policy-v2")
    with pytest.raises(ModelUnavailable, match="not a predictor"):
        P.OnnxPredictor(POLICY)
