"""Kill a real Celery worker mid-session: nothing is lost or duplicated, and the order
resumes on another worker (issue 3, section 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Sum

from execution.models import (
    SUSPENDED,
    ChildOrder,
    Fill,
    MarketSession,
    OrderEvent,
    ParentOrder,
)
from execution.services import order_control_request, parent_order_submit
from execution.tasks import market_session_run
from execution.worker import sessions_reap
from oversight.risk.models import RiskException
from oversight.roles import TRADER, roles_ensure
from tests.conftest import REPO
from tests.personas import demo_instrument
from tests.processes import stop_process_group, wait_for

Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Start]:
    """Start `celery -A oversight worker` processes on this test's own queue."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    procs: list[subprocess.Popen[bytes]] = []
    app = market_session_run.app
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue

    def start(speed: str, concurrency: int = 1) -> subprocess.Popen[bytes]:
        log_path = tmp_path / f"worker{len(procs)}.log"
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="oversight.settings_test",
            OVERSIGHT_TEST_DATABASE_NAME=str(connection.settings_dict["NAME"]),
            OVERSIGHT_MARKET_SPEED=speed,
            PYTHONUNBUFFERED="1",
        )
        proc = subprocess.Popen(
            [
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
                f"{queue}-{len(procs)}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        wait_for(lambda: b"ready." in log_path.read_bytes(), 60, "a worker to start", proc)
        return proc

    try:
        yield start
    finally:
        app.conf.task_default_queue = old_queue
        for p in procs:
            stop_process_group(p)


LIVE = ["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]


def _an_order_filling(
    start_worker: Start, concurrency: int = 1
) -> tuple[Any, ParentOrder, subprocess.Popen[bytes]]:
    """A trader's TWAP order over two simulated hours, on a worker at 60x, once it fills."""
    roles_ensure()
    instrument = demo_instrument()
    trader = get_user_model().objects.create_user("t1", password="x")
    trader.groups.add(Group.objects.get(name=TRADER))
    trader = get_user_model().objects.get(pk=trader.pk)
    proc = start_worker("60", concurrency=concurrency)
    order = parent_order_submit(
        user=trader,
        instrument=instrument,
        side="buy",
        quantity=30_000,
        start_minute=0,
        end_minute=120,
        strategy="twap",
        params={},
    )
    wait_for(
        lambda: ParentOrder.objects.get(pk=order.pk).filled_qty > 0, 60, "the first fills", proc
    )
    return trader, order, proc


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_loses_and_duplicates_nothing_and_the_order_resumes(
    start_worker: Start,
) -> None:
    # 60x: two simulated hours take two minutes; we kill it sooner
    trader, order, first = _an_order_filling(start_worker)
    os.killpg(first.pid, signal.SIGKILL)  # no goodbye: the session just stops heartbeating
    first.wait(timeout=10)

    time.sleep(2.5)
    assert sessions_reap(stale_after_s=2.0)  # what the next worker or the blotter does
    order.refresh_from_db()
    assert order.status == SUSPENDED and 0 < order.filled_qty < order.quantity
    assert not ChildOrder.objects.filter(parent=order, status__in=LIVE).exists()
    fills = Fill.objects.filter(parent=order)
    assert fills.aggregate(q=Sum("quantity"))["q"] == order.filled_qty
    filled_at_death, seq_at_death = order.filled_qty, order.last_seq

    start_worker("600")
    order_control_request(user=trader, order=order, action="resume")  # dispatches on commit
    wait_for(
        lambda: ParentOrder.objects.get(pk=order.pk).status in ("FILLED", "EXPIRED"),
        90,
        "the resumed order",
    )
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_qty == order.quantity > filled_at_death
    fills = list(Fill.objects.filter(parent=order))
    assert sum(f.quantity for f in fills) == order.quantity
    assert len({(f.venue, f.trade_id) for f in fills}) == len(fills), "a fill was recorded twice"
    seqs = list(
        OrderEvent.objects.filter(parent=order).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] > seq_at_death


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_worker_stopped_by_a_signal_suspends_its_orders_in_order(
    start_worker: Start, tmp_path: Path, how: signal.Signals
) -> None:
    """How `dev.py run`'s Ctrl-C or a service manager stops a worker: SIGTERM to its process
    group. Billiard raised SystemExit wherever the pool process was, mid-step as often as
    not, before the session was released, and Celery logged WorkerLostError with a
    traceback. Now the step ends, the session is released, the process exits cleanly."""
    # One pool process runs the market, the other idles.
    _, order, proc = _an_order_filling(start_worker, concurrency=2)
    instrument = order.instrument
    os.killpg(proc.pid, how)  # SIGINT: how `dev.py run` stops it (scripts/dev.py)
    # Celery's own exit status: 1 after Ctrl-C's warm shutdown, 0 after SIGTERM's.
    assert proc.wait(timeout=20) == (1 if how == signal.SIGINT else 0)

    session = MarketSession.objects.get(instrument=instrument)
    assert session.status == MarketSession.STOPPED
    order.refresh_from_db()
    assert order.status == SUSPENDED and 0 < order.filled_qty < order.quantity
    assert order.status_reason.startswith("market session stopped")
    assert not ChildOrder.objects.filter(parent=order, status__in=LIVE).exists()
    assert Fill.objects.filter(parent=order).aggregate(q=Sum("quantity"))["q"] == order.filled_qty
    assert not sessions_reap(stale_after_s=0.0)  # nothing left for a peer to declare dead
    assert not RiskException.objects.filter(title__contains="heartbeat").exists()
    log = (tmp_path / "worker0.log").read_text(errors="replace")
    assert "WorkerLostError" not in log and "Traceback" not in log
    if how == signal.SIGINT:
        # SIGTERM kills the idle pool process outright, which Celery logs as an ERROR; a
        # warm shutdown leaves it to Celery, and a clean stop logs none (a trial).
        assert "ERROR" not in log, log[-2000:]
