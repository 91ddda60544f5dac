"""Tests for execution.backtest (the command) and execution.backtest_stats (its statistics)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from execution import backtest
from execution.algos.registry import strategy_class
from execution.backtest_stats import (
    PairedDifference,
    mean,
    mean_defined,
    paired_difference,
    sample_sd,
    standard_error,
)
from execution.sim.scenario import load_scenario

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DIR = REPO_ROOT / "execution" / "scenarios"
MIDCAP = str(SCENARIO_DIR / "demo-midcap-buy.json")
MIDCAP_SEED = 7101
EPISODES = "2"

REQUIRED_KEYS = {
    "scenario",
    "strategy",
    "params",
    "episodes",
    "seed",
    "shortfall_bps",
    "mean_shortfall_bps",
    "stderr_bps",
    "fill_rate",
    "participation",
    "vwap_slippage_bps",
    "elapsed_s",
    "fallbacks",
    "fallback_reasons",
}
OPTIONAL_KEYS = {"paired_vs_twap_bps", "scenario_file", "model_sha256", "by_curve_alone"}


def run_main(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str
) -> tuple[list[Any], str, str]:
    out = tmp_path / f"results-{len(list(tmp_path.iterdir()))}.json"
    code = backtest.main([*args, "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(out.read_text()), captured.out, captured.err


def by_strategy(results: list[Any]) -> dict[str, Any]:
    return {r["strategy"]: r for r in results}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """twap and is on the midcap scenario, two episodes, default seed, one process."""
    out = tmp_path_factory.mktemp("ref") / "r.json"
    code = backtest.main(
        [MIDCAP, "--strategies", "twap,is", "--episodes", EPISODES, "--json", str(out)]
    )
    assert code == 0
    return by_strategy(json.loads(out.read_text()))


# ---------------------------------------------------------------- statistics


def test_mean_sd_and_standard_error_by_hand() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert mean(values) == 2.5
    # squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3
    assert sample_sd(values) == pytest.approx(math.sqrt(5 / 3))
    assert standard_error(values) == pytest.approx(math.sqrt(5 / 3) / 2)


def test_spread_of_one_value_is_undefined_not_zero() -> None:
    assert sample_sd([4.0]) is None
    assert standard_error([4.0]) is None
    assert paired_difference([4.0], [1.0]) == PairedDifference(3.0, None, None)


def test_mean_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        mean([])


def test_paired_difference_by_hand() -> None:
    # differences 2, 3, 4: mean 3, sd 1, half-width 1.96 / sqrt(3)
    d = paired_difference([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])
    half = 1.96 / math.sqrt(3)
    assert d.mean == pytest.approx(3.0)
    assert d.ci95_low == pytest.approx(3.0 - half)
    assert d.ci95_high == pytest.approx(3.0 + half)
    assert d.to_dict() == {"mean": d.mean, "ci95_low": d.ci95_low, "ci95_high": d.ci95_high}


def test_paired_difference_ignores_noise_both_share() -> None:
    # Wildly different days, same gap every day: the gap is known exactly.
    d = paired_difference([101.0, -49.0, 11.0], [100.0, -50.0, 10.0])
    assert (d.mean, d.ci95_low, d.ci95_high) == pytest.approx((1.0, 1.0, 1.0))


def test_paired_difference_needs_equal_lengths() -> None:
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


def test_mean_defined_skips_undefined_values() -> None:
    assert mean_defined([None, 1.0, 3.0]) == 2.0
    assert mean_defined([None, None]) is None


# ---------------------------------------------------------------- results


def test_json_has_exactly_the_documented_keys_and_types(reference: dict[str, Any]) -> None:
    assert set(reference) == {"twap", "is"}
    for name, r in reference.items():
        assert REQUIRED_KEYS <= set(r) <= REQUIRED_KEYS | OPTIONAL_KEYS
        assert r["scenario"] == "demo-midcap-buy"
        assert r["scenario_file"] == MIDCAP
        assert r["strategy"] == name
        # The full validated params: every name in the schema, defaults filled in.
        assert set(r["params"]) == {p.name for p in strategy_class(name).schema()}
        assert r["episodes"] == 2 and type(r["episodes"]) is int
        assert r["seed"] == MIDCAP_SEED and type(r["seed"]) is int
        assert len(r["shortfall_bps"]) == 2
        assert all(isinstance(x, float) for x in r["shortfall_bps"])
        assert r["mean_shortfall_bps"] == pytest.approx(mean(r["shortfall_bps"]))
        assert r["stderr_bps"] == pytest.approx(standard_error(r["shortfall_bps"]))
        assert 0.0 < r["fill_rate"] <= 1.0
        assert 0.0 < r["participation"] <= 1.0
        assert isinstance(r["vwap_slippage_bps"], float)
        assert r["elapsed_s"] > 0.0
        assert r["fallbacks"] == 0 and r["fallback_reasons"] == {}
        assert set(r["paired_vs_twap_bps"]) == {"mean", "ci95_low", "ci95_high"}
    assert reference["twap"]["paired_vs_twap_bps"] == {
        "mean": 0.0,
        "ci95_low": 0.0,
        "ci95_high": 0.0,
    }
    diffs = [
        a - b
        for a, b in zip(
            reference["is"]["shortfall_bps"], reference["twap"]["shortfall_bps"], strict=True
        )
    ]
    assert reference["is"]["paired_vs_twap_bps"]["mean"] == pytest.approx(mean(diffs))


def test_jobs_do_not_change_results_and_twap_is_run_as_baseline(
    reference: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    results, out, _ = run_main(
        capsys, tmp_path, MIDCAP, "--strategies", "is", "--episodes", EPISODES, "--jobs", "2"
    )
    # TWAP was not asked for: it is in the table, marked, but not in the JSON.
    assert [r["strategy"] for r in results] == ["is"]
    assert results[0]["shortfall_bps"] == reference["is"]["shortfall_bps"]
    assert results[0]["paired_vs_twap_bps"] == reference["is"]["paired_vs_twap_bps"]
    assert any(line.startswith("twap* ") for line in out.splitlines())
    assert "twap was not requested" in out


def test_same_seed_same_numbers_and_episode_k_uses_seed_plus_k(
    reference: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    again, _, _ = run_main(
        capsys,
        tmp_path,
        MIDCAP,
        "--strategies",
        "twap",
        "--episodes",
        EPISODES,
        "--seed",
        str(MIDCAP_SEED),
    )
    assert again[0]["shortfall_bps"] == reference["twap"]["shortfall_bps"]
    assert again[0]["mean_shortfall_bps"] == reference["twap"]["mean_shortfall_bps"]

    shifted, _, _ = run_main(
        capsys,
        tmp_path,
        MIDCAP,
        "--strategies",
        "twap",
        "--episodes",
        EPISODES,
        "--seed",
        str(MIDCAP_SEED + 1),
    )
    assert shifted[0]["seed"] == MIDCAP_SEED + 1
    assert shifted[0]["shortfall_bps"] != reference["twap"]["shortfall_bps"]
    # Episode 0 of seed S + 1 is the same simulated day as episode 1 of seed S.
    assert shifted[0]["shortfall_bps"][0] == reference["twap"]["shortfall_bps"][1]


def test_param_reaches_the_strategy(
    reference: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    results, _, _ = run_main(
        capsys,
        tmp_path,
        MIDCAP,
        "--strategies",
        "is",
        "--episodes",
        EPISODES,
        "--param",
        "is.risk_aversion=1e-4",
    )
    assert results[0]["params"]["risk_aversion"] == 1e-4
    assert results[0]["shortfall_bps"] != reference["is"]["shortfall_bps"]


def test_table_header_columns_and_alignment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, out, err = run_main(capsys, tmp_path, MIDCAP, "--strategies", "twap", "--episodes", "1")
    lines = out.splitlines()
    assert (
        lines[0]
        == "demo-midcap-buy: HBRK buy 120,000 sh, 10:15-13:15 (180 min), 8.0% ADV, 1 episode, seed 7101"
    )
    for column in (
        "shortfall (bps)",
        "s.e. (bps)",
        "vs TWAP (bps)",
        "95% CI (bps)",
        "fill (%)",
        "fallbacks",
        "time (s)",
    ):
        assert column in lines[1]
    # Numbers are right-aligned, so every row ends where the header does.
    assert len(lines[2]) == len(lines[1])
    assert lines[2].split()[:3] == ["twap", lines[2].split()[1], "-"]  # one episode: no s.e.
    # stderr is not a terminal here: one progress line per finished scenario/strategy.
    assert "done demo-midcap-buy twap: 1 episode," in err


def test_a_strategy_that_left_the_order_unfilled_is_marked_not_comparable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The unfilled rest is charged only the move to the end mid: a strategy that trades
    little looks cheap (a review: a 2% POV filling 4.8% was "25.6 bps cheaper than TWAP").
    Its figures are marked, and the table says why; the JSON keeps the format's figures."""
    results, out, _ = run_main(
        capsys, tmp_path, MIDCAP, "--strategies", "twap,pov", "--episodes", "1",
        "--param", "pov.participation_rate=0.02",
    )  # fmt: skip
    pov = by_strategy(results)["pov"]
    assert pov["fill_rate"] < 0.5
    rows = {line.split()[0]: line for line in out.splitlines()[2:4]}
    assert "\u2020" not in rows["twap"] and rows["pov"].count("\u2020") == 2
    assert (
        f"\u2020 pov filled {pov['fill_rate']:.1%} of the order: the rest is charged only the "
        "move to the window's end mid (FORMAT.md)" in out
    )


