"""Retrain: a new candidate policy from simulated experience plus logged production
experience, evaluated beside the version it would replace (docs/MODELS.md).

What the logged experience changes, and why this way:
- **Which orders training practises on.** Each logged order's context (size against ADV,
  side, window, urgency) becomes a training task: a share of the training days take their
  order from one of them, in a generated market (execution.learning.contexts). The policy
  learns from interaction, as it was trained, but on the orders the desk really sends.
- **Where the model trusts itself.** The feature range saved with the model covers the raw
  features logged in production as well as the training days, so a state production has
  seen does not make the new model fall back.
- Training starts from the approved version's weights (its predictor with it).

The logged decisions are not replayed as if the new policy had taken them: the market
would have answered another policy differently, and evolution strategies learn only from
their own rollouts. Off-policy use of the logged rewards is a later step (ADAPTIVE.md).

Pure: numpy, the simulator and the trainer (torch via importlib); the management command
`model_retrain` registers the result in the database as a candidate.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from execution.algos.adaptive import load_policy
from execution.learning import train as trainer
from execution.learning.bands import band_seeds, band_words, validation_band_seeds
from execution.learning.contexts import contexts_from_log
from execution.learning.decision_log import decision_arrays, episode_ids, log_files, read_files
from execution.learning.env import SHIPPED_MIN_CHILD_QTY, run_policy
from execution.learning.evaluate import compare
from execution.learning.model_files import write_card
from execution.learning.scenarios import VALIDATION_SEEDS, validation_seeds

# The comparison's held-out days: validation seeds the shipped models' own validation
# (the first 100) never used.
EVALUATION_OFFSET = 60_000


@dataclass(frozen=True)
class RetrainConfig:
    base_model: Path  # the approved version's file: training starts from its weights
    out: Path
    decision_log: Path | None = None
    seed: int = 1
    iterations: int = 30
    pairs: int = 8
    episodes_per_pair: int = 2
    context_share: float = 0.5
    range_episodes: int = 60
    evaluation: int = 40
    jobs: int = 2
    sigma: float = 0.1
    learning_rate: float = 0.02


@dataclass
class LoggedExperience:
    rows: int = 0
    episodes: int = 0
    files: list[str] = field(default_factory=list)
    contexts: list[tuple[float, str, float, float]] = field(default_factory=list)
    raw_features: npt.NDArray[np.float32] | None = None
    # Which models made the logged decisions: (version, SHA-256, rows), most rows first.
    models: list[tuple[str, str, int]] = field(default_factory=list)


def logged_experience(path: Path | None) -> LoggedExperience:
    """The decision log's orders and features; an empty experience without a log."""
    if path is None:
        return LoggedExperience()
    paths = log_files(Path(path))  # one walk: the files read are the files listed
    table = read_files(paths)
    arrays = decision_arrays(table)
    episodes = table.column("episode_id").to_pylist()
    raw = arrays["features_raw"]
    finite = raw[np.isfinite(raw).all(axis=1)]
    files = [str(p) for p in paths]
    made_by = Counter(
        zip(
            table.column("model_version").to_pylist(),
            table.column("model_sha256").to_pylist(),
            strict=True,
        )
    )
    return LoggedExperience(
        rows=int(table.num_rows),
        episodes=len(episode_ids(table)),
        files=files,
        contexts=[c.as_tuple() for c in contexts_from_log(arrays, episodes)],
        raw_features=finite,
        models=[(str(v), str(h), n) for (v, h), n in made_by.most_common()],
    )


class GatedBase(ValueError):
    """The base version is a gated model: its experts are retrained, not the gate."""


def _base_config(policy_meta: dict[str, str]) -> dict[str, Any]:
    try:
        config = json.loads(policy_meta["config"])
    except (KeyError, ValueError, TypeError):
        return {}
    return config if isinstance(config, dict) else {}


def _band_of(policy_meta: dict[str, str], key: str = "spread_band") -> tuple[float, float]:
    band = _base_config(policy_meta).get(key) or (0.0, 0.0)
    try:
        lo, hi = (float(x) for x in band)
    except (TypeError, ValueError):
        return (0.0, 0.0)
    return (lo, hi)


def _schedule_of(policy_meta: dict[str, str]) -> str:
    schedule = _base_config(policy_meta).get("schedule", "time")
    return schedule if schedule in ("time", "volume") else "time"


