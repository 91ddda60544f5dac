"""Two risk managers engaging a kill switch over one scope at once, each on its own
connection (PostgreSQL: SQLite's writers take the database one at a time): one switch,
not two that each need a four-eyes reset (a trial's three clicks made three)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

import execution.services as order_services
import execution.worker as worker_module
import oversight.risk.services as risk_services
from execution.models import Instrument, MarketSession, ParentOrder
from oversight.risk.models import KillSwitch
from tests.audit.conftest import only_pg
from tests.audit.test_desk_move_race import in_thread
from tests.personas import instrument, ruth
from tests.stepping import submit

__all__ = ["instrument", "ruth"]
pytestmark = pytest.mark.django_db(transaction=True)


@only_pg
def test_two_halts_of_one_scope_at_once_make_one_switch(
    instrument: Instrument, rita: Any, ruth: Any, monkeypatch: Any
) -> None:
    # The first has created its switch (not yet committed) when the second comes in.
    inside, go = threading.Event(), threading.Event()
    real = risk_services._blocked_cancel

    def hold(*a: Any, **k: Any) -> Any:
        if not inside.is_set():
            inside.set()
            go.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(risk_services, "_blocked_cancel", hold)

    def engage(user: Any) -> Any:
        return risk_services.kill_switch_engage(
            user=user, scope_type="instrument", scope_key=instrument.symbol, reason="bad prints"
        )

    out: dict[str, Any] = {}
    first = in_thread(lambda: engage(rita), out, "first")
    assert inside.wait(10)
    second = in_thread(lambda: engage(ruth), out, "second")
    time.sleep(1.0)  # the second is under way: without the scope's lock it found none
    go.set()
    first.join(20)
    second.join(20)
    assert isinstance(out["first"], KillSwitch), out["first"]
    assert isinstance(out["second"], ValidationError), out["second"]
    assert f"kill switch {out['first'].pk} already halted instrument" in str(out["second"])
    active = KillSwitch.objects.filter(
        active=True, scope_type="instrument", scope_key=instrument.symbol
    )
    assert active.count() == 1


def _session(instrument: Instrument, worker: str, status: str, stale: bool) -> MarketSession:
    return MarketSession.objects.create(
        instrument=instrument, worker=worker, seed=1, speed=60.0, day=1, sim_ts=60.0,
        status=status, heartbeat_at=timezone.now() - timedelta(seconds=60 if stale else 0),
    )  # fmt: skip


@only_pg
def test_the_reapers_halt_and_a_traders_cancel_do_not_deadlock(
    instrument: Instrument, alice: Any, ruth: Any, monkeypatch: Any
) -> None:
    """The reaper applied the halts inside its own transaction, after its suspensions had
    written to the audit chain: it then locked orders a trader's cancel held, while the
    cancel waited for the chain (a review: "deadlock detected"). Now the halts go in a
    transaction of their own, orders first, as every writer takes them."""
    monkeypatch.setattr(order_services, "dispatch_order", lambda _id: None)
    live = _session(instrument, "w-live", MarketSession.RUNNING, stale=False)
    o1 = submit(alice, instrument, quantity=1_000)
    ParentOrder.objects.filter(pk=o1.pk).update(status="WORKING", session=live)
    risk_services.kill_switch_engage(user=ruth, scope_type="firm", reason="bad prints")
    # o1 suspended under the halt, not cancelled (an engage that raced a reap leaves this)
    MarketSession.objects.filter(pk=live.pk).update(status=MarketSession.DEAD)
    ParentOrder.objects.filter(pk=o1.pk).update(status="SUSPENDED")
    hung = _session(instrument, "w-hung", MarketSession.RUNNING, stale=True)
    o2 = ParentOrder.objects.create(
        owner=alice, instrument=instrument, side="buy", quantity=1_000, start_minute=0,
        end_minute=30, strategy="twap", params={}, day=1, desk=o1.desk, status="WORKING",
        session=hung,
    )  # fmt: skip
    inside, go = threading.Event(), threading.Event()
    real = worker_module.halts_apply_to_unheld

    def held() -> int:
        inside.set()  # the reaper has suspended o2 and written its record
        go.wait(10)
        return real()

    monkeypatch.setattr(worker_module, "halts_apply_to_unheld", held)
    out: dict[str, Any] = {}
    reaper = in_thread(lambda: worker_module.sessions_reap(stale_after_s=4.0), out, "reaper")
    assert inside.wait(10)
    cancel = in_thread(
        lambda: order_services.order_control_request(
            user=alice, order=ParentOrder.objects.get(pk=o1.pk), action="cancel", reason="stop"
        ),
        out,
        "cancel",
    )
    time.sleep(1.5)
    go.set()
    reaper.join(30)
    cancel.join(30)
    assert not any(isinstance(v, BaseException) for v in out.values()), out
    assert out["reaper"] == [hung.pk]
    assert set(
        ParentOrder.objects.filter(pk__in=(o1.pk, o2.pk)).values_list("status", flat=True)
    ) == {"CANCELED"}


@only_pg
def test_restating_blocked_orders_and_a_grant_do_not_deadlock(
    instrument: Instrument, alice: Any, monkeypatch: Any, caplog: Any
) -> None:
    """A grant (and a halt, a deactivation) locks the trader's row, then the order's; the
    restate after a limit change locked the order's and, through select_related without
    `of`, the trader's too (a review: "deadlock detected"). It locks the order's alone."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from tests.risk.conftest import set_limit

    monkeypatch.setattr(order_services, "dispatch_order", lambda _id: None)
    set_limit("max_order_qty", 10_000)
    order = submit(alice, instrument)
    assert order.status == "BLOCKED"
    inside, go = threading.Event(), threading.Event()

    def as_a_grant_locks() -> str:
        with transaction.atomic():
            list(get_user_model().objects.select_for_update(no_key=True).filter(pk=alice.pk))
            inside.set()
            go.wait(10)
            time.sleep(1.0)  # the restate has the order's row by now
            list(ParentOrder.objects.select_for_update(no_key=True).filter(pk=order.pk))
        return "ok"

    out: dict[str, Any] = {}
    grant = in_thread(as_a_grant_locks, out, "grant")
    assert inside.wait(10)
    go.set()
    out["restate"] = risk_services.blocked_reasons_restate("firm", "")
    grant.join(30)
    assert out == {"grant": "ok", "restate": 0}, out
    assert "was not restated" not in caplog.text  # it was not the deadlock's victim either
