"""The learning loop: the decision log feeds a retrain that registers a candidate, which
trades only after two risk managers approve it."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from execution import backtest
from execution.algos.adaptive import load_policy
from execution.learning.decision_log import decision_arrays, read_decisions
from execution.model_registry import approved_names, model_approve, model_recommend
from execution.models import ModelVersion
from tests.conftest import REPO_SCENARIOS
from tests.personas import approved_model, client_for

pytestmark = pytest.mark.django_db(transaction=True)

needs_training = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("onnx") is None,
    reason="needs the training extras (requirements-train.txt)",
)


@pytest.fixture
def decision_log(tmp_path: Path) -> Path:
    out = tmp_path / "log"
    code = backtest.main(
        [
            str(REPO_SCENARIOS / "demo-smallcap-regime.json"),
            "--strategies",
            "adaptive",
            "--episodes",
            "2",
            "--decision-log",
            str(out),
        ]
    )
    assert code == 0
    return out


@needs_training
def test_a_retrain_registers_a_candidate_with_its_evaluation(
    decision_log: Path, tmp_path: Path, rita: User, ruth: User
) -> None:
    base = approved_model("policy-v1")
    out = io.StringIO()
    call_command(
        "model_retrain",
        "--decision-log",
        str(decision_log),
        "--iterations",
        "2",
        "--pairs",
        "2",
        "--episodes-per-pair",
        "1",
        "--range-episodes",
        "2",
        "--evaluation",
        "3",
        "--jobs",
        "1",
        "--out-dir",
        str(tmp_path / "models"),
        stdout=out,
    )
    mv = ModelVersion.objects.exclude(pk=base.pk).get()
    assert mv.status == ModelVersion.CANDIDATE and mv.name == "policy-v2"
    assert f"registered {mv.name} as a candidate" in out.getvalue()
    # The card names its base and the logged experience it used.
    table = read_decisions(decision_log)
    assert mv.card["retrain"]["base_sha256"] == base.sha256
    assert mv.card["retrain"]["logged_rows"] == table.num_rows > 0
    assert mv.card["retrain"]["logged_orders"] == 2
    # Evaluated beside the base and the four baselines, on the same days.
    ev = mv.metrics
    assert ev["episodes"] == 3
    assert set(ev["candidate_minus"]) == {"base", "twap", "vwap", "pov", "is"}
    assert set(ev["mean_shortfall_bps"]) == {"candidate", "base", "twap", "vwap", "pov", "is"}
    # Its training range covers every feature value production logged.
    logged = decision_arrays(table)["features_raw"]
    rng = load_policy(str(Path(tmp_path / "models" / "policy-v2.onnx"))).training_range
    assert rng is not None
    lo, hi = np.array(rng.lo), np.array(rng.hi)
    assert np.all(lo <= logged.min(axis=0)) and np.all(hi >= logged.max(axis=0))
    # Its page puts the evaluation before the person who decides.
    page = client_for(rita).get(f"/risk/models/{mv.pk}/").content.decode()
    assert 'id="comparison"' in page and "<td>base</td>" in page and "<td>twap</td>" in page
    # The loop closes only through a person: not offered until two approve it.
    assert approved_names() == ["policy-v1"]
    model_recommend(user=rita, version_id=mv.pk, reason="evaluated")
    model_approve(user=ruth, version_id=mv.pk, note="test: checked")
    assert approved_names()[0] == "policy-v2"


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(CommandError, match=r"requirements-train\.txt"):
            call_command("model_retrain")
        return
    with pytest.raises(CommandError, match="no approved model version"):
        call_command("model_retrain")
    approved_model("policy-v1")
    with pytest.raises(CommandError, match="there is no model version 'nope'"):
        call_command("model_retrain", "--from", "nope")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("model_retrain", "--decision-log", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="at least 1"):
        call_command("model_retrain", "--iterations", "0")
    with pytest.raises(CommandError, match="--evaluation must be at least 2"):
        call_command("model_retrain", "--evaluation", "1")
    for name in ("../../escape", "a/b", ".hidden", "x" * 65):
        with pytest.raises(CommandError, match=r"--name .*: use letters, digits"):
            call_command("model_retrain", "--name", name, "--out-dir", str(tmp_path / "m"))
    assert not list(tmp_path.rglob("*.onnx"))  # nothing written anywhere
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CommandError, match=r"--out-dir .*: cannot create it"):
        call_command("model_retrain", "--out-dir", str(a_file / "sub"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(CommandError, match="decision log"):
        call_command("model_retrain", "--decision-log", str(bad), "--out-dir", str(tmp_path / "m"))
    assert ModelVersion.objects.count() == 1


@needs_training
def test_a_gated_base_is_refused_with_its_experts_named(tmp_path: Path) -> None:
    from execution.algos.adaptive import MODEL_DIR

    if not (MODEL_DIR / "policy-v7.onnx").is_file():
        pytest.skip("no shipped gated model")
    approved_model("policy-v7")
    with pytest.raises(CommandError, match=r"gated model of policy-v6 \(spread under 5 bps\)"):
        call_command("model_retrain", "--out-dir", str(tmp_path / "m"))
    assert not list((tmp_path / "m").glob("*.onnx"))


def test_production_contexts_shape_training_orders(decision_log: Path) -> None:
    from execution.learning.contexts import context_for, contexts_from_log, scenario_dict
    from execution.learning.scenarios import generate

    table = read_decisions(decision_log)
    ctxs = contexts_from_log(decision_arrays(table), table.column("episode_id").to_pylist())
    scenario = json.loads((REPO_SCENARIOS / "demo-smallcap-regime.json").read_text())
    adv = scenario["instrument"]["adv_shares"]
    assert len(ctxs) == 2
    for c in ctxs:
        assert c.side == scenario["order"]["side"]
        assert c.size_adv == pytest.approx(scenario["order"]["quantity"] / adv, rel=1e-3)
        window = scenario["order"]["end_minute"] - scenario["order"]["start_minute"]
        assert window - 2 <= c.window_minutes <= window + 1
    tuples = [c.as_tuple() for c in ctxs]
    seeds = range(1_000_000, 1_000_200)
    taken = [s for s in seeds if context_for(s, tuples, 0.5) is not None]
    assert 60 < len(taken) < 140  # about half the days
    s = taken[0]
    d, plain = scenario_dict(s, tuples, 0.5), generate(s)
    assert d["instrument"] == plain["instrument"] and d["venues"] == plain["venues"]
    assert d["order"]["side"] == "buy"
    assert d["order"]["quantity"] == pytest.approx(
        ctxs[0].size_adv * plain["instrument"]["adv_shares"], rel=0.05, abs=100
    )
    assert scenario_dict(s) == plain  # no contexts: the generated day as it was
