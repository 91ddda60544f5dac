"""A desk move racing its trader's order entry, each on its own database connection: the
order is checked against the desk its trader is on when it is created, and the move sees
the order (a review)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

import execution.services as order_services
import oversight.services as user_services
from execution.models import Instrument, ParentOrder
from oversight.risk.pretrade import desk_of
from tests.audit.conftest import only_pg
from tests.personas import instrument, set_limit

__all__ = ["instrument"]
from tests.stepping import submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_desks(instrument: Instrument, alice: Any, adam: Any, monkeypatch: Any) -> None:
    """alice on EQ-1, whose orders may be 50,000 shares; EQ-2's may be 12,000 (an order
    of 20,000 is blocked there, by less than an override may release)."""
    user_services.user_desk_set(actor=adam, user=alice, desk="EQ-1", reason="joins")
    user_services.user_desk_set(actor=adam, user=adam, desk="EQ-2", reason="makes the desk")
    set_limit("max_order_qty", 50_000, "desk", "EQ-1")
    set_limit("max_order_qty", 12_000, "desk", "EQ-2")
    monkeypatch.setattr(order_services, "dispatch_order", lambda _id: None)


def in_thread(fn: Any, out: dict[str, Any], key: str) -> threading.Thread:
    def run() -> None:
        try:
            out[key] = fn()
        except Exception as e:  # the test reads it
            out[key] = e
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    return t


def test_an_order_whose_trader_moved_desk_while_it_was_entered_is_checked_on_the_new_desk(
    two_desks: None, instrument: Instrument, alice: Any, adam: Any, monkeypatch: Any
) -> None:
    """The trader's scopes were read, the move committed, then the order was created under
    the old desk's limits and carried its exposure to the new one."""
    scopes_read, go = threading.Event(), threading.Event()
    real = order_services.order_scopes

    def read_then_wait(**kw: Any) -> Any:
        scopes = real(**kw)
        scopes_read.set()
        go.wait(10)
        return scopes

    monkeypatch.setattr(order_services, "order_scopes", read_then_wait)
    out: dict[str, Any] = {}
    t = in_thread(lambda: submit(alice, instrument, quantity=20_000, end_minute=60), out, "order")
    assert scopes_read.wait(10)
    user_services.user_desk_set(actor=adam, user=alice, desk="EQ-2", reason="reorg")
    go.set()
    t.join(20)
    order = out["order"]
    assert isinstance(order, ParentOrder), order
    order.refresh_from_db()
    assert desk_of(alice.pk) == "EQ-2"
    assert order.status == "BLOCKED" and "(desk EQ-2)" in order.status_reason


@only_pg
def test_a_desk_move_waits_for_an_order_being_entered_and_then_refuses(
    two_desks: None, instrument: Instrument, alice: Any, adam: Any, monkeypatch: Any
) -> None:
    """The move had checked "no open orders" while the order was being created: the
    order's commit and the move deadlocked (the move's FOR UPDATE on the admins' rows
    against the foreign-key check of the order's audit record), and PostgreSQL aborted
    the move with a 500; with that deadlock gone, both committed."""
    in_order, go = threading.Event(), threading.Event()
    real = order_services.breaches

    def check_then_wait(**kw: Any) -> Any:  # inside the order's transaction
        found = real(**kw)
        in_order.set()
        go.wait(10)
        return found

    monkeypatch.setattr(order_services, "breaches", check_then_wait)
    out: dict[str, Any] = {}
    trader = in_thread(
        lambda: submit(alice, instrument, quantity=20_000, end_minute=60), out, "order"
    )
    assert in_order.wait(10)
    move = in_thread(
        lambda: user_services.user_desk_set(actor=adam, user=alice, desk="EQ-2", reason="reorg"),
        out,
        "move",
    )
    move.join(1.5)
    assert move.is_alive(), "the move did not wait for the order being entered"
    go.set()
    trader.join(20)
    move.join(20)
    assert isinstance(out["order"], ParentOrder), out["order"]
    assert out["order"].status == "NEW"
    assert "alice has 1 open order on EQ-1" in str(out["move"]), out["move"]
    assert desk_of(alice.pk) == "EQ-1"


@only_pg
def test_a_user_service_does_not_deadlock_with_an_audited_write_naming_an_admin(
    adam: Any, bob: Any
) -> None:
    """A user service locks every active admin's row, then writes its audit record, which
    waits for the audit chain's lock. A transaction holding that lock and naming an admin
    (here, as an audit record's actor) checks its foreign key at commit with a KEY SHARE
    lock: against FOR UPDATE the two deadlocked, and PostgreSQL aborted one (a review)."""
    from django.db import transaction

    from oversight.audit import audit_record

    holding, go = threading.Event(), threading.Event()

    def admins_audited_write() -> str:
        with transaction.atomic():
            audit_record(actor=adam, action="user.note", obj=bob, reason="a note")
            holding.set()
            go.wait(10)
        return "committed"

    out: dict[str, Any] = {}
    first = in_thread(admins_audited_write, out, "write")
    assert holding.wait(10)
    second = in_thread(
        lambda: user_services.user_deactivate(actor=adam, user=bob, reason="left"), out, "service"
    )
    second.join(1.5)  # it holds the admins' rows and waits for the chain
    go.set()
    first.join(20)
    second.join(20)
    assert out["write"] == "committed", out["write"]
    assert not isinstance(out["service"], Exception), out["service"]


