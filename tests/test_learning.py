"""Training scenarios, the environment, and a short training run."""

from __future__ import annotations

import numpy as np
import pytest

from execution.algos.adaptive import ACTION_DIM, OBS_DIM
from execution.learning import scenarios
from execution.learning.env import ExecutionEnv, run_policy
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