def _regularisation_of(policy_meta: dict[str, str]) -> tuple[float, str]:
    """The base's weight decay and what it pulls towards: a retrain of v13 (0.1, towards
    its starting weights) ran with the trainer's defaults (0.005, towards zero), and
    nothing said so (a trial)."""
    d = trainer.Config()
    config = _base_config(policy_meta)
    decay, to = config.get("weight_decay", d.weight_decay), config.get("decay_to", d.decay_to)
    if not isinstance(decay, int | float) or not 0 <= decay <= 100 or to not in ("zero", "start"):
        return d.weight_decay, d.decay_to
    return float(decay), str(to)


def _min_child_of(policy_meta: dict[str, str]) -> int:
    value = _base_config(policy_meta).get("min_child_qty", SHIPPED_MIN_CHILD_QTY)
    return value if isinstance(value, int) and value >= 1 else SHIPPED_MIN_CHILD_QTY


def _hidden_of(policy_meta: dict[str, str]) -> tuple[int, ...]:
    try:
        return tuple(int(h) for h in json.loads(policy_meta["config"])["hidden"])
    except (KeyError, ValueError, TypeError):
        return trainer.Config().hidden


def retrain(rc: RetrainConfig, log: Any = sys.stderr) -> dict[str, Any]:
    """Train, export and evaluate a candidate; returns its model card (also written beside
    the ONNX file). The evaluation compares it with the base version and the baselines on
    the same held-out days."""
    started = time.perf_counter()
    base = load_policy(str(rc.base_model))
    if base.gate is not None:
        experts = ", ".join(
            f"{e.name} (spread under {e.below_bps:g} bps)"
            if e.below_bps != float("inf")
            else f"{e.name} (the rest)"
            for e in base.gate.experts
        )
        raise GatedBase(
            f"{rc.base_model.name} is a gated model of {experts}: retrain one of its experts "
            f"instead (model_retrain --from {base.gate.experts[0].name}), then gate the result "
            "with python -m execution.learning.gate"
        )
    exp = logged_experience(rc.decision_log)
    print(
        f"retrain: from {rc.base_model.name} ({base.sha256[:12]}), {exp.rows} logged "
        f"decisions in {exp.episodes} orders",
        file=log,
        flush=True,
    )
    for version, sha, n in exp.models:
        if sha != base.sha256:
            # Allowed: the log gives order contexts and states, not actions to imitate.
            # But said, and kept on the card (a review found a log of policy-v1 used to
            # retrain policy-v4 with no word of it).
            print(
                f"retrain: note: {n} logged decisions were made by {version or 'an unnamed model'}"
                f" ({sha[:12] or 'no hash'}), not {rc.base_model.name}: their order contexts "
                "and features are used, not their actions",
                file=log,
                flush=True,
            )
    weight_decay, decay_to = _regularisation_of(base.metadata)
    cfg = trainer.Config(
        seed=rc.seed,
        hidden=_hidden_of(base.metadata),
        iterations=rc.iterations,
        pairs=rc.pairs,
        episodes_per_pair=rc.episodes_per_pair,
        sigma=rc.sigma,
        learning_rate=rc.learning_rate,
        # Regularised as the base was: a fine-tune that pulls towards zero what the base
        # kept near its own start is another model's training.
        weight_decay=weight_decay,
        decay_to=decay_to,
        jobs=rc.jobs,
        validation=rc.evaluation,
        range_episodes=rc.range_episodes,
        predictor=base.metadata.get("predictor", ""),
        init_from=str(rc.base_model),
        contexts=tuple(exp.contexts),
        context_share=rc.context_share if exp.contexts else 0.0,
        # An expert keeps learning on its band, around the curve it was trained on.
        spread_band=_band_of(base.metadata),
        participation_band=_band_of(base.metadata, "participation_band"),
        schedule=_schedule_of(base.metadata),
        min_child_qty=_min_child_of(base.metadata),
    )
    # An expert's range is its band's: the log does not say which rows came from orders
    # in that band (a gated version's log holds every band), so its features stay out.
    banded = (cfg.spread_band, cfg.participation_band) != ((0.0, 0.0), (0.0, 0.0))
    # The evaluation's days are found before training: a band too narrow for them failed
    # after the whole run, with the file half written (a review). An expert is judged on
    # days of its band, where it trades: on all days, most of a wide-spread expert's fell
    # back (it refuses a tight name) and measured TWAP (a trial).
    try:
        seeds = (
            validation_band_seeds(
                EVALUATION_OFFSET, rc.evaluation, cfg.spread_band, cfg.participation_band
            )
            if banded
            else validation_seeds(rc.evaluation, offset=EVALUATION_OFFSET)
        )
    except ValueError as e:
        raise ValueError(
            f"--evaluation {rc.evaluation}: {e} (from {EVALUATION_OFFSET:,} on); ask for fewer"
        ) from None
    runner = trainer.Runner(cfg.jobs, cfg.contexts, cfg.context_share)
    try:
        result = trainer.train(cfg, runner, log=log)
    finally:
        runner.close()
    range_seeds = band_seeds(
        10_000 * cfg.seed + 700_000, cfg.range_episodes, cfg.spread_band, cfg.participation_band
    )
    range_rows = None if banded else exp.raw_features
    training_range = trainer.fit_training_range(
        result.theta, cfg, range_seeds, extra_rows=range_rows
    )
    card: dict[str, Any] = {
        "model": rc.out.name,
        "format": base.metadata.get("format", ""),
        "method": "retrain: evolution strategies from the base version's weights, on "
        "generated days, a share of them with logged production order contexts",
        "config": {**asdict(cfg), "hidden": list(cfg.hidden), "contexts": len(cfg.contexts)},
        "retrain": {
            "base_model": str(rc.base_model),
            "base_sha256": base.sha256,
            "decision_log": str(rc.decision_log) if rc.decision_log else None,
            "logged_rows": exp.rows,
            "logged_orders": exp.episodes,
            "logged_models": [{"version": v, "sha256": h, "rows": n} for v, h, n in exp.models],
            "log_files": len(exp.files),
            "context_share": cfg.context_share,
        },
        "data": {
            **trainer.training_data(cfg),
            "generator": "execution.learning.scenarios.generate (+ execution.learning.contexts)",
            # What the range was fitted on, not what the log held (retrain.logged_rows).
            "training_range_logged_rows": 0 if range_rows is None else len(range_rows),
        },
        "history": trainer.card_history(result.history, cfg.log_every),
        "training_s": round(result.elapsed_s, 1),
    }
    if banded and exp.rows:
        card["data"]["training_range_note"] = (
            "an expert's range is its band's: the logged rows are left out, as the log does "
            "not say which came from orders in its band"
        )
    if cfg.predictor:
        card["predictor"] = trainer.predictor_metadata(cfg.predictor)
    trainer.export_onnx(result.theta, cfg, rc.out, training_range, card)
    env = trainer.make_env(cfg.predictor)
    held: list[npt.NDArray[np.float32]] = []
    for s in validation_seeds(3, offset=95_000):
        run_policy(env, trainer.NumpyPolicy(result.theta, cfg.hidden), s, record=held)
    card["onnx_vs_torch_max_abs_diff"] = trainer.onnx_agreement(
        result.theta, cfg, rc.out, np.stack(held).astype(np.float32)
    )
    evaluation = compare(
        {"candidate": rc.out, "base": rc.base_model},
        seeds,
        candidate="candidate",
        jobs=rc.jobs,
        schedule=cfg.schedule,  # evaluated around the curve it was trained around
    )
    if banded:
        evaluation["days"] = (
            f"the first {len(seeds)} held-out days from {VALIDATION_SEEDS.start + EVALUATION_OFFSET:,} "
            f"with a spread of {band_words(cfg.spread_band, 'bps')} and a participation "
            f"of {band_words(cfg.participation_band)}: the expert's band"
        )
    card["evaluation"] = evaluation
    card["validation"] = {  # the registry's list reads these
        "scenarios": evaluation["episodes"],
        "seeds": evaluation["seeds"],
        "adaptive_minus_twap_bps": evaluation["candidate_minus"]["twap"],
        "candidate_minus_base_bps": evaluation["candidate_minus"]["base"],
        "fallbacks": evaluation["fallbacks"]["candidate"],
        # The list marks a version worked around the volume curve (a trial: a retrained
        # one lost the mark its base had).
        "schedule": cfg.schedule,
    }
    write_card(rc.out, card, started)  # as every trainer does: with the code's commit
    d = evaluation["candidate_minus"]
    print(
        f"retrain: candidate minus base {d['base']['mean']:+.2f} bps "
        f"[{d['base']['ci95_low']:+.2f}, {d['base']['ci95_high']:+.2f}], minus TWAP "
        f"{d['twap']['mean']:+.2f} bps over {evaluation['episodes']} held-out days",
        file=log,
        flush=True,
    )
    return card
