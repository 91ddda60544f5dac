"""The short-horizon predictor: a small MLP that, from the order book and the tape, gives
the direction of the national mid over the next `HORIZON_S` seconds, as one number in
[-1, 1] (2·p(up) − 1) for the adaptive policy's "predictor" input (docs/ADAPTIVE.md).

    python -m execution.learning.predictor --seed 1 \\
        --out execution/learning/models/predictor-v1.onnx [--train-episodes 400] [--jobs 2]

Data: market days of generated training scenarios (`TRAIN_SEEDS`), each worked by the
adaptive strategy in the learning environment with a fixed passive action (join the
touch at the schedule's pace, so that our own orders rarely move the mid). At every
decision: the 21 features from `execution.features` normalised as the policy sees them
(one implementation), and the mid now and `HORIZON_S` seconds later. Inputs are the 15
market features (`INPUTS`: spread, microprice, imbalance, queues, volatility, trade flow),
not the order's own progress, side or dark fills. Label: up (1) or down (0); decisions
after which the mid did not move are left out of training and of accuracy and AUC, and
their share is reported. Early stopping on a disjoint slice of training days; the held-out
test uses validation days (`VALIDATION_SEEDS`, offset 50,000: no day the policy is
validated on), compared with the simple baselines: the majority class, the sign of the
microprice's offset from the mid (= the sign of the top-of-book imbalance), and the sign of
the five-level imbalance; the strongest of them is the one to beat.

Serving (`OnnxPredictor`, `load_predictor`) needs onnxruntime and numpy only; training
needs torch and onnx, imported by name as in train.py so the pure core imports without
them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from execution.algos.adaptive import ModelUnavailable, onnx_session, resolve_model
from execution.cli_args import layer_sizes, output_file, training_extras_or_exit, whole
from execution.features import INDEX, normalise
from execution.learning.model_files import set_metadata, sha256, write_card

PREDICTOR_FORMAT = "oversight.predictor/1"
HORIZON_S = 10.0
INPUTS = (
    "spread_ticks",
    "spread_vs_typical",
    "microprice_offset_ticks",
    "microprice_offset_spreads",
    "imbalance_l1",
    "imbalance_l5",
    "bid_queue_shares",
    "ask_queue_shares",
    "bid_queue_rel",
    "ask_queue_rel",
    "vol_30s",
    "vol_2m",
    "vol_2m_vs_daily",
    "trade_flow_1m",
    "trade_flow_5m",
)
INPUT_INDEX = np.array([INDEX[n] for n in INPUTS], dtype=np.int64)
# The behaviour that generates the data: pace 1, join the touch, 30% dark (adaptive.decode).
PASSIVE_ACTION = np.array([0.0, 1.0, 0.0, 0.0, -0.85], dtype=np.float32)
HELD_OUT_OFFSET = 50_000  # validation seeds 2,050,000.. (the policy validates on 2,000,000..)

Array = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float32]


# -- serving --------------------------------------------------------------------------------


class OnnxPredictor:
    """An exported predictor: the 21 normalised features -> one number in [-1, 1]."""

    def __init__(self, path: Path) -> None:
        self.session, meta = onnx_session(path, "predictor")
        if meta.get("format") != PREDICTOR_FORMAT:
            raise ModelUnavailable(f"{path}: not a predictor of format {PREDICTOR_FORMAT}")
        try:
            names = json.loads(meta["inputs"])
            self.index = np.array([INDEX[n] for n in names], dtype=np.int64)
        except (KeyError, ValueError, TypeError) as e:
            raise ModelUnavailable(f"{path}: bad predictor input metadata: {e}") from e
        inp = self.session.get_inputs()[0]
        if inp.shape[-1] != len(self.index):
            raise ModelUnavailable(f"{path}: takes {inp.shape[-1]} inputs, not {len(self.index)}")
        self.input_name = inp.name
        self.metadata = dict(meta)
        self.path = path

    def batch(self, features: npt.NDArray[np.float32]) -> Vector:
        """Rows of normalised features (n, 21) -> n values in [-1, 1]."""
        x = np.ascontiguousarray(features[:, self.index], dtype=np.float32)
        out = self.session.run(None, {self.input_name: x})
        return np.asarray(out[0], dtype=np.float32).reshape(-1)

    def __call__(self, features: Vector) -> float:
        x = features[self.index].reshape(1, -1).astype(np.float32)
        out = self.session.run(None, {self.input_name: x})
        value = float(np.asarray(out[0]).reshape(-1)[0])
        if not math.isfinite(value):
            raise ModelUnavailable(f"{self.path}: predictor returned {value}")
        return value


_CACHE: dict[tuple[str, int, int], tuple[OnnxPredictor, str]] = {}


def load_predictor(model: str, expected_sha256: str | None = None) -> OnnxPredictor:
    """The predictor in a file (a shipped version name or a path), cached by path, size and
    modification time; ModelUnavailable when it is missing, unreadable, or not the file
    whose SHA-256 the policy names."""
    path = resolve_model(model)
    try:
        st = os.stat(path)
    except OSError as e:
        raise ModelUnavailable(f"predictor file {path} not found: {e.strerror}") from e
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    hit = _CACHE.get(key)
    if hit is None:
        try:
            digest = sha256(path)
        except OSError as e:
            raise ModelUnavailable(f"cannot read predictor {path}: {e.strerror}") from e
        hit = (OnnxPredictor(path), digest)
        _CACHE[key] = hit
    if expected_sha256 is not None and hit[1] != expected_sha256:
        raise ModelUnavailable(
            f"predictor {path}: SHA-256 {hit[1][:12]}… is not the {expected_sha256[:12]}… "
            "the policy was trained with"
        )
    return hit[0]


# -- the data -----------------------------------------------------------------------------


def episode_rows(seed: int) -> tuple[npt.NDArray[np.float32], Array]:
    """One market day: the normalised features at each decision and the mid move over the
    next HORIZON_S seconds in ticks (NaN where the horizon passes the order's window)."""
    from execution.learning.env import ExecutionEnv

    env = ExecutionEnv()
    env.reset(seed=seed)
    assert env.strategy is not None and env.engine is not None
    xs, moves = [], []
    while True:
        raw = env.strategy.features.last
        assert raw is not None
        xs.append(normalise(raw).values)
        mid = env.engine.market.mid_ticks()
        _, _, done, _, info = env.step(PASSIVE_ACTION, mid_probes=(HORIZON_S,))
        later = info["probe_mids"][0]
        moves.append(math.nan if later is None else later - mid)
        if done:
            break
    return np.stack(xs).astype(np.float32), np.array(moves)


@dataclass
class Dataset:
    x: npt.NDArray[np.float32]  # (n, 21) normalised features
    move: Array  # mid move in ticks over the horizon (NaN: not observed)
    episode: npt.NDArray[np.int64]  # the seed of each row's day

    @property
    def moved(self) -> npt.NDArray[np.bool_]:
        moved: npt.NDArray[np.bool_] = np.isfinite(self.move) & (self.move != 0)
        return moved

    def labelled(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Inputs (n, 15) and labels (1 up, 0 down) of the rows where the mid moved."""
        m = self.moved
        return self.x[m][:, INPUT_INDEX], (self.move[m] > 0).astype(np.float32)


def build_dataset(seeds: Sequence[int], jobs: int = 1) -> Dataset:
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.map(episode_rows, seeds, chunksize=4)
    else:
        parts = [episode_rows(s) for s in seeds]
    return Dataset(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate(
            [np.full(len(p[1]), s, dtype=np.int64) for s, p in zip(seeds, parts, strict=True)]
        ),
    )


def training_seeds(seed: int, n: int) -> list[int]:
    from execution.learning.scenarios import train_seeds

    return train_seeds(300_000 + 10_000 * seed, n)


def held_out_seeds(n: int) -> list[int]:
    from execution.learning.scenarios import validation_seeds

    return validation_seeds(n, offset=HELD_OUT_OFFSET)


# -- metrics ------------------------------------------------------------------------------


def auc(score: npt.ArrayLike, label: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label) > 0.5
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s))
    # Average ranks over ties.
    _, start, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def accuracy(score: npt.ArrayLike, label: npt.ArrayLike) -> float:
    """Share of rows whose call is right: score > 0 calls up, anything else down (callers
    break a score of exactly 0 towards the training majority first)."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label) > 0.5
    return float(np.mean((s > 0) == y))


def baselines(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.float32], train_up_share: float
) -> dict[str, dict[str, float]]:
    """The simple predictors on rows (n, 15) of predictor inputs; a zero signal (a balanced
    book) calls the training majority."""
    majority = 1.0 if train_up_share > 0.5 else -1.0
    out: dict[str, dict[str, float]] = {
        "majority": {"accuracy": accuracy(np.full(len(y), majority), y), "auc": 0.5}
    }
    for name in ("microprice_offset_spreads", "imbalance_l1", "imbalance_l5", "trade_flow_1m"):
        s = x[:, INPUTS.index(name)].astype(np.float64)
        tie_broken = np.where(s == 0, majority * 1e-9, s)
        out[f"sign({name})"] = {"accuracy": accuracy(tie_broken, y), "auc": auc(s, y)}
    return out


# -- the network ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    seed: int = 1
    hidden: tuple[int, ...] = (32, 32)
    train_episodes: int = 400  # training days (early stopping on the last 15% of them)
    held_out_episodes: int = 120
    epochs: int = 60
    batch: int = 512
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 8
    jobs: int = 2
    horizon_s: float = HORIZON_S


def _torch() -> Any:
    return importlib.import_module("torch")


def make_module(hidden: Sequence[int]) -> Any:
    torch = _torch()
    mods: list[Any] = []
    n = len(INPUTS)
    for h in hidden:
        mods += [torch.nn.Linear(n, h), torch.nn.Tanh()]
        n = h
    mods.append(torch.nn.Linear(n, 1))
    return torch.nn.Sequential(*mods)


class Signal:
    """logit -> 2·sigmoid(logit) − 1 = tanh(logit / 2): the exported module's output."""

    @staticmethod
    def wrap(net: Any) -> Any:
        torch = _torch()

        class Wrapped(torch.nn.Module):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> Any:
                return torch.tanh(self.net(x) * 0.5)

        return Wrapped().eval()


def fit(
    cfg: Config,
    x_tr: npt.NDArray[np.float32],
    y_tr: npt.NDArray[np.float32],
    x_va: npt.NDArray[np.float32],
    y_va: npt.NDArray[np.float32],
    log: Any = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Adam on the cross-entropy, early stopping on the validation loss (best weights)."""
    torch = _torch()
    torch.manual_seed(cfg.seed)
    net = make_module(cfg.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xv, yv = torch.from_numpy(x_va), torch.from_numpy(y_va)
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, bad, history = math.inf, None, 0, []
    for epoch in range(cfg.epochs):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), cfg.batch):
            idx = perm[i : i + cfg.batch]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]).squeeze(-1), yt[idx])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(xv).squeeze(-1), yv))
            tr = float(loss_fn(net(xt).squeeze(-1), yt))
        history.append({"epoch": epoch + 1, "train_loss": tr, "val_loss": val})
        if log is not None:
            print(f"epoch {epoch + 1}: train {tr:.4f} val {val:.4f}", file=log, flush=True)
        if val < best - 1e-5:
            best, bad = val, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), history


def predict_torch(net: Any, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    torch = _torch()
    with torch.no_grad():
        out = Signal.wrap(net)(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return np.asarray(out.numpy(), dtype=np.float32).reshape(-1)


def export_onnx(net: Any, path: Path, meta: Mapping[str, str]) -> None:
    torch = _torch()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        Signal.wrap(net),
        (torch.zeros(1, len(INPUTS)),),
        str(path),
        input_names=["features"],
        output_names=["signal"],
        dynamic_axes={"features": {0: "n"}, "signal": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    set_metadata(path, meta)


def main(argv: list[str] | None = None) -> int:
    d = Config()
    parser = argparse.ArgumentParser(
        prog="python -m execution.learning.predictor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=whole(0, 2**31 - 1), default=d.seed)
    # Required: a default would write over the shipped predictor that policies name by hash.
    parser.add_argument("--out", type=Path, required=True, help="the ONNX file to write")
    # At least 10 days: 85% of them fit the network, the rest stop it early.
    parser.add_argument("--train-episodes", type=whole(10, 100_000), default=d.train_episodes)
    parser.add_argument("--held-out-episodes", type=whole(2, 100_000), default=d.held_out_episodes)
    parser.add_argument("--epochs", type=whole(1, 10_000), default=d.epochs)
    parser.add_argument("--hidden", type=layer_sizes, default=d.hidden)
    parser.add_argument("--jobs", type=whole(1, 256), default=d.jobs)
    args = parser.parse_args(argv)
    training_extras_or_exit(parser)
    onnxruntime = importlib.import_module("onnxruntime")
    torch = _torch()
    problem = output_file("--out", args.out)
    if problem:
        parser.error(problem)
    torch.set_num_threads(1)
    cfg = Config(
        seed=args.seed,
        hidden=tuple(args.hidden),
        train_episodes=args.train_episodes,
        held_out_episodes=args.held_out_episodes,
        epochs=args.epochs,
        jobs=args.jobs,
    )
    wall = time.perf_counter()
    seeds = training_seeds(cfg.seed, cfg.train_episodes)
    n_fit = round(len(seeds) * 0.85)
    train_days, stop_days, test_days = (
        seeds[:n_fit],
        seeds[n_fit:],
        held_out_seeds(cfg.held_out_episodes),
    )
    data = build_dataset(seeds + test_days, cfg.jobs)
    print(
        f"data: {len(data.move)} decisions in {time.perf_counter() - wall:.0f} s", file=sys.stderr
    )

    def part(days: Sequence[int]) -> Dataset:
        m = np.isin(data.episode, np.array(days))
        return Dataset(data.x[m], data.move[m], data.episode[m])

    tr, st, te = part(train_days), part(stop_days), part(test_days)
    x_tr, y_tr = tr.labelled()
    x_st, y_st = st.labelled()
    x_te, y_te = te.labelled()
    started = time.perf_counter()
    net, history = fit(cfg, x_tr, y_tr, x_st, y_st, log=sys.stderr)
    fit_s = time.perf_counter() - started
    up_share = float(y_tr.mean())
    score = predict_torch(net, x_te)
    network = {
        "accuracy": accuracy(np.where(score == 0, -1e-9, score), y_te),
        "auc": auc(score, y_te),
    }
    base = baselines(x_te, y_te, up_share)
    strongest = max(base, key=lambda k: (base[k]["auc"], base[k]["accuracy"]))

    def observed(ds: Dataset) -> dict[str, Any]:
        seen = np.isfinite(ds.move)
        return {
            "decisions": int(seen.sum()),
            "moved": int(ds.moved.sum()),
            "no_change_share": float(1 - ds.moved.sum() / max(seen.sum(), 1)),
            "up_share_of_moved": float((ds.move[ds.moved] > 0).mean()),
        }

    meta_cfg = {**asdict(cfg), "hidden": list(cfg.hidden)}
    card: dict[str, Any] = {
        "model": args.out.name,
        "format": PREDICTOR_FORMAT,
        "task": f"sign of the national mid's move over the next {cfg.horizon_s:g} s, "
        "given that it moves; output 2·p(up) − 1",
        "inputs": list(INPUTS),
        "config": meta_cfg,
        "command": "python -m execution.learning.predictor " + " ".join(argv or sys.argv[1:]),
        "data": {
            "generator": "execution.learning.scenarios.generate",
            "behaviour": "learning env, adaptive strategy with a fixed passive action "
            f"{PASSIVE_ACTION.tolist()} (pace 1, join the touch, 30% dark), urgency 0",
            "labels": "mid move over the horizon; rows where the mid did not move are left "
            "out of training and of accuracy/AUC (their share is below); rows whose "
            "horizon passes the order's window are dropped",
            "train_seeds": [train_days[0], train_days[-1]],
            "early_stopping_seeds": [stop_days[0], stop_days[-1]],
            "held_out_seeds": [test_days[0], test_days[-1]],
            "train": observed(tr),
            "early_stopping": observed(st),
            "held_out": observed(te),
        },
        "held_out": {
            "rows": len(y_te),
            "network": network,
            "baselines": base,
            "strongest_baseline": strongest,
            "auc_gain_over_strongest": network["auc"] - base[strongest]["auc"],
            "accuracy_gain_over_strongest": network["accuracy"] - base[strongest]["accuracy"],
        },
        "history": history,
        "fit_s": round(fit_s, 1),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
    }
    meta = {
        "format": PREDICTOR_FORMAT,
        "inputs": json.dumps(list(INPUTS)),
        "horizon_s": f"{cfg.horizon_s:g}",
        "output": "2*p(up)-1 of the mid over the horizon, given a move",
        "config": json.dumps(meta_cfg),
    }
    export_onnx(net, args.out, meta)
    served = OnnxPredictor(args.out).batch(te.x[te.moved])
    card["onnx_vs_torch_max_abs_diff"] = float(np.abs(served - score).max())
    card["onnx_vs_torch_inputs"] = len(score)
    print(json.dumps(card["held_out"], indent=1), file=sys.stderr)
    print(f"onnx vs torch: max abs diff {card['onnx_vs_torch_max_abs_diff']:.3g}", file=sys.stderr)
    write_card(args.out, card, wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
