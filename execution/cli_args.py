"""Argument types shared by the command-line tools (backtest, training, evaluation, gate,
predictor, benches): a bad value is a one-line usage error naming the option, never a
traceback after minutes of work. Pure: no Django."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn

# No command needs more: a larger count is a typing error (and would overflow a list).
MAX_COUNT = 10_000_000


def whole(lo: int, hi: int = MAX_COUNT) -> Callable[[str], int]:
    """A whole number in [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo:,} to {hi:,}, got {value:,}")
        return value

    return parse


def number(
    lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False
) -> Callable[[str], float]:
    """A finite number in [lo, hi] (or (lo, hi] with `lo_open`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < lo or value > hi or (lo_open and value == lo):
            low = f"more than {lo:g}" if lo_open else f"at least {lo:g}"
            raise argparse.ArgumentTypeError(
                f"must be {low}"
                + (f" and at most {hi:g}" if hi < math.inf else "")
                + f", got {text}"
            )
        return value

    return parse


def layer_sizes(text: str) -> tuple[int, ...]:
    """Hidden layer sizes, "16,16": each from 1 to 1,024."""
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated layer sizes such as 16,16, got {text!r}"
        ) from None
    if not sizes or any(not 1 <= n <= 1024 for n in sizes):
        raise argparse.ArgumentTypeError(f"each layer size must be from 1 to 1,024, got {text!r}")
    return sizes


SHIPPED_MODELS = Path(__file__).resolve().parent / "learning" / "models"


def output_file(option: str, path: Path, *, inputs: Iterable[Path] = ()) -> str:
    """Why `path` cannot be written as a command's output file, or "": its folder must
    exist and be writable, it must not be a folder, and it must not be one of the
    command's own inputs (an output never overwrites what it was made from)."""
    if path.is_dir():
        return f"{option} {path}: is a folder; give a file name"
    parent = path.resolve().parent
    if not parent.is_dir():
        return f"{option} {path}: folder {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{option} {path}: folder {parent} is not writable"
    shipped = path.resolve().parent == SHIPPED_MODELS.resolve()
    if shipped and (path.exists() or path.with_suffix(".card.json").exists()):
        # The card too, which a trainer writes beside its output (a review: `--out
        # models/policy-v1` would have written over policy-v1.card.json).
        # Its hash is registered: written over, the registry refuses it and its orders
        # fall back to TWAP. The docs' reproduction commands did write there (a trial).
        return (
            f"{option} {path}: is a shipped model file, whose hash the registry holds; write "
            "to another path and compare the two files' SHA-256"
        )
    for given in inputs:
        try:
            # samefile: also a hard link or another path to the same file.
            if path.exists() and given.exists() and os.path.samefile(path, given):
                return f"{option} {path}: is one of the inputs; write the output elsewhere"
        except OSError:
            continue
    return ""


def output_folder(option: str, path: Path | str) -> str:
    """Create `path` (and its parents) for a command's outputs; why it cannot be used, or ""."""
    if not str(path).strip():
        # Path("") is the current folder: an empty value wrote the outputs there, into
        # whatever the command was run from (a trial: the repository's root). Pass the
        # option's text, not a Path made of it, for this to be seen.
        return f"{option}: name a folder (an empty value would write into the current one)"
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{option} {path}: is a file, not a folder"  # not "File exists" (a trial)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{option} {path}: cannot create it: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{option} {path}: folder is not writable"
    return ""


def exit_code(main: Callable[[], int], *errors: type[Exception]) -> int:
    """`main()`'s status; one of `errors` (a bad scenario or model) is one line on stderr
    and status 2, not a traceback. For scripts: `sys.exit(exit_code(main, ScenarioError))`."""
    try:
        return main()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


class OneLineParser(argparse.ArgumentParser):
    """Its errors as one line on stderr, exit status 2, as the command's own are: argparse
    put its whole usage block before an out-of-range --episodes (a trial)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def training_extras_or_exit(parser: argparse.ArgumentParser) -> None:
    """Training needs torch and onnx (requirements-train.txt): without them a command
    says what to install in one line, after --help and argument errors have had their say."""
    missing = [m for m in ("torch", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        parser.exit(
            2, f"training needs {', '.join(missing)}: pip install -r requirements-train.txt\n"
        )
