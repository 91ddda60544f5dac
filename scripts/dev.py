#!/usr/bin/env python3
"""The one entry point for developers and CI. Standard library only, Python 3.11+.

    python3 scripts/dev.py test [PYTEST_ARGS...]   lint, type-check, import contracts, tests
    python3 scripts/dev.py lint                    the same without the tests
    python3 scripts/dev.py fmt                     rewrite files with ruff format and ruff --fix
    python3 scripts/dev.py run [ARGS...]           a demo backtest of the midcap scenario
    python3 scripts/dev.py bench [ARGS...]         bench/bench_episode.py

Each command creates .venv on first use and reinstalls requirements only when the
requirements files have changed since the last install (a hash stamp lives in .venv).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
RUNTIME_REQUIREMENTS = ROOT / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"

# Packages that must not import Django; mypy checks them strictly (see pyproject.toml).
PURE_PACKAGES = (
    "execution/sim",
    "execution/algos",
    "execution/engine",
    "execution/features",
    "execution/learning",
    "execution/backtest.py",
    "execution/backtest_stats.py",
    "tca/metrics.py",
)

DEMO_BACKTEST = ("execution/scenarios/demo-midcap-buy.json", "--episodes", "5")

PYTEST_NO_TESTS = 5


class StepFailed(Exception):
    def __init__(self, name: str, code: int) -> None:
        super().__init__(name, code)
        self.name = name
        self.code = code


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def step(name: str, argv: Sequence[str | os.PathLike[str]]) -> None:
    """Run one command from the repository root; raise StepFailed on a non-zero exit."""
    say(name)
    env = dict(os.environ, VIRTUAL_ENV=str(VENV), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONHOME", None)
    code = subprocess.run([str(a) for a in argv], cwd=ROOT, env=env, check=False).returncode
    if code != 0:
        raise StepFailed(name, code if code > 0 else 128 - code)


def requirement_files(path: Path) -> list[Path]:
    """``path`` and every file it pulls in with -r, depth first."""
    files = [path]
    for line in path.read_text().splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            files += requirement_files(path.parent / parts[1])
    return files


def stamp_path(requirements: Path) -> Path:
    return VENV / f".installed-{requirements.name}.sha256"


def requirements_hash(requirements: Path) -> str:
    digest = hashlib.sha256()
    for path in requirement_files(requirements):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_venv(requirements: Path) -> None:
    """Create .venv if missing and install ``requirements`` if they changed since last time."""
    if not PYTHON.exists():
        step(f"create {VENV.name} ({sys.executable})", [sys.executable, "-m", "venv", VENV])
    stamp = stamp_path(requirements)
    if stamp.exists() and stamp.read_text().strip() == requirements_hash(requirements):
        return
    step(
        f"install {requirements.name}",
        [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-r", requirements],
    )
    # Everything it includes is now installed too, so `run` after `test` installs nothing.
    for included in requirement_files(requirements):
        stamp_path(included).write_text(requirements_hash(included) + "\n")


def static_checks() -> None:
    pure = [p for p in PURE_PACKAGES if (ROOT / p).exists()]
    step("ruff check .", [BIN / "ruff", "check", "."])
    step("ruff format --check .", [BIN / "ruff", "format", "--check", "."])
    step(f"mypy {' '.join(pure)}", [BIN / "mypy", *pure])
    step("lint-imports", [BIN / "lint-imports"])


def cmd_test(args: Sequence[str]) -> None:
    ensure_venv(DEV_REQUIREMENTS)
    static_checks()
    try:
        step(f"pytest {' '.join(args)}".strip(), [PYTHON, "-m", "pytest", *args])
    except StepFailed as failed:
        if failed.code == PYTEST_NO_TESTS:
            print("dev.py: pytest collected no tests; that counts as a failure", file=sys.stderr)
        raise


def cmd_lint(args: Sequence[str]) -> None:
    if args:
        raise SystemExit(f"dev.py lint takes no arguments, got {' '.join(args)}")
    ensure_venv(DEV_REQUIREMENTS)
    static_checks()


def cmd_fmt(args: Sequence[str]) -> None:
    ensure_venv(DEV_REQUIREMENTS)
    step("ruff check --fix .", [BIN / "ruff", "check", "--fix", ".", *args])
    step("ruff format .", [BIN / "ruff", "format", ".", *args])


def cmd_run(args: Sequence[str]) -> None:
    ensure_venv(RUNTIME_REQUIREMENTS)
    step("demo backtest", [PYTHON, "-m", "execution.backtest", *DEMO_BACKTEST, *args])


def cmd_bench(args: Sequence[str]) -> None:
    ensure_venv(RUNTIME_REQUIREMENTS)
    step("bench/bench_episode.py", [PYTHON, "bench/bench_episode.py", *args])


COMMANDS = {
    "test": cmd_test,
    "lint": cmd_lint,
    "fmt": cmd_fmt,
    "run": cmd_run,
    "bench": cmd_bench,
}


def main(argv: Sequence[str]) -> int:
    # The system python3 that starts this script may be older than the project's floor.
    if sys.version_info < (3, 11):  # noqa: UP036
        print("dev.py needs Python 3.11 or newer", file=sys.stderr)
        return 2
    # Hand-parsed so that every argument after the command reaches pytest untouched.
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"dev.py: unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    try:
        COMMANDS[command](args)
    except StepFailed as failed:
        print(f"\ndev.py: {failed.name!r} failed with exit code {failed.code}", file=sys.stderr)
        return failed.code
    except KeyboardInterrupt:
        return 130
    say(f"dev.py {command}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
