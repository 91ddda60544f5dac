"""The learning loop: the decision log feeds a retrain that registers a candidate, which
trades only after two risk managers approve it."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from execution import backtest
from execution.algos.adaptive import load_policy
from execution.learning.decision_log import decision_arrays, read_decisions
from execution.model_registry import approved_names, model_approve, model_recommend
from execution.model_registry import file_sha256 as sha256_of
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
    decision_log: Path,
    tmp_path: Path,
    rita: User,
    ruth: User,
    capsys: pytest.CaptureFixture[str],
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
    # Named after its base, never the next policy-vN (the docs' names for other models).
    assert mv.status == ModelVersion.CANDIDATE and mv.name == "policy-v1-r1"
    assert f"registered {mv.name} as a candidate" in out.getvalue()
    # The card names its base and the logged experience it used.
    table = read_decisions(decision_log)
    assert mv.card["retrain"]["base_sha256"] == base.sha256
    assert mv.card["retrain"]["logged_rows"] == table.num_rows > 0
    assert mv.card["retrain"]["logged_orders"] == 2
    # And which model made the logged decisions: the default, not this base (allowed: the
    # log gives order contexts and states, not actions; said, and kept, a review).
    made = table.column("model_sha256").to_pylist()
    assert mv.card["retrain"]["logged_models"] == [
        {"version": "policy-v14", "sha256": made[0], "rows": table.num_rows}
    ]
    assert made[0] != base.sha256
    assert (
        f"note: {table.num_rows} logged decisions were made by policy-v14 ({made[0][:12]}), "
        "not policy-v1" in capsys.readouterr().err
    )
    # Evaluated beside the base and the four baselines, on the same days.
    ev = mv.metrics
    assert ev["episodes"] == 3
    assert set(ev["candidate_minus"]) == {"base", "twap", "vwap", "pov", "is"}
    assert set(ev["mean_shortfall_bps"]) == {"candidate", "base", "twap", "vwap", "pov", "is"}
    # Its training range covers every feature value production logged.
    logged = decision_arrays(table)["features_raw"]
    rng = load_policy(str(Path(tmp_path / "models" / "policy-v1-r1.onnx"))).training_range
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
    assert approved_names()[0] == "policy-v1-r1"


# The smallest retrain the command accepts: a few seconds.
TINY = [
    "--iterations",
    "1",
    "--pairs",
    "1",
    "--episodes-per-pair",
    "1",
    "--range-episodes",
    "1",
    "--evaluation",
    "2",
    "--jobs",
    "1",
]


@needs_training
def test_an_expert_s_retrain_card_says_what_it_was_fitted_on_and_by_which_code(
    decision_log: Path, tmp_path: Path
) -> None:
    """policy-v8 trades one band: its range is fitted without the logged rows, and the
    card said 517 of them were in it (a trial). The card names the code's commit, as every
    other trainer's does, and its one iteration once."""
    approved_model("policy-v8")
    out = io.StringIO()
    call_command(
        "model_retrain",
        "--from",
        "policy-v8",
        "--decision-log",
        str(decision_log),
        *TINY,
        "--out-dir",
        str(tmp_path / "models"),
        stdout=out,
    )
    mv = ModelVersion.objects.get(name="policy-v8-r1")  # not policy-v9, a shipped model's name
    assert mv.card["retrain"]["logged_rows"] > 0
    assert mv.card["data"]["training_range_logged_rows"] == 0
    assert "logged rows are left out" in mv.card["data"]["training_range_note"]
    assert set(mv.card["code"]) >= {"git_commit", "dirty"}
    assert [h["iteration"] for h in mv.card["history"]] == [1]
    written = json.loads((tmp_path / "models" / "policy-v8-r1.card.json").read_text())
    assert written["code"] == mv.card["code"]


@needs_training
def test_an_expert_is_judged_on_days_of_its_band(tmp_path: Path) -> None:
    """policy-v13 trades spreads of 5 bps and more; judged on the first held-out days, it
    fell back on 3 of 4 (tighter names, which it refuses) and measured TWAP (a trial)."""
    from execution.learning.scenarios import quoted_spread

    approved_model("policy-v13")
    out = io.StringIO()
    call_command(
        "model_retrain", "--from", "policy-v13", *TINY, "--out-dir", str(tmp_path / "m"), stdout=out
    )
    card = ModelVersion.objects.get(name="policy-v13-r1").card
    ev = card["evaluation"]
    assert ev["seeds"] and all(quoted_spread(s)[1] >= 5.0 for s in ev["seeds"]), ev["seeds"]
    assert ev["fallbacks"]["base"] == 0  # v13 itself trades them (a tiny candidate's range may not)
    assert "the expert's band" in ev["days"] and "which days: the first" in out.getvalue()
    # Said as people read a band, and marked on the list as its base is (two trials).
    assert "with a spread of 5 bps and over and a participation of any" in ev["days"]
    assert card["validation"]["schedule"] == "volume"


