"""manage.py model_retrain: close the learning loop up to a person.

Builds a candidate from simulated experience plus the decision log (production
experience), evaluates it against the approved version it starts from and the four
baselines on the same held-out days, and registers it as a CANDIDATE with the card and
that evaluation. Nothing trades on it until one risk manager recommends it and a second
approves it (docs/MODELS.md). Needs the training extras (requirements-train.txt).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from execution.cli_args import output_folder
from execution.model_registry import default_version, model_path, model_register
from execution.models import ModelVersion

TRAINING_EXTRAS = ("torch", "onnx")


def next_name(base: str) -> str:
    """policy-v2 -> policy-v3 (the first free one); anything else gets -r1, -r2 …"""
    m = re.fullmatch(r"(.*-v)(\d+)", base)
    stem, n = (m.group(1), int(m.group(2))) if m else (f"{base}-r", 0)
    taken = set(ModelVersion.objects.values_list("name", flat=True))
    while True:
        n += 1
        if f"{stem}{n}" not in taken:
            return f"{stem}{n}"


class Command(BaseCommand):
    help = "Retrain the adaptive policy from the approved version and the decision log; register a candidate."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--from",
            dest="base",
            default="",
            help="version to start from (default: the designated default version, docs/MODELS.md)",
        )
        parser.add_argument(
            "--decision-log",
            type=Path,
            default=None,
            help="decision log directory (default: DECISION_LOG_DIR if it has files)",
        )
        parser.add_argument(
            "--name", default="", help="the new version's name (default: the next after the base)"
        )
        parser.add_argument(
            "--out-dir",
            type=Path,
            default=None,
            help="where the model file goes (default: var/models)",
        )
        parser.add_argument("--iterations", type=int, default=30)
        parser.add_argument("--pairs", type=int, default=8)
        parser.add_argument("--episodes-per-pair", type=int, default=2)
        parser.add_argument("--range-episodes", type=int, default=60)
        parser.add_argument(
            "--evaluation", type=int, default=40, help="held-out days in the comparison"
        )
        parser.add_argument("--jobs", type=int, default=2)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **o: Any) -> None:
        missing = [m for m in TRAINING_EXTRAS if importlib.util.find_spec(m) is None]
        if missing:
            raise CommandError(
                f"retraining needs {', '.join(missing)}: pip install -r requirements-train.txt"
            )
        for key in ("iterations", "pairs", "episodes_per_pair", "evaluation", "jobs"):
            if o[key] < 1:
                raise CommandError(f"--{key.replace('_', '-')} must be at least 1")
        if o["range_episodes"] < 1:
            raise CommandError("--range-episodes must be at least 1")
        if o["evaluation"] < 2:
            raise CommandError("--evaluation must be at least 2 (a paired interval needs two days)")
        if o["seed"] < 0:
            raise CommandError("--seed must be >= 0")
        if o["name"] and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", o["name"]):
            # Also a file name: no folder in it, nothing that leaves --out-dir.
            raise CommandError(
                f"--name {o['name'][:80]!r}: use letters, digits, '.', '_' and '-' "
                "(at most 64, starting with a letter or digit)"
            )
        if o["base"]:
            base = ModelVersion.objects.filter(name=o["base"]).first()
            if base is None:
                raise CommandError(f"there is no model version {o['base']!r}")
        else:
            base = default_version()
            if base is None:
                raise CommandError("no approved model version to start from: name one with --from")
        log_dir = o["decision_log"]
        if log_dir is None and settings.DECISION_LOG_DIR is not None:
            configured = Path(settings.DECISION_LOG_DIR)
            if configured.is_dir() and any(configured.rglob("*.parquet")):
                log_dir = configured
        if log_dir is not None and not Path(log_dir).exists():
            raise CommandError(f"decision log {log_dir} does not exist")
        name = o["name"] or next_name(base.name)
        if ModelVersion.objects.filter(name=name).exists():
            raise CommandError(f"model version {name!r} is already registered")
        out_dir = o["out_dir"] or Path(settings.BASE_DIR) / "var" / "models"
        problem = output_folder("--out-dir", out_dir)
        if problem:
            raise CommandError(problem)
        out = out_dir / f"{name}.onnx"
        if out.exists():
            raise CommandError(f"{out} exists: choose another --name or remove it")

        from execution.learning.decision_log import DecisionLogError
        from execution.learning.retrain import GatedBase, RetrainConfig, retrain

        rc = RetrainConfig(
            base_model=model_path(base),
            out=out,
            decision_log=log_dir,
            seed=o["seed"],
            iterations=o["iterations"],
            pairs=o["pairs"],
            episodes_per_pair=o["episodes_per_pair"],
            range_episodes=o["range_episodes"],
            evaluation=o["evaluation"],
            jobs=o["jobs"],
        )
        try:
            card = retrain(rc, log=sys.stderr)
        except DecisionLogError as e:
            raise CommandError(f"decision log: {e}") from None
        except GatedBase as e:
            raise CommandError(str(e)) from None
        r = card["retrain"]
        try:
            mv = model_register(
                path=out,
                name=name,
                card=card,
                metrics=card["evaluation"],
                note=(
                    f"retrained from {base.name} on {r['logged_rows']} logged decisions "
                    f"({r['logged_orders']} orders)"
                ),
            )
        except ValidationError as e:
            raise CommandError("; ".join(e.messages)) from None
        ev = card["evaluation"]
        self.stdout.write(f"registered {mv.name} as a candidate ({mv.sha256[:12]}) from {out}")
        self.stdout.write(
            f"held-out days: {ev['episodes']}; mean shortfall (bps): "
            + ", ".join(f"{k} {v:.2f}" for k, v in ev["mean_shortfall_bps"].items())
        )
        for other, d in ev["candidate_minus"].items():
            self.stdout.write(
                f"  {mv.name} minus {other}: {d['mean']:+.2f} bps "
                f"[{d['ci95_low']:+.2f}, {d['ci95_high']:+.2f}]"
            )
        self.stdout.write(
            "It trades only after one risk manager recommends it and a second approves it "
            f"(/risk/models/{mv.pk}/)."
        )
