"""A gymnasium-style environment over the simulator: one parent order per episode, worked
by the adaptive strategy with each decision supplied from outside.

    env = ExecutionEnv()
    obs, info = env.reset(seed=1_000_123)        # a generated training scenario and day
    while True:
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break

Observation: `execution.algos.adaptive.observation` (OBS_DIM float32 values in [-1, 1]:
the 21 normalised features, which include the order's progress, then the order's size
against ADV, the urgency and the short-horizon predictor's output, 0 without one).
Action: ACTION_DIM real numbers, decoded by `adaptive.decode` (pace multiplier vs the
schedule, argmax of passive/midpoint/take, share of new resting quantity sent dark).
Reward: minus the implementation shortfall in bps of the whole order's arrival value
incurred since the previous decision (fills against the arrival mid, plus fees); the last
step also charges the quantity left unfilled at the mid at the window's end, so the
rewards of an episode add up to minus its shortfall exactly as the backtest reports it.

The same Market + ExecutionEngine + Adaptive strategy as serving, with every child order
checked by the execution policy. Importable without gymnasium; `make_gymnasium_env()`
wraps it in a `gymnasium.Env` (with Box spaces) where gymnasium is installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from execution.algos.adaptive import ACTION_DIM, OBS_DIM, Adaptive, Vector
from execution.engine.engine import ExecutionEngine
from execution.learning.scenarios import GENERATOR_SEEDS, TRAIN_SEEDS
from execution.learning.scenarios import scenario as generated_scenario
from execution.sim.episode import order_spec
from execution.sim.market import Market
from execution.sim.scenario import Scenario

# The shipped models were trained, and their cards validated, with child orders of any
# size (before the 100-share minimum child existed); training keeps that unless its
# configuration says otherwise, so they reproduce. Served orders use the order's own
# minimum (100 shares unless set).
SHIPPED_MIN_CHILD_QTY = 1
TRAINING_CHILD_SIZE = {"min_child_qty": SHIPPED_MIN_CHILD_QTY}
ORDER_ID = "RL-1"


class ExecutionEnv:
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        scenario_for: Callable[[int], Scenario] = generated_scenario,
        *,
        urgency: float | tuple[float, float] = 0.0,
        max_participation: float | None = 0.5,
        predictor: str | Callable[[Vector], float] | None = None,
        schedule: str = "time",
        min_child_qty: int = SHIPPED_MIN_CHILD_QTY,
    ) -> None:
        """`predictor`: the short-horizon predictor fed into the observation (a model name
        or path for `execution.learning.predictor.load_predictor`, loaded at the first
        reset, or a callable of the normalised features); None leaves its slot at 0."""
        self.scenario_for = scenario_for
        self.predictor = predictor
        self.urgency = urgency
        # The curve the policy works around (the strategy's `schedule`): "time" unless a
        # training configuration says otherwise, so the shipped models reproduce.
        self.schedule = schedule
        self.min_child_qty = min_child_qty  # the order's `min_child_qty`
        self.max_participation = max_participation
        self.rng = np.random.default_rng()
        self.engine: ExecutionEngine | None = None
        self.strategy: Adaptive | None = None
        self.scenario: Scenario | None = None
        self._cost_ticks = 0.0  # shortfall counted so far, in ticks × shares

    # -- gymnasium API ------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Vector, dict[str, Any]]:
        """A new episode. `seed` picks the scenario (through `scenario_for`) and the day;
        options: "scenario" (a Scenario to use instead) and "urgency"."""
        options = options or {}
        if seed is None:
            seed = int(self.rng.integers(TRAIN_SEEDS.start, TRAIN_SEEDS.stop))
        sc = options.get("scenario") or self.scenario_for(seed)
        urgency = options.get("urgency", self.urgency)
        if isinstance(urgency, tuple):
            urgency = float(np.random.default_rng(seed).uniform(*urgency))
        market = Market(sc, seed)
        engine = ExecutionEngine(market)
        engine.add_order(
            order_spec(
                sc,
                ORDER_ID,
                "adaptive",
                {
                    "urgency": float(urgency),
                    "schedule": self.schedule,
                    "min_child_qty": self.min_child_qty,
                },
                self.max_participation,
            )
        )
        strategy = engine.orders[ORDER_ID].strategy
        assert isinstance(strategy, Adaptive)
        strategy.external = True
        strategy.check_range = False
        if isinstance(self.predictor, str):
            from execution.learning.predictor import load_predictor

            self.predictor = load_predictor(self.predictor)
        strategy.predictor = self.predictor
        self.engine, self.strategy, self.scenario = engine, strategy, sc
        self._cost_ticks = 0.0
        obs, done = self._advance()
        if done:  # an order with no decision at all (cannot happen for a valid window)
            raise RuntimeError(f"{sc.name}: the order ended before its first decision")
        return obs, {"scenario": sc.name, "seed": seed, "urgency": float(urgency)}

    def step(
        self, action: Any, *, mid_probes: Sequence[float] = ()
    ) -> tuple[Vector, float, bool, bool, dict[str, Any]]:
        """One decision. `mid_probes`: offsets in seconds after this decision at which to
        read the national mid (the predictor's labels); they come back in
        info["probe_mids"] (ticks; None past the order's window or the session)."""
        if self.engine is None or self.strategy is None:
            raise RuntimeError("call reset() first")
        actions = self.strategy.respond(np.asarray(action, dtype=np.float32))
        self.engine.submit_actions(ORDER_ID, actions)
        probed = self._probe(mid_probes)
        obs, done = self._advance()
        reward = -self._new_cost_bps(final=done)
        info: dict[str, Any] = {"probe_mids": probed} if mid_probes else {}
        if done:
            info.update(self.summary())
        return obs, reward, done, False, info

    def _probe(self, offsets: Sequence[float]) -> list[float | None]:
        """Run the market to each offset after now, in order, and read the mid there; an
        offset that reaches the order's next decision or its window's end gives None (the
        decision must run in `_advance`)."""
        assert self.engine is not None
        engine = self.engine
        w = engine.orders[ORDER_ID]
        t0 = engine.market.now
        out: list[float | None] = []
        for dt in sorted(offsets):
            t = t0 + dt
            if t >= min(w.next_decision, w.spec.end_s):
                out.append(None)
                continue
            engine.run_until(t)
            out.append(engine.market.mid_ticks())
        return out

    # -- internals ----------------------------------------------------------------------

    def _advance(self) -> tuple[Vector, bool]:
        """Run the market until the order's next decision (or its end)."""
        assert self.engine is not None and self.strategy is not None
        engine, strategy = self.engine, self.strategy
        w = engine.orders[ORDER_ID]
        while not w.parent.is_done and engine.market.now < w.spec.end_s:
            strategy.pending = None
            engine.run_until(w.next_decision)
            if strategy.pending is not None:
                return strategy.pending[1], False
        engine.run_to_end()
        return np.zeros(OBS_DIM, dtype=np.float32), True

    def _arrival_ticks(self) -> float:
        assert self.engine is not None
        w = self.engine.orders[ORDER_ID]
        return w.arrival_mid_ticks or self.engine.market.mid_ticks()

    def _total_cost_ticks(self, final: bool) -> float:
        assert self.engine is not None
        w = self.engine.orders[ORDER_ID]
        p = w.parent
        arrival = self._arrival_ticks()
        cost = p.side * (p.notional_ticks - p.filled_qty * arrival) + w.fees
        if final:
            end_mid = w.end_mid_ticks or self.engine.market.mid_ticks()
            cost += p.side * (end_mid - arrival) * (p.qty - p.filled_qty)
        return float(cost)

    def _new_cost_bps(self, final: bool) -> float:
        assert self.engine is not None
        total = self._total_cost_ticks(final)
        new, self._cost_ticks = total - self._cost_ticks, total
        p = self.engine.orders[ORDER_ID].parent
        return new / (p.qty * self._arrival_ticks()) * 1e4

    def summary(self) -> dict[str, Any]:
        assert self.engine is not None
        w = self.engine.orders[ORDER_ID]
        p = w.parent
        return {
            "shortfall_bps": self._total_cost_ticks(final=True)
            / (p.qty * self._arrival_ticks())
            * 1e4,
            "fill_rate": p.filled_qty / p.qty,
            "status": p.status.value,
        }


def run_policy(
    env: ExecutionEnv,
    policy: Callable[[Vector], Any],
    seed: int,
    options: dict[str, Any] | None = None,
    *,
    record: list[Vector] | None = None,
) -> float:
    """One episode with a policy; returns its shortfall in bps (minus the summed rewards)."""
    obs, _ = env.reset(seed=seed, options=options)
    total = 0.0
    while True:
        if record is not None:
            record.append(obs)
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total += reward
        if terminated or truncated:
            return -total


def make_gymnasium_env(**kwargs: Any) -> Any:
    """The environment as a `gymnasium.Env` with Box spaces (needs gymnasium)."""
    gym = importlib.import_module("gymnasium")
    spaces = importlib.import_module("gymnasium.spaces")

    def init(self: Any) -> None:
        self.inner = ExecutionEnv(**kwargs)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(OBS_DIM,), dtype=np.float32)
        self.action_space = spaces.Box(-10.0, 10.0, shape=(ACTION_DIM,), dtype=np.float32)

    def reset(self: Any, *, seed: int | None = None, options: Any = None) -> Any:
        gym.Env.reset(self, seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(TRAIN_SEEDS.start, TRAIN_SEEDS.stop))
        elif seed not in GENERATOR_SEEDS:
            seed = TRAIN_SEEDS.start + seed % len(TRAIN_SEEDS)  # any seed names a training day
        return self.inner.reset(seed=seed, options=options)

    def step(self: Any, action: Any) -> Any:
        return self.inner.step(action)

    cls = type(
        "GymExecutionEnv",
        (gym.Env,),
        {"__init__": init, "reset": reset, "step": step, "metadata": {"render_modes": []}},
    )
    return cast(Any, cls)()
