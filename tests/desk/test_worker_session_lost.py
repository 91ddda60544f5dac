"""A market worker that no longer owns its session, or that stops between taking an order
and working it: no control or order may be left applied by nobody (a code review)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from execution.models import ControlRequest, Instrument, MarketSession, ParentOrder
from execution.services import order_control_request
from execution.worker import MarketWorker, SessionLost, SessionTaken
from tests.desk.test_worker import heartbeat_stops
from tests.stepping import run_to, submit, worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_declared_dead_applies_no_control_and_takes_no_order(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """A stalled past the heartbeat limit; its order X was resumed on C and then
    cancelled. A, waking, marked that cancel applied to its own stale copy (so C never
    cancelled X, which traded on) and took a new order Y that nobody then held."""
    with django_capture_on_commit_callbacks(execute=False):
        x = submit(alice, instrument, end_minute=60)
    a = worker(instrument)
    run_to(a, 5 * 60)
    heartbeat_stops(a)
    x.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=x, action="resume")
    c = worker(instrument, seed=8)
    c.step(sim_until=6 * 60)
    x.refresh_from_db()
    assert x.status == "WORKING" and x.session_id == c.session.pk
    with django_capture_on_commit_callbacks(execute=False):
        cancel = order_control_request(user=alice, order=x, action="cancel")
        y = submit(alice, instrument, start_minute=10, end_minute=60, quantity=1_000)

    with pytest.raises(SessionLost):
        a.step(sim_until=6 * 60)  # A wakes, not knowing it was declared dead

    cancel.refresh_from_db()
    y.refresh_from_db()
    assert cancel.applied_at is None, cancel.outcome
    assert y.status == "NEW" and y.session_id is None
    run_to(c, 8 * 60)
    x.refresh_from_db()
    cancel.refresh_from_db()
    assert x.status == "CANCELED" and cancel.outcome == "applied"


def test_a_control_is_marked_applied_in_the_commit_that_carries_its_effect(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """A step that fails after applying a cancel to the engine writes neither: the
    request stays unapplied, and the step written again at release records both."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 5 * 60)
    with django_capture_on_commit_callbacks(execute=False):
        req = order_control_request(user=alice, order=order, action="cancel")
    real = w.risk.after_step

    def fails_once(*a: Any, **k: Any) -> Any:
        w.risk.after_step = real
        raise RuntimeError("the step's commit fails")

    w.risk.after_step = fails_once
    with pytest.raises(RuntimeError):
        w.step(sim_until=w.market.now + 1)
    req.refresh_from_db()
    assert req.applied_at is None
    w.release()  # as run()'s finally does
    req.refresh_from_db()
    order.refresh_from_db()
    assert req.outcome == "applied" and req.applied_at is not None
    assert order.status == "CANCELED", order.status_reason


def test_a_new_order_no_worker_took_is_cancelled_at_once_and_the_market_asked_again(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Entered as an idle worker exits: its own task finds the market still taken. Its
    cancel waited for a worker that never came, and a second was 'already pending'."""
    w = worker(instrument)
    w.step(sim_until=60.0)
    assert not w.has_open_orders and not w.orders_waiting()  # run(): idle, about to exit
    with django_capture_on_commit_callbacks(execute=False):
        y = submit(alice, instrument, start_minute=5, end_minute=60)
    with pytest.raises(SessionTaken):  # y's own task
        MarketWorker(instrument, speed=60.0, seed=7, wall_clock=lambda: 0.0).claim()
    w.release()
    assert w.orders_waiting()  # the task asks for the market again (execution/tasks.py)
    with django_capture_on_commit_callbacks(execute=False):
        req = order_control_request(user=alice, order=y, action="cancel")
    y.refresh_from_db()
    assert req.outcome == "applied" and y.status == "CANCELED"


def test_an_order_taken_but_never_worked_is_suspended_when_its_worker_stops(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """A step that failed between taking a new order and adding it to the engine left it
    NEW under a stopped session: held for a worker that would never come."""
    w = worker(instrument)
    w.step(sim_until=60.0)
    with django_capture_on_commit_callbacks(execute=False):
        y = submit(alice, instrument, start_minute=5, end_minute=60)

    def broken(spec: Any) -> None:
        raise RuntimeError("the engine failed")

    w.engine.add_order = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        w.step(sim_until=120.0)
    y.refresh_from_db()
    assert y.status == "NEW" and y.session_id == w.session.pk
    w.release()
    y.refresh_from_db()
    assert y.status == "SUSPENDED", y.status
    assert MarketSession.objects.get(pk=w.session.pk).status == MarketSession.STOPPED
    with django_capture_on_commit_callbacks(execute=False):
        req = order_control_request(user=alice, order=y, action="cancel")
    y.refresh_from_db()
    assert req.outcome == "applied" and y.status == "CANCELED"
    assert not ControlRequest.objects.filter(parent=y, applied_at=None).exists()
    assert ParentOrder.objects.get(pk=y.pk).status == "CANCELED"


def test_a_suspension_is_the_orders_next_event(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Written to the row alone, it reached no open blotter (shown working until a
    reload) and no catch-up (the stream went from working to its end). Broadcast after
    commit as every status change outside a worker is (order_status_set)."""
    from execution.models import OrderEvent

    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 5 * 60)
    heartbeat_stops(w)
    order.refresh_from_db()
    last = OrderEvent.objects.filter(parent=order).order_by("-seq").first()
    assert last is not None and last.seq == order.last_seq
    assert last.kind == "ParentStatusChanged" and last.payload["status"] == "SUSPENDED"
    assert last.payload["previous"] == "WORKING"
    assert "worker heartbeat lost" in last.payload["reason"]
