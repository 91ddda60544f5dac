"""The adaptive strategy: a learned policy chooses, at each decision, how much to trade
against the schedule, how aggressively and where (docs/ADAPTIVE.md).

Each decision builds the order's features (`FeatureState`), normalises them against the
range the policy was trained on, asks the policy for five numbers and turns them into
child orders through the same SmartOrderRouter as every strategy, within the order's
allowed venues and maximum child size. The policy is a callable: an ONNX file run by
onnxruntime when serving, or whatever the trainer plugs in.

Anything that makes the policy untrustworthy raises an `AdaptiveFallback` from decide():
a model file that is missing or unreadable, an output that is not finite, features far
outside the training range. The engine replaces a strategy that raises with TWAP on the
same order and records why, so the order keeps trading.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from execution.algos.almgren_chriss import schedule_fraction as ac_fraction
from execution.algos.base import (
    Action,
    Cancel,
    DecisionView,
    OrderContext,
    Strategy,
    quoted_spread_bps,
    register,
    time_elapsed,
    volume_elapsed,
    window_volume,
)
from execution.algos.params import ParamSpec
from execution.features import N_FEATURES, FeatureState, TrainingRange, normalise

MODEL_DIR = Path(__file__).resolve().parents[1] / "learning" / "models"
DEFAULT_MODEL = "policy-v14"  # gated: policy-v8 under 5 bps of spread, policy-v13 above
MODEL_FORMAT = "oversight.adaptive/1"  # what the ONNX metadata must say

# Observation: the 21 normalised features, then these (all in [-1, 1]).
EXTRA_INPUTS = ("order_size_adv", "urgency", "predictor")
OBS_DIM = N_FEATURES + len(EXTRA_INPUTS)
# Action: pace (tanh-squashed log multiplier), three aggressiveness logits, dark logit.
MODES = ("passive", "midpoint", "take")
ACTION_DIM = 1 + len(MODES) + 1
MAX_PACE = 3.0  # the pace multiplier lies in [1/MAX_PACE, MAX_PACE]
SMALL_ORDER_LOTS = 5  # smaller orders are worked by the curve alone (Adaptive.by_curve_alone)


def too_small_for_the_model(quantity: int, lot: int) -> bool:
    """Whether an order this size is worked along its curve without the model: the
    strategy, the ticket, the backtest's table and TCA ask the same question."""
    return quantity < SMALL_ORDER_LOTS * lot


_LOG_MAX_PACE = math.log(MAX_PACE)

Vector = npt.NDArray[np.float32]
Policy = Callable[[Vector], npt.ArrayLike]
# Called with (strategy, view, observation, the policy's raw output, the decoded decision)
# at each decision the policy makes: the decision log (execution/learning/decision_log.py).
# It must not raise: an exception here is a strategy failure, and the order falls back.
DecisionHook = Callable[["Adaptive", DecisionView, Vector, npt.ArrayLike, "Decision"], None]


class AdaptiveFallback(RuntimeError):
    """The learned policy cannot be trusted for this decision: fall back to the baseline."""


class ModelUnavailable(AdaptiveFallback):
    pass


class PolicyOutputInvalid(AdaptiveFallback):
    pass


class FeaturesOutOfRange(AdaptiveFallback):
    pass


@dataclass(frozen=True, slots=True)
class Decision:
    pace: float  # multiplier of the schedule's next slice the order aims to have done
    mode: str  # "passive", "midpoint" or "take"
    dark_share: float  # of newly resting quantity, offered at the midpoint in dark venues


def decode(raw: npt.ArrayLike) -> Decision:
    """The policy's five numbers as a decision; PolicyOutputInvalid if they are not usable."""
    a = np.asarray(raw, dtype=np.float64).reshape(-1)
    if a.shape != (ACTION_DIM,):
        raise PolicyOutputInvalid(f"policy returned {a.shape[0]} values, expected {ACTION_DIM}")
    # Five numbers: plain floats are several times faster than numpy calls here.
    v = a.tolist()
    if not all(math.isfinite(x) for x in v):
        raise PolicyOutputInvalid(f"policy returned a non-finite value: {v}")
    pace = math.exp(math.tanh(v[0]) * _LOG_MAX_PACE)
    logits = v[1 : 1 + len(MODES)]
    mode = MODES[logits.index(max(logits))]  # the first of equal maxima, as argmax
    dark = 1.0 / (1.0 + math.exp(-min(max(v[-1], -30.0), 30.0)))
    return Decision(pace, mode, dark)


