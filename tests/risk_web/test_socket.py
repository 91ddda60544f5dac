"""ws/risk/ against the real ASGI app and channel layer, with real session cookies: who may
connect, what a risk console receives after a commit, escalation without a worker, and
the trader's blotter alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from oversight.asgi import application
from oversight.risk import services
from oversight.risk.models import RiskException

from .conftest import make_order, session_headers

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[Any, bool, Any]:
    comm = WebsocketCommunicator(application, path, headers=headers)
    ok, code = await comm.connect(timeout=5)
    return comm, ok, code


async def wait_for(
    comm: WebsocketCommunicator, want: Callable[[dict[str, Any]], bool], seconds: float = 5
) -> dict[str, Any]:
    """The first message that matches, skipping others (the exposure ticks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        # receive_nothing waits without cancelling the consumer (a timed-out receive would).
        if await comm.receive_nothing(timeout=0.05):
            continue
        msg = await comm.receive_json_from(timeout=5)
        if want(msg):
            return msg
    raise AssertionError(f"no matching message in {seconds} s")


def test_only_risk_managers_may_connect(alice, adam, rita) -> None:
    refused = [session_headers(None), session_headers(alice), session_headers(adam)]
    allowed = session_headers(rita)

    async def go() -> None:
        for headers in refused:
            comm, ok, code = await connect("/ws/risk/", headers)
            assert not ok and code == 4403
            await comm.disconnect()
        comm, ok, _ = await connect("/ws/risk/", allowed)
        assert ok
        await comm.disconnect()

    async_to_sync(go)()


def test_exposure_every_second_and_bad_messages_get_an_error(rita, alice, instrument) -> None:
    make_order(alice, instrument, filled_qty=1_000, avg_price=instrument.reference_price)
    headers = session_headers(rita)

    async def go() -> None:
        comm, ok, _ = await connect("/ws/risk/", headers)
        assert ok
        first = await wait_for(comm, lambda m: m["type"] == "exposure")
        traders = [g for g in first["groups"] if g["level"] == "trader"]
        assert traders[0]["key"] == "alice"
        assert traders[0]["positions"][0]["net_qty"] == 1_000
        t0 = first["sent_at"]
        second = await wait_for(comm, lambda m: m["type"] == "exposure", seconds=3)
        assert 0.5 < second["sent_at"] - t0 < 2.5
        for bad in ("not json", '{"type": "bogus"}', "[1, 2]"):
            await comm.send_to(text_data=bad)
            reply = await wait_for(comm, lambda m: m["type"] != "exposure")
            assert reply["type"] == "error" and reply["message"]
        await comm.send_json_to({"type": "sync"})
        sync = await wait_for(comm, lambda m: m["type"] == "sync")
        assert sync["exceptions"] == [] and sync["kills"] == [] and sync["complete"] is True
        await comm.disconnect()

    async_to_sync(go)()


def test_console_receives_an_exception_once_it_commits(rita) -> None:
    headers = session_headers(rita)

    async def go() -> None:
        comm, ok, _ = await connect("/ws/risk/", headers)
        assert ok
        e = await database_sync_to_async(services.exception_raise)(
            kind="VENUE_OUTAGE",
            severity=RiskException.CRITICAL,
            scope_type="instrument",
            scope_key="HBRK",
            title="Venue X is down for HBRK",
        )
        msg = await wait_for(comm, lambda m: m["type"] == "exception")
        assert msg["payload"]["id"] == e.pk
        assert msg["payload"]["title"] == "Venue X is down for HBRK"
        assert msg["payload"]["escalated"] is False
        assert isinstance(msg["sent_at"], float)
        await comm.disconnect()

    async_to_sync(go)()


def test_an_overdue_critical_escalates_with_no_worker_and_its_trader_is_told(
    rita, alice, instrument
) -> None:
    order = make_order(alice, instrument)
    e = services.exception_raise(
        kind="FILL_OUTSIDE_COLLAR",
        severity=RiskException.CRITICAL,
        scope_type="order",
        scope_key=str(order.pk),
        title=f"Fill 80 bps from the mid on order {order.pk}",
        order_id=order.pk,
        trader_id=alice.pk,
    )
    RiskException.objects.filter(pk=e.pk).update(raised_at=timezone.now() - timedelta(minutes=2))
    h_rita, h_alice = session_headers(rita), session_headers(alice)

    async def go() -> None:
        blotter, ok1, _ = await connect("/ws/blotter/", h_alice)
        console, ok2, _ = await connect("/ws/risk/", h_rita)  # its first tick escalates
        assert ok1 and ok2
        msg = await wait_for(console, lambda m: m["type"] == "exception")
        assert msg["payload"]["id"] == e.pk and msg["payload"]["escalated"] is True
        alert = await wait_for(blotter, lambda m: m["type"] == "alert")
        assert alert["kind"] == "exception" and alert["payload"]["id"] == e.pk
        await blotter.disconnect()
        await console.disconnect()

    async_to_sync(go)()
    assert RiskException.objects.get(pk=e.pk).escalated_at is not None


def test_a_kill_switch_reaches_the_console_and_the_traders_blotter(
    rita, rob, alice, instrument
) -> None:
    make_order(alice, instrument)
    h_rita, h_alice = session_headers(rita), session_headers(alice)

    async def go() -> None:
        blotter, ok1, _ = await connect("/ws/blotter/", h_alice)
        console, ok2, _ = await connect("/ws/risk/", h_rita)
        assert ok1 and ok2
        k = await database_sync_to_async(services.kill_switch_engage)(
            user=rita, scope_type="trader", scope_key="alice", reason="runaway algo"
        )
        on_console = await wait_for(console, lambda m: m["type"] == "kill")
        assert on_console["payload"]["id"] == k.pk and on_console["payload"]["active"] is True
        alert = await wait_for(blotter, lambda m: m["type"] == "alert")
        assert alert["kind"] == "kill"
        assert {k: alert["payload"][k] for k in ("scope_type", "scope_key", "state", "active")} == {
            "scope_type": "trader",
            "scope_key": "alice",
            "state": "HALTED",
            "active": True,
        }
        await database_sync_to_async(services.kill_switch_reset_request)(
            user=rita, kill_id=k.pk, reason="fixed"
        )
        await database_sync_to_async(services.kill_switch_reset_approve)(user=rob, kill_id=k.pk)
        cleared = await wait_for(blotter, lambda m: m["type"] == "alert")
        assert cleared["payload"]["active"] is False
        await blotter.disconnect()
        await console.disconnect()

    async_to_sync(go)()


def test_each_step_of_the_restricted_list_reaches_the_console(rita, rob, instrument) -> None:
    from oversight.risk import restricted

    headers, symbol = session_headers(rob), instrument.symbol

    async def go() -> None:
        console, ok, _ = await connect("/ws/risk/", headers)
        assert ok
        r = await database_sync_to_async(restricted.restrict)(
            user=rita, symbol=symbol, reason="wall-crossed"
        )
        await database_sync_to_async(restricted.lift_request)(
            user=rita, restriction_id=r.pk, reason="announced"
        )
        await database_sync_to_async(restricted.lift_approve)(user=rob, restriction_id=r.pk)
        events = []
        for _ in range(3):
            m = await wait_for(console, lambda m: m["type"] == "restriction")
            events.append((m["payload"]["event"], m["payload"]["restriction"]["active"]))
        # The second risk manager is told there is a lift to approve, not only its outcome.
        assert events == [("added", True), ("lift_requested", True), ("lifted", False)]
        await console.disconnect()

    async_to_sync(go)()


def test_a_kill_switchs_card_says_what_the_workers_applied_as_it_lands(
    rita, alice, instrument
) -> None:
    """The workers' acknowledgement reaches every console when it settles, not on the next
    reload (the load trial's card still lacked it 6 s after engaging)."""
    from tests.stepping import submit, worker

    submit(alice, instrument)
    w = worker(instrument)
    w.step(sim_until=120.0)  # working, with children at the venues
    h_rita = session_headers(rita)

    async def go() -> None:
        console, ok, _ = await connect("/ws/risk/", h_rita)
        assert ok
        await database_sync_to_async(services.kill_switch_engage)(
            user=rita, scope_type="trader", scope_key="alice", reason="runaway algo"
        )
        for _ in range(5):  # the worker applies it, then settles once its cancels land
            await database_sync_to_async(w.step)(sim_until=w.market.now + 2.0)
        applied = await wait_for(
            console, lambda m: m["type"] == "kill" and bool(m["payload"].get("applied_text"))
        )
        assert applied["payload"]["applied_text"].startswith(
            " · applied by 1 worker: 1 order stopped"
        )
        await console.disconnect()

    try:
        async_to_sync(go)()
    finally:
        w.release()


def test_an_exception_is_marked_live_when_its_order_ends(rita, alice, instrument) -> None:
    """A review: the console's "order filled" mark (and the count for "resolve them all")
    waited for the exception's next event, or a reload. The worker sends the order's
    open exceptions again when it ends."""
    from tests.stepping import run_to, submit, worker

    order = submit(alice, instrument, quantity=500, start_minute=0, end_minute=5)
    e = services.exception_raise(
        kind="TEST", severity=RiskException.WARNING, scope_type="order",
        scope_key=str(order.pk), order_id=order.pk, title="about the order",
    )  # fmt: skip
    headers = session_headers(rita)

    def run() -> None:
        w = worker(instrument)
        run_to(w, 6 * 60)
        w.release()

    async def go() -> None:
        comm, ok, _ = await connect("/ws/risk/", headers)
        assert ok
        await database_sync_to_async(run)()
        msg = await wait_for(
            comm,
            lambda m: (
                m["type"] == "exception"
                and m["payload"]["id"] == e.pk
                and bool(m["payload"]["order_ended"])
            ),
            seconds=10,
        )
        assert msg["payload"]["order_ended"] in ("filled", "expired")
        await comm.disconnect()

    async_to_sync(go)()