@needs_training
def test_too_few_band_days_for_the_evaluation_is_said_before_training(tmp_path: Path) -> None:
    """It raised after the whole training run, a traceback, with the file half written (a
    review)."""
    approved_model("policy-v13")
    args = [*TINY[: TINY.index("--evaluation")], "--evaluation", "30000", "--jobs", "1"]
    with pytest.raises(CommandError, match=r"--evaluation 30000: only \d+ validation days"):
        call_command("model_retrain", "--from", "policy-v13", *args, "--out-dir", str(tmp_path))
    assert not list(tmp_path.rglob("*.onnx"))


@needs_training
def test_a_base_changed_on_disk_is_refused_before_training(tmp_path: Path) -> None:
    """A tampered base was retrained, and the card gave the tampered hash as the base's
    (a trial): refused at once, as recommend and approve refuse it."""
    from execution.algos.adaptive import MODEL_DIR
    from execution.model_registry import model_register

    copy = tmp_path / "policy-v1.onnx"
    copy.write_bytes((MODEL_DIR / "policy-v1.onnx").read_bytes())
    copy.with_suffix(".card.json").write_bytes((MODEL_DIR / "policy-v1.card.json").read_bytes())
    registered = model_register(path=copy, note="test").sha256
    approved_model("policy-v1")
    # Another policy in its place: it loads and trains, as the trial's did.
    copy.write_bytes((MODEL_DIR / "policy-v2.onnx").read_bytes())
    now = sha256_of(copy)
    with pytest.raises(CommandError) as refused:
        call_command(
            "model_retrain", "--from", "policy-v1", *TINY, "--out-dir", str(tmp_path / "m")
        )
    message = str(refused.value)
    assert "cannot retrain from policy-v1: a file changed on disk since registration" in message
    assert now[:12] in message and registered[:12] in message
    assert ModelVersion.objects.count() == 1
    assert not list(tmp_path.rglob("*-r1*"))


def _fake_retrain(monkeypatch: pytest.MonkeyPatch, fallbacks: dict[str, int]) -> list[Any]:
    """The command around a stand-in for the training: a shipped file (not the base's
    bytes) as the candidate, and the evaluation given. Returns the configs it was given."""
    from execution.algos.adaptive import MODEL_DIR

    seen: list[Any] = []
    files = iter(("policy-v2", "policy-v4"))  # one file, one version: another each call

    def retrain(rc: Any, log: Any = None) -> dict[str, Any]:
        seen.append(rc)
        rc.out.write_bytes((MODEL_DIR / f"{next(files)}.onnx").read_bytes())
        diff = {"mean": 0.0, "ci95_low": 0.0, "ci95_high": 0.0}
        ev = {
            "episodes": 2,
            "mean_shortfall_bps": {"candidate": 3.0, "base": 3.0, "twap": 3.0},
            "fallbacks": fallbacks,
            "candidate_minus": {"base": diff, "twap": diff},
        }
        return {
            "retrain": {"logged_rows": 0, "logged_orders": 0},
            "evaluation": ev,
            "sha256": sha256_of(rc.out),  # as write_card does
        }

    monkeypatch.setattr("execution.learning.retrain.retrain", retrain)
    return seen


@needs_training
@pytest.mark.parametrize(
    ("fallbacks", "said", "not_said"),
    [
        (
            {"candidate": 2, "base": 0},
            "policy-v1-r1 fell back to TWAP on every evaluation day: it traded as TWAP, so "
            "this comparison measures nothing",
            "policy-v1 fell back",
        ),
        (
            {"candidate": 0, "base": 2},
            "policy-v1 fell back to TWAP on every evaluation day: the comparison with it "
            "measures policy-v1-r1 against TWAP",
            "policy-v1-r1 fell back",
        ),
        (
            {"candidate": 1, "base": 0},
            "policy-v1-r1 fell back to TWAP on 1 of 2 evaluation days (50%): on those days it "
            "traded as TWAP",
            "every evaluation day",
        ),
        ({"candidate": 0, "base": 1}, "", "evaluation days ("),
    ],
)
def test_the_summary_says_how_often_each_model_fell_back(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fallbacks: dict[str, int],
    said: str,
    not_said: str,
) -> None:
    """ "policy-v10 minus twap: +0.00 bps [+0.00, +0.00]" read as a result, when the
    candidate had been TWAP on both days (a trial)."""
    approved_model("policy-v1")
    _fake_retrain(monkeypatch, fallbacks)
    out = io.StringIO()
    call_command("model_retrain", "--out-dir", str(tmp_path / "m"), stdout=out)
    printed = out.getvalue()
    assert (
        f"fell back to TWAP: policy-v1-r1 on {fallbacks['candidate']} of 2 days, "
        f"policy-v1 on {fallbacks['base']} of 2 days"
    ) in printed
    assert said in printed and not_said not in printed


