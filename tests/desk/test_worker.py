"""The market worker against the real database and channel layer: persistence, controls."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Sum

from execution.models import (
    SUSPENDED,
    ChildOrder,
    ControlRequest,
    Fill,
    Instrument,
    MarketSession,
    OrderEvent,
    ParentOrder,
)
from execution.services import order_control_request
from execution.worker import MarketWorker, SessionLost, SessionTaken, sessions_reap
from tests.personas import demo_instrument, set_limit
from tests.stepping import run_to, submit, worker

pytestmark = pytest.mark.django_db(transaction=True)


def heartbeat_stops(w: MarketWorker) -> list[int]:
    """As if the worker process died: its heartbeat goes stale and the reaper notices."""
    assert w.session is not None
    MarketSession.objects.filter(pk=w.session.pk).update(heartbeat_at="2000-01-01T00:00:00Z")
    return sessions_reap(stale_after_s=5)


def resumed_on_another(
    order: ParentOrder, lost: MarketWorker, capture: Any, replan: bool = False
) -> MarketWorker:
    """`lost` dies; the order's trader asks to resume it (re-planned, or not); the worker
    that will take it up."""
    heartbeat_stops(lost)
    order.refresh_from_db()
    with capture(execute=False):
        order_control_request(
            user=order.owner,
            order=order,
            action="resume",
            changes={"replan": "1"} if replan else None,
        )
    return worker(order.instrument, seed=8)


def test_worker_persists_the_event_stream_and_its_projections(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument)
    w = worker(instrument)
    run_to(w, 31 * 60)
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_qty == 20_000
    seqs = list(OrderEvent.objects.filter(parent=order).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)) and order.last_seq == len(seqs)
    fills = Fill.objects.filter(parent=order)
    assert fills.aggregate(q=Sum("quantity"))["q"] == 20_000
    assert len({(f.venue, f.trade_id) for f in fills}) == fills.count()
    for child in ChildOrder.objects.filter(parent=order):
        assert child.filled_qty == (
            Fill.objects.filter(child=child).aggregate(q=Sum("quantity"))["q"] or 0
        )
        assert child.status in ("FILLED", "CANCELED", "REJECTED", "DENIED")
    engine_parent = w.engine.orders[order.engine_id].parent
    assert order.avg_price is not None
    assert abs(float(order.avg_price) - engine_parent.avg_px_ticks * 0.01) < 1e-6
    assert order.arrival_price is not None


def test_one_market_per_instrument(instrument: Instrument) -> None:
    first = worker(instrument)
    with pytest.raises(SessionTaken):
        MarketWorker(instrument, speed=60.0).claim()
    first.release()
    MarketWorker(instrument, speed=60.0).claim()  # free again once released


def test_controls_take_effect_at_the_next_step(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(
            alice, instrument, strategy="pov", params={"participation_rate": 0.05}, end_minute=120
        )
    w = worker(instrument)
    run_to(w, 10 * 60)
    order.refresh_from_db()
    assert order.status == "WORKING"
    order_control_request(
        user=alice, order=order, action="amend", changes={"participation_rate": 0.2}
    )
    order_control_request(user=alice, order=order, action="pause")
    w.step(sim_until=w.market.now + 1)
    order.refresh_from_db()
    assert order.status == "PAUSED" and order.params["participation_rate"] == 0.2
    assert not ControlRequest.objects.filter(parent=order, applied_at=None).exists()
    order_control_request(user=alice, order=order, action="cancel", reason="done for today")
    w.step(sim_until=w.market.now + 2)
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.filled_qty > 0
    kinds = list(OrderEvent.objects.filter(parent=order).values_list("kind", flat=True))
    assert "ParentAmended" in kinds


def test_a_dead_workers_orders_are_suspended_and_their_children_cancelled(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=120)
    w = worker(instrument)
    run_to(w, 20 * 60)
    live = ["ACCEPTED", "PARTIALLY_FILLED", "SUBMITTED", "PENDING_CANCEL"]
    assert ChildOrder.objects.filter(parent=order, status__in=live).exists(), (
        "TWAP rests passive orders"
    )
    assert heartbeat_stops(w) == [w.session.pk]
    order.refresh_from_db()
    assert order.status == SUSPENDED and "worker" in order.status_reason
    assert not ChildOrder.objects.filter(parent=order, status__in=live).exists()
    filled_before = order.filled_qty
    assert Fill.objects.filter(parent=order).aggregate(q=Sum("quantity"))["q"] == filled_before


def test_only_the_orders_trader_controls_it(
    instrument: Instrument,
    alice: User,
    bob: User,
    rita: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core.exceptions import ValidationError

    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument)
    for other in (bob, rita):
        with pytest.raises(ValidationError):
            order_control_request(user=other, order=order, action="cancel")
    with pytest.raises(ValidationError, match="participation_rate"):
        order_control_request(
            user=alice, order=order, action="amend", changes={"participation_rate": 0.2}
        )


def test_a_suspended_order_resumes_on_another_worker_without_losing_or_repeating_anything(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    first = worker(instrument)
    run_to(first, 20 * 60)
    heartbeat_stops(first)
    order.refresh_from_db()
    filled_at_death, seq_at_death = order.filled_qty, order.last_seq
    assert order.status == SUSPENDED and 0 < filled_at_death < order.quantity

    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="resume")
    second = worker(instrument, seed=8)
    # The same simulated day goes on from where the dead worker's last heartbeat left it.
    dead = MarketSession.objects.get(pk=first.session.pk)
    assert second.session.day == dead.day == 1 and second.seed == 8
    assert second.session.start_ts == dead.sim_ts >= 19 * 60
    assert second.market.now == pytest.approx(dead.sim_ts)
    run_to(second, 61 * 60)
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_qty == order.quantity
    later = Fill.objects.filter(parent=order).exclude(trade_id__startswith=f"S{dead.pk}:")
    assert later.exists() and min(later.values_list("sim_ts", flat=True)) >= dead.sim_ts
    seqs = list(OrderEvent.objects.filter(parent=order).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > seq_at_death
    assert Fill.objects.filter(parent=order).aggregate(q=Sum("quantity"))["q"] == order.quantity


def test_a_suspended_order_can_be_cancelled_without_a_worker(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 10 * 60)
    heartbeat_stops(w)
    order.refresh_from_db()
    last = order.last_seq
    order_control_request(user=alice, order=order, action="cancel")
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.last_seq == last + 1
    final = OrderEvent.objects.get(parent=order, seq=last + 1).payload
    assert final["status"] == "CANCELED"
    # The window as the lost worker last wrote it; no end mid: no market ran it to its end.
    assert final["end_mid_px"] is None
    assert final["market_volume"] == round(order.market_volume) > 0
    assert float(final["market_vwap_px"]) == pytest.approx(
        order.market_notional / order.market_volume
    )


def test_a_worker_that_stops_with_open_orders_suspends_them(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 10 * 60)
    w.release()
    order.refresh_from_db()
    assert order.status == SUSPENDED and order.filled_qty > 0
    live = ["ACCEPTED", "PARTIALLY_FILLED", "SUBMITTED", "PENDING_CANCEL"]
    assert not ChildOrder.objects.filter(parent=order, status__in=live).exists()
    assert MarketSession.objects.get(pk=w.session.pk).status == "STOPPED"


def test_an_order_working_at_the_close_expires_with_its_end_mid_not_suspended(
    instrument: Instrument, alice: User
) -> None:
    """Its window ends at the close; its last cancels were in flight when the market
    stopped, so it was suspended, then read as cancelled by a lost worker, with no end
    mid, and TCA counted it as stopped at a 100% fill rate (a trial)."""
    from decimal import Decimal

    from oversight.models import AuditRecord

    resting = submit(
        alice, instrument, quantity=2_000, start_minute=370, end_minute=390,
        limit_price=Decimal("35.00"),  # far under the market: its children rest, unfilled
    )  # fmt: skip
    paused = submit(alice, instrument, quantity=1_500, start_minute=370, end_minute=390)
    w = worker(instrument)
    run_to(w, 380 * 60)
    order_control_request(user=alice, order=paused, action="pause", reason="hold")
    run_to(w, 390 * 60)
    assert ChildOrder.objects.filter(parent=resting, status="CANCELED").exists()
    w.release()
    for order, why in ((resting, "window ended"), (paused, "window ended while paused")):
        order.refresh_from_db()
        assert (order.status, order.status_reason) == ("EXPIRED", why)
        final = OrderEvent.objects.filter(parent=order, kind="ParentStatusChanged").last()
        assert final.payload["status"] == "EXPIRED" and final.payload["end_mid_px"]
        suspended = AuditRecord.objects.filter(action="order.suspend", object_id=str(order.pk))
        assert not suspended.exists()
        # Its end is audited, as a blocked order's expiry is (two trials found it missing).
        expired = AuditRecord.objects.filter(action="order.expire", object_id=str(order.pk))
        assert [r.reason for r in expired] == [why]
    live = ["ACCEPTED", "PARTIALLY_FILLED", "SUBMITTED", "PENDING_CANCEL"]
    assert not ChildOrder.objects.filter(parent=resting, status__in=live).exists()


def test_the_limit_price_can_be_amended_mid_flight(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    from decimal import Decimal

    from django.core.exceptions import ValidationError

    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 10 * 60)
    with pytest.raises(ValidationError, match="tick"):
        order_control_request(
            user=alice, order=order, action="amend", changes={"limit_price": "39.005"}
        )
    order_control_request(user=alice, order=order, action="amend", changes={"limit_price": "39.50"})
    w.step(sim_until=w.market.now + 1)
    order.refresh_from_db()
    assert order.limit_price == Decimal("39.5")
    amended = OrderEvent.objects.filter(parent=order, kind="ParentAmended").last()
    assert amended is not None and amended.payload["after"] == {"limit_price": "39.5"}
    at = w.market.now
    run_to(w, 30 * 60)
    assert all(
        f.price <= Decimal("39.5") for f in Fill.objects.filter(parent=order, sim_ts__gt=at + 0.1)
    )


def test_after_the_close_the_next_session_opens_a_new_day_with_its_own_market(
    instrument: Instrument,
) -> None:
    w = worker(instrument)
    w.release()
    MarketSession.objects.filter(pk=w.session.pk).update(sim_ts=390 * 60)
    nxt = worker(instrument)
    assert (nxt.session.day, nxt.session.start_ts, nxt.market.now) == (2, 0.0, 0.0)
    assert nxt.seed == w.seed + 1


def test_a_market_that_went_idle_in_its_last_minute_opens_the_next_day(
    instrument: Instrument, alice: User
) -> None:
    """Idle at 15:59:41, the day took no order (a window must end a minute after the
    clock), and so never reached the close: the instrument could not be traded (a trial)."""
    from execution.selectors import market_clock

    w = worker(instrument)
    w.release()
    MarketSession.objects.filter(pk=w.session.pk).update(sim_ts=389 * 60 + 41)
    assert market_clock(instrument) == {"day": 2, "minute": 0.0, "running": False}
    order = submit(alice, instrument, start_minute=0, end_minute=60)
    assert order.status == "NEW" and (order.start_minute, order.end_minute) == (0.0, 60.0)
    nxt = worker(instrument)
    assert (nxt.session.day, nxt.market.now) == (2, 0.0)
    # A minute and more before the close, the day goes on.
    nxt.release()
    MarketSession.objects.filter(pk=nxt.session.pk).update(sim_ts=388 * 60)
    assert market_clock(instrument) == {"day": 2, "minute": 388.0, "running": False}


def test_a_worker_that_runs_to_the_close_expires_the_day_s_blocked_orders(
    instrument: Instrument, alice: User
) -> None:
    """At the close, by the worker's own housekeeping: the orders and the requests are
    ended, not left "Blocked" and "Pending" for a blotter to end (a trial saw them so; the
    overrides page and the console now end them too, as the blotter does)."""
    from oversight.risk.models import Override
    from oversight.risk.services import override_request

    set_limit("max_order_qty", 10_000)
    blocked = submit(alice, instrument, start_minute=300, end_minute=390)  # 20,000: blocked
    ov = override_request(user=alice, order_id=blocked.pk, reason="client's closing order")
    ticks = iter(range(10**6))  # a wall clock a second on at every reading
    w = MarketWorker(
        instrument, speed=600.0, seed=7, wall_clock=lambda: float(next(ticks)), poll_interval_s=0.0
    )
    w.claim()
    w.run(idle_exit_s=1e9, tick_s=0.0, max_wall_s=10_000)  # 39 wall seconds make the day
    blocked.refresh_from_db()
    ov.refresh_from_db()
    assert w.market.now == 390 * 60
    assert (blocked.status, blocked.status_reason) == (
        "EXPIRED", "its window ended while it was blocked",
    )  # fmt: skip
    assert ov.status == Override.REJECTED and ov.decision_note.startswith("lapsed:")


def test_a_session_that_stopped_idle_is_continued_and_a_window_already_past_is_refused(
    instrument: Instrument, alice: User
) -> None:
    w = worker(instrument)
    run_to(w, 100 * 60)
    w.release()
    with pytest.raises(ValidationError) as e:
        submit(alice, instrument, start_minute=0, end_minute=60)
    assert "market is at 11:10:00 of day 1" in str(e.value.message_dict["end_minute"])
    order = submit(alice, instrument, start_minute=0, end_minute=130)
    nxt = worker(instrument)
    assert nxt.session.start_ts == 100 * 60 and nxt.market.now == 100 * 60
    run_to(nxt, 131 * 60)
    order.refresh_from_db()
    assert order.status == "FILLED"
    assert min(Fill.objects.filter(parent=order).values_list("sim_ts", flat=True)) >= 100 * 60


def test_a_resumed_pov_order_keeps_its_arrival_and_its_window_and_keeps_pace(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The worker that resumes an order carries on its window: the arrival price stays the
    benchmark, the market's volume counts from the order's start (so POV neither stalls
    on its earlier fills nor rushes), and the final event reports the whole window."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(
            alice, instrument, quantity=200_000, end_minute=40, strategy="pov",
            params={"participation_rate": 0.05},
        )  # fmt: skip
    first = worker(instrument)
    run_to(first, 15 * 60)
    heartbeat_stops(first)
    order.refresh_from_db()
    arrival, volume_at_death = order.arrival_price, order.market_volume
    assert order.status == SUSPENDED and order.filled_qty > 0 and volume_at_death > 0
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="resume")
    second = worker(instrument, seed=8)
    run_to(second, 41 * 60)
    order.refresh_from_db()
    assert order.status == "EXPIRED" and order.arrival_price == arrival
    final = OrderEvent.objects.filter(parent=order, kind="ParentStatusChanged").latest("seq")
    window = float(final.payload["market_volume"])
    assert window > volume_at_death  # the whole window, not only the part after the resume
    assert 0.04 < order.filled_qty / window < 0.06  # 5% of it, across both workers
    assert float(final.payload["market_vwap_px"]) > 0


def test_an_instrument_whose_market_cannot_be_built_refuses_its_orders_and_says_so(
    instrument: Instrument, alice: User
) -> None:
    """A scenario stored before today's checks (or edited in the database) that the
    simulator cannot run: the worker task used to fail and the orders sat NEW, "submitted",
    with nothing on the console (a review's division by zero)."""
    from execution.tasks import market_session_run
    from oversight.risk.models import RiskException

    waiting = [submit(alice, instrument), submit(alice, instrument, quantity=1_001)]
    scenario = dict(instrument.scenario)
    scenario["simulator"] = {"lit_shares_per_trade": 0}
    Instrument.objects.filter(pk=instrument.pk).update(scenario=scenario)
    assert market_session_run(instrument.pk) == "market unusable"
    for order in waiting:
        order.refresh_from_db()
        assert order.status == "REJECTED"
        assert (
            "cannot be built: simulator.lit_shares_per_trade: must be in [1" in order.status_reason
        )
        assert order.events.filter(kind="ParentStatusChanged").exists()  # blotters hear of it
    exc = RiskException.objects.get(kind="MARKET_UNUSABLE")
    assert exc.severity == RiskException.CRITICAL and exc.scope_key == instrument.symbol
    assert str(waiting[0].pk) in exc.detail
    assert not MarketSession.objects.exists()


def test_a_resume_waiting_for_a_market_that_cannot_be_built_is_refused(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """A suspended order asked to resume waited for ever, "refused: none" (a review)."""
    from execution.tasks import market_session_run

    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument)
    w = worker(instrument)
    run_to(w, 60)
    heartbeat_stops(w)
    order.refresh_from_db()
    assert order.status == SUSPENDED
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="resume")
    scenario = dict(instrument.scenario)
    scenario["simulator"] = {"lit_shares_per_trade": 0}
    Instrument.objects.filter(pk=instrument.pk).update(scenario=scenario)
    assert market_session_run(instrument.pk) == "market unusable"
    req = ControlRequest.objects.get(parent=order, action="resume")
    assert req.applied_at is not None and req.outcome.startswith("refused: the simulated market")
    order.refresh_from_db()
    assert order.status == SUSPENDED  # may still be cancelled
    from oversight.risk.models import RiskException

    assert str(order.pk) in RiskException.objects.get(kind="MARKET_UNUSABLE").detail


