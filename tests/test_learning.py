"""Training scenarios, the environment, and a short training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from execution.algos.adaptive import ACTION_DIM, OBS_DIM
from execution.learning import scenarios
from execution.learning.env import TRAINING_CHILD_SIZE, ExecutionEnv, run_policy
from execution.sim.scenario import parse_scenario

TWAP_LIKE = np.array([0.0, 0.0, 1.0, 0.0, -0.85], dtype=np.float32)


def test_generator_is_deterministic_valid_and_varied() -> None:
    seeds = scenarios.train_seeds(0, 150)
    docs = [scenarios.generate(s) for s in seeds]
    assert docs[0] == scenarios.generate(seeds[0])
    pct, windows, sides, outages, regimes, darks = [], set(), set(), 0, 0, 0
    for s, d in zip(seeds, docs, strict=True):
        sc = parse_scenario(d)
        assert sc.seed == s
        pct.append(sc.order.quantity / sc.instrument.adv_shares)
        windows.add(sc.order.end_minute - sc.order.start_minute)
        sides.add(sc.order.side)
        outages += bool(sc.outages)
        regimes += bool(sc.regimes)
        darks += bool(sc.dark_venues)
    assert min(pct) >= 0.004 and max(pct) <= 0.30
    assert max(pct) > 0.1 and min(pct) < 0.01
    assert sides == {"buy", "sell"} and len(windows) >= 5
    assert outages and regimes and darks


def test_generator_seeds_are_disjoint_from_evaluation() -> None:
    assert scenarios.GENERATOR_SEEDS.start >= scenarios.EVALUATION_SEED_CEILING
    assert set(scenarios.TRAIN_SEEDS).isdisjoint(
        range(scenarios.VALIDATION_SEEDS.start, scenarios.VALIDATION_SEEDS.stop)
    )
    for bad in (101, 505, 7101, 99_999, 2_100_000):
        with pytest.raises(ValueError):
            scenarios.generate(bad)


def short_seed() -> int:
    for s in scenarios.train_seeds(1000, 500):
        o = scenarios.generate(s)["order"]
        if o["end_minute"] - o["start_minute"] <= 30:
            return s
    raise AssertionError("no short scenario")


def test_env_rewards_add_up_to_the_shortfall() -> None:
    env = ExecutionEnv()
    seen: list[np.ndarray] = []
    shortfall = run_policy(env, lambda obs: TWAP_LIKE, short_seed(), record=seen)
    summary = env.summary()
    assert shortfall == pytest.approx(summary["shortfall_bps"], abs=1e-9)
    assert summary["fill_rate"] == 1.0
    obs = np.stack(seen)
    assert obs.shape[1] == OBS_DIM and np.isfinite(obs).all() and np.abs(obs).max() <= 1.0


def test_env_actions_change_the_outcome() -> None:
    env = ExecutionEnv()
    seed = short_seed()
    passive = run_policy(env, lambda o: TWAP_LIKE, seed)
    take = np.array([1.0, 0.0, 0.0, 5.0, -5.0], dtype=np.float32)
    aggressive = run_policy(env, lambda o: take, seed)
    assert passive != aggressive


def test_gymnasium_env_passes_the_checker() -> None:
    gym = pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    from execution.learning.env import make_gymnasium_env

    env = make_gymnasium_env()
    assert isinstance(env, gym.Env)
    assert env.action_space.shape == (ACTION_DIM,)
    check_env(env, skip_render_check=True)


@pytest.mark.slow
def test_short_training_improves_on_its_start() -> None:
    pytest.importorskip("torch")
    from execution.learning import train

    fixed = tuple(
        s
        for s in scenarios.train_seeds(2000, 400)
        if scenarios.generate(s)["order"]["end_minute"]
        - scenarios.generate(s)["order"]["start_minute"]
        <= 60
    )[:4]
    cfg = train.Config(
        seed=5, iterations=6, pairs=6, sigma=0.2, learning_rate=0.1, fixed_seeds=fixed, jobs=1
    )
    runner = train.Runner(1)
    result = train.train(cfg, runner)
    before = np.mean(train.evaluate(runner, result.initial, cfg, fixed))
    after = np.mean(train.evaluate(runner, result.theta, cfg, fixed))
    assert after < before


def test_probing_the_mid_leaves_the_episode_unchanged() -> None:
    seed = short_seed()
    env = ExecutionEnv()
    plain = run_policy(env, lambda obs: TWAP_LIKE, seed)
    env.reset(seed=seed)
    total, mids = 0.0, []
    while True:
        _, reward, done, _, info = env.step(TWAP_LIKE, mid_probes=(10.0, 5.0))
        total += reward
        mids.append(info["probe_mids"])
        if done:
            break
    assert -total == plain
    assert all(len(m) == 2 for m in mids)
    assert mids[-1] == [None, None]  # the last decision's horizon passes the window's end
    # A probe that would reach the next decision is None: near the window's end decisions
    # come closer together than 10 s; everywhere else the probes read a mid.
    read = [m[0] for m in mids if m[0] is not None]
    assert len(read) >= len(mids) - 3 and all(mid > 0 for mid in read)


def test_env_feeds_the_predictor_into_the_observation() -> None:
    from execution.features import normalise
    from execution.learning.predictor import load_predictor

    path = Path(__file__).resolve().parents[1] / "execution/learning/models/predictor-v1.onnx"
    if not path.is_file():
        pytest.skip("no shipped predictor")
    pred = load_predictor(str(path))
    env = ExecutionEnv(predictor=str(path))
    obs, _ = env.reset(seed=short_seed())
    values, expected = [], []
    while True:
        assert env.strategy is not None and env.strategy.features.last is not None
        values.append(obs[-1])
        expected.append(pred(normalise(env.strategy.features.last).values))
        obs, _, done, _, _ = env.step(TWAP_LIKE)
        if done:
            break
    np.testing.assert_allclose(values, expected, atol=1e-6)
    assert np.std(values) > 0.01


def test_warm_start_reads_a_policy_s_weights() -> None:
    pytest.importorskip("onnx")
    from execution.algos.adaptive import load_policy
    from execution.learning import train

    theta = train.params_from_onnx("policy-v1", (16, 16))
    assert theta.size == train.n_params((16, 16))
    first_w, _ = train.unpack(theta, (16, 16))[0]
    assert np.all(first_w[:, OBS_DIM - 1] == 0.0)  # the predictor input starts unused
    mine, shipped = train.NumpyPolicy(theta, (16, 16)), load_policy("policy-v1")
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.uniform(-1, 1, OBS_DIM).astype(np.float32)
        obs[-1] = 0.0  # v1 was trained with the predictor at 0
        np.testing.assert_allclose(mine(obs), shipped(obs), atol=1e-5)
    obs[-1] = 1.0  # ...where its own, random predictor weights would have mattered
    assert np.abs(mine(obs) - shipped(obs)).max() > 1e-3


def test_the_evaluation_command_compares_models_with_twap_by_spread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from execution.learning.evaluate import main

    assert main(["--models", "policy-v1", "--days", "2", "--offset", "99000", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "validation days 2099000-2099001 (2), urgency 0" in out
    assert "policy-v1: all " in out and "spread <= 2 ticks" in out and "spread >= 5 bps" in out


def test_cost_units_weigh_days_by_their_spread() -> None:
    pytest.importorskip("torch")  # train.py's module imports torch lazily, its helpers not
    from execution.learning import train

    seed = short_seed()
    inst = scenarios.generate(seed)["instrument"]
    expected = inst["spread_ticks"] * inst["tick_size"] / inst["reference_price"] * 1e4
    assert train.spread_bps(seed) == pytest.approx(max(expected, 0.1))
    assert train.day_cost_unit(seed, train.Config(cost_unit="bps")) == 1.0
    assert train.day_cost_unit(seed, train.Config(cost_unit="spread")) == pytest.approx(
        max(expected, 0.1)
    )
    # "both" trains: one iteration on fixed days moves the weights.
    cfg = train.Config(seed=3, iterations=1, pairs=2, fixed_seeds=(seed,), jobs=1, cost_unit="both")
    result = train.train(cfg, train.Runner(1))
    assert not np.array_equal(result.theta, result.initial)


def test_an_expert_trains_on_its_band_s_days_only() -> None:
    from execution.learning.bands import band_seeds, in_band

    tight = band_seeds(123, 40, (0.0, 5.0))
    wide = band_seeds(123, 40, (5.0, 0.0))
    assert len(tight) == len(wide) == 40 and not set(tight) & set(wide)
    assert all(scenarios.quoted_spread(s)[1] < 5.0 for s in tight)
    assert all(scenarios.quoted_spread(s)[1] >= 5.0 for s in wide)
    assert tight == sorted(tight) and all(s in scenarios.TRAIN_SEEDS for s in tight)
    # Both bands are common among generated days, so neither skips far.
    assert max(tight[-1], wide[-1]) - scenarios.TRAIN_SEEDS.start - 123 < 200
    assert in_band(tight[0], (0.0, 0.0)) and in_band(wide[0], (0.0, 0.0))
    with pytest.raises(ValueError, match="too few generated days lie in spread"):
        band_seeds(0, 5, (5000.0, 0.0))  # no generated instrument is that wide
    from execution.learning.bands import validation_band_seeds

    last = len(scenarios.VALIDATION_SEEDS) - 64
    assert len(validation_band_seeds(last, 64, (0.0, 0.0), (0.0, 0.0))) == 64
    with pytest.raises(
        ValueError, match="only 64 validation days have a spread of any and a participation of any"
    ):
        validation_band_seeds(last, 65, (0.0, 0.0), (0.0, 0.0))  # past the last one


def test_a_band_is_said_as_people_read_it() -> None:
    """0 bounds nothing: "[5.0, 0.0] bps" read as an empty band (a trial)."""
    from execution.learning.bands import band_words

    assert band_words((5.0, 0.0), "bps") == "5 bps and over"
    assert band_words((0.0, 5.0), "bps") == "under 5 bps"
    assert band_words((3.0, 5.0), "bps") == "3 to 5 bps"
    assert band_words((0.0, 0.0)) == "any"
    assert band_words((0.15, 0.0)) == "0.15 and over"


def test_an_order_s_expected_participation_is_its_share_of_its_window_s_volume() -> None:
    seeds = scenarios.train_seeds(0, 400)
    shares = [scenarios.expected_participation(s) for s in seeds]
    assert all(0 < p <= scenarios.MAX_EXPECTED_PARTICIPATION + 0.01 for p in shares)
    assert max(shares) > 0.3 and min(shares) < 0.01  # the generator's whole range
    # A flat day's whole-session order: its share of the day's volume, qty / ADV.
    flat = next(
        s
        for s in seeds
        if scenarios.generate(s)["volume_profile"] == "flat"
        and scenarios.generate(s)["order"]["end_minute"]
        - scenarios.generate(s)["order"]["start_minute"]
        == 390
    )
    g = scenarios.generate(flat)
    assert scenarios.expected_participation(flat) == pytest.approx(
        g["order"]["quantity"] / g["instrument"]["adv_shares"]
    )
    # Half the day on a flat profile: twice that.
    g2 = next(
        scenarios.generate(s)
        for s in seeds
        if scenarios.generate(s)["volume_profile"] == "flat"
        and scenarios.generate(s)["order"]["end_minute"]
        - scenarios.generate(s)["order"]["start_minute"]
        == 180
    )
    seed2 = g2["seed"]
    assert scenarios.expected_participation(seed2) == pytest.approx(
        g2["order"]["quantity"] / g2["instrument"]["adv_shares"] * 390 / 180
    )


def test_an_expert_can_be_banded_by_participation_as_well_as_spread() -> None:
    from execution.learning.bands import band_seeds, validation_band_seeds

    high = band_seeds(77, 30, (0.0, 5.0), (0.15, 0.0))
    low = band_seeds(77, 30, (0.0, 5.0), (0.0, 0.15))
    assert len(high) == len(low) == 30 and not set(high) & set(low)
    assert all(scenarios.quoted_spread(s)[1] < 5.0 for s in high + low)
    assert all(scenarios.expected_participation(s) >= 0.15 for s in high)
    assert all(scenarios.expected_participation(s) < 0.15 for s in low)
    held_out = validation_band_seeds(500, 20, (0.0, 0.0), (0.15, 0.0))
    assert all(s in scenarios.VALIDATION_SEEDS and s >= 2_000_500 for s in held_out)
    assert all(scenarios.expected_participation(s) >= 0.15 for s in held_out)
    with pytest.raises(ValueError, match=r"and a participation of 0\.3 and over"):
        validation_band_seeds(len(scenarios.VALIDATION_SEEDS) - 100, 90, (0.0, 0.0), (0.3, 0.0))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0.15", "expected LO,HI"),
        ("a,b", "expected LO,HI"),
        ("0.3,0.1", "not a band"),
        ("0,0", "leave it out"),
        ("1.5,0", "not a band"),
        ("-0.1,0", "not a band"),
    ],
)
def test_a_bad_participation_band_is_named(text: str, why: str) -> None:
    from execution.learning.bands import PARTICIPATION, parse_band

    with pytest.raises(ValueError, match=why) as e:
        parse_band(text, "--participation-band", PARTICIPATION)
    assert "--participation-band" in str(e.value)


def test_the_environment_works_around_the_schedule_it_is_given() -> None:
    from execution.sim.episode import run_episode

    seed = short_seed()
    sc = scenarios.scenario(seed)
    neutral = np.array([0.0, 0.0, 1.0, 0.0, np.log(0.3 / 0.7)], dtype=np.float32)
    by_volume = run_policy(ExecutionEnv(schedule="volume"), lambda obs: neutral, seed)
    by_time = run_policy(ExecutionEnv(), lambda obs: neutral, seed)
    vwap = run_episode(sc, "vwap", seed, TRAINING_CHILD_SIZE)
    twap = run_episode(sc, "twap", seed, TRAINING_CHILD_SIZE)
    assert by_volume == pytest.approx(vwap.shortfall_bps, abs=1e-9)
    assert by_time == pytest.approx(twap.shortfall_bps, abs=1e-9)
    assert by_volume != pytest.approx(by_time, abs=1e-6)  # a u-shaped day: the curves differ


def test_the_trainer_refuses_a_bad_spread_band(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from execution.learning import train

    for option, bad, why in [
        ("--spread-band", "5", "expected LO,HI"),
        ("--spread-band", "5,2", "not a band"),
        ("--spread-band", "0,0", "not a band"),
        ("--participation-band", "0.5", "expected LO,HI"),
        ("--participation-band", "2,0", "not a band"),
        ("--participation-band", "0.45,0", "too few generated days"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            # In a scratch folder: a band wrongly accepted would train and write a model.
            train.main(["--out", str(tmp_path / "x.onnx"), option, bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert why in err and (option in err or "too few" in why)


def test_a_retrain_keeps_an_expert_s_band_and_schedule() -> None:
    from execution.algos.adaptive import load_policy
    from execution.learning.retrain import _band_of, _schedule_of

    v8, v4 = load_policy("policy-v8").metadata, load_policy("policy-v4").metadata
    assert (_band_of(v8), _schedule_of(v8)) == ((0.0, 5.0), "volume")
    assert (_band_of(v4), _schedule_of(v4)) == ((0.0, 0.0), "time")  # trained before either
    assert (_band_of({}), _schedule_of({"config": "not json"})) == ((0.0, 0.0), "time")


def test_a_retrain_is_regularised_as_its_base_was() -> None:
    """A retrain of v13 ran with the trainer's decay (0.005, towards zero), not v13's own
    (0.1, towards its starting weights), and nothing said so (a trial)."""
    from execution.algos.adaptive import load_policy
    from execution.learning.retrain import _regularisation_of

    assert _regularisation_of(load_policy("policy-v13").metadata) == (0.1, "start")
    assert _regularisation_of({}) == (0.005, "zero")
    assert _regularisation_of({"config": '{"weight_decay": -1, "decay_to": "start"}'}) == (
        0.005,
        "zero",
    )


@pytest.mark.parametrize(
    ("module", "args", "why"),
    [
        ("train", ["--pairs", "0"], "--pairs: must be from 1"),
        ("train", ["--sigma", "nan"], "--sigma: must be a finite number"),
        ("train", ["--hidden", "abc"], "--hidden: must be comma-separated"),
        ("train", ["--validation", "0"], "--validation: must be from 2"),
        ("train", ["--init-from", "policy-v7"], "a gated model; start from one of its experts"),
        ("train", ["--init-from", "predictor-v1"], "not an adaptive policy"),
        ("train", ["--predictor", "policy-v2"], "not a predictor"),
        ("train", ["--init-from", "policy-v2", "--hidden", "8"], "does not fit --hidden"),
        ("train", ["--out", "."], "--out .: is a folder"),
        ("gate", ["--expert", "policy-v8:5", "--expert", "policy-v99"], "expert policy-v99"),
        (
            "gate",
            ["--expert", "policy-v8:5", "--expert", "policy-v4", "--validation", "1"],
            "--validation: must be from 2",
        ),
        ("predictor", ["--train-episodes", "2"], "--train-episodes: must be from 10"),
        ("predictor", ["--hidden", "0"], "each layer size must be from 1"),
    ],
)
def test_learning_commands_refuse_bad_options_before_any_work(
    capsys: pytest.CaptureFixture[str], module: str, args: list[str], why: str
) -> None:
    """A usage error (status 2) naming the option, before minutes of simulation; never a
    traceback after them, and no half-written model."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import importlib

    main = importlib.import_module(f"execution.learning.{module}").main
    out = [] if "--out" in args else ["--out", "never-written.onnx"]
    with pytest.raises(SystemExit) as exit_:
        main([*out, *args])
    assert exit_.value.code == 2
    assert why in capsys.readouterr().err
    assert not Path("never-written.onnx").exists()


