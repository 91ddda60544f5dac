"""Kill switches in the market worker: everything in scope stops at once, nothing fills
after the worker acknowledges, and only two risk managers together can reset one."""

from __future__ import annotations

from functools import partial

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from execution.models import ChildOrder, Fill, Instrument, ParentOrder
from oversight.models import AuditRecord
from oversight.risk.models import KillAck, KillSwitch, RiskException
from oversight.risk.services import (
    kill_switch_engage,
    kill_switch_reset_approve,
    kill_switch_reset_decline,
    kill_switch_reset_request,
)
from tests import stepping
from tests.stepping import worker

pytestmark = pytest.mark.django_db(transaction=True)
# Orders here are larger and longer, and the worker moves in finer steps.
submit = partial(stepping.submit, quantity=30_000, end_minute=60)
run_to = partial(stepping.run_to, step_s=5.0)
LIVE = ["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]


def test_a_kill_stops_everything_in_scope_and_nothing_fills_after_the_ack(
    alice: User, bob: User, rita: User, instrument: Instrument
) -> None:
    a1 = submit(alice, instrument)
    a2 = submit(alice, instrument, quantity=25_000)
    b1 = submit(bob, instrument, quantity=20_000)
    w = worker(instrument)
    run_to(w, 10 * 60)
    working = ChildOrder.objects.filter(parent__in=[a1, a2], status__in=LIVE).count()
    assert working > 0, "the test needs child orders working at the venues"

    kill = kill_switch_engage(
        user=rita, scope_type="trader", scope_key="alice", reason="runaway algo"
    )
    t_kill = w.market.now
    w.step(sim_until=t_kill + 0.5)  # the next step: stopped, cancels sent, acks back
    ack = KillAck.objects.get(kill=kill, session=w.session)
    assert ack.orders == 2 and ack.children_canceled == working and ack.done_at is not None
    t_ack = w.market.now
    for o in (a1, a2):
        o.refresh_from_db()
        assert o.status == "CANCELED" and o.status_reason.startswith(f"kill switch {kill.pk}")
        assert not ChildOrder.objects.filter(parent=o, status__in=LIVE).exists()
        # Each order's own record says what became of it (the trail had the engage only).
        [rec] = AuditRecord.objects.filter(action="order.cancel", object_id=str(o.pk))
        assert rec.reason == f"canceled by kill switch {kill.pk}: runaway algo (engaged by rita)"
        assert rec.after == {"kill_switch": kill.pk, "state": "HALTED"}
    filled_at_ack = {o.pk: o.filled_qty for o in (a1, a2)}

    run_to(w, 30 * 60)
    assert not Fill.objects.filter(parent__in=[a1, a2], sim_ts__gt=t_ack).exists()
    for o in (a1, a2):
        o.refresh_from_db()
        assert o.filled_qty == filled_at_ack[o.pk]  # fills kept, none added
    b1.refresh_from_db()
    assert b1.status == "WORKING" and Fill.objects.filter(parent=b1, sim_ts__gt=t_ack).exists()
    w.release()


def test_it_never_clears_itself_and_a_reset_takes_two_risk_managers(
    alice: User, rita: User, ruth: User, instrument: Instrument
) -> None:
    kill = kill_switch_engage(user=rita, scope_type="firm", reason="market-wide event")
    with pytest.raises(ValidationError, match="TRADING_HALTED"):
        submit(alice, instrument)
    with pytest.raises(ValidationError, match="first be asked for"):
        kill_switch_reset_approve(user=ruth, kill_id=kill.pk)
    with pytest.raises(ValidationError, match="only a risk manager"):
        kill_switch_reset_request(user=alice, kill_id=kill.pk, reason="let me trade")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="event over, checked")
    with pytest.raises(ValidationError, match="cannot approve your own reset"):
        kill_switch_reset_approve(user=rita, kill_id=kill.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        KillSwitch.objects.filter(pk=kill.pk).update(active=False, reset_by=rita)
    with pytest.raises(IntegrityError), transaction.atomic():
        KillSwitch.objects.filter(pk=kill.pk).update(active=False)  # no reset at all
    kill_switch_reset_approve(user=ruth, kill_id=kill.pk)
    kill.refresh_from_db()
    assert not kill.active and kill.reset_by == ruth
    assert submit(alice, instrument).status == "NEW"
    acts = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"kill.engage", "kill.reset.request", "kill.reset"} <= acts


