"""Writing model files and their cards: the same steps for policies, gated policies and
the predictor (training only; onnx is in requirements-train.txt)."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_metadata(path: Path, meta: Mapping[str, str]) -> None:
    """Replace an exported ONNX file's metadata (what serving reads), check it, save it."""
    onnx = importlib.import_module("onnx")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


REPO = Path(__file__).resolve().parents[2]


def code_version() -> dict[str, Any]:
    """The commit of the code that made a model, and whether the checkout had changes:
    the same command at other code can give another file, so a card says which code."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        # Tracked files only: the model being written (and a symlinked .venv) is no change
        # to the code that made it.
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return {"git_commit": git("rev-parse", "HEAD"), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "", "dirty": None, "note": "not made in a git checkout"}


def write_card(out: Path, card: dict[str, Any], started: float) -> Path:
    """Finish a model card (wall time, date, the code's commit, the file's SHA-256) and
    write it beside the file as NAME.card.json."""
    card.setdefault("code", code_version())
    card["wall_s"] = round(time.perf_counter() - started, 1)
    card["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # the card only
    card["sha256"] = sha256(out)
    card_path = out.with_suffix(".card.json")
    card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} ({card['sha256'][:12]}) and {card_path}", file=sys.stderr)
    return card_path