def test_the_best_baseline_is_one_that_finished_its_orders() -> None:
    """On these three days POV is the cheapest baseline, having left 18% of its shares
    unfilled: the retrain's evaluation named it the best (a trial)."""
    from execution.algos.adaptive import MODEL_DIR
    from execution.learning.evaluate import compare

    out = compare(
        {"m": MODEL_DIR / "policy-v8.onnx"},
        scenarios.validation_seeds(3, offset=90_010),
        candidate="m",
        baselines=("twap", "vwap", "pov"),
    )
    cost, fill = out["mean_shortfall_bps"], out["fill_rate"]
    assert fill["pov"] < 0.9 and cost["pov"] < min(cost["twap"], cost["vwap"])
    assert fill["twap"] == fill["vwap"] == fill["m"] == 1.0
    assert out["best_baseline"] == min(("twap", "vwap"), key=cost.__getitem__)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--models", "policy-v99"], "--models policy-v99: model file"),
        (["--models", ","], "name at least one model"),
        (["--models", "predictor-v1"], "not an adaptive policy"),
        (["--models", "policy-v1", "--urgency", "nan"], "--urgency: must be a finite number"),
        (["--models", "policy-v1", "--days", "0"], "--days: must be from 2"),
        (["--models", "policy-v1", "--offset", "99990", "--days", "20"], "past the last"),
        (["--models", "policy-v1", "--json", "/nonexistent/x.json"], "does not exist"),
    ],
)
def test_evaluate_refuses_bad_options(
    capsys: pytest.CaptureFixture[str], args: list[str], why: str
) -> None:
    from execution.learning import evaluate

    with pytest.raises(SystemExit) as exit_:
        evaluate.main(args)
    assert exit_.value.code == 2
    assert why in capsys.readouterr().err