@only_pg
def test_a_control_holding_an_order_s_row_does_not_stop_its_worker_writing_under_it(
    instrument: Instrument, alice: Any, monkeypatch: Any
) -> None:
    """A control request locks its order's row; the order's worker meanwhile writes child
    orders, fills and events that name the order, whose foreign-key checks take a KEY
    SHARE lock on it. Against FOR UPDATE they waited for the control to commit, and a
    kill locking several orders could deadlock with a worker holding one of them (a
    note); every service lock is now FOR NO KEY UPDATE, which still keeps two lockers
    apart (the second control below waits)."""
    from django.db import OperationalError, transaction

    from execution.models import OrderEvent

    monkeypatch.setattr(order_services, "dispatch_order", lambda _id: None)
    order = submit(alice, instrument, quantity=2_000, end_minute=60)  # NEW: amend or cancel
    holding, go = threading.Event(), threading.Event()
    real = order_services._asked

    def lock_held_then_wait(*args: Any) -> Any:  # inside the control's transaction
        holding.set()
        go.wait(10)
        return real(*args)

    monkeypatch.setattr(order_services, "_asked", lock_held_then_wait)
    out: dict[str, Any] = {}
    control = in_thread(
        lambda: order_services.order_control_request(
            user=alice, order=order, action="amend", changes={"quantity": "1500"}, reason="less"
        ),
        out,
        "control",
    )
    assert holding.wait(10)
    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '2s'")
            OrderEvent.objects.create(
                parent=order, seq=999, kind="ParentProgress", sim_ts=1.0, payload={}
            )
        wrote: Any = "written"
    except OperationalError as e:
        wrote = e
    second = in_thread(
        lambda: order_services.order_control_request(
            user=alice, order=order, action="cancel", reason="done"
        ),
        out,
        "second",
    )
    second.join(1.0)
    waited = second.is_alive()
    go.set()
    control.join(20)
    second.join(20)
    assert wrote == "written", wrote
    assert waited, "a second control did not wait for the first's lock"
    assert not isinstance(out["control"], Exception), out["control"]
    assert out["second"].action == "cancel", out["second"]  # queued behind the amend


@only_pg
def test_a_blocked_order_s_cancel_and_a_grant_of_its_override_do_not_deadlock(
    instrument: Instrument, alice: Any, rita: Any, monkeypatch: Any
) -> None:
    """A grant locks the override, then the order; a cancel of the blocked order locks the
    order, and its end lapsed the pending overrides under that lock: each waited for the
    other, and PostgreSQL aborted the grant (a review). The lapse now runs after the
    cancel commits: the grant is told the order is no longer blocked, and the override
    lapses."""
    from oversight.models import AuditRecord
    from oversight.risk.services import override_grant, override_request

    monkeypatch.setattr(order_services, "dispatch_order", lambda _id: None)
    set_limit("max_order_qty", 10_000)
    order = submit(alice, instrument)  # 20,000 shares: blocked
    assert order.status == "BLOCKED"
    ov = override_request(user=alice, order_id=order.pk, reason="client's closing order")
    holding, go = threading.Event(), threading.Event()
    real = order_services.order_status_set

    def locked_then_wait(*a: Any, **kw: Any) -> Any:  # under the order's lock
        holding.set()
        go.wait(10)
        return real(*a, **kw)

    monkeypatch.setattr(order_services, "order_status_set", locked_then_wait)
    out: dict[str, Any] = {}
    cancel = in_thread(
        lambda: order_services.order_control_request(
            user=alice, order=order, action="cancel", reason="not today"
        ),
        out,
        "cancel",
    )
    assert holding.wait(10)
    grant = in_thread(
        lambda: override_grant(user=rita, override_id=ov.pk, note="checked"), out, "grant"
    )
    grant.join(1.5)  # it holds the override and waits for the order
    go.set()
    cancel.join(20)
    grant.join(20)
    assert not isinstance(out["cancel"], Exception), out["cancel"]
    assert "is no longer blocked" in str(out["grant"]), out["grant"]
    order.refresh_from_db()
    ov.refresh_from_db()
    assert order.status == "CANCELED"
    assert ov.status == "REJECTED" and ov.decision_note.startswith(
        f"lapsed: order {order.pk} was canceled"
    )
    assert AuditRecord.objects.filter(action="override.lapse", object_id=str(ov.pk)).count() == 1
