"""A kill switch against a real Celery worker process: the worker stops every order in
scope, acknowledges, and nothing in scope fills after its ack."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from execution.models import ChildOrder, Fill, ParentOrder
from execution.services import parent_order_submit
from oversight.risk.models import KillAck
from oversight.risk.services import kill_switch_engage
from oversight.roles import RISK_MANAGER, TRADER, roles_ensure
from tests.personas import demo_instrument
from tests.processes import wait_for

LIVE = ["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_kill_reaches_a_running_worker_and_nothing_fills_after_its_ack(
    monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    monkeypatch.setenv("OVERSIGHT_TEST_WORKER_SPEED", "60")  # slow enough to act mid-order
    worker = request.getfixturevalue("celery_worker_process")
    roles_ensure()
    instrument = demo_instrument()
    User = get_user_model()
    trader = User.objects.create_user("t1", password="x")
    trader.groups.add(Group.objects.get(name=TRADER))
    risk = User.objects.create_user("r1", password="x")
    risk.groups.add(Group.objects.get(name=RISK_MANAGER))
    orders = [
        parent_order_submit(
            user=trader,
            instrument=instrument,
            side="buy",  # one trader: a sell against the buys would be blocked (wash trade)
            quantity=20_000 + k,
            start_minute=0,
            end_minute=120,
            strategy="twap",
            params={},
        )
        for k in range(5)
    ]
    wait_for(
        lambda: ChildOrder.objects.filter(parent__in=orders, status__in=LIVE).count() >= 5,
        60,
        "child orders to work at the venues",
        worker,
    )
    t0 = time.time()
    kill = kill_switch_engage(user=risk, scope_type="firm", reason="integration test")
    wait_for(
        lambda: KillAck.objects.filter(kill=kill, done_at__isnull=False).exists(),
        10,
        "the worker to acknowledge the kill",
        worker,
    )
    ack = KillAck.objects.get(kill=kill)
    # How fast is bench/bench_kill.py's question (docs/BENCHMARKS.md); this test asks that
    # the kill arrives, stops everything in scope and stays applied.
    assert ack.applied_at.timestamp() >= t0
    assert ack.orders == 5
    filled = {o.pk: ParentOrder.objects.get(pk=o.pk).filled_qty for o in orders}
    fills = Fill.objects.filter(parent__in=orders).count()
    time.sleep(2.0)  # two more wall seconds: two simulated minutes at 60x
    assert {o.pk: ParentOrder.objects.get(pk=o.pk).filled_qty for o in orders} == filled
    assert Fill.objects.filter(parent__in=orders).count() == fills
    assert not ChildOrder.objects.filter(parent__in=orders, status__in=LIVE).exists()
    assert set(ParentOrder.objects.filter(pk__in=filled).values_list("status", flat=True)) == {
        "CANCELED"
    }
