"""A real `celery -A oversight worker` process for the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from execution.tasks import market_session_run
from tests.processes import celery_worker_argv, stop_process_group, wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker_process(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`celery -A oversight worker` on a queue of its own, against this run's test database.

    The private queue keeps this worker away from tasks that other tests (or other runs
    sharing the broker) left behind, and them away from this test's task.
    """
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="oversight.settings_test",
        OVERSIGHT_TEST_DATABASE_NAME=str(connection.settings_dict["NAME"]),
        OVERSIGHT_MARKET_SPEED=os.environ.get("OVERSIGHT_TEST_WORKER_SPEED", "600"),
        # This process's channel-layer namespace: the worker's broadcasts reach the test's
        # sockets, and the services' wake-up messages reach the worker.
        OVERSIGHT_TEST_CHANNEL_PREFIX=f"test{os.getpid()}",
        REDIS_URL=os.environ["REDIS_URL"],  # settings_test exported it (embedded or given)
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        celery_worker_argv(queue),
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # The app the web code dispatches with, as Daphne's process has it (see the test below).
    celery_app = market_session_run.app
    old_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        wait_for(
            lambda: b"ready." in (tmp_path / "worker.log").read_bytes(),
            60,
            "the worker to start",
            proc,
        )
        yield proc
    finally:
        celery_app.conf.task_default_queue = old_queue
        stop_process_group(proc)
        log.close()
        if os.environ.get("OVERSIGHT_TEST_SHOW_WORKER_LOG"):
            sys.stderr.write((tmp_path / "worker.log").read_text(errors="replace")[-8000:])