def test_who_may_engage_what(
    alice: User, bob: User, adam: User, rita: User, instrument: Instrument
) -> None:
    mine = submit(alice, instrument)
    theirs = submit(bob, instrument)
    kill_switch_engage(user=alice, scope_type="trader", scope_key="alice", reason="stop me")
    kill_switch_engage(user=bob, scope_type="order", scope_key=str(theirs.pk), reason="stop it")
    for scope_type, key in (("trader", "bob"), ("firm", ""), ("order", str(theirs.pk))):
        with pytest.raises(PermissionDenied, match="may not engage"):
            kill_switch_engage(user=alice, scope_type=scope_type, scope_key=key, reason="x")
    with pytest.raises(PermissionDenied, match="may not engage"):
        kill_switch_engage(user=adam, scope_type="firm", reason="admins cannot")
    with pytest.raises(ValidationError) as e:
        kill_switch_engage(user=rita, scope_type="desk", scope_key="nowhere", reason="x")
    assert "no desk 'nowhere'" in str(e.value.message_dict["scope_key"])
    with pytest.raises(ValidationError) as e:
        kill_switch_engage(user=rita, scope_type="firm", reason="  ")
    assert "reason" in e.value.message_dict
    assert mine.pk != theirs.pk
    # An order that has ended cannot trade again: a switch on it would halt nothing and
    # still take two risk managers to reset (a trial's, on an expired order).
    ParentOrder.objects.filter(pk=mine.pk).update(status="EXPIRED")
    with pytest.raises(ValidationError, match=f"order {mine.pk} has ended \\(expired\\)"):
        kill_switch_engage(user=rita, scope_type="order", scope_key=str(mine.pk), reason="x")