def test_a_paused_order_is_cut_to_a_smaller_quantity_and_finishes_there(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 10 * 60)
    order_control_request(user=alice, order=order, action="pause")
    w.step(sim_until=w.market.now + 5)
    order.refresh_from_db()
    assert order.status == "PAUSED" and order.working_qty == 0 and order.filled_qty > 0
    new = order.filled_qty + 1_000
    order_control_request(user=alice, order=order, action="amend", changes={"quantity": str(new)})
    order_control_request(user=alice, order=order, action="resume")
    w.step(sim_until=w.market.now + 1)
    order.refresh_from_db()
    assert order.quantity == new and order.entered_quantity == 20_000  # what it was, kept
    amended = OrderEvent.objects.filter(parent=order, kind="ParentAmended").last()
    assert amended is not None and amended.payload["after"] == {"quantity": new}
    assert ControlRequest.objects.filter(parent=order, action="amend").get().outcome == "applied"
    run_to(w, 61 * 60)
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_qty == new
    assert Fill.objects.filter(parent=order).aggregate(n=Sum("quantity"))["n"] == new
    from oversight.models import AuditRecord

    (end,) = AuditRecord.objects.filter(object_type="ParentOrder", object_id=str(order.pk)).filter(
        action="order.fill"
    )  # its end, audited once
    assert end.actor_id is None