def test_the_gate_never_writes_over_an_expert(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import shutil

    from execution.algos.adaptive import MODEL_DIR
    from execution.learning import gate

    expert = tmp_path / "expert.onnx"  # a copy: a regression must not touch a shipped file
    shutil.copyfile(MODEL_DIR / "policy-v4.onnx", expert)
    before = expert.read_bytes()
    args = ["--expert", "policy-v8:5", "--expert", str(expert)]
    for out in (expert, tmp_path / "." / "expert.onnx"):
        with pytest.raises(SystemExit) as exit_:
            gate.main([*args, "--out", str(out)])
        assert exit_.value.code == 2
        assert "is one of the inputs" in capsys.readouterr().err
    assert expert.read_bytes() == before


@pytest.mark.parametrize(
    ("module", "option"), [("train", "--episodes-per-pair"), ("predictor", "--held-out-episodes")]
)
def test_the_training_command_says_what_it_needs_without_the_extras(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    module: str,
    option: str,
) -> None:
    """Without torch (a user's fresh machine: requirements-train.txt is separate), --help
    works and a run says what to install, in one line, not a traceback (the predictor's
    command imported torch before reading its arguments: a review)."""
    import importlib
    import importlib.util

    command = importlib.import_module(f"execution.learning.{module}")
    real = importlib.util.find_spec
    hidden = {"torch", "onnx"}  # as on a machine without requirements-train.txt
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a)
    )

    def no_torch() -> None:
        raise ModuleNotFoundError("No module named 'torch'")

    monkeypatch.setattr(command, "_torch", no_torch)
    with pytest.raises(SystemExit) as exit_:
        command.main(["--help"])
    assert exit_.value.code == 0 and option in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        command.main(["--out", str(tmp_path / "never.onnx")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "training needs torch, onnx: pip install -r requirements-train.txt"
    )
    assert not (tmp_path / "never.onnx").exists()


def test_a_model_card_names_the_code_that_made_it(tmp_path: Path) -> None:
    """The same command at other code can give another file: the card says which commit,
    and whether the checkout had changes."""
    import json
    import re
    import time

    from execution.learning.model_files import write_card

    out = tmp_path / "m.onnx"
    out.write_bytes(b"not a model: only its card is under test")
    card = json.loads(write_card(out, {"model": "m"}, time.perf_counter()).read_text())
    code = card["code"]
    from execution.learning.model_files import REPO

    if (REPO / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", code["git_commit"])
        assert isinstance(code["dirty"], bool)
    else:  # an exported tree: said so, not left blank
        assert code == {"git_commit": "", "dirty": None, "note": "not made in a git checkout"}


@pytest.mark.parametrize(
    ("iterations", "kept"),
    [(21, [1, 11, 21]), (30, [1, 11, 21, 30]), (1, [1]), (0, [])],
)
def test_a_card_s_history_keeps_the_last_iteration_once(iterations: int, kept: list[int]) -> None:
    """Every tenth iteration from the first, and the last: when the stride took the last
    already, the card listed it twice (a trial)."""
    from execution.learning.train import card_history

    history = [{"iteration": float(i + 1)} for i in range(iterations)]
    assert [h["iteration"] for h in card_history(history, 10)] == kept


def test_evaluate_names_an_unknown_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    """It was a ParamError traceback from the worker pool (a review)."""
    from execution.learning import evaluate

    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--models", "policy-v9", "--days", "2", "--baselines", "twap,zzz"])
    assert exit_.value.code == 2
    assert "--baselines: unknown strategy 'zzz'; the baselines are twap, vwap, pov, is" in (
        capsys.readouterr().err
    )


def test_no_command_writes_over_a_shipped_model_file() -> None:
    """The docs' reproduction commands wrote into the shipped folder: over policy-v1.onnx,
    the registry would refuse the file and its orders fall back to TWAP (a trial)."""
    from execution.algos.adaptive import MODEL_DIR
    from execution.cli_args import output_file

    said = output_file("--out", MODEL_DIR / "policy-v4.onnx")
    assert said.startswith("--out ") and "is a shipped model file" in said
    assert output_file("--out", MODEL_DIR / "policy-v99.onnx") == ""  # a new version may
    for beside in ("policy-v1", "policy-v1.card", "policy-v1.new"):  # its card is written
        assert "is a shipped model file" in output_file("--out", MODEL_DIR / beside), beside
