"""Build a gated policy: trained policies ("experts"), each for a band of the instrument's
quoted spread, in one ONNX file (docs/ADAPTIVE.md, "policy-v7: a gated pair").

Why a gate: ranked by cost in bps, the evolution strategies learn departures from TWAP
that pay on wide spreads and cost a little on tight ones; ranked in spreads, the reverse
(policies v3-v6). One small network trained on both has not found both. The spread in bps
is known before the order starts and is the line along which they differ, so each order
is traded, start to end, by the expert for its instrument's spread. The gate is a fixed
rule, not learned: a risk manager can read it, and it is chosen on held-out generated days
(never the shared scenarios).

The file takes the observation and the spread (`adaptive.GATE_INPUT`) and returns the
selected expert's action. Its metadata keeps each expert's name, SHA-256 and training
range, so the strategy checks an order's features against the range of the expert that
trades it. Needs torch and onnx (requirements-train.txt); serving needs neither.

    python -m execution.learning.gate --expert policy-v6:5 --expert policy-v4 \\
        --out execution/learning/models/policy-v7.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from execution.algos.adaptive import (
    GATE_INPUT,
    MODEL_FORMAT,
    MODES,
    OBS_DIM,
    Expert,
    Gate,
    ModelUnavailable,
    OnnxPolicy,
    load_policy,
)
from execution.cli_args import output_file, whole
from execution.features import NAMES, TrainingRange
from execution.learning import train as trainer
from execution.learning.env import run_policy
from execution.learning.model_files import set_metadata, write_card
from execution.learning.scenarios import validation_seeds


class GateError(ValueError):
    """The experts cannot be gated together (the message says why)."""


def parse_expert(text: str) -> tuple[str, float]:
    """ "policy-v6:5" -> ("policy-v6", 5.0): trades spreads under 5 bps; "policy-v4" -> the
    rest (inf)."""
    name, _, bound = text.partition(":")
    if not name:
        raise GateError(f"expert {text!r}: no model named")
    if not bound:
        return name, math.inf
    try:
        value = float(bound)
    except ValueError:
        raise GateError(f"expert {text!r}: {bound!r} is not a spread in bps") from None
    if not (value > 0 and math.isfinite(value)):
        raise GateError(f"expert {text!r}: the spread bound must be a positive number of bps")
    return name, value


def check_experts(specs: Sequence[tuple[str, float]]) -> list[OnnxPolicy]:
    """Load the experts; GateError unless they can share one file and one predictor."""
    if len(specs) < 2:
        raise GateError("a gate needs at least two experts")
    bounds = [b for _, b in specs]
    if bounds[-1] != math.inf or any(b == math.inf for b in bounds[:-1]):
        raise GateError("every expert but the last needs a bound (name:bps); the last none")
    if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        raise GateError(f"the bounds must increase: {bounds[:-1]}")
    policies = []
    for name, _ in specs:
        try:
            policies.append(load_policy(name))
        except ModelUnavailable as e:
            raise GateError(f"expert {name}: {e}") from None
    for (name, _), p in zip(specs, policies, strict=True):
        if p.gate is not None:
            raise GateError(f"{name} is itself gated: name its experts")
    predictors = {
        (p.metadata.get("predictor", ""), p.metadata.get("predictor_sha256", "")) for p in policies
    }
    if len(predictors) != 1:
        raise GateError(f"the experts use different predictors: {sorted(predictors)}")
    return policies


def union_range(ranges: Sequence[TrainingRange]) -> TrainingRange:
    lo = np.min([r.lo for r in ranges], axis=0)
    hi = np.max([r.hi for r in ranges], axis=0)
    return TrainingRange(tuple(float(v) for v in lo), tuple(float(v) for v in hi))


def gated_module(
    thetas: Sequence[Any], hiddens: Sequence[Sequence[int]], bounds: Sequence[float]
) -> Any:
    """The experts in one torch module: forward(obs, spread_bps) -> the action of the
    expert whose band holds the spread (the first whose bound is above it)."""
    torch = trainer._torch()
    nets = [trainer.torch_module(t, h) for t, h in zip(thetas, hiddens, strict=True)]

    class Gated(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.experts = torch.nn.ModuleList(nets)

        def forward(self, obs: Any, spread: Any) -> Any:
            out = self.experts[-1](obs)
            for k in range(len(nets) - 2, -1, -1):
                out = torch.where(spread < float(bounds[k]), self.experts[k](obs), out)
            return out

    return Gated().eval()


def export(
    specs: Sequence[tuple[str, float]], policies: Sequence[OnnxPolicy], out: Path, command: str
) -> dict[str, Any]:
    torch = trainer._torch()
    hiddens = [tuple(json.loads(p.metadata["config"])["hidden"]) for p in policies]
    thetas = [
        trainer.params_from_onnx(str(p.path), h) for p, h in zip(policies, hiddens, strict=True)
    ]
    bounds = [b for _, b in specs]
    module = gated_module(thetas, hiddens, bounds)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module,
        (torch.zeros(1, OBS_DIM), torch.zeros(1, 1)),
        str(out),
        input_names=["obs", GATE_INPUT],
        output_names=["action"],
        dynamic_axes={"obs": {0: "n"}, GATE_INPUT: {0: "n"}, "action": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    gate = Gate(
        tuple(
            Expert(name, p.sha256, bound, p.training_range)
            for (name, bound), p in zip(specs, policies, strict=True)
        )
    )
    first = policies[0].metadata
    experts_card = [
        {
            "model": name,
            "below_bps": None if bound == math.inf else bound,
            "sha256": p.sha256,
            "config": json.loads(p.metadata["config"]),
        }
        for (name, bound), p in zip(specs, policies, strict=True)
    ]
    config = {"gate": "instrument quoted spread, bps", "experts": experts_card}
    meta = {
        **(
            {"predictor": first["predictor"], "predictor_sha256": first.get("predictor_sha256", "")}
            if first.get("predictor")
            else {}
        ),
        "format": MODEL_FORMAT,
        # The union: what a reader that knows no gate checks. The strategy uses the
        # trading expert's own range (the gate's).
        "training_range": json.dumps(union_range([p.training_range for p in policies]).to_dict()),
        "gate": gate.to_json(),
        "observation": json.dumps([*NAMES, "order_size_adv", "urgency", "predictor"]),
        "action": json.dumps(["pace", *(f"mode_{m}" for m in MODES), "dark"]),
        "config": json.dumps(config),
    }
    set_metadata(out, meta)
    return {
        "model": out.name,
        "format": MODEL_FORMAT,
        "method": "gate: one trained policy per band of the instrument's quoted spread (bps), "
        "chosen once per order; the experts' weights unchanged",
        "config": config,
        "command": command,
    }


def agreement(
    gated: OnnxPolicy,
    specs: Sequence[tuple[str, float]],
    experts: Sequence[OnnxPolicy],
    obs: npt.NDArray[np.float32],
) -> dict[str, float]:
    """Largest difference, per band, between the gated file and the expert's own file on
    the same inputs, with a spread inside the band (0 within float rounding)."""
    out = {}
    lo = 0.0
    for (name, bound), p in zip(specs, experts, strict=True):
        spread = lo + 0.5 if bound == math.inf else (lo + bound) / 2.0
        diff = max(float(np.abs(gated(row, spread) - p(row)).max()) for row in obs)
        out[name] = diff
        lo = bound if bound != math.inf else lo
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m execution.learning.gate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--expert",
        action="append",
        required=True,
        help="NAME:BPS (trades spreads under BPS), in order; the last NAME alone",
    )
    parser.add_argument("--out", type=Path, required=True, help="the ONNX file to write")
    parser.add_argument("--validation", type=whole(2, 100_000), default=100)
    parser.add_argument("--jobs", type=whole(1, 256), default=2)
    parser.add_argument(
        "--schedule",
        choices=("time", "volume"),
        default="volume",
        help="the curve the card's validation works around (the strategy's default: volume)",
    )
    parser.add_argument(
        "--min-child-qty",
        type=whole(1, 1_000_000),
        default=trainer.Config.min_child_qty,
        help="the smallest child order in the card's validation (default: %(default)s, as "
        "the shipped gates were validated; served orders default to 100)",
    )
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    try:
        specs = [parse_expert(e) for e in args.expert]
        policies = check_experts(specs)
    except GateError as e:
        parser.error(str(e))
    problem = output_file("--out", args.out, inputs=[p.path for p in policies])
    if problem:
        parser.error(problem)
    command = "python -m execution.learning.gate " + " ".join(argv or sys.argv[1:])
    card = export(specs, policies, args.out, command)
    gated = load_policy(str(args.out))
    env, held_out = (
        trainer.make_env(policies[0].metadata.get("predictor", "")),
        list[npt.NDArray[np.float32]](),
    )
    for s in validation_seeds(5, offset=90_000):
        run_policy(env, policies[-1], s, record=held_out)
    obs = np.stack(held_out).astype(np.float32)
    card["onnx_vs_experts_max_abs_diff"] = agreement(gated, specs, policies, obs)
    card["onnx_vs_experts_inputs"] = int(obs.shape[0])
    print(f"gated vs experts: {card['onnx_vs_experts_max_abs_diff']}", file=sys.stderr)
    card["validation"] = trainer.validate(
        args.out,
        validation_seeds(args.validation),
        trainer.Config(schedule=args.schedule, min_child_qty=args.min_child_qty),
        args.jobs,
    )
    print(f"validation: {json.dumps(card['validation'])}", file=sys.stderr)
    card["predictor"] = trainer.predictor_metadata(policies[0].metadata.get("predictor", ""))
    write_card(args.out, card, wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
