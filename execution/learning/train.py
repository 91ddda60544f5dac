"""Train the adaptive policy with evolution strategies on generated scenarios, validate it
against TWAP on held-out ones, export it to ONNX and write its model card.

    python -m execution.learning.train --seed 1 --out execution/learning/models/policy-v1.onnx \\
        [--iterations 120] [--pairs 8] [--episodes-per-pair 2] [--jobs 2] [--validation 100] \\
        [--predictor predictor-v1] [--init-from policy-v1] [--range-episodes 300]

`--predictor` feeds the short-horizon predictor's output into the observation's
"predictor" slot in every rollout (and names it, with its SHA-256, in the exported
model's metadata, so that serving and backtests load the same file); `--init-from` starts
from another policy's weights (its ONNX initializers) instead of the TWAP-like
initialisation, with the predictor input's weights set to zero.

Method (docs/ADAPTIVE.md): OpenAI-style evolution strategies over the weights of a small
MLP. Each iteration draws `pairs` Gaussian perturbations ε; each is tried as θ+σε and θ−σε
on the same `episodes_per_pair` generated training days (common random numbers: both see
the same market, so the difference of their shortfalls is mostly the policy's doing). The
paired differences, rank-shaped, weight the ε into a gradient estimate that Adam follows.
Training uses only `TRAIN_SEEDS`; validation only `VALIDATION_SEEDS`; neither the shared
nor the repo's scenario files are ever read here.

Torch is used here only (the network, Adam, the ONNX export and the agreement check); the
rollouts run a numpy copy of the network, and serving runs the ONNX file.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from execution.algos.adaptive import (
    ACTION_DIM,
    MODEL_FORMAT,
    MODES,
    OBS_DIM,
    ModelUnavailable,
    load_policy,
    resolve_model,
)
from execution.backtest_stats import paired_difference
from execution.cli_args import layer_sizes, number, output_file, training_extras_or_exit, whole
from execution.features import NAMES, TrainingRange
from execution.learning.bands import (
    PARTICIPATION,
    SPREAD,
    band_seeds,
    check_bands,
    parse_band,
)
from execution.learning.contexts import Contexts, context_for
from execution.learning.contexts import scenario_for as context_scenario
from execution.learning.env import SHIPPED_MIN_CHILD_QTY, ExecutionEnv, run_policy
from execution.learning.model_files import set_metadata, sha256, write_card
from execution.learning.scenarios import (
    TRAIN_SEEDS,
    VALIDATION_SEEDS,
    quoted_spread,
    validation_seeds,
)
from execution.learning.scenarios import scenario as generated_scenario
from execution.sim.episode import run_episode

Array = npt.NDArray[np.float64]
INITIAL_DARK_SHARE = 0.3  # the baselines' default, where the untrained policy starts


@dataclass(frozen=True)
class Config:
    seed: int = 1
    hidden: tuple[int, ...] = (16, 16)
    iterations: int = 200
    pairs: int = 8
    episodes_per_pair: int = 2
    sigma: float = 0.1
    learning_rate: float = 0.03
    weight_decay: float = 0.005
    # Where weight decay pulls: "zero" (plain L2, Adam's own; it also pulls the output
    # biases that make the start TWAP-like towards an arbitrary action) or "start" (towards
    # the starting weights: a prior that the policy stays the baseline unless the rollouts
    # keep showing a departure pays).
    decay_to: str = "zero"
    urgency_zero_share: float = 0.5  # episodes at urgency 0; the rest uniform in [0, 1]
    fixed_seeds: tuple[int, ...] = ()  # train on these days every iteration (tests)
    jobs: int = 2
    validation: int = 100
    range_episodes: int = 60
    log_every: int = 10
    predictor: str = ""  # a predictor model (name or path) fed into the observation
    init_from: str = ""  # a policy model (name or path) whose weights training starts from
    # Production order contexts (execution.learning.contexts) that this share of training
    # days take their order from: the retrain's logged experience. Empty: all generated.
    contexts: tuple[tuple[float, str, float, float], ...] = ()
    context_share: float = 0.5
    # What one unit of cost is when perturbations are ranked: "bps" (every day as it
    # comes, so wide-spread days, whose costs are larger, dominate) or "spread" (each
    # day's cost in its own quoted spread, so a tight name counts as much as a wide one),
    # or "both" (the two rankings averaged).
    cost_unit: str = "bps"
    # Train on the days whose instrument's quoted spread lies in [lo, hi) bps only (an
    # expert of a gated model, execution/learning/gate.py); (0, 0): every day.
    spread_band: tuple[float, float] = (0.0, 0.0)
    # And whose order's expected participation (its share of the window's expected
    # volume, execution.learning.scenarios.expected_participation) lies in [lo, hi);
    # (0, 0): every order.
    participation_band: tuple[float, float] = (0.0, 0.0)
    # The curve the policy works around while it trains (the strategy's `schedule`).
    schedule: str = "time"
    # The smallest child order the episodes send (the strategy's `min_child_qty`); 1, as
    # every shipped model was trained, unless set. Served orders default to 100.
    min_child_qty: int = SHIPPED_MIN_CHILD_QTY


# -- the network --------------------------------------------------------------------------


def layer_shapes(hidden: Sequence[int]) -> list[tuple[int, int]]:
    sizes = [OBS_DIM, *hidden, ACTION_DIM]
    return [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]


def n_params(hidden: Sequence[int]) -> int:
    return sum(o * i + o for o, i in layer_shapes(hidden))


def initial_params(hidden: Sequence[int], seed: int) -> Array:
    """Small random weights; the output bias makes the untrained policy TWAP-like (pace 1,
    midpoint, 30% dark), so training starts from the baseline and learns departures."""
    rng = np.random.default_rng(seed)
    parts: list[Array] = []
    shapes = layer_shapes(hidden)
    for k, (o, i) in enumerate(shapes):
        scale = 1.0 / math.sqrt(i) * (0.1 if k == len(shapes) - 1 else 1.0)
        parts.append(rng.normal(0.0, scale, size=o * i))
        bias = np.zeros(o)
        if k == len(shapes) - 1:
            bias[1 + MODES.index("midpoint")] = 1.0
            bias[-1] = math.log(INITIAL_DARK_SHARE / (1 - INITIAL_DARK_SHARE))
        parts.append(bias)
    return np.concatenate(parts)


def params_from_onnx(model: str, hidden: Sequence[int]) -> Array:
    """A policy's weights from its ONNX initializers (torch's export names them
    "<layer>.weight" and "<layer>.bias"), as one vector in `unpack`'s order; the weights
    of the predictor input are zeroed when its metadata names no predictor (a policy trained
    without one never used them; one trained with one keeps them, as a retrain needs)."""
    onnx = importlib.import_module("onnx")
    numpy_helper = importlib.import_module("onnx.numpy_helper")
    loaded = onnx.load(str(resolve_model(model)))
    graph = loaded.graph
    had_predictor = any(p.key == "predictor" and p.value for p in loaded.metadata_props)
    arrays = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in graph.initializer}
    layers = sorted({int(n.split(".")[0]) for n in arrays})
    shapes = layer_shapes(hidden)
    if len(layers) != len(shapes):
        raise ValueError(f"{model}: {len(layers)} layers, expected {len(shapes)}")
    parts: list[Array] = []
    for k, (layer, (o, i)) in enumerate(zip(layers, shapes, strict=True)):
        w, b = arrays[f"{layer}.weight"].copy(), arrays[f"{layer}.bias"]
        if w.shape != (o, i) or b.shape != (o,):
            raise ValueError(f"{model}: layer {layer} is {w.shape}, expected {(o, i)}")
        if k == 0 and not had_predictor:
            w[:, OBS_DIM - 1] = 0.0  # the predictor input
        parts += [w.reshape(-1), b]
    return np.concatenate(parts)


def unpack(theta: Array, hidden: Sequence[int]) -> list[tuple[Array, Array]]:
    layers, at = [], 0
    for o, i in layer_shapes(hidden):
        w = theta[at : at + o * i].reshape(o, i)
        at += o * i
        layers.append((w, theta[at : at + o]))
        at += o
    return layers


class NumpyPolicy:
    """The MLP in numpy (tanh hidden layers, linear output): what rollouts run."""

    def __init__(self, theta: Array, hidden: Sequence[int]) -> None:
        self.layers = [
            (w.astype(np.float32), b.astype(np.float32)) for w, b in unpack(theta, hidden)
        ]

    def __call__(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        x = obs.astype(np.float32)
        for k, (w, b) in enumerate(self.layers):
            x = w @ x + b
            if k < len(self.layers) - 1:
                x = np.tanh(x)
        return x


def _torch() -> Any:
    # Training-only dependencies, imported by name so that the pure core type-checks and
    # imports without them (requirements-train.txt installs them).
    return importlib.import_module("torch")


def torch_module(theta: Array, hidden: Sequence[int]) -> Any:
    """The same network in torch (for Adam's bookkeeping, the export and the check)."""
    torch = _torch()

    mods: list[Any] = []
    for k, (w, b) in enumerate(unpack(theta, hidden)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            lin.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        mods.append(lin)
        if k < len(hidden):
            mods.append(torch.nn.Tanh())
    return torch.nn.Sequential(*mods).eval()


# -- rollouts (picklable, so worker processes can run them) -------------------------------

_ENV: ExecutionEnv | None = None
_ENV_PREDICTOR: tuple[str, str, int] = ("", "", 0)
# The production contexts of this process's rollouts: set once per worker process by the
# pool's initializer (Runner), so the tasks stay small.
_CONTEXTS: Contexts = ()
_CONTEXT_SHARE = 0.5


def make_env(
    predictor: str,
    contexts: Contexts = (),
    share: float = 0.5,
    schedule: str = "time",
    min_child_qty: int = SHIPPED_MIN_CHILD_QTY,
) -> ExecutionEnv:
    if contexts:
        return ExecutionEnv(
            functools.partial(context_scenario, contexts=contexts, share=share),
            predictor=predictor or None,
            schedule=schedule,
            min_child_qty=min_child_qty,
        )
    return ExecutionEnv(predictor=predictor or None, schedule=schedule, min_child_qty=min_child_qty)


def episode_urgency(
    seed: int, zero_share: float, contexts: Contexts = (), share: float = 0.5
) -> float:
    ctx = context_for(seed, contexts, share)
    if ctx is not None:
        return ctx.urgency  # a production order's own urgency
    rng = np.random.default_rng([seed, 7])
    return 0.0 if rng.random() < zero_share else float(rng.uniform(0.0, 1.0))


def day_cost_unit(seed: int, cfg: Config) -> float:
    """The day's unit of cost in bps: 1, or its instrument's quoted spread (cost_unit)."""
    return 1.0 if cfg.cost_unit == "bps" else spread_bps(seed)


def spread_bps(seed: int) -> float:
    """The day's instrument's quoted spread in bps (at least 0.1)."""
    return max(quoted_spread(seed)[1], 0.1)


def cfg_urgency(seed: int, cfg: Config) -> float:
    return episode_urgency(seed, cfg.urgency_zero_share, cfg.contexts, cfg.context_share)


def _set_contexts(contexts: Contexts, share: float) -> None:
    global _CONTEXTS, _CONTEXT_SHARE, _ENV
    _CONTEXTS, _CONTEXT_SHARE, _ENV = tuple(contexts), share, None


# (weights, hidden sizes, day, urgency, predictor, schedule, min_child_qty)
Task = tuple[Array, tuple[int, ...], int, float, str, str, int]


def task(theta: Array, cfg: Config, seed: int, urgency: float) -> Task:
    return (theta, cfg.hidden, seed, urgency, cfg.predictor, cfg.schedule, cfg.min_child_qty)


def rollout(task: Task) -> float:
    theta, hidden, seed, urgency, predictor, schedule, min_child_qty = task
    global _ENV, _ENV_PREDICTOR
    if _ENV is None or (predictor, schedule, min_child_qty) != _ENV_PREDICTOR:
        # The predictor's session is made here, in the worker, not inherited over fork.
        _ENV = make_env(predictor, _CONTEXTS, _CONTEXT_SHARE, schedule, min_child_qty)
        _ENV_PREDICTOR = (predictor, schedule, min_child_qty)
    return run_policy(_ENV, NumpyPolicy(theta, hidden), seed, {"urgency": urgency})


class Runner:
    def __init__(self, jobs: int, contexts: Contexts = (), share: float = 0.5) -> None:
        _set_contexts(contexts, share)
        self.pool = (
            multiprocessing.get_context("fork").Pool(
                jobs, initializer=_set_contexts, initargs=(tuple(contexts), share)
            )
            if jobs > 1
            else None
        )

    def map(self, tasks: list[Task]) -> list[float]:
        if self.pool is None:
            return [rollout(t) for t in tasks]
        return list(self.pool.map(rollout, tasks, chunksize=1))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def evaluate(runner: Runner, theta: Array, cfg: Config, seeds: Sequence[int]) -> list[float]:
    tasks = [task(theta, cfg, s, cfg_urgency(s, cfg)) for s in seeds]
    return runner.map(tasks)


def centered_ranks(x: Array) -> Array:
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    return ranks / max(len(x) - 1, 1) - 0.5


# -- training -----------------------------------------------------------------------------


@dataclass
class TrainResult:
    theta: Array
    initial: Array
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed_s: float = 0.0


def train(cfg: Config, runner: Runner, log: Any = None) -> TrainResult:
    torch = _torch()

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    theta0 = (
        params_from_onnx(cfg.init_from, cfg.hidden)
        if cfg.init_from
        else initial_params(cfg.hidden, cfg.seed)
    )
    param = torch.nn.Parameter(torch.from_numpy(theta0.copy()))
    opt = torch.optim.Adam(
        [param],
        lr=cfg.learning_rate,
        weight_decay=cfg.weight_decay if cfg.decay_to == "zero" else 0.0,
    )
    result = TrainResult(theta=theta0.copy(), initial=theta0.copy())
    started = time.perf_counter()
    per_iter = cfg.pairs * cfg.episodes_per_pair
    base = int(rng.integers(0, len(TRAIN_SEEDS)))
    cursor = base  # the next training day to consider (the band's, if there is one)
    for it in range(cfg.iterations):
        theta = param.detach().numpy().copy()
        eps = rng.standard_normal((cfg.pairs, theta.size))
        if cfg.fixed_seeds:
            days = [list(cfg.fixed_seeds)] * cfg.pairs
        else:
            flat = band_seeds(cursor, per_iter, cfg.spread_band, cfg.participation_band)
            cursor = flat[-1] - TRAIN_SEEDS.start + 1
            days = [flat[i :: cfg.pairs] for i in range(cfg.pairs)]
        tasks: list[Task] = []
        for i in range(cfg.pairs):
            for sign in (1.0, -1.0):
                for s in days[i]:
                    u = cfg_urgency(s, cfg)
                    perturbed = theta + sign * cfg.sigma * eps[i]
                    tasks.append(task(perturbed, cfg, s, u))
        out = np.array(runner.map(tasks)).reshape(cfg.pairs, 2, -1)
        # Shortfall of +ε minus −ε on the same days: positive means +ε costs more.
        raw = out[:, 0, :] - out[:, 1, :]
        if cfg.cost_unit == "both":
            # Rank in bps and in spreads, and weigh the two rankings equally.
            spreads = np.array([[spread_bps(s) for s in ds] for ds in days])
            diff = raw.mean(axis=1)
            weights = (centered_ranks(diff) + centered_ranks((raw / spreads).mean(axis=1))) / 2
        else:
            scale = np.array([[day_cost_unit(s, cfg) for s in ds] for ds in days])
            diff = (raw / scale).mean(axis=1)
            weights = centered_ranks(diff)
        grad = weights @ eps / (cfg.pairs * cfg.sigma)
        opt.zero_grad()
        if cfg.decay_to == "start":
            grad = grad + cfg.weight_decay * (theta - theta0)
        param.grad = torch.from_numpy(grad)  # descend: lower shortfall
        opt.step()
        entry = {
            "iteration": it + 1,
            "mean_shortfall_bps": float(out.mean()),
            "mean_abs_pair_diff_bps": float(np.abs(diff).mean()),
            "elapsed_s": time.perf_counter() - started,
        }
        result.history.append(entry)
        if log is not None and ((it + 1) % cfg.log_every == 0 or it == 0):
            print(
                f"iter {it + 1}/{cfg.iterations}: mean shortfall {entry['mean_shortfall_bps']:.2f} bps, "
                f"|pair diff| {entry['mean_abs_pair_diff_bps']:.2f}, {entry['elapsed_s']:.0f} s",
                file=log,
                flush=True,
            )
    result.theta = param.detach().numpy().copy()
    result.elapsed_s = time.perf_counter() - started
    return result


def fit_training_range(
    theta: Array,
    cfg: Config,
    seeds: Sequence[int],
    extra_rows: npt.NDArray[np.float32] | None = None,
) -> TrainingRange:
    """The raw features the trained policy meets on training days (min and max), and
    `extra_rows` (raw features logged in production, for a retrain)."""
    env = make_env(cfg.predictor, cfg.contexts, cfg.context_share, cfg.schedule, cfg.min_child_qty)
    policy = NumpyPolicy(theta, cfg.hidden)
    rows = []
    for s in seeds:
        obs, _ = env.reset(seed=s, options={"urgency": cfg_urgency(s, cfg)})
        assert env.strategy is not None
        while True:
            assert env.strategy.features.last is not None
            rows.append(env.strategy.features.last.copy())
            obs, _, done, _, _ = env.step(policy(obs))
            if done:
                break
    if extra_rows is not None and len(extra_rows):
        rows.extend(np.asarray(extra_rows, dtype=np.float32))
    return TrainingRange.fit(np.stack(rows))


def export_onnx(
    theta: Array, cfg: Config, path: Path, training_range: TrainingRange, card: dict[str, Any]
) -> None:
    torch = _torch()

    module = torch_module(theta, cfg.hidden)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module,
        (torch.zeros(1, OBS_DIM),),
        str(path),
        input_names=["obs"],
        output_names=["action"],
        dynamic_axes={"obs": {0: "n"}, "action": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    meta = {
        **predictor_metadata(cfg.predictor),
        "format": MODEL_FORMAT,
        "training_range": json.dumps(training_range.to_dict()),
        "observation": json.dumps([*NAMES, "order_size_adv", "urgency", "predictor"]),
        "action": json.dumps(["pace", *(f"mode_{m}" for m in MODES), "dark"]),
        "config": json.dumps(card["config"]),
    }
    set_metadata(path, meta)


def predictor_metadata(predictor: str) -> dict[str, str]:
    """What the policy's file says of its predictor: serving loads that file and checks
    its SHA-256 (adaptive.load_policy_predictor)."""
    if not predictor:
        return {}
    path = resolve_model(predictor)
    return {"predictor": predictor, "predictor_sha256": sha256(path)}


def onnx_agreement(theta: Array, cfg: Config, path: Path, obs: npt.NDArray[np.float32]) -> float:
    """Largest absolute difference between onnxruntime and torch on the given inputs."""
    torch = _torch()

    module = torch_module(theta, cfg.hidden)
    with torch.no_grad():
        expected = module(torch.from_numpy(obs)).numpy()
    policy = load_policy(str(path))
    got = np.stack([policy(row) for row in obs])
    return float(np.abs(got - expected).max())


def validate(model: Path, seeds: Sequence[int], cfg: Config, runner_jobs: int) -> dict[str, Any]:
    """The exported model through the serving path (ONNX, features, fallbacks) against
    TWAP on held-out generated scenarios, paired by day."""
    rows = []
    for s in seeds:
        sc = generated_scenario(s)
        u = episode_urgency(s, cfg.urgency_zero_share)
        twap = run_episode(sc, "twap", s)
        params = {
            "model": str(model),
            "urgency": u,
            "schedule": cfg.schedule,
            "min_child_qty": cfg.min_child_qty,
        }
        ada = run_episode(sc, "adaptive", s, params)
        rows.append((twap.shortfall_bps, ada.shortfall_bps, ada.fallback, ada.fill_rate))
    twap_sf = [r[0] for r in rows]
    ada_sf = [r[1] for r in rows]
    paired = paired_difference(ada_sf, twap_sf).to_dict()
    return {
        "scenarios": len(rows),
        "schedule": cfg.schedule,
        "min_child_qty": cfg.min_child_qty,
        "seeds": [seeds[0], seeds[-1]],
        "twap_mean_shortfall_bps": float(np.mean(twap_sf)),
        "adaptive_mean_shortfall_bps": float(np.mean(ada_sf)),
        "adaptive_minus_twap_bps": paired,
        "adaptive_better_share": float(
            np.mean([a < t for t, a in zip(twap_sf, ada_sf, strict=True)])
        ),
        "fallbacks": sum(1 for r in rows if r[2]),
        "fallback_reasons": sorted({r[2].split(":")[0] for r in rows if r[2]}),
        "adaptive_fill_rate": float(np.mean([r[3] for r in rows])),
    }


def training_data(cfg: Config) -> dict[str, Any]:
    """The model card's account of what the policy was trained on."""
    return {
        "generator": "execution.learning.scenarios.generate",
        "train_seed_range": [TRAIN_SEEDS.start, TRAIN_SEEDS.stop - 1],
        "validation_seed_range": [VALIDATION_SEEDS.start, VALIDATION_SEEDS.stop - 1],
        "training_episodes": cfg.iterations * cfg.pairs * cfg.episodes_per_pair * 2,
        "training_range_episodes": cfg.range_episodes,
    }


def card_history(history: list[dict[str, float]], every: int) -> list[dict[str, float]]:
    """The card's training curve: every `every`-th iteration from the first, and the last.
    The last is added only when the stride missed it (it was written twice before)."""
    every = max(every, 1)
    kept = history[::every]
    if history and (len(history) - 1) % every:
        kept.append(history[-1])
    return kept


def _check_models(
    parser: argparse.ArgumentParser, predictor: str, init_from: str, hidden: tuple[int, ...]
) -> None:
    """Before any training: the models named must be usable, or a usage error says why."""
    from execution.learning.predictor import load_predictor

    if predictor:
        try:
            load_predictor(predictor)
        except ModelUnavailable as e:
            parser.error(f"--predictor {predictor}: {e}")
    if init_from:
        try:
            policy = load_policy(init_from)
            if policy.gate is not None:
                parser.error(
                    f"--init-from {init_from}: a gated model; start from one of its experts"
                )
            params_from_onnx(init_from, hidden)
        except ModelUnavailable as e:
            parser.error(f"--init-from {init_from}: {e}")
        except (ValueError, KeyError) as e:  # another shape than --hidden
            parser.error(f"--init-from {init_from}: its network does not fit --hidden: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m execution.learning.train", description=__doc__)
    d = Config()
    parser.add_argument(
        "--seed", type=whole(0, 2**31 - 1), default=d.seed, help="seeds the search and its days"
    )
    parser.add_argument("--out", type=Path, required=True, help="the ONNX file to write")
    parser.add_argument(
        "--iterations", type=whole(1, 100_000), default=d.iterations, help="ES updates"
    )
    parser.add_argument(
        "--pairs", type=whole(1, 10_000), default=d.pairs, help="± perturbations per update"
    )
    parser.add_argument(
        "--episodes-per-pair",
        type=whole(1, 10_000),
        default=d.episodes_per_pair,
        help="generated days each perturbation pair is run on (common to both signs)",
    )
    parser.add_argument(
        "--sigma",
        type=number(0.0, 10.0, lo_open=True),
        default=d.sigma,
        help="the perturbations' standard deviation, in weight units",
    )
    parser.add_argument(
        "--learning-rate",
        type=number(0.0, 10.0, lo_open=True),
        default=d.learning_rate,
        help="Adam's step size",
    )
    parser.add_argument(
        "--hidden", type=layer_sizes, default=d.hidden, help="hidden layer sizes, e.g. 16,16"
    )
    parser.add_argument(
        "--jobs", type=whole(1, 256), default=d.jobs, help="worker processes for the rollouts"
    )
    parser.add_argument(
        "--validation",
        type=whole(2, 100_000),
        default=d.validation,
        help="held-out validation days the card reports",
    )
    parser.add_argument(
        "--range-episodes",
        type=whole(1, 100_000),
        default=d.range_episodes,
        help="training episodes the feature range saved with the model is fitted on",
    )
    parser.add_argument("--predictor", default=d.predictor, help="e.g. predictor-v1")
    parser.add_argument("--init-from", default=d.init_from, help="e.g. policy-v1")
    parser.add_argument("--weight-decay", type=number(0.0, 100.0), default=d.weight_decay)
    parser.add_argument(
        "--decay-to",
        choices=("zero", "start"),
        default=d.decay_to,
        help="weight decay towards zero (plain L2) or towards the starting policy",
    )
    parser.add_argument(
        "--cost-unit",
        choices=("bps", "spread", "both"),
        default=d.cost_unit,
        help="rank perturbations by cost in bps, in each day's quoted spread, or both",
    )
    parser.add_argument(
        "--spread-band",
        default="",
        metavar="LO,HI",
        help="train only on days whose instrument's quoted spread is in [LO, HI) bps "
        "(an expert for execution.learning.gate; HI 0: no upper bound)",
    )
    parser.add_argument(
        "--participation-band",
        default="",
        metavar="LO,HI",
        help="and only on days whose order's expected participation (its share of the "
        "window's expected volume, 0 to 0.4) is in [LO, HI) (HI 0: no upper bound)",
    )
    parser.add_argument(
        "--schedule",
        choices=("time", "volume"),
        default=d.schedule,
        help="the curve the policy works around while it trains",
    )
    parser.add_argument(
        "--min-child-qty",
        type=whole(1, 1_000_000),
        default=d.min_child_qty,
        help="the smallest child order the training episodes send (default: %(default)s, "
        "as the shipped models were trained; served orders default to 100)",
    )
    args = parser.parse_args(argv)
    training_extras_or_exit(parser)
    onnxruntime = importlib.import_module("onnxruntime")
    torch = _torch()
    try:
        band = parse_band(args.spread_band, "--spread-band", SPREAD)
        participation = parse_band(args.participation_band, "--participation-band", PARTICIPATION)
        check_bands(band, participation)
    except ValueError as e:
        parser.error(str(e))
    _check_models(parser, args.predictor, args.init_from, tuple(args.hidden))
    inputs = [resolve_model(m) for m in (args.predictor, args.init_from) if m]
    problem = output_file("--out", args.out, inputs=inputs)
    if problem:
        parser.error(problem)
    torch.set_num_threads(1)
    cfg = Config(
        seed=args.seed,
        hidden=tuple(args.hidden),
        iterations=args.iterations,
        pairs=args.pairs,
        episodes_per_pair=args.episodes_per_pair,
        sigma=args.sigma,
        learning_rate=args.learning_rate,
        jobs=args.jobs,
        validation=args.validation,
        range_episodes=args.range_episodes,
        predictor=args.predictor,
        init_from=args.init_from,
        cost_unit=args.cost_unit,
        weight_decay=args.weight_decay,
        decay_to=args.decay_to,
        spread_band=band,
        participation_band=participation,
        schedule=args.schedule,
        min_child_qty=args.min_child_qty,
    )
    wall = time.perf_counter()
    print(f"training: {n_params(cfg.hidden)} parameters, {asdict(cfg)}", file=sys.stderr)
    runner = Runner(cfg.jobs)
    try:
        result = train(cfg, runner, log=sys.stderr)
    finally:
        runner.close()
    rng_seeds = band_seeds(
        10_000 * cfg.seed + 500_000, cfg.range_episodes, cfg.spread_band, cfg.participation_band
    )
    training_range = fit_training_range(result.theta, cfg, rng_seeds)
    card: dict[str, Any] = {
        "model": args.out.name,
        "format": MODEL_FORMAT,
        "method": "evolution strategies (antithetic, common random numbers, rank-shaped, Adam)",
        "config": {**asdict(cfg), "hidden": list(cfg.hidden), "parameters": n_params(cfg.hidden)},
        "command": "python -m execution.learning.train " + " ".join(argv or sys.argv[1:]),
        "data": training_data(cfg),
        "history": card_history(result.history, cfg.log_every),
        "training_s": round(result.elapsed_s, 1),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
    }
    if cfg.predictor:
        card["predictor"] = predictor_metadata(cfg.predictor)
    if cfg.init_from:
        card["init_from"] = {
            "model": cfg.init_from,
            "sha256": sha256(resolve_model(cfg.init_from)),
            "predictor_input_weights": "set to zero",
        }
    export_onnx(result.theta, cfg, args.out, training_range, card)
    # Agreement on held-out inputs: observations from validation days (not trained on).
    env, held_out = (
        make_env(cfg.predictor, schedule=cfg.schedule, min_child_qty=cfg.min_child_qty),
        list[npt.NDArray[np.float32]](),
    )
    for s in validation_seeds(5, offset=90_000):
        run_policy(env, NumpyPolicy(result.theta, cfg.hidden), s, record=held_out)
    obs = np.stack(held_out).astype(np.float32)
    card["onnx_vs_torch_max_abs_diff"] = onnx_agreement(result.theta, cfg, args.out, obs)
    card["onnx_vs_torch_inputs"] = int(obs.shape[0])
    print(f"onnx vs torch: max abs diff {card['onnx_vs_torch_max_abs_diff']:.3g}", file=sys.stderr)
    card["validation"] = validate(args.out, validation_seeds(cfg.validation), cfg, cfg.jobs)
    print(f"validation: {json.dumps(card['validation'])}", file=sys.stderr)
    write_card(args.out, card, wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
