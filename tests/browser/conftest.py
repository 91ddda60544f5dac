"""Fixtures for the browser tests: the real stack (Daphne and a Celery worker in
subprocesses, against this run's test database and Redis) and headless Chromium driven by
Playwright. Skipped, with the reason, where Chromium or Playwright is missing.

Chromium is Debian's (`/usr/bin/chromium`, or `chromium` on PATH); `playwright install` is
never needed (nor run): the browser is launched by path.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, connections

from execution.models import Instrument
from oversight.roles import RISK_MANAGER, TRADER, roles_ensure
from tests.conftest import REPO
from tests.personas import demo_instrument
from tests.processes import celery_worker_argv, stop_process_group

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}
PASSWORD = "browser-pw"
# Simulated seconds per wall second for the test's market: a 90-minute window is 90 s.
MARKET_SPEED = "60"
START_WAIT_S = 60.0


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable, after checking Playwright is importable; else a clean skip."""
    # CI sets OVERSIGHT_REQUIRE_BROWSER: there a missing browser is a failure, not a skip.
    missing = pytest.fail if os.environ.get("OVERSIGHT_REQUIRE_BROWSER") else pytest.skip
    path = chromium_path()
    if path is None:
        missing("no Chromium: neither /usr/bin/chromium nor `chromium` on PATH")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the playwright package is not installed (requirements-dev.txt)")
    assert path is not None
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    url: str
    daphne: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    logs: Path

    def check_alive(self) -> None:
        for name, proc in (("daphne", self.daphne), ("celery worker", self.worker)):
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with status {proc.returncode}; {self.tail()}")

    def tail(self) -> str:
        out = []
        for name in ("daphne.log", "worker.log"):
            p = self.logs / name
            if p.exists():
                out.append(f"--- {name}\n" + p.read_text(errors="replace")[-3000:])
        return "\n".join(out)


@pytest.fixture
def stack(chromium: str, transactional_db: Any, tmp_path: Path) -> Iterator[Stack]:
    """Daphne and a Celery worker against the test database, on a private queue and in the
    test process's channel-layer namespace (so the worker's broadcasts reach the blotters
    Daphne serves, and nobody else's do)."""
    queue = f"browser-{uuid.uuid4().hex[:12]}"
    port = _free_port()
    env = dict(
        os.environ,
        OVERSIGHT_TEST_DATABASE_NAME=str(connection.settings_dict["NAME"]),
        OVERSIGHT_TEST_CHANNEL_PREFIX=f"test{os.getpid()}",  # settings_test's for this process
        OVERSIGHT_MARKET_SPEED=MARKET_SPEED,
        OVERSIGHT_BROWSER_QUEUE=queue,
        REDIS_URL=os.environ["REDIS_URL"],  # settings_test exported it (embedded or given)
        PYTHONUNBUFFERED="1",
    )
    procs: list[subprocess.Popen[bytes]] = []
    handles = []

    def spawn(name: str, argv: list[str], settings: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        handles.append(log)
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=dict(env, DJANGO_SETTINGS_MODULE=settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    try:
        worker = spawn("worker", celery_worker_argv(queue), "oversight.settings_test")
        daphne = spawn(
            "daphne",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "oversight.asgi:application",
            ],
            "tests.browser.settings_browser",
        )
        s = Stack(f"http://127.0.0.1:{port}", daphne, worker, tmp_path)
        deadline = time.monotonic() + START_WAIT_S
        while not (_port_open(port) and b"ready." in (tmp_path / "worker.log").read_bytes()):
            s.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"the stack did not start in {START_WAIT_S:.0f} s; {s.tail()}")
            time.sleep(0.2)
        yield s
    finally:
        for proc in reversed(procs):
            stop_process_group(proc)
        for h in handles:
            h.close()
        if os.environ.get("OVERSIGHT_TEST_SHOW_WORKER_LOG"):
            for name in ("daphne.log", "worker.log"):
                p = tmp_path / name
                if p.exists():
                    sys.stderr.write(f"--- {name}\n" + p.read_text(errors="replace")[-8000:])


@pytest.fixture
def browser(chromium: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are
    # still plain synchronous ones, so Django's async-safety guard would refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
            # While Playwright's loop is up, Django (asgiref's Local) keeps the ORM calls'
            # connection apart from the one it closes at teardown: close it here, or
            # PostgreSQL refuses to drop the test database ("accessed by other users").
            connections.close_all()


@pytest.fixture
def login(browser: Any, stack: Stack) -> Callable[[str], Any]:
    """A fresh browser context logged in as the given user; returns its blotter page."""

    def _login(username: str) -> Any:
        ctx = browser.new_context(viewport=VIEWPORT, base_url=stack.url)
        ctx.set_default_timeout(20_000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.js_errors = errors  # type: ignore[attr-defined]
        page.goto("/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(stack.url + "/")
        return page

    return _login


def _user(username: str, role: str) -> User:
    roles_ensure()
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def trader(transactional_db: Any) -> User:
    return _user("tina", TRADER)


@pytest.fixture
def risk_manager(transactional_db: Any) -> User:
    return _user("rick", RISK_MANAGER)


@pytest.fixture
def browser_instrument(transactional_db: Any) -> Instrument:
    return demo_instrument()