def test_reducing_stops_orders_that_would_add_to_the_position(
    alice: User, rita: User, instrument: Instrument
) -> None:
    buy = submit(alice, instrument)
    w = worker(instrument)
    run_to(w, 10 * 60)
    buy.refresh_from_db()
    assert buy.filled_qty > 0
    kill_switch_engage(
        user=rita, scope_type="trader", scope_key="alice", reason="de-risk", state="REDUCING"
    )
    w.step(sim_until=w.market.now + 0.5)
    buy.refresh_from_db()
    assert buy.status == "CANCELED"
    sell = submit(alice, instrument, side="sell", quantity=buy.filled_qty // 2, end_minute=30)
    assert sell.status == "NEW"
    run_to(w, 30 * 60)
    sell.refresh_from_db()
    assert sell.status == "FILLED"
    w.release()


def test_reducing_stops_the_later_of_two_sells_that_together_would_flip_the_position(
    alice: User, rita: User, instrument: Instrument
) -> None:
    """Each sell alone reduced the long; the worker looked at each alone, and the two
    together flipped it short (a review)."""
    done = submit(alice, instrument, quantity=5_000)
    ParentOrder.objects.filter(pk=done.pk).update(status="FILLED", filled_qty=5_000)
    first = submit(alice, instrument, side="sell", quantity=3_000, end_minute=60)
    second = submit(alice, instrument, side="sell", quantity=2_500, end_minute=60)
    w = worker(instrument)
    w.step(sim_until=60.0)
    kill_switch_engage(
        user=rita, scope_type="trader", scope_key="alice", reason="de-risk", state="REDUCING"
    )
    w.step(sim_until=w.market.now + 0.5)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "WORKING"
    assert second.status in ("CANCELED", "PENDING_CANCEL"), second.status
    w.release()


def test_the_workers_hold_children_within_the_current_limits(
    alice: User, instrument: Instrument
) -> None:
    from oversight.risk.models import RiskException
    from tests.risk.conftest import set_limit

    pov = submit(
        alice, instrument, strategy="pov", quantity=20_000, params={"participation_rate": 0.3}
    )
    w = worker(instrument)
    run_to(w, 5 * 60)
    wk = w.engine.orders[pov.engine_id]
    ours_then, market_then = wk.parent.filled_qty, w.engine.market.tape.volume
    # Limits tightened while the order works apply from the worker's next step.
    set_limit("max_participation_pct", 5)
    set_limit("max_child_qty", 300)
    # It had traded 30% of the volume; the tighter cap counts from when it was set, so it
    # trades at 5% from then (counted from the start, it sent nothing until the market's
    # volume had grown about eightfold: a trial's order stopped for 66 minutes).
    run_to(w, 20 * 60)
    assert wk.policy.max_participation == pytest.approx(0.05)
    ours = wk.parent.filled_qty - ours_then
    others = w.engine.market.tape.volume - market_then - ours
    assert ours / others > 0.04  # at the cap from the tightening on (2.1% counted from start)
    assert ours <= 0.05 / 0.95 * others + wk.policy.participation_grace_qty
    run_to(w, 60 * 60)
    after = ChildOrder.objects.filter(parent=pov, sim_ts__gt=5 * 60 + 1)
    assert after.exists() and all(c.quantity <= 300 for c in after)
    # The 5% cap holds it back from the tightening on, its children sized within it (none
    # sent over it and refused).
    assert not after.filter(status="DENIED").exists()
    assert not RiskException.objects.filter(kind="ORDER_DENIED").exists()
    ours = wk.parent.filled_qty - ours_then
    others = w.engine.market.tape.volume - market_then - ours
    assert 0 < ours <= 0.05 / 0.95 * others + wk.policy.participation_grace_qty
    w.release()


def test_a_scope_already_halted_is_not_halted_twice(
    rita: User, ruth: User, instrument: Instrument
) -> None:
    """A second halt would stop nothing more and need a second two-person reset; a halt
    over a reduce-only switch is an escalation and goes ahead."""
    from oversight.risk.services import kill_switch_engage

    first = kill_switch_engage(user=rita, scope_type="firm", reason="market-wide")
    with pytest.raises(ValidationError, match=f"kill switch {first.pk} already halted firm"):
        kill_switch_engage(user=ruth, scope_type="firm", reason="me too")
    with pytest.raises(ValidationError, match="already halted"):
        kill_switch_engage(user=ruth, scope_type="firm", reason="softer", state="REDUCING")
    reducing = kill_switch_engage(
        user=rita, scope_type="instrument", scope_key="HBRK", reason="news", state="REDUCING"
    )
    halted = kill_switch_engage(
        user=rita, scope_type="instrument", scope_key="HBRK", reason="worse"
    )
    assert reducing.active and halted.active and halted.state == "HALTED"


def test_a_reset_closes_its_kill_switchs_console_exception(rita: User, ruth: User) -> None:
    from oversight.risk.models import RiskException
    from oversight.risk.services import (
        kill_switch_engage,
        kill_switch_reset_approve,
        kill_switch_reset_request,
    )

    k = kill_switch_engage(user=rita, scope_type="firm", reason="drill")
    (e,) = RiskException.objects.filter(kind="KILL_SWITCH")
    assert e.status == "OPEN"
    kill_switch_reset_request(user=rita, kill_id=k.pk, reason="drill over")
    kill_switch_reset_approve(user=ruth, kill_id=k.pk)
    e.refresh_from_db()
    assert e.status == "RESOLVED" and e.resolution == f"kill switch {k.pk} reset by rita and ruth"


def test_a_reset_request_can_be_withdrawn_or_declined_and_the_switch_stays(
    rita: User, ruth: User
) -> None:
    """A request nobody means to approve does not wait for someone who might: its author
    withdraws it, another risk manager declines it with a reason; then anyone asks anew."""
    kill = kill_switch_engage(user=rita, scope_type="firm", reason="market-wide event")
    with pytest.raises(ValidationError, match="nobody has asked"):
        kill_switch_reset_decline(user=ruth, kill_id=kill.pk, reason="no")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="looks calm")
    kill_switch_reset_decline(user=rita, kill_id=kill.pk)
    kill.refresh_from_db()
    assert kill.active and kill.reset_requested_by is None and kill.reset_reason == ""
    kill_switch_reset_request(user=ruth, kill_id=kill.pk, reason="looks calm now")
    with pytest.raises(ValidationError) as e:
        kill_switch_reset_decline(user=rita, kill_id=kill.pk, reason="  ")
    assert "decline ruth's reset" in str(e.value.message_dict["reason"])
    kill_switch_reset_decline(user=rita, kill_id=kill.pk, reason="the venue is still down")
    with pytest.raises(ValidationError, match="first be asked for"):
        kill_switch_reset_approve(user=rita, kill_id=kill.pk)  # the declined one is gone
    kill.refresh_from_db()
    assert kill.active and kill.reset_requested_by is None
    audit = list(
        AuditRecord.objects.filter(action__startswith="kill.reset.")
        .order_by("pk")
        .values_list("action", "actor__username", "reason")
    )
    assert audit[1:] == [
        ("kill.reset.withdraw", "rita", "withdrawn by rita, who asked for it"),
        ("kill.reset.request", "ruth", "looks calm now"),
        ("kill.reset.decline", "rita", "the venue is still down"),
    ]


