"""A real Celery worker process works a TWAP order end to end through the database.

No mocks: the order goes in through the service layer, the task through the Redis broker
(REDIS_URL, or the embedded one settings_test starts), and a `celery -A oversight worker`
subprocess runs the market against the test database (SQLite file or PostgreSQL).
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Sum

from execution.engine.orders import PARENT_TERMINAL, ParentStatus
from execution.models import Fill, MarketSession, OrderEvent, ParentOrder
from execution.services import parent_order_submit
from oversight.roles import TRADER, roles_ensure
from tests.personas import demo_instrument
from tests.processes import wait_for

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {s.value for s in PARENT_TERMINAL}
WAIT_S = 60.0


def test_a_django_process_dispatches_to_the_project_broker():
    """What Daphne's process does: set Django up, import the tasks, dispatch. The task must be
    bound to the oversight app (broker REDIS_URL), not Celery's default app (AMQP on
    localhost), which is what happens unless the oversight package imports its Celery app."""
    code = (
        "import django; django.setup()\n"
        "from execution.tasks import market_session_run as t\n"
        "print(t.app.main, t.app.conf.broker_url)\n"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="oversight.settings_test")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["oversight", os.environ["REDIS_URL"]]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_works_a_twap_order_to_the_end(celery_worker_process):
    roles_ensure()
    instrument = demo_instrument()
    trader = get_user_model().objects.create_user("t1", password="x")
    trader.groups.add(Group.objects.get(name=TRADER))

    # 20 simulated minutes at 600x: two seconds of wall time once the worker has it.
    order = parent_order_submit(
        user=trader,
        instrument=instrument,
        side="buy",
        quantity=6000,
        start_minute=0,
        end_minute=20,
        strategy="twap",
        params={},
    )

    def terminal() -> bool:
        return ParentOrder.objects.filter(pk=order.pk, status__in=TERMINAL).exists()

    wait_for(terminal, WAIT_S, f"order {order.pk} to finish", celery_worker_process)
    # The session ends by itself once nothing is open; wait so no worker writes race the teardown.
    wait_for(
        lambda: not MarketSession.objects.filter(status=MarketSession.RUNNING).exists(),
        30,
        "the market session to stop",
        celery_worker_process,
    )

    order.refresh_from_db()
    assert order.status == ParentStatus.FILLED.value, (order.status, order.status_reason)
    assert order.filled_qty == order.quantity
    fills = list(Fill.objects.filter(parent=order))
    assert fills, "no fills were recorded"
    assert sum(f.quantity for f in fills) == order.filled_qty
    assert len({(f.venue, f.trade_id) for f in fills}) == len(fills), "a fill was recorded twice"
    assert all(isinstance(f.price, Decimal) and f.price > 0 for f in fills)
    assert order.children.aggregate(s=Sum("filled_qty"))["s"] == order.filled_qty
    assert order.avg_price is not None and order.arrival_price is not None

    seqs = list(
        OrderEvent.objects.filter(parent=order).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, len(seqs) + 1)), "event sequence numbers have gaps or repeats"
    assert order.last_seq == len(seqs)
    kinds = set(OrderEvent.objects.filter(parent=order).values_list("kind", flat=True))
    assert "ChildFilled" in kinds

    session = MarketSession.objects.get(pk=order.session_id)
    assert session.status == MarketSession.STOPPED
    assert session.speed == 600.0
