"""Real processes for integration tests: Celery workers and how to stop them cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable


def celery_worker_argv(queue: str, *, name: str = "", concurrency: int = 2) -> list[str]:
    """`celery -A oversight worker` on a queue of the test's own (no stray tasks either way)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "oversight",
        "worker",
        "-l",
        "info",
        "--concurrency",
        str(concurrency),
        "-Q",
        queue,
        "-n",
        f"{name or queue}@%h",
        "--without-gossip",
        "--without-mingle",
    ]


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"the process exited with status {proc.returncode} while waiting for {what}"
            )
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (a warm shutdown), then SIGKILL if it takes too long,
    and SIGKILL again for pool children a killed main process left behind."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    # Wait for the whole group to be gone, so no connection of theirs outlives the test
    # (PostgreSQL refuses to drop a test database someone is still connected to).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