def test_few_episodes_come_with_a_note_on_their_intervals(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The interval is the normal one (mean ± 1.96 s.e.); with a handful of episodes
    Student's t is far wider, and the run says so rather than let 3 episodes look
    significant."""
    _, out, err = run_main(capsys, tmp_path, MIDCAP, "--strategies", "is", "--episodes", "3")
    assert (
        "note: 3 episodes: the 95% intervals above use the normal quantile (1.96), fair from "
        "about 30 episodes; with 3, Student's t gives intervals 2.2 times as wide." in err
    )
    assert "note:" not in out  # the table stays a table
    # No interval printed (TWAP alone, or a single episode): nothing to warn about.
    for strategies, episodes in (("twap", "3"), ("is", "1")):
        _, _, err = run_main(
            capsys, tmp_path, MIDCAP, "--strategies", strategies, "--episodes", episodes
        )
        assert "note:" not in err


def test_fallbacks_are_counted_with_their_reasons(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose training range no order's features fit: every adaptive episode falls
    back to TWAP at its first decision, and the table, its note and the JSON say how many
    and why. (A model file that cannot be loaded at all is refused before any episode.)"""
    from execution.algos import adaptive
    from execution.features import N_FEATURES, TrainingRange

    narrow = TrainingRange((0.0,) * N_FEATURES, (1e-6,) * N_FEATURES)
    for_order = adaptive.OnnxPolicy.for_order

    def narrow_range(self: adaptive.OnnxPolicy, ctx: object) -> object:
        policy, _, expert = for_order(self, ctx)  # type: ignore[arg-type]
        return policy, narrow, expert

    monkeypatch.setattr(adaptive.OnnxPolicy, "for_order", narrow_range)
    data = json.loads(Path(MIDCAP).read_text())
    data["order"].update(start_minute=60, end_minute=75, quantity=5000)
    sc = tmp_path / "short.json"
    sc.write_text(json.dumps(data))
    results, out, _ = run_main(
        capsys, tmp_path, str(sc), "--strategies", "twap,adaptive", "--episodes", "3"
    )
    r = by_strategy(results)
    assert r["twap"]["fallbacks"] == 0 and r["twap"]["fallback_reasons"] == {}
    assert r["adaptive"]["fallbacks"] == 3
    ((reason, count),) = r["adaptive"]["fallback_reasons"].items()
    assert count == 3 and reason.startswith("FeaturesOutOfRange: ")
    # TWAP took over from the first decision: the same episodes as TWAP's own.
    assert r["adaptive"]["shortfall_bps"] == r["twap"]["shortfall_bps"]
    lines = out.splitlines()
    assert lines[1].endswith("fallbacks  time (s)")

    def fallbacks_cell(strategy: str) -> str:
        row = next(line for line in lines if line.startswith(strategy + " "))
        assert len(row) == len(lines[1])  # right-aligned under its header
        return row.split()[-2]

    assert fallbacks_cell("twap") == "0" and fallbacks_cell("adaptive") == "3"
    assert "adaptive fell back to twap in 3 of 3 episodes: FeaturesOutOfRange 3" in lines


def test_fallback_note_groups_reasons_by_kind() -> None:
    def result(fallback: str) -> backtest.EpisodeResult:
        fields = dict(
            strategy="adaptive", seed=1, qty=100, filled_qty=100, avg_px=1.0, arrival_mid=1.0,
            end_mid=1.0, shortfall_bps=0.0, vwap_slippage_bps=None, participation=0.1,
            fees=0.0, status="FILLED", children=1, denials=0, events=1, background_events=1,
            elapsed_s=0.1,
        )  # fmt: skip
        return backtest.EpisodeResult(**fields, fallback=fallback)  # type: ignore[arg-type]

    run = backtest.StrategyRun(
        "adaptive",
        {},
        True,
        [
            result("FeaturesOutOfRange: features outside the policy's training range: vol_30s"),
            result("FeaturesOutOfRange: features outside the policy's training range: spread"),
            result("PolicyOutputInvalid: policy returned a non-finite value: [nan]"),
            result(""),
        ],
    )
    assert backtest.fallback_note(run) == (
        "adaptive fell back to twap in 3 of 4 episodes: FeaturesOutOfRange 2, PolicyOutputInvalid 1"
    )
    assert list(backtest.fallback_reasons(run.finished()).values()) == [1, 1, 1]
    run.results = [result(""), result("")]
    assert backtest.fallback_note(run) is None


def test_every_repo_scenario_loads() -> None:
    files = sorted(SCENARIO_DIR.glob("*.json"))
    assert len(files) >= 3
    for f in files:
        load_scenario(f)


# ---------------------------------------------------------------- bad input: exit 2, no traceback


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "execution.backtest", *args, "--episodes", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def scenario_without(tmp_path: Path, section: str, key: str) -> str:
    data = json.loads(Path(MIDCAP).read_text())
    del data[section][key]
    path = tmp_path / "incomplete.json"
    path.write_text(json.dumps(data))
    return str(path)


def written(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def with_simulator(tmp_path: Path, knobs: dict[str, Any]) -> str:
    data = json.loads(Path(MIDCAP).read_text())
    data["simulator"] = knobs
    return written(tmp_path, "knobs.json", json.dumps(data))


def test_another_simulators_knobs_are_ignored_with_a_note(tmp_path: Path) -> None:
    """FORMAT.md: keys under "simulator" that this simulator does not know are ignored."""
    path = with_simulator(tmp_path, {"their_knob": {"eta": 0.1}})
    proc = run_cli(path, "--strategies", "twap")
    assert proc.returncode == 0, proc.stderr
    assert "simulator.their_knob is not a knob of this simulator; ignored" in proc.stderr
    plain = run_cli(MIDCAP, "--strategies", "twap")

    def shortfall(out: str) -> str:  # the twap row's mean shortfall: the same days, ignored knob
        return next(line for line in out.splitlines() if line.startswith("twap")).split()[1]

    assert shortfall(proc.stdout) == shortfall(plain.stdout)


def test_a_fractional_spread_is_said_to_be_simulated_in_whole_ticks(tmp_path: Path) -> None:
    data = json.loads(Path(MIDCAP).read_text())
    data["instrument"]["spread_ticks"] = 2.5
    proc = run_cli(written(tmp_path, "half.json", json.dumps(data)), "--strategies", "twap")
    assert proc.returncode == 0, proc.stderr
    assert "instrument.spread_ticks 2.5 is simulated as a book 2 ticks wide" in proc.stderr
    assert "spread_ticks" not in run_cli(MIDCAP, "--strategies", "twap").stderr


def test_seeds_past_32_bits_draw_days_of_their_own() -> None:
    """A seed was cut to its low 32 bits, so seed s and s + 2**32 were the same day (a
    review's seeds 2**64 - 1 and 10**35 gave the same figures). Seeds under 2**32, every
    seed the product and its models use, draw the days they always drew."""
    from execution.sim.background import rng_for

    def first(seed: int) -> list[float]:
        return list(rng_for(seed, 1).random(3))

    days = [first(5), first(5 + 2**32), first(5 + 2**64)]
    assert len({tuple(d) for d in days}) == 3
    legacy = np.random.default_rng(np.random.SeedSequence([5, 1])).random(3)
    assert first(5) == list(legacy)  # a small seed's stream as before


def test_errors_raised_in_a_worker_reach_the_parent_intact() -> None:
    """A pool pickles a worker's exception; one that cannot be rebuilt hangs the pool."""
    import pickle

    from execution.algos.params import ParamError
    from execution.sim.scenario import ScenarioError

    for e in (ScenarioError("order.quantity", "is required"), ParamError("x", "bad")):
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is type(e) and str(again) == str(e)
        assert (again.key, again.message) == (e.key, e.message)


def bad_json(tmp_path: Path) -> str:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",')
    return str(path)


@pytest.mark.parametrize(
    ("make_args", "named"),
    [
        (lambda t: [bad_json(t)], ["broken.json", "invalid JSON"]),
        (
            lambda t: [scenario_without(t, "order", "quantity")],
            ["incomplete.json", "order.quantity"],
        ),
        (lambda t: [str(t / "missing.json")], ["missing.json", "not found"]),
        (lambda t: [MIDCAP, "--strategies", "twap,nosuch"], ["nosuch"]),
        (lambda t: [MIDCAP, "--param", "twap.nope=1"], ["twap.nope"]),
        (lambda t: [MIDCAP, "--param", "is.risk_aversion=abc"], ["is.risk_aversion", "abc"]),
        (lambda t: [MIDCAP, "--param", "is.risk_aversion=1"], ["is.risk_aversion", "at most"]),
        (lambda t: [MIDCAP, "--param", "nosuch.x=1"], ["nosuch"]),
        (lambda t: [MIDCAP, "--param", "risk_aversion"], ["STRATEGY.NAME=VALUE"]),
        (lambda t: [MIDCAP, "--jobs", "0"], ["--jobs"]),
        (
            lambda t: [with_simulator(t, {"impact_permanent": "x"})],
            ["knobs.json", "simulator.impact_permanent", "finite number"],
        ),
        (lambda t: [written(t, "deep.json", "[" * 100_000)], ["deep.json", "nested too deeply"]),
        (
            lambda t: [written(t, "digits.json", '{"seed": ' + "9" * 5000 + "}")],
            ["digits.json", "invalid JSON"],
        ),
        (lambda t: [MIDCAP, "--json", MIDCAP], ["--json", "is one of the inputs"]),
        (
            lambda t: [MIDCAP, "--strategies", "adaptive", "--model", written(t, "m.onnx", "junk")],
            ["--model", "m.onnx", "cannot load model"],
        ),
        (lambda t: [MIDCAP, "--jobs", "99999999999999999999"], ["--jobs", "must be from 1"]),
        (
            lambda t: [MIDCAP, "--strategies", "adaptive", "--model", "policy-v99"],
            ["--model policy-v99", "not found", "shipped versions: policy-v1,"],
        ),
        (
            lambda t: [MIDCAP, "--strategies", "adaptive", "--model", str(t)],
            ["--model", "is not a file (a directory?)"],
        ),
        (
            lambda t: [MIDCAP, "--strategies", "adaptive", "--model", " "],
            ["--model: name a model version (policy-v14) or an ONNX file"],
        ),
        (
            lambda t: [
                MIDCAP,
                "--strategies",
                "adaptive",
                "--model",
                "policy-v1",
                "--param",
                "adaptive.model=policy-v2",
            ],
            ["--model and --param adaptive.model both name a model: give one of them"],
        ),
        (
            lambda t: [
                MIDCAP,
                "--strategies",
                "adaptive",
                "--seed",
                str(2**63),
                "--decision-log",
                str(t / "log"),
            ],
            ["--seed: episode seeds run to 9223372036854775808", "decision log's largest seed"],
        ),
    ],
    ids=[
        "bad-json",
        "missing-key",
        "missing-file",
        "unknown-strategy",
        "unknown-param",
        "param-not-a-number",
        "param-out-of-range",
        "param-unknown-strategy",
        "param-malformed",
        "argparse-usage",
        "bad-knob",
        "deep-json",
        "huge-integer",
        "json-over-input",
        "corrupt-model",
        "huge-jobs",
        "unknown-version",
        "model-is-a-directory",
        "model-blank",
        "model-given-twice",
        "seed-past-the-decision-log",
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    make_args: Any, named: list[str], tmp_path: Path
) -> None:
    proc = run_cli(*make_args(tmp_path))
    assert proc.returncode == 2, proc.stderr
    for text in named:
        assert text in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""  # nothing was run


def test_a_model_that_answers_nan_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """It ran as "fell back to twap in 2 of 2 episodes", exit 0: TWAP measured under the
    model's name (a trial). BACKTEST.md promises status 2."""
    onnx = pytest.importorskip("onnx", reason="the training extras (requirements-train.txt)")
    import numpy as np
    from onnx import numpy_helper

    from execution.algos.adaptive import MODEL_DIR

    model = onnx.load(str(MODEL_DIR / "policy-v8.onnx"))
    init = model.graph.initializer[0]
    nan = np.full_like(numpy_helper.to_array(init), np.nan)
    init.CopyFrom(numpy_helper.from_array(nan, init.name))
    path = tmp_path / "nan.onnx"
    onnx.save(model, str(path))
    proc = run_cli(MIDCAP, "--strategies", "adaptive", "--model", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "answers a neutral observation with a non-finite value" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_results_name_the_models_bytes_and_an_expert_outside_its_band_is_said(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A trial ran the tight-spread expert on a 42 bps name, which the product refuses,
    without a word; and the JSON named the model only as typed."""
    from execution.algos.adaptive import MODEL_DIR
    from execution.learning.model_files import sha256

    wide = "execution/scenarios/demo-smallcap-regime.json"
    results, _, err = run_main(
        capsys, tmp_path, wide, "--strategies", "twap,adaptive", "--model", "policy-v8",
        "--episodes", "1",
    )  # fmt: skip
    assert f"note: {wide}: policy-v8 was trained only for instruments quoting 0 to 5 bps" in err
    adaptive = by_strategy(results)["adaptive"]
    assert adaptive["model_sha256"] == sha256(MODEL_DIR / "policy-v8.onnx")
    assert "model_sha256" not in by_strategy(results)["twap"]
    _, _, err = run_main(
        capsys, tmp_path, "execution/scenarios/demo-largecap-sell.json", "--strategies",
        "adaptive", "--model", "policy-v8", "--episodes", "1",
    )  # fmt: skip
    assert "trained only for" not in err  # inside its band: nothing to say


def test_an_adaptive_order_too_small_for_the_model_is_said_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Under 5 lots the order is worked along its curve without the model; a 100-share
    order showed 0.00 bps on every day under the model's name without a word (a note)."""
    small = json.loads(Path(MIDCAP).read_text())
    small["order"]["quantity"] = 300
    path = tmp_path / "small.json"
    path.write_text(json.dumps(small))
    results, out, _ = run_main(
        capsys, tmp_path, str(path), MIDCAP, "--strategies", "twap,adaptive", "--episodes", "1"
    )
    twap, tiny, _, whole = results
    assert tiny["by_curve_alone"] is True and whole["by_curve_alone"] is False
    assert "by_curve_alone" not in twap
    assert "adaptive: 300 sh is under 5 lots of 100, so it was worked along its curve" in out
    assert out.count("without the model") == 1


def test_a_scenario_file_with_a_byte_order_mark_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Some editors start a UTF-8 file with one; it was refused."""
    marked = tmp_path / "marked.json"
    marked.write_bytes(b"\xef\xbb\xbf" + Path(MIDCAP).read_bytes())
    results, _, _ = run_main(
        capsys, tmp_path, str(marked), "--strategies", "twap", "--episodes", "1"
    )
    assert results[0]["scenario"] == json.loads(Path(MIDCAP).read_text())["name"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--episodes", "0"], "error: argument --episodes: must be from 1 to 100,000, got 0"),
        (["--seed", "abc"], "error: argument --seed: must be a whole number, got 'abc'"),
        (["--bogus"], "error: unrecognized arguments: --bogus"),
    ],
)
def test_a_bad_option_is_one_line_as_the_docs_say(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse printed its whole usage block first (a trial); BACKTEST.md says one line."""
    with pytest.raises(SystemExit) as exit_:
        backtest.main([MIDCAP, *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(said), err


def test_an_order_larger_than_a_days_volume_is_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1e12 shares ran to a 0.0% fill with no word of why (a trial)."""
    data = json.loads(Path(MIDCAP).read_text())
    data["order"]["quantity"] = 3 * int(data["instrument"]["adv_shares"])
    big = tmp_path / "big.json"
    big.write_text(json.dumps(data))
    assert backtest.main([str(big), "--strategies", "twap", "--episodes", "1"]) == 0
    assert f"note: {big}: the order, 4,500,000 shares, is 300% of the instrument's ADV" in (
        capsys.readouterr().err
    )
    assert backtest.main([MIDCAP, "--strategies", "twap", "--episodes", "1"]) == 0
    assert "of the instrument's ADV" not in capsys.readouterr().err