def observation(
    ctx: OrderContext, features: Vector, urgency: float, predictor: float | None = None
) -> Vector:
    """The policy's input: normalised features, the order's size, urgency, the predictor."""
    size = math.log10(max(ctx.qty / max(ctx.adv_shares, 1.0), 1e-4))  # -4 (0.01%) .. 0 (100%)
    extra = np.array(
        [
            min(max(size / 2.0 + 1.0, -1.0), 1.0),  # 1% ADV -> 0, 100% -> 1
            urgency,
            0.0 if predictor is None else min(max(predictor, -1.0), 1.0),
        ],
        dtype=np.float32,
    )
    return np.concatenate([features.astype(np.float32), extra])


# -- serving: ONNX through onnxruntime --------------------------------------------------


def onnx_session(path: Path, what: str) -> tuple[Any, Mapping[str, str]]:
    """An onnxruntime session on one thread (batch-1 serving inside a worker's step) and the
    file's metadata; ModelUnavailable saying why if the file cannot be loaded."""
    try:
        # Serving's one model dependency, loaded only when a model is (untyped: Any).
        ort = importlib.import_module("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        meta: Mapping[str, str] = session.get_modelmeta().custom_metadata_map
    except Exception as e:
        raise ModelUnavailable(f"cannot load {what} {path}: {type(e).__name__}: {e}") from e
    return session, meta


def spread_bps(ctx: OrderContext) -> float:
    """The instrument's quoted spread in bps of its price: what a gated policy selects its
    expert by (the same figure as the generator's `quoted_spread`)."""
    return quoted_spread_bps(ctx.spread_ticks, ctx.tick_size, ctx.reference_price)


@dataclass(frozen=True, slots=True)
class Expert:
    """One policy inside a gated model file, and the orders it trades."""

    name: str  # the version it was built from, e.g. "policy-v6"
    sha256: str  # that file's SHA-256
    below_bps: float  # it trades orders whose instrument's spread is under this (inf: all)
    training_range: TrainingRange


@dataclass(frozen=True, slots=True)
class Gate:
    """A gated model: one expert per band of the instrument's quoted spread, chosen once per
    order. The ONNX graph takes the spread (input GATE_INPUT) beside the observation and
    returns the selected expert's action; the strategy checks features against that
    expert's own training range."""

    experts: tuple[Expert, ...]  # by ascending `below_bps`; the last one's is inf

    def expert(self, bps: float) -> Expert:
        # Compared in float32, as the ONNX graph compares its input with the bound, so the
        # range checked and the expert that answers are always the same one.
        x = np.float32(bps)
        for e in self.experts:
            if x < np.float32(e.below_bps):
                return e
        return self.experts[-1]

    @classmethod
    def from_json(cls, text: str) -> Gate:
        d = json.loads(text)
        experts = tuple(
            Expert(
                str(e["name"]),
                str(e["sha256"]),
                float(e["below_bps"]) if e["below_bps"] is not None else math.inf,
                TrainingRange.from_dict(e["training_range"]),
            )
            for e in d["experts"]
        )
        bounds = [e.below_bps for e in experts]
        if any(math.isnan(b) or b <= 0 for b in bounds):
            raise ValueError(f"expert bounds must be positive numbers of bps: {bounds}")
        if len(experts) < 2 or bounds != sorted(bounds) or bounds[-1] != math.inf:
            raise ValueError("experts must be at least two, by ascending spread, the last open")
        return cls(experts)

    def to_json(self) -> str:
        return json.dumps(
            {
                "input": GATE_INPUT,
                "experts": [
                    {
                        "name": e.name,
                        "sha256": e.sha256,
                        "below_bps": None if e.below_bps == math.inf else e.below_bps,
                        "training_range": e.training_range.to_dict(),
                    }
                    for e in self.experts
                ],
            }
        )


GATE_INPUT = "spread_bps"  # a gated model's second input: the instrument's spread, bps


class OnnxPolicy:
    """An exported policy: obs (n, OBS_DIM) float32 -> action (n, ACTION_DIM). A gated one
    (metadata "gate") also takes the instrument's spread in bps; `for_order` binds it."""

    def __init__(self, path: Path) -> None:
        self.session, meta = onnx_session(path, "model")
        if meta.get("format") != MODEL_FORMAT:
            raise ModelUnavailable(f"{path}: not an adaptive policy of format {MODEL_FORMAT}")
        try:
            self.training_range = TrainingRange.from_dict(json.loads(meta["training_range"]))
        except (KeyError, ValueError, TypeError) as e:
            raise ModelUnavailable(f"{path}: bad training range metadata: {e}") from e
        inputs = self.session.get_inputs()
        inp = inputs[0]
        if inp.shape[-1] != OBS_DIM:
            raise ModelUnavailable(f"{path}: model takes {inp.shape[-1]} inputs, not {OBS_DIM}")
        self.gate: Gate | None = None
        if "gate" in meta:
            try:
                self.gate = Gate.from_json(meta["gate"])
            except (KeyError, ValueError, TypeError, OverflowError) as e:
                raise ModelUnavailable(f"{path}: bad gate metadata: {e}") from e
            if [i.name for i in inputs[1:]] != [GATE_INPUT]:
                raise ModelUnavailable(f"{path}: a gated model must take {GATE_INPUT!r}")
        elif len(inputs) != 1:
            raise ModelUnavailable(f"{path}: model takes {len(inputs)} inputs, not 1")
        self.input_name = inp.name
        self.metadata = dict(meta)
        self.path = path
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    def __call__(self, obs: Vector, spread: float | None = None) -> Vector:
        feed = {self.input_name: obs.reshape(1, -1).astype(np.float32)}
        if self.gate is not None:
            if spread is None:
                raise PolicyOutputInvalid("a gated model needs the instrument's spread")
            feed[GATE_INPUT] = np.array([[spread]], dtype=np.float32)
        out = self.session.run(None, feed)
        return np.asarray(out[0], dtype=np.float32).reshape(-1)

    def for_order(self, ctx: OrderContext) -> tuple[Policy, TrainingRange, str]:
        """What trades this order: the policy, the range its features must stay in, and the
        expert's name (a gated model's; "" for a single policy)."""
        if self.gate is None:
            return self, self.training_range, ""
        bps = spread_bps(ctx)
        expert = self.gate.expert(bps)
        return (lambda obs: self(obs, bps)), expert.training_range, expert.name


_CACHE: dict[tuple[str, int, int], OnnxPolicy] = {}


def shipped_models() -> list[str]:
    """The version names of the policies shipped with the product (what the demo seed
    registers). A file whose model card names another format (a predictor) is not one."""
    out = []
    for p in MODEL_DIR.glob("*.onnx"):
        try:
            card = json.loads(p.with_suffix(".card.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            card = {}
        if card.get("format", MODEL_FORMAT) == MODEL_FORMAT:
            out.append(p.stem)
    return sorted(out, key=version_order)


def version_order(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that reads the numbers in a name as numbers: policy-v2 before policy-v13
    (the registry lists models newest first by when they were registered, and the demo
    registers the shipped ones in this order)."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name) if t)


def resolve_model(model: str) -> Path:
    """A version name ("policy-v1") names a shipped file; anything else is a path."""
    if re.fullmatch(r"[A-Za-z0-9_.-]+", model) and not model.endswith(".onnx"):
        return MODEL_DIR / f"{model}.onnx"
    return Path(model)


def load_policy(model: str, sha256: str = "") -> OnnxPolicy:
    """The policy in a model file, cached by path, size and modification time. With
    `sha256` (a registered version's), a file whose bytes differ is ModelUnavailable."""
    path = resolve_model(model)
    try:
        st = os.stat(path)
    except OSError as e:
        shipped = ""
        if path.parent == MODEL_DIR:  # a version name: say which there are
            shipped = f"; shipped versions: {', '.join(shipped_models())}"
        raise ModelUnavailable(f"model file {path} not found: {e.strerror}{shipped}") from e
    if not stat.S_ISREG(st.st_mode):
        raise ModelUnavailable(f"model file {path} is not a file (a directory?)")
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    policy = _CACHE.get(key)
    if policy is None:
        policy = OnnxPolicy(path)
        _CACHE[key] = policy
    if sha256 and policy.sha256 != sha256:
        raise ModelUnavailable(
            f"model file {path} is not the registered version: sha256 {policy.sha256[:12]}…, "
            f"registered {sha256[:12]}…"
        )
    return policy


def policy_checked(policy: OnnxPolicy) -> OnnxPolicy:
    """The policy, if it answers a neutral observation (every input 0, the centre of its
    scaling) with finite values, each expert of a gated one; else ModelUnavailable. A model
    with NaN weights loaded, registered and backtested as "fell back on every episode"
    under its own name (a trial): refused where it is named instead."""
    obs = np.zeros(OBS_DIM, dtype=np.float32)
    probes: list[tuple[str, float | None]] = [("", None)]
    if policy.gate is not None:
        probes, low = [], 0.0
        for e in policy.gate.experts:
            # A spread inside the expert's band: halfway to its bound, or past the last one.
            probes.append(
                (e.name, low + 1.0 if math.isinf(e.below_bps) else (low + e.below_bps) / 2)
            )
            low = e.below_bps
    for name, spread in probes:
        out = policy(obs, spread)
        if out.shape != (ACTION_DIM,) or not np.all(np.isfinite(out)):
            who = f" (expert {name})" if name else ""
            raise ModelUnavailable(
                f"{policy.path}: answers a neutral observation{who} with "
                f"{out.shape[0]} values, not {ACTION_DIM} finite ones"
                if out.shape != (ACTION_DIM,)
                else f"{policy.path}: answers a neutral observation{who} with a non-finite value"
            )
    return policy


def load_policy_predictor(policy: OnnxPolicy) -> Callable[[Vector], float]:
    """The short-horizon predictor a policy was trained with (its metadata's "predictor":
    a shipped name, or a file relative to the policy's; and "predictor_sha256").
    ModelUnavailable when it is missing, unreadable or another file."""
    # Imported here: execution.learning.predictor imports this module.
    from execution.learning.predictor import load_predictor

    name = policy.metadata["predictor"]
    path = resolve_model(name)
    if not path.is_absolute():
        path = policy.path.parent / path
    return load_predictor(str(path), policy.metadata.get("predictor_sha256") or None)


# -- the strategy -----------------------------------------------------------------------


@register
class Adaptive(Strategy):
    """A learned policy adjusts pace, aggressiveness and venue around an urgency-shaped
    schedule; the schedule logic's safety net (catch up when far behind, finish in the
    last slice) stays in force whatever the policy says."""

    name = "adaptive"
    label = "Adaptive (learned policy)"
    extra_params = (
        ParamSpec(
            "urgency",
            "float",
            0.0,
            "Front-loads the schedule the policy works around (0: even, like TWAP; 1: "
            "Almgren–Chriss with κT = 4); also an input to the policy.",
            "",
            0.0,
            1.0,
        ),
        ParamSpec(
            "schedule",
            "choice",
            "volume",
            "The curve the policy works around: even in time (TWAP's) or the instrument's "
            "expected volume curve (VWAP's); urgency front-loads either.",
            choices=("time", "volume"),
            amendable=False,
        ),
        ParamSpec(
            "model",
            "str",
            DEFAULT_MODEL,
            "Policy model: a shipped version name or an ONNX file path.",
            amendable=False,
        ),
        ParamSpec(
            "range_margin",
            "float",
            0.5,
            "Fall back to TWAP when a feature lies more than this many widths of its "
            "training range outside it.",
            "",
            0.0,
            10.0,
        ),
    )

    def __init__(self, ctx: OrderContext, params: Mapping[str, Any] | None = None) -> None:
        self.features = FeatureState()
        self.policy: Policy | None = None
        self.training_range: TrainingRange | None = None
        self.check_range = True
        self.external = False  # a learning environment supplies each decision
        self.pending: tuple[DecisionView, Vector] | None = None
        self.predictor: Callable[[Vector], float] | None = None
        self.last_decision: Decision | None = None
        self.decision_log: DecisionHook | None = None  # off unless a log is attached
        self.model: OnnxPolicy | None = None  # the model file loaded, if any
        self.expert = ""  # a gated model's expert that trades this order
        # Set by whoever resolved the order's registered version (the worker): its file,
        # whose bytes must hash to `expected_sha256`, or the order falls back.
        self.model_file = ""
        self.expected_sha256 = ""
        super().__init__(ctx, params)

    def setup(self) -> None:
        self.kappa_T = 4.0 * float(self.params["urgency"])
        self.by_volume = self.params["schedule"] == "volume"
        self._window_volume = window_volume(self.ctx)

    def use_policy(
        self,
        policy: Policy,
        training_range: TrainingRange | None = None,
        *,
        check_range: bool = False,
    ) -> None:
        """Plug in a policy directly (training, tests) instead of the model file."""
        self.policy = policy
        self.training_range = training_range
        self.check_range = check_range

    def schedule_fraction(self, t: float) -> float:
        # In volume time the neutral action is VWAP exactly; in clock time, TWAP.
        if self.by_volume:
            elapsed = volume_elapsed(self.ctx, t, self._window_volume)
        else:
            elapsed = time_elapsed(self.ctx, t)
        return ac_fraction(elapsed, kappa_T=self.kappa_T)

    def _load(self) -> Policy:
        if self.policy is None:
            model = self.model_file or str(self.params["model"])
            loaded = load_policy(model, self.expected_sha256)
            if self.predictor is None and loaded.metadata.get("predictor"):
                self.predictor = load_policy_predictor(loaded)  # ModelUnavailable if bad
            self.model = loaded
            self.policy, self.training_range, self.expert = loaded.for_order(self.ctx)
        return self.policy

    def observe(self, view: DecisionView) -> Vector:
        raw = self.features.update(self.ctx, view, target_fraction=self.planned_fraction(view.now))
        norm = normalise(raw, self.training_range, margin=float(self.params["range_margin"]))
        if self.check_range and norm.any_out_of_range:
            names = ", ".join(norm.names_out_of_range)
            raise FeaturesOutOfRange(f"features outside the policy's training range: {names}")
        pred = self.predictor(norm.values) if self.predictor is not None else None
        return observation(self.ctx, norm.values, float(self.params["urgency"]), pred)

    def by_curve_alone(self) -> bool:
        """An order of under SMALL_ORDER_LOTS lots is worked at the policy's neutral point
        (its curve, midpoint, the order's dark share), without the model: at that size the
        policy has almost nothing to choose, and a first lot puts the order further ahead
        of its schedule than any training day did (a trial: 13 of 27 orders of 110-250
        shares fell back to TWAP with a critical alert each)."""
        return not self.external and too_small_for_the_model(
            self.ctx.qty, int(self.params["min_child_qty"])
        )

    def _decide(self, view: DecisionView) -> list[Action]:
        if self.by_curve_alone():
            neutral = Decision(1.0, "midpoint", float(self.params["dark_fraction"]))
            return self.act(view, neutral)
        policy = None if self.external else self._load()
        obs = self.observe(view)
        if policy is None:
            self.pending = (view, obs)
            return []
        raw = policy(obs)
        decision = decode(raw)
        if self.decision_log is not None:
            self.decision_log(self, view, obs, raw, decision)
        return self.act(view, decision)

    def respond(self, raw_action: npt.ArrayLike) -> list[Action]:
        """External mode: the actions for the pending decision, given the policy's output."""
        if self.pending is None:
            raise RuntimeError("no decision is pending")
        view, obs = self.pending
        self.pending = None
        decision = decode(raw_action)
        if self.decision_log is not None:
            self.decision_log(self, view, obs, raw_action, decision)
        return self.shape(self.act(view, decision), view)

    def act(self, view: DecisionView, d: Decision) -> list[Action]:
        """Turn a decision into cancels and child orders (schedule logic as in base.py)."""
        before, self.last_decision = self.last_decision, d
        ctx, p = self.ctx, self.params
        side = ctx.side
        actions: list[Action] = []
        target_now, target_next = self.targets(view)
        slice_qty = max(target_next - target_now, 1.0)
        leaves = ctx.qty - view.filled_qty
        last_slice = self.in_last_slice(view.now)
        desired = min(target_now + d.pace * slice_qty, float(ctx.qty))
        mode = d.mode
        behind = target_now - view.filled_qty
        lot = self.lot(leaves)
        catch_up = 0  # the safety net's own take, as every baseline's (base.Strategy)
        lag_allowed = max(p["catch_up_slices"] * max(1.0, 1.0 / d.pace) * slice_qty, lot - 1)
        if last_slice and p["complete"]:
            desired, mode = float(ctx.qty), "take"
        elif behind > lag_allowed and mode != "take":
            # The safety net: never far behind the schedule. Take what is behind now, as
            # the baselines do, and rest the rest of the pace as the policy chose. A policy
            # that slows down (pace < 1) tolerates a lag in proportion, up to 3 slices;
            # at pace 1 the net is TWAP's, so the neutral action is TWAP exactly.
            catch_up = int(min(behind, leaves))
        need = desired - view.filled_qty  # still to fill by the next decision

        live = [c for c in view.working if not c.cancel_pending]
        working_qty = sum(c.leaves_qty for c in view.working)
        for c in live:
            if c.intent == "passive" and not self.router.at_touch(
                side, c, view, self.ctx.limit_px_ticks
            ):
                actions.append(Cancel(c.client_order_id))
        cancelled = {a.client_order_id for a in actions if isinstance(a, Cancel)}
        kept = [c for c in live if c.intent != "take" and c.client_order_id not in cancelled]
        resting_qty = sum(c.leaves_qty for c in kept)
        free = leaves - working_qty

        if catch_up > 0 and lot > 1:  # a lag of 99.99 takes the 100-share lot, not 99
            catch_up = min(max(catch_up, lot), leaves)
        took = 0
        if catch_up > 0:
            took, kept, resting_qty, free = self.take_now(
                catch_up, kept, resting_qty, free, view, actions
            )
            need -= took

        if mode == "take":
            want = int(min(max(need, 0.0), leaves))
            if want >= 1:  # less than a lot: take a lot, a little ahead of the schedule
                self.take_now(min(max(want, lot), leaves), kept, resting_qty, free, view, actions)
            return actions

        # Resting: too much out (the pace fell) -> withdraw the newest; too little -> add.
        # Up to a lot more than the pace asks is what rounding a child up to a lot leaves.
        # Only a pace that fell (below the last decision's, or the schedule's own)
        # withdraws: at a steady pace 1 the baselines keep what rests however far it runs
        # ahead of the fills, and so does the neutral action (an order held to its
        # participation cap at the open rested two slices, and at pace 1 withdrew one
        # where VWAP kept it).
        excess = resting_qty - max(need, 0.0) - max(slice_qty, lot)
        if excess > 0 and d.pace < max(1.0, before.pace if before else 1.0):
            for c in sorted(kept, key=lambda c: -c.sent_at):
                if excess <= 0:
                    break
                actions.append(Cancel(c.client_order_id, "PACE"))
                excess -= c.leaves_qty
                resting_qty -= c.leaves_qty
        add = int(min(need - resting_qty, free))
        if add < 1 or last_slice:
            return actions
        add = min(max(add, lot), free)  # less than a lot: rest a lot
        if self.waits_for_cancels(add, lot, leaves, view, actions, took):
            return actions
        improve = mode == "midpoint" and bool(p["improve_wide_spread"])
        actions.extend(self.rest(add, d.dark_share, view, improve))
        return actions