def test_a_firm_wide_kill_is_critical_on_the_console_a_narrower_one_a_warning(
    rita: User, alice: User
) -> None:
    firm = kill_switch_engage(user=rita, scope_type="firm", reason="market-wide event")
    mine = kill_switch_engage(user=rita, scope_type="trader", scope_key="alice", reason="x")
    severity = {e.dedupe_key: e.severity for e in RiskException.objects.filter(kind="KILL_SWITCH")}
    assert severity == {
        f"kill:{firm.pk}": RiskException.CRITICAL,
        f"kill:{mine.pk}": RiskException.WARNING,
    }


def stepping_user() -> User:
    from tests.personas import make_user

    return make_user("tom", "trader")


def test_a_halt_cancels_the_blocked_orders_in_its_scope(
    alice: User, rita: User, ruth: User, instrument: Instrument
) -> None:
    """No worker holds a blocked order: it stayed blocked under an instrument halt, and an
    override could release it once the switch was reset (a trial)."""
    from oversight.risk.models import Override
    from oversight.risk.services import override_request
    from tests.personas import demo_instrument
    from tests.risk.conftest import set_limit

    set_limit("max_order_qty", 10_000)
    blocked = stepping.submit(alice, instrument)  # 12,000 shares: blocked
    large = demo_instrument("demo-largecap-sell")
    elsewhere = stepping.submit(alice, large)
    assert blocked.status == elsewhere.status == "BLOCKED"
    ov = override_request(user=alice, order_id=blocked.pk, reason="client's closing order")
    kill_switch_engage(
        user=ruth, scope_type="instrument", scope_key=instrument.symbol, reason="bad prints"
    )
    blocked.refresh_from_db()
    elsewhere.refresh_from_db()
    assert blocked.status == "CANCELED" and "while blocked" in blocked.status_reason
    assert elsewhere.status == "BLOCKED"  # not in the switch's scope
    assert Override.objects.get(pk=ov.pk).status == "REJECTED"
    audited = set(AuditRecord.objects.values_list("action", "object_id"))
    assert {("order.cancel", str(blocked.pk)), ("override.reject", str(ov.pk))} <= audited
    # Rejected once, by the halt (a review: also lapsed by the order's end, twice over).
    trail = AuditRecord.objects.filter(object_type="Override", object_id=str(ov.pk))
    assert list(trail.order_by("seq").values_list("action", flat=True)) == [
        "override.request",
        "override.reject",
    ]
    assert Override.objects.get(pk=ov.pk).decision_note.startswith("the order was canceled by")
    # An order released (or entered) that no worker has taken up yet is cancelled too: it
    # would have traded once the switch was reset (a review).
    waiting = stepping.submit(alice, large, quantity=1_000)
    assert waiting.status == "NEW" and waiting.session_id is None
    kill_switch_engage(user=ruth, scope_type="trader", scope_key="alice", reason="stop her")
    waiting.refresh_from_db()
    elsewhere.refresh_from_db()
    assert waiting.status == "CANCELED" and "while new" in waiting.status_reason
    assert elsewhere.status == "CANCELED"  # blocked, and alice's: in this one's scope
    other = stepping.submit(ruth_trader := stepping_user(), large, quantity=1_000)
    kill_switch_engage(
        user=ruth, scope_type="trader", scope_key=ruth_trader.username, reason="reduce",
        state="REDUCING",
    )  # fmt: skip
    other.refresh_from_db()
    assert other.status == "NEW"  # reduce-only cancels nothing a worker has not taken up


def test_a_halt_cancels_the_suspended_orders_in_its_scope(
    alice: User, ruth: User, instrument: Instrument
) -> None:
    """Suspended by a stopped worker, an order stayed resumable under a halt: its rest
    counted against the daily notional, and it could be resumed once the switch was reset
    (a review)."""
    order = stepping.submit(alice, instrument, quantity=5_000)
    w = worker(instrument)
    stepping.run_to(w, 5 * 60)
    w.release()
    order.refresh_from_db()
    assert order.status == "SUSPENDED" and 0 < order.filled_qty < 5_000
    kill_switch_engage(
        user=ruth, scope_type="instrument", scope_key=instrument.symbol, reason="bad prints"
    )
    order.refresh_from_db()
    assert order.status == "CANCELED" and "while suspended" in order.status_reason
    assert order.filled_qty > 0  # its fills stay


