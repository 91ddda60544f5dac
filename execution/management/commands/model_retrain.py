"""manage.py model_retrain: close the learning loop up to a person.

Builds a candidate from simulated experience plus the decision log (production
experience), evaluates it against the approved version it starts from and the four
baselines on the same held-out days, and registers it as a CANDIDATE with the card and
that evaluation. Nothing trades on it until one risk manager recommends it and a second
approves it (docs/MODELS.md). Needs the training extras (requirements-train.txt).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from execution.cli_args import output_folder, whole
from execution.model_registry import (
    VERSION_NAME,
    default_version,
    integrity_problem,
    model_path,
    model_register,
)
from execution.models import ModelVersion
from oversight.management.ready import require_migrated

TRAINING_EXTRAS = ("torch", "onnx")


def next_name(base: str) -> str:
    """policy-v6 -> policy-v6-r1 (the first free -rN). Never the next policy-vN: the docs
    give those names to models of their own (docs/ADAPTIVE.md rebuilds policy-v10 to v16),
    and a retrain under one of them would pass for the documented model."""
    taken = {n.lower() for n in ModelVersion.objects.values_list("name", flat=True)}
    n = 1
    while f"{base}-r{n}".lower() in taken:  # names are unique whatever the case
        n += 1
    return f"{base}-r{n}"


def decision_log_default() -> tuple[Path | None, str]:
    """The configured decision log if it holds files, else None and why: a retrain that
    reads no log says so, rather than reporting "0 logged decisions" as if there were none."""
    if settings.DECISION_LOG_DIR is not None:
        configured = Path(settings.DECISION_LOG_DIR)
        if configured.is_dir() and any(configured.rglob("*.parquet")):
            return configured, ""
        return None, (
            f"no decision log read: the configured directory {configured} "
            "(OVERSIGHT_DECISION_LOG_DIR) holds no decision files; training on generated "
            "days only"
        )
    note = (
        "no decision log read: OVERSIGHT_DECISION_LOG_DIR is not set (scripts/dev.py run "
        "sets it) and --decision-log was not given; training on generated days only"
    )
    # Named, not read: which log a candidate learns from is the caller's choice.
    usual = Path(settings.BASE_DIR) / "var" / "decision-log"
    if usual.is_dir():
        files = sum(1 for _ in usual.rglob("*.parquet"))
        note += (
            f". {usual} exists ({files} decision file{'s' if files != 1 else ''}): "
            f"to train on it, pass --decision-log {os.path.relpath(usual)}"
        )
    return None, note


FALLBACK_SHARE_SAID = 0.1  # a candidate that fell back on this share of days is warned of


def evaluation_summary(name: str, base: str, ev: dict[str, Any]) -> list[str]:
    """What the command prints of the evaluation. A model that fell back traded those days
    as TWAP, so its fallbacks come first: on every day, the comparison measures nothing."""
    n = ev["episodes"]
    fell = ev.get("fallbacks", {})
    cand, prev = fell.get("candidate", 0), fell.get("base", 0)
    lines = [
        f"held-out days: {n}; mean shortfall (bps): "
        + ", ".join(f"{k} {v:.2f}" for k, v in ev["mean_shortfall_bps"].items()),
        f"fell back to TWAP: {name} on {cand} of {n} days, {base} on {prev} of {n} days",
    ]
    if ev.get("days"):
        lines.insert(1, f"  which days: {ev['days']}")
    if cand == n:
        lines.append(
            f"{name} fell back to TWAP on every evaluation day: it traded as TWAP, so this "
            "comparison measures nothing about the model"
        )
    elif cand and cand >= FALLBACK_SHARE_SAID * n:
        # A trial's candidate fell back on 4 of 5 days and was registered with a
        # difference that was mostly TWAP's, and nothing said so.
        lines.append(
            f"{name} fell back to TWAP on {cand} of {n} evaluation days ({cand / n:.0%}): "
            "on those days it traded as TWAP, so the comparison says that much less about "
            "the model; find out why on those days before approving it"
        )
    if prev == n and cand != n:
        lines.append(
            f"{base} fell back to TWAP on every evaluation day: the comparison with it "
            f"measures {name} against TWAP, not against {base}"
        )
    for other, d in ev["candidate_minus"].items():
        lines.append(
            f"  {name} minus {other}: {d['mean']:+.2f} bps "
            f"[{d['ci95_low']:+.2f}, {d['ci95_high']:+.2f}]"
        )
    return lines


SEED_MAX = 2**31 - 1  # train.py's bound: the seed goes into numpy and torch
# Each option's range, as train.py's: the parser checks a command line, and handle()
# again for call_command's keywords, which skip the parser's types.
BOUNDS = {
    "iterations": (1, 100_000),
    "pairs": (1, 10_000),
    "episodes_per_pair": (1, 10_000),
    "range_episodes": (1, 100_000),
    "evaluation": (2, 100_000),  # the held-out validation days there are
    "jobs": (1, 256),
    "seed": (0, SEED_MAX),
}


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
            "--decision-log",  # text, not Path: Path("") would be the current folder
            default=None,
            help="decision log directory (default: OVERSIGHT_DECISION_LOG_DIR if it has files; "
            "without either, none is read, and the command says so)",
        )
        parser.add_argument(
            "--name", default="", help="the new version's name (default: BASE-rN, the first free N)"
        )
        parser.add_argument(
            "--out-dir",  # text, as --decision-log
            default=None,
            help="where the model file goes (default: var/models)",
        )
        parser.add_argument(
            "--iterations",
            type=whole(*BOUNDS["iterations"]),
            default=30,
            help="training iterations (default: %(default)s)",
        )
        parser.add_argument(
            "--pairs",
            type=whole(*BOUNDS["pairs"]),
            default=8,
            help="perturbation pairs per iteration (default: %(default)s)",
        )
        parser.add_argument(
            "--episodes-per-pair",
            type=whole(*BOUNDS["episodes_per_pair"]),
            default=2,
            help="generated days each perturbation is tried on (default: %(default)s)",
        )
        parser.add_argument(
            "--range-episodes",
            type=whole(*BOUNDS["range_episodes"]),
            default=60,
            help="generated days the saved feature range is fitted on (default: %(default)s)",
        )
        parser.add_argument(
            "--evaluation",
            type=whole(*BOUNDS["evaluation"]),
            default=40,
            help="held-out days in the comparison (default: %(default)s)",
        )
        parser.add_argument(
            "--jobs",
            type=whole(*BOUNDS["jobs"]),
            default=2,
            help="worker processes (default: %(default)s)",
        )
        parser.add_argument(
            "--seed",
            type=whole(*BOUNDS["seed"]),
            default=1,
            help="the training's random seed (default: %(default)s)",
        )

    def handle(self, *args: Any, **o: Any) -> None:
        require_migrated()
        # The command line's types check these (as train.py's do); call_command's keyword
        # arguments skip the types, so they are checked again here. A seed past 2**31
        # failed only after the model had loaded, without naming --seed (a fuzz).
        for key, (lo, hi) in BOUNDS.items():
            if not lo <= o[key] <= hi:
                why = " (a paired interval needs two days)" if key == "evaluation" else ""
                raise CommandError(f"--{key.replace('_', '-')} must be from {lo:,} to {hi:,}{why}")
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
        problem = integrity_problem(base)
        if problem:
            # As recommend and approve refuse it: training would start from other weights
            # than the registered ones, and the card would name their hash as the base.
            raise CommandError(
                f"cannot retrain from {base.name}: a file changed on disk since "
                f"registration: {problem}"
            )
        log_dir, log_note = o["decision_log"], ""
        if log_dir is not None and not str(log_dir).strip():
            raise CommandError("--decision-log: name a folder (an empty value is the current one)")
        if log_dir is None:
            log_dir, log_note = decision_log_default()
        else:
            log_dir = Path(log_dir)
        if log_dir is not None and not Path(log_dir).exists():
            raise CommandError(f"decision log {log_dir} does not exist")
        name = o["name"] or next_name(base.name)
        if not VERSION_NAME.fullmatch(name):  # a long base name makes a long default
            why = "is too long" if len(name) > 64 else "is not a version name"
            raise CommandError(f"the new version's name {name!r} {why}: choose one with --name")
        if ModelVersion.objects.filter(name__iexact=name).exists():  # unique whatever the case
            raise CommandError(f"model version {name!r} is already registered")
        given = o["out_dir"]
        out_dir = given if given is not None else Path(settings.BASE_DIR) / "var" / "models"
        problem = output_folder("--out-dir", out_dir)
        if problem:
            raise CommandError(problem)
        out = Path(out_dir) / f"{name}.onnx"
        if out.exists():
            raise CommandError(f"{out} exists: choose another --name or remove it")
        # Last: a typo in the arguments is said without the training extras installed (a
        # trial had to install them to learn that --from named no version).
        missing = [m for m in TRAINING_EXTRAS if importlib.util.find_spec(m) is None]
        if missing:
            raise CommandError(
                f"retraining needs {', '.join(missing)}: pip install -r requirements-train.txt"
            )

        if log_note:
            self.stdout.write(log_note)
            self.stdout.flush()  # before the training's progress on stderr
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
        except (GatedBase, ValueError) as e:  # a band too narrow for --evaluation, too
            raise CommandError(str(e)) from None
        r = card["retrain"]
        try:
            mv = model_register(
                path=out,
                name=name,
                card=card,
                metrics=card["evaluation"],
                note=(
                    # What the log did: its orders are some training days' orders (said
                    # as "on N logged decisions", it read as learned from them, a trial).
                    f"retrained from {base.name}; {r['logged_orders']} logged orders "
                    f"({r['logged_rows']} decisions) were the orders of some of its "
                    "training days"
                ),
            )
        except ValidationError as e:
            raise CommandError("; ".join(e.messages)) from None
        self.stdout.write(f"registered {mv.name} as a candidate ({mv.sha256[:12]}) from {out}")
        if log_note:  # again beside the result: the progress on stderr may have buried it
            self.stdout.write(log_note)
        for line in evaluation_summary(mv.name, base.name, card["evaluation"]):
            self.stdout.write(line)
        self.stdout.write(
            "It trades only after one risk manager recommends it and a second approves it "
            f"(/risk/models/{mv.pk}/)."
        )