@needs_training
def test_a_retrain_without_a_decision_log_says_so_and_names_the_usual_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Any
) -> None:
    """Outside dev.py run nothing sets the log's folder: the retrain said "0 logged
    decisions in 0 orders" beside a var/decision-log full of files (a trial). It says why,
    and names the folder, without reading it unasked."""
    approved_model("policy-v1")
    settings.DECISION_LOG_DIR = None
    settings.BASE_DIR = tmp_path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var" / "decision-log").mkdir(parents=True)
    (tmp_path / "var" / "decision-log" / "a.parquet").write_bytes(b"")
    seen = _fake_retrain(monkeypatch, {"candidate": 0, "base": 0})
    out = io.StringIO()
    call_command("model_retrain", stdout=out)
    printed = out.getvalue()
    assert seen[0].decision_log is None
    assert (
        "no decision log read: OVERSIGHT_DECISION_LOG_DIR is not set (scripts/dev.py run sets "
        "it) and --decision-log was not given; training on generated days only" in printed
    )
    assert "(1 decision file): to train on it, pass --decision-log var/decision-log" in printed
    # Named by the caller: read, and nothing said.
    log = tmp_path / "given"
    log.mkdir()
    out = io.StringIO()
    call_command("model_retrain", "--decision-log", str(log), "--name", "given", stdout=out)
    assert seen[1].decision_log == log and "no decision log" not in out.getvalue()


def test_model_retrain_help_shows_the_training_defaults() -> None:
    from execution.management.commands.model_retrain import Command

    text = " ".join(Command().create_parser("manage.py", "model_retrain").format_help().split())
    for option, default in [
        ("--iterations ITERATIONS", 30),
        ("--pairs PAIRS", 8),
        ("--episodes-per-pair EPISODES_PER_PAIR", 2),
        ("--range-episodes RANGE_EPISODES", 60),
        ("--jobs JOBS", 2),
        ("--seed SEED", 1),
    ]:
        after = text.split(option, 2)[-1]  # the option's help, after its usage line
        assert f"(default: {default})" in after.split(" --")[0], option


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    """Said with or without the training extras (a trial had to install them to learn
    that --from named no version); only a run that would train asks for them."""
    with pytest.raises(CommandError, match="no approved model version"):
        call_command("model_retrain")
    approved_model("policy-v1")
    with pytest.raises(CommandError, match="there is no model version 'nope'"):
        call_command("model_retrain", "--from", "nope")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("model_retrain", "--decision-log", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="--iterations: must be from 1 to 100,000, got 0"):
        call_command("model_retrain", "--iterations", "0")
    with pytest.raises(CommandError, match="--evaluation: must be from 2 to 100,000, got 1"):
        call_command("model_retrain", "--evaluation", "1")
    # A seed too large for numpy failed after the model had loaded, not naming --seed.
    with pytest.raises(CommandError, match="--seed: must be from 0 to 2,147,483,647"):
        call_command("model_retrain", "--seed", "99999999999999999999")
    # call_command's keywords skip the parser's types: checked again.
    with pytest.raises(CommandError, match="--iterations must be from 1 to 100,000"):
        call_command("model_retrain", iterations=0)
    with pytest.raises(CommandError, match=r"--evaluation must be from 2 to 100,000 \(a paired"):
        call_command("model_retrain", evaluation=1)
    with pytest.raises(CommandError, match="--jobs must be from 1 to 256"):
        call_command("model_retrain", jobs=10_000)
    with pytest.raises(CommandError, match="--seed must be from 0 to 2,147,483,647"):
        call_command("model_retrain", seed=2**31)
    for name in ("../../escape", "a/b", ".hidden", "x" * 65):
        with pytest.raises(CommandError, match=r"--name .*: use letters, digits"):
            call_command("model_retrain", "--name", name, "--out-dir", str(tmp_path / "m"))
    assert not list(tmp_path.rglob("*.onnx"))  # nothing written anywhere
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CommandError, match=r"--out-dir .*: cannot create it"):
        call_command("model_retrain", "--out-dir", str(a_file / "sub"))
    # An empty folder name is the current folder: refused, not written into (a trial).
    with pytest.raises(CommandError, match="--out-dir: name a folder"):
        call_command("model_retrain", "--out-dir", "")
    with pytest.raises(CommandError, match="--decision-log: name a folder"):
        call_command("model_retrain", "--decision-log", "")
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(CommandError, match=r"requirements-train\.txt"):
            call_command("model_retrain", "--out-dir", str(tmp_path / "m"))
        assert ModelVersion.objects.count() == 1
        return
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