def test_a_resume_under_a_halt_is_refused_naming_the_switch(
    alice: User, ruth: User, instrument: Instrument
) -> None:
    """It was "resume requested", and the worker that took the order up cancelled it for
    the halt (a trial)."""
    from execution.services import order_control_request

    order = stepping.submit(alice, instrument, quantity=5_000)
    w = worker(instrument)
    stepping.run_to(w, 3 * 60)
    order_control_request(user=alice, order=order, action="pause", reason="a look")
    stepping.run_to(w, 4 * 60)
    order.refresh_from_db()
    assert order.status == "PAUSED"
    k = kill_switch_engage(user=ruth, scope_type="firm", reason="everything looks wrong")
    with pytest.raises(
        ValidationError, match=f"cannot resume: trading is halted for firm by kill switch {k.pk}"
    ):
        order_control_request(user=alice, order=order, action="resume", reason="go on")
    w.release()


def test_a_halt_engaged_while_the_worker_hung_is_applied_when_the_watch_finds_it_dead(
    alice: User, ruth: User, instrument: Instrument
) -> None:
    """A trial froze every market worker and engaged a firm halt: the hung worker held the
    orders, so the halt left them to it; nobody declared it dead (the market workers reap
    one another), and once it was, its orders were suspended, resumable, not cancelled.
    The oversight worker's beat now watches the heartbeats, and the reaper applies the
    halts to what it suspends."""
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from execution.models import MarketSession
    from oversight.tasks import workers_watch_scheduled
    from tests.personas import client_for

    order = stepping.submit(alice, instrument, quantity=5_000)
    w = worker(instrument)
    stepping.run_to(w, 5 * 60)  # working, with a session that then stops heartbeating
    order.refresh_from_db()
    assert order.status == "WORKING" and order.session_id == w.session.pk
    k = kill_switch_engage(user=ruth, scope_type="firm", reason="everything looks wrong")
    order.refresh_from_db()
    assert order.status == "WORKING"  # its worker's to cancel: it holds it
    card = client_for(ruth).get(reverse("risk_console")).content.decode()
    assert "not applied yet: 1 order in scope still with a worker" in card
    assert workers_watch_scheduled() == []  # its heartbeat is fresh: not dead yet
    MarketSession.objects.filter(pk=w.session.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=30)
    )
    assert workers_watch_scheduled() == [w.session.pk]
    order.refresh_from_db()
    assert order.status == "CANCELED", order.status_reason
    assert order.status_reason == (
        f"canceled by kill switch {k.pk} (ruth) while suspended by its lost worker"
    )
    cancel = AuditRecord.objects.filter(action="order.cancel", object_id=str(order.pk)).get()
    assert (cancel.actor_id, cancel.actor_role) == (None, "system")
    lost = RiskException.objects.get(kind="WORKER_LOST")
    assert "unless a kill switch halts them (then they are cancelled)" in lost.suggested_action
    card = client_for(ruth).get(reverse("risk_console")).content.decode()
    assert "not applied yet" not in card
    # Said on the card, not only on a live console (a trial's looked like a halt with
    # nothing in scope).
    assert "1 order no running worker held cancelled" in card


def test_a_kills_cancel_is_in_the_trail_before_the_control_refusals_it_causes(
    alice: User, rita: User, instrument: Instrument
) -> None:
    """A pause asked as a kill lands is refused, because of the kill: the trail has the
    kill's cancel of the order first (a review found it after, when the step's records
    were written at its end)."""
    from execution.services import order_control_request

    order = submit(alice, instrument)
    w = worker(instrument)
    run_to(w, 10 * 60)
    kill_switch_engage(user=rita, scope_type="trader", scope_key="alice", reason="runaway")
    order_control_request(user=alice, order=order, action="pause", reason="me too")
    w.step(sim_until=w.market.now + 0.5)
    actions = list(
        AuditRecord.objects.filter(object_type="ParentOrder", object_id=str(order.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions.index("order.cancel") < actions.index("order.pause.refused"), actions
    w.release()