def test_children_are_sized_within_the_child_limits_not_denied_by_them(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """A trial: a 60,000-share minimum child under a 50,000-share limit had about 100
    children denied, and the order expired 82% filled."""
    set_limit("max_child_qty", 400)
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(
            alice, instrument, quantity=12_000, end_minute=30, params={"min_child_qty": 1_000}
        )
    w = worker(instrument)
    run_to(w, 31 * 60)
    order.refresh_from_db()
    assert order.status == "FILLED"
    # Not denied by the child limits, nor its equal parts as duplicates of each other.
    denied = list(
        ChildOrder.objects.filter(
            parent=order,
            status="DENIED",
            reason__in=("MAX_CHILD_QTY", "MAX_CHILD_NOTIONAL", "DUPLICATE_ORDER"),
        ).values_list("quantity", "reason", "sim_ts")[:5]
    )
    assert not denied, denied
    assert max(ChildOrder.objects.filter(parent=order).values_list("quantity", flat=True)) <= 400


def test_a_resumed_order_keeps_its_schedule(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Planned again from the resume with the whole quantity, a TWAP order sat idle until
    that plan caught up with its earlier fills, then traded at twice the pace (a review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)  # 20,000 over the hour
    first = worker(instrument)
    run_to(first, 20 * 60)
    second = resumed_on_another(order, first, django_capture_on_commit_callbacks)
    second.step(sim_until=second.market.now + 1)
    progress = OrderEvent.objects.filter(parent=order, kind="ParentProgress").latest("seq")
    at = progress.payload["ts"]
    assert at >= 19 * 60 and progress.payload["target_qty"] == pytest.approx(
        20_000 * at / 3600, abs=2
    )
    run_to(second, 40 * 60)
    order.refresh_from_db()
    assert order.filled_qty == pytest.approx(20_000 * 40 / 60, rel=0.05)  # not about 10,000


def test_a_cancel_while_a_worker_takes_up_a_suspended_order_waits_for_that_worker(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The worker's compare-and-set takes the order (its session) and it works it; the
    row says SUSPENDED until that step writes. A cancel then must not end it from the
    service (a review: the order was canceled there while the worker worked it, and the
    worker's step failed on a duplicate event sequence)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    first = worker(instrument)
    run_to(first, 10 * 60)
    second = resumed_on_another(order, first, django_capture_on_commit_callbacks)
    second._pick_up_orders()  # what its step does first
    taken = ParentOrder.objects.get(pk=order.pk)
    assert taken.status == SUSPENDED and taken.session_id == second.session.pk
    with django_capture_on_commit_callbacks(execute=False):
        req = order_control_request(user=alice, order=order, action="cancel")  # a stale read
    assert ParentOrder.objects.get(pk=order.pk).status == SUSPENDED and req.applied_at is None
    run_to(second, 12 * 60)  # no IntegrityError: the worker applies the cancel
    order.refresh_from_db()
    assert order.status == "CANCELED"
    req.refresh_from_db()
    assert req.applied_at is not None
    seqs = list(OrderEvent.objects.filter(parent=order).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_step_that_does_not_poll_writes_nothing_for_a_session_declared_dead(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Only a polling step checked its session: one stalled past the heartbeat's limit
    wrote on over the orders the reaper had suspended (a review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = MarketWorker(instrument, speed=60.0, seed=7, wall_clock=lambda: 0.0, poll_interval_s=3600.0)
    w.claim()
    w.step(sim_until=60.0)  # the first step polls: it picks the order up
    w.step(sim_until=5 * 60.0)
    heartbeat_stops(w)
    order.refresh_from_db()
    suspended_at = order.last_seq
    assert order.status == SUSPENDED
    with pytest.raises(SessionLost):
        w.step(sim_until=6 * 60.0)  # no poll
    order.refresh_from_db()
    assert (order.status, order.last_seq) == (SUSPENDED, suspended_at)
    assert not OrderEvent.objects.filter(parent=order, seq__gt=suspended_at).exists()


def test_a_worker_that_fell_behind_catches_up_in_steps_that_each_write_a_heartbeat(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Half a minute of wall time lost (a stalled machine) is half an hour of market at
    60x: run in one step, it outlasted the heartbeat's limit and a peer suspended the
    orders. Each step now runs at most a second's worth, and beats."""
    with django_capture_on_commit_callbacks(execute=False):
        submit(alice, instrument, end_minute=60)
    wall = [0.0]
    w = MarketWorker(
        instrument, speed=60.0, seed=7, wall_clock=lambda: wall[0], poll_interval_s=0.0
    )
    session = w.claim()
    wall[0] = 30.0
    assert w.behind
    advances, beats = [], []
    while w.market.now < 1800.0:
        before = w.market.now
        w.step()
        advances.append(w.market.now - before)
        beats.append(MarketSession.objects.get(pk=session.pk).heartbeat_at)
    assert len(advances) == 30 and max(advances) <= 60.0
    assert beats == sorted(beats) and beats[0] > session.heartbeat_at
    assert not w.behind


def test_an_order_whose_model_fell_back_keeps_its_parameters_amends_and_resumes_so(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """TWAP took over with its own defaults (100-share lots, 30% dark, taking two ticks
    through); an amend then stored TWAP's parameters as the order's, losing its model; an
    urgency amend was accepted and refused by the worker; a resume after a worker loss
    ran the failed model again, to fail and alert again (a review)."""
    from execution.models import ModelVersion
    from tests.personas import approved_model

    mv = approved_model("policy-v1")
    asked = {"model": "policy-v1", "min_child_qty": 500, "dark_fraction": 0.0, "max_take_ticks": 0}
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, strategy="adaptive", end_minute=60, params=asked)
    ModelVersion.objects.filter(pk=mv.pk).update(sha256="0" * 64)  # the file no longer matches
    first = worker(instrument)
    run_to(first, 5 * 60)
    order.refresh_from_db()
    running = first.engine.orders[order.engine_id].strategy
    assert order.fallback_strategy == "twap" and running.name == "twap"
    assert {k: running.params[k] for k in asked if k != "model"} == {
        "min_child_qty": 500, "dark_fraction": 0.0, "max_take_ticks": 0,
    }  # fmt: skip
    assert not ChildOrder.objects.filter(parent=order, intent="dark").exists()

    with pytest.raises(ValidationError) as e:
        order_control_request(user=alice, order=order, action="amend", changes={"urgency": "0.2"})
    assert e.value.message_dict == {
        "param_urgency": ["no longer applies: ADAPTIVE fell back and TWAP works the order"]
    }
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(
            user=alice, order=order, action="amend", changes={"dark_fraction": "0.1"}
        )
    run_to(first, 6 * 60)
    order.refresh_from_db()
    assert order.params["model"] == "policy-v1" and order.params["dark_fraction"] == 0.1
    assert order.params["min_child_qty"] == 500 and "urgency" in order.params

    second = resumed_on_another(order, first, django_capture_on_commit_callbacks)
    run_to(second, second.market.now + 120)
    resumed = second.engine.orders[order.engine_id].strategy
    assert resumed.name == "twap" and resumed.params["min_child_qty"] == 500
    assert resumed.params["dark_fraction"] == 0.1
    assert OrderEvent.objects.filter(parent=order, kind="ParentStrategyFallback").count() == 1


def test_an_order_waiting_for_its_window_cannot_be_paused(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The engine has no paused-before-start: a pause was accepted, then refused by the
    worker, and the order started anyway (a review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, start_minute=20, end_minute=60)
    w = worker(instrument)
    run_to(w, 5 * 60)
    order.refresh_from_db()
    assert order.status == "NEW"
    with pytest.raises(ValidationError) as e:
        order_control_request(user=alice, order=order, action="pause")
    assert e.value.message_dict == {
        "action": [
            "cannot pause an order that has not started: it starts at its window; cancel it, "
            "or amend it, until then"
        ]
    }
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="cancel")
    run_to(w, 6 * 60)
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.filled_qty == 0


def test_a_suspended_order_whose_window_ended_expires_with_its_fills(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Resumed after its window, it was REJECTED and its fills dropped out of the day's
    notional; left alone, it stayed SUSPENDED for ever, its rest counted (a review)."""
    from execution.services import blocked_expire
    from oversight.risk.pretrade import _daily_used

    with django_capture_on_commit_callbacks(execute=False):
        late = submit(alice, instrument, end_minute=12)
        alone = submit(alice, instrument, end_minute=14, quantity=5_000)
        other = submit(alice, instrument, end_minute=60, quantity=20_001)
    first = worker(instrument)
    run_to(first, 10 * 60)
    heartbeat_stops(first)
    for o in (late, alone, other):
        o.refresh_from_db()
        assert o.status == SUSPENDED and o.filled_qty > 0
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=other, action="resume")
    second = worker(instrument, seed=8)
    run_to(second, 20 * 60)
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=late, action="resume")
    second.step(sim_until=second.market.now + 1)
    late.refresh_from_db()
    assert late.status == "EXPIRED" and late.filled_qty > 0
    assert late.status_reason == "the window ended at minute 12; the market is at 20.0"
    assert blocked_expire() == 1  # the housekeeping: `alone`, never asked to resume
    alone.refresh_from_db()
    assert (alone.status, alone.status_reason) == (
        "EXPIRED",
        "its window ended while it was suspended",
    )
    final = OrderEvent.objects.filter(parent=alone).latest("seq").payload
    assert final["status"] == "EXPIRED" and final["end_mid_px"] is None
    other.refresh_from_db()
    # Every fill counts (the late order's too), and the open order's unfilled rest where
    # the instrument trades now.
    from oversight.risk.pretrade import market_price

    assert other.status == "WORKING"
    rest = market_price(instrument) * (other.quantity - other.filled_qty)
    traded = sum(
        o.avg_price * o.filled_qty
        for o in ParentOrder.objects.filter(pk__in=[late.pk, alone.pk, other.pk])
    )
    assert _daily_used("trader", "alice") == pytest.approx(traded + rest)
    assert market_price(instrument) != instrument.reference_price  # the market has moved
    # The risk console values what works the same way (it used the reference price).
    from oversight.risk.selectors import exposure

    (alice_now,) = [g for g in exposure() if (g.level, g.key) == ("trader", "alice")]
    assert alice_now.at(instrument.symbol).working_notional == rest


def test_children_are_sized_within_the_value_limit_at_the_price_a_take_may_pay(
    alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Sized at the mid with 2% to spare, a take allowed 20 ticks through the ask on an
    $8.50 stock (2.4%) was denied by the value limit (a review); here 50 (5.7%)."""

    smallcap = demo_instrument("demo-smallcap-regime")  # SQNT, 8.50, a 4-tick spread
    set_limit("max_child_notional", 900)
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(
            alice, smallcap, quantity=3_000, start_minute=60, end_minute=75,
            params={"max_take_ticks": 50, "min_child_qty": 1},
        )  # fmt: skip
    w = worker(smallcap)
    run_to(w, 76 * 60, step_s=10.0)
    order.refresh_from_db()
    denied = list(
        ChildOrder.objects.filter(
            parent=order, status="DENIED", reason="MAX_CHILD_NOTIONAL"
        ).values_list("quantity", "price")[:5]
    )
    assert not denied, denied
    assert order.filled_qty > 0
    assert ChildOrder.objects.filter(parent=order, intent="take").exists()


def test_a_control_the_engine_cannot_take_is_refused_not_a_failed_step(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The service refuses such values; one that got past it (written by hand, or by an
    older version) must not stop the step, and every later worker's, on it."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 5 * 60)
    reqs = [
        ControlRequest.objects.create(
            parent=order, action="amend", changes=changes, requested_by=alice
        )
        for changes in ({"limit_price": "abc"}, {"quantity": None}, {"quantity": 10**9})
    ]
    run_to(w, 6 * 60)
    order.refresh_from_db()
    for req in reqs:
        req.refresh_from_db()
        assert req.applied_at is not None and req.outcome.startswith("refused: ")
    # In the people's words, not the engine's id for the order (a trial read "P52: ...").
    assert reqs[2].outcome.startswith("refused: an amend reduces the quantity; 1,000,000,000 is")
    assert order.status == "WORKING" and order.limit_price is None


def test_a_resume_can_replan_and_the_plan_survives_a_worker_loss(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Paused twenty minutes of an hour's TWAP, resumed re-planned: no catch-up take, the
    rest spread over the rest of the window; a worker that takes it up after a loss plans
    the same."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)  # 20,000 over the hour
    w = worker(instrument)
    run_to(w, 10 * 60)
    order_control_request(user=alice, order=order, action="pause")
    run_to(w, 30 * 60)
    with pytest.raises(ValidationError) as e:
        order_control_request(user=alice, order=order, action="resume", changes={"replan": "x"})
    assert e.value.message_dict == {"replan": ["yes or no"]}
    req = order_control_request(user=alice, order=order, action="resume", changes={"replan": "1"})
    assert req.changes == {"replan": True}
    run_to(w, 31 * 60)
    order.refresh_from_db()
    assert order.status == "WORKING" and order.status_reason.endswith(", re-planned")
    assert order.replan is not None and order.replan["done"] <= order.filled_qty
    assert order.replan["done"] < 5_000  # a third of the way in, with a third of 20,000 due
    resumed_at = order.replan["at_s"]
    takes = ChildOrder.objects.filter(parent=order, intent="take", sim_ts__gte=resumed_at)
    assert sum(takes.values_list("quantity", flat=True)) < 1_000  # no catch-up at once
    progress = OrderEvent.objects.filter(parent=order, kind="ParentProgress").latest("seq")
    assert progress.payload["target_qty"] < 8_000  # the plan, not 10,000 of the old curve
    second = resumed_on_another(order, w, django_capture_on_commit_callbacks)
    second.step(sim_until=second.market.now + 1)
    s2 = second.engine.orders[order.engine_id].strategy
    assert s2.replanned is not None and s2.replanned.at_s == resumed_at
    run_to(second, 61 * 60)
    order.refresh_from_db()
    assert order.status == "FILLED"


def test_a_resume_after_a_worker_loss_can_replan(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    first = worker(instrument)
    run_to(first, 10 * 60)
    second = resumed_on_another(order, first, django_capture_on_commit_callbacks, replan=True)
    second.step(sim_until=second.market.now + 1)
    s2 = second.engine.orders[order.engine_id].strategy
    assert s2.replanned is not None and s2.replanned.done == order.filled_qty
    order.refresh_from_db()
    assert order.replan == {
        "at_s": s2.replanned.at_s, "done": s2.replanned.done,
        "others_volume": s2.replanned.others_volume,
    }  # fmt: skip
    run_to(second, 61 * 60)
    order.refresh_from_db()
    assert order.status == "FILLED"


def test_a_suspended_order_whose_day_has_closed_expires(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """After the close the clock reads the next day's 09:30, so an order to 16:00 was never
    past its end: it stayed SUSPENDED, and a resume ran it on the next day (a review)."""
    from django.utils import timezone

    from execution.services import blocked_expire

    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, start_minute=300, end_minute=390)
    dead = MarketSession.objects.create(
        instrument=instrument, worker="w1", seed=1, speed=60.0, day=1, sim_ts=340 * 60.0,
        status=MarketSession.DEAD, heartbeat_at=timezone.now(),
    )  # fmt: skip
    ParentOrder.objects.filter(pk=order.pk).update(
        status=SUSPENDED, session=dead, filled_qty=15_000, avg_price=40, arrival_price=40
    )
    MarketSession.objects.create(
        instrument=instrument, worker="w2", seed=1, speed=60.0, day=1, sim_ts=390 * 60.0,
        status=MarketSession.STOPPED, heartbeat_at=timezone.now(),
    )  # fmt: skip
    order.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="resume")
    w = worker(instrument)  # day 2, 09:30
    assert w.session.day == 2
    w.step(sim_until=60.0)
    order.refresh_from_db()
    assert order.status == "EXPIRED" and order.filled_qty == 15_000
    assert (
        order.status_reason
        == "the window ended at minute 390 of an earlier day; the market is at 0.0"
    )
    assert order.engine_id not in w.engine.orders
    w.release()
    # And without a resume, the housekeeping expires such an order.
    with django_capture_on_commit_callbacks(execute=False):
        other = submit(alice, instrument, start_minute=300, end_minute=390, quantity=20_001)
    ParentOrder.objects.filter(pk=other.pk).update(status=SUSPENDED, session=dead)
    assert blocked_expire() == 1
    other.refresh_from_db()
    assert other.status == "EXPIRED"


def test_an_order_entered_for_a_day_that_has_closed_is_refused_not_worked(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Entered for day 1 and never worked there (blocked, then released late): the next
    day's worker must not work it on day 2 (a trial's order did)."""
    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, start_minute=300, end_minute=390)
    assert order.day == 1 and order.session is None
    MarketSession.objects.create(
        instrument=instrument, worker="w1", seed=1, speed=60.0, day=1, sim_ts=390 * 60.0,
        status=MarketSession.STOPPED, heartbeat_at=timezone.now(),
    )  # fmt: skip
    w = worker(instrument)
    assert w.session.day == 2
    w.step(sim_until=60.0)
    order.refresh_from_db()
    assert order.status == "REJECTED" and "of an earlier day" in order.status_reason
    assert order.filled_qty == 0 and order.engine_id not in w.engine.orders
    w.release()


def test_a_sell_resting_at_a_limit_above_the_market_is_sized_at_that_limit(
    alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Sized as if it rested at the ask, a sell whose limit is above the market had every
    child at the limit denied by the value limit (a review: 194 denied, nothing filled)."""

    smallcap = demo_instrument("demo-smallcap-regime")  # SQNT, 8.50
    set_limit("max_child_notional", 900)
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(
            alice, smallcap, side="sell", quantity=3_000, start_minute=60, end_minute=75,
            limit_price="9.00", params={"min_child_qty": 1},
        )  # fmt: skip
    w = worker(smallcap)
    run_to(w, 70 * 60, step_s=10.0)
    denied = ChildOrder.objects.filter(parent=order, status="DENIED", reason="MAX_CHILD_NOTIONAL")
    assert not denied.exists(), list(denied.values_list("quantity", "price")[:5])
    assert ChildOrder.objects.filter(parent=order, status__in=["ACCEPTED", "SUBMITTED"]).exists()


@pytest.mark.parametrize("how", ["stopped", "lost"])
def test_a_cancel_its_worker_did_not_apply_before_the_order_was_suspended_ends_it(
    instrument: Instrument,
    alice: User,
    django_capture_on_commit_callbacks: Any,
    how: str,
) -> None:
    """The trader's cancel reached the order while its worker was stopping (or just before
    it died): it was left pending on the suspended order and ended it only when a resume
    took it up again, minutes later (a review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 10 * 60)
    with django_capture_on_commit_callbacks(execute=False):
        req = order_control_request(user=alice, order=order, action="cancel")
    assert req.applied_at is None  # its worker holds it: it is to apply it
    if how == "stopped":
        w.release()
    else:
        heartbeat_stops(w)
    order.refresh_from_db()
    assert order.status == "CANCELED"
    assert order.status_reason == f"canceled by {alice} while suspended"
    req.refresh_from_db()
    assert (req.outcome, req.applied_at is not None) == ("applied", True)
    assert not ChildOrder.objects.filter(
        parent=order, status__in=["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]
    ).exists()
    statuses = [
        e.payload.get("status")
        for e in OrderEvent.objects.filter(parent=order, kind="ParentStatusChanged").order_by("seq")
    ]
    assert statuses[-1] == "CANCELED"
    with pytest.raises(ValidationError):  # nothing left to resume
        order_control_request(user=alice, order=order, action="resume")


def test_an_order_its_worker_was_cancelling_ends_canceled_when_the_worker_stops(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The worker applied the cancel and waited on the venues' acks (PENDING_CANCEL) when
    it stopped: the order was left SUSPENDED and resumable, its cancel said applied (a
    review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 10 * 60)
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="cancel")
    w.step(sim_until=w.market.now + 0.001)  # applied; the acks have not landed yet
    order.refresh_from_db()
    assert order.status == "PENDING_CANCEL"
    w.release()
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.status_reason.startswith("canceled by alice")
    assert not ChildOrder.objects.filter(
        parent=order, status__in=["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]
    ).exists()


def test_a_cancel_asked_while_a_lost_worker_was_taking_up_the_order_ends_it(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The worker had taken the suspended order up (the cancel waited for it) and died
    before setting it working: the cancel stayed pending on a suspended order, and killed
    it at a later resume (a review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    first = worker(instrument)
    run_to(first, 10 * 60)
    second = resumed_on_another(order, first, django_capture_on_commit_callbacks)
    second._pick_up_orders()  # taken up; set WORKING only at the end of its step
    with django_capture_on_commit_callbacks(execute=False):
        req = order_control_request(user=alice, order=order, action="cancel")
    assert req.applied_at is None  # it waits for the worker that took the order up
    heartbeat_stops(second)
    order.refresh_from_db()
    req.refresh_from_db()
    assert order.status == "CANCELED"
    assert order.status_reason == f"canceled by {alice} while suspended"
    assert req.outcome == "applied"


@pytest.mark.parametrize("action", ["pause", "amend"])
@pytest.mark.parametrize("how", ["lost", "stopped"])
def test_a_pause_or_amend_its_worker_did_not_apply_is_void_at_suspension(
    instrument: Instrument,
    alice: User,
    django_capture_on_commit_callbacks: Any,
    action: str,
    how: str,
) -> None:
    """Left pending, it was applied when a resume took the order up, perhaps hours later:
    an amend cut the order to 3,600 shares with nobody told (a review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    first = worker(instrument)
    run_to(first, 10 * 60)
    order.refresh_from_db()
    changes = (
        {"quantity": str(order.filled_qty + order.working_qty + 100)} if action == "amend" else None
    )
    with django_capture_on_commit_callbacks(execute=False):
        stale = order_control_request(user=alice, order=order, action=action, changes=changes)
    assert stale.applied_at is None
    if how == "stopped":
        first.release()
    else:
        heartbeat_stops(first)
    order.refresh_from_db()
    stale.refresh_from_db()
    assert order.status == SUSPENDED
    assert order.status_reason.endswith("a pause, resume or amend not yet applied is void")
    assert stale.outcome == "void: the order was suspended before its worker applied it"
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="resume")
    second = worker(instrument, seed=8)
    run_to(second, second.market.now + 60)
    order.refresh_from_db()
    assert (order.status, order.quantity) == ("WORKING", 20_000)


def test_a_paused_order_suspended_says_it_was_paused_and_a_resume_it_had_not_had_is_void(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """It read as any other suspended order (a trial); and the resume asked of it before
    its worker was lost set it working on the next worker, unasked (a review)."""
    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    first = worker(instrument)
    run_to(first, 10 * 60)
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="pause")
    run_to(first, first.market.now + 30)
    order.refresh_from_db()
    assert order.status == "PAUSED"
    with django_capture_on_commit_callbacks(execute=False):
        stale = order_control_request(user=alice, order=order, action="resume")
    heartbeat_stops(first)
    order.refresh_from_db()
    stale.refresh_from_db()
    assert order.status == SUSPENDED
    assert "; it was paused; a pause, resume or amend not yet applied is void" in (
        order.status_reason
    )
    assert stale.outcome.startswith("void")
    second = worker(instrument, seed=8)
    run_to(second, second.market.now + 60)
    order.refresh_from_db()
    assert order.status == SUSPENDED  # nobody asked it to work again since


def test_a_step_that_fails_is_written_again_once_with_one_record_of_each_end(
    alice: User, instrument: Instrument, monkeypatch: Any
) -> None:
    """The step's transaction rolled back, then release() wrote the step again: an order's
    fill must be in the trail once (a review found it twice, from a list that outlived the
    failed step)."""
    from execution.worker_risk import WorkerRisk
    from oversight.models import AuditRecord

    order = submit(alice, instrument, quantity=500, end_minute=10)
    w = worker(instrument)
    run_to(w, 5 * 60)
    real = WorkerRisk.after_step
    failed = []

    def once(self: WorkerRisk, events: Any, cause_at: Any) -> None:
        if not failed and any(getattr(e, "status", "") == "FILLED" for e in events):
            failed.append(True)
            raise RuntimeError("the database went away")
        real(self, events, cause_at)

    monkeypatch.setattr(WorkerRisk, "after_step", once)
    with pytest.raises(RuntimeError):
        run_to(w, 11 * 60)
    w.release()  # as run()'s `finally` does
    order.refresh_from_db()
    assert failed and order.status == "FILLED"
    ends = AuditRecord.objects.filter(
        object_type="ParentOrder", object_id=str(order.pk), action="order.fill"
    )
    assert ends.count() == 1


def test_a_step_whose_commit_fails_is_written_again_whole_at_release(
    instrument: Instrument,
    alice: User,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failed write had already changed the worker's cached rows, so the second found
    nothing changed: a reduce amend's event was stored and the order's row kept its old
    quantity, for a resume to trade the original size (a review)."""
    from django.db import OperationalError

    import execution.worker as worker_module

    with django_capture_on_commit_callbacks(execute=False):
        order = submit(alice, instrument, end_minute=60)
    w = worker(instrument)
    run_to(w, 10 * 60)
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(user=alice, order=order, action="pause")
    w.step(sim_until=w.market.now + 5)
    order.refresh_from_db()
    new = order.filled_qty + 1_000
    with django_capture_on_commit_callbacks(execute=False):
        order_control_request(
            user=alice, order=order, action="amend", changes={"quantity": str(new)}
        )
    real = worker_module.audit_records
    calls = [0]

    def deadlocks_once(*a: Any, **k: Any) -> Any:  # the step's last write
        calls[0] += 1
        if calls[0] == 1:
            raise OperationalError("deadlock detected")
        return real(*a, **k)

    monkeypatch.setattr(worker_module, "audit_records", deadlocks_once)
    with pytest.raises(OperationalError):
        w.step(sim_until=w.market.now + 1)
    order.refresh_from_db()
    assert order.quantity == 20_000  # nothing of the failed step was committed
    w.release()  # run()'s finally
    order.refresh_from_db()
    amended = OrderEvent.objects.filter(parent=order, kind="ParentAmended").get()
    assert amended.payload["after"] == {"quantity": new}
    assert (order.quantity, order.entered_quantity) == (new, 20_000)
    assert order.status == "SUSPENDED"
    assert ControlRequest.objects.get(parent=order, action="amend").outcome == "applied"
