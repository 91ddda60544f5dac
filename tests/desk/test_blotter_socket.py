"""The blotter websocket against the real ASGI app, Redis channel layer and a real session."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from execution.models import Instrument, OrderEvent, ParentOrder
from execution.selectors import events_after
from execution.services import parent_order_submit
from execution.worker import MarketWorker
from oversight.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def session_headers(user: User | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://localhost")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def connect(headers: list[tuple[bytes, bytes]]) -> tuple[WebsocketCommunicator, bool, Any]:
    comm = WebsocketCommunicator(application, "/ws/blotter/", headers=headers)
    ok, code = await comm.connect(timeout=5)
    return comm, ok, code


async def assert_closed(comm: WebsocketCommunicator, code: int) -> None:
    """The server closed the socket with `code`. The browser's side of the closing
    follows, as Daphne would send it, so that no consumer is left waiting when the test's
    event loop ends: one left so once hung a whole run in asyncio's teardown."""
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": code}
    await comm.disconnect(code)


def test_anonymous_and_admin_connections_are_refused(adam: User) -> None:
    logins = [session_headers(None), session_headers(adam)]

    async def go() -> None:
        for headers in logins:
            comm, ok, code = await connect(headers)
            assert not ok and code == 4403
            await comm.disconnect()

    async_to_sync(go)()


def test_bad_messages_get_an_error_not_a_closed_socket(alice: User) -> None:
    headers = session_headers(alice)

    async def go() -> None:
        comm, ok, _ = await connect(headers)
        assert ok
        bad_messages = {
            "not json": "message is not JSON",
            '{"type": "bogus"}': 'expected {"type": "resume"',
            '{"type": "resume", "last_seq": {"x": "y"}}': "last_seq must map order ids",
            # Python's json reads Infinity, and int(inf) is an OverflowError.
            '{"type": "resume", "last_seq": {"1": Infinity}}': "last_seq must map order ids",
            # int() read these as orders 10 and 1, 1 and 1, and a list of pairs as a map.
            '{"type": "resume", "last_seq": {"1_0": 1}}': "last_seq must map order ids",
            '{"type": "resume", "last_seq": {" 1 ": 1}}': "last_seq must map order ids",
            '{"type": "resume", "last_seq": {"\u0661": 1}}': "last_seq must map order ids",
            '{"type": "resume", "last_seq": {"1": true}}': "last_seq must map order ids",
            '{"type": "resume", "last_seq": {"1": 1.7}}': "last_seq must map order ids",
            '{"type": "resume", "last_seq": {"1": "1"}}': "last_seq must map order ids",
            '{"type": "resume", "last_seq": [[1, 2]]}': "last_seq must map order ids",
            "[" * 100_000: "message is nested too deeply",
            '{"type": "resume", "x": "' + "a" * 300_000 + '"}': "message is too large",
        }
        for bad, text in bad_messages.items():
            await comm.send_to(text_data=bad)
            reply = await comm.receive_json_from(timeout=5)
            assert reply["type"] == "error" and text in reply["message"], (bad[:40], reply)
        await comm.send_json_to({"type": "resume", "last_seq": {}})
        assert (await comm.receive_json_from(timeout=5))["type"] == "events"
        await comm.disconnect()

    async_to_sync(go)()


def _events_for(messages: list[dict[str, Any]], order_id: int) -> list[int]:
    return [e["seq"] for m in messages for e in m["events"] if e["order_id"] == order_id]


async def _drain(comm: WebsocketCommunicator, seconds: float = 0.5) -> list[dict[str, Any]]:
    # receive_nothing waits without cancelling the consumer (a timed-out receive would).
    out = []
    while not await comm.receive_nothing(timeout=seconds):
        out.append(await comm.receive_json_from(timeout=5))
    return out


def test_live_events_reach_the_owner_and_risk_not_other_traders_and_catch_up_is_exact(
    instrument: Instrument,
    alice: User,
    bob: User,
    rita: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        order = parent_order_submit(
            user=alice,
            instrument=instrument,
            side="buy",
            quantity=15_000,
            start_minute=0,
            end_minute=20,
            strategy="twap",
            params={},
        )
    w = MarketWorker(instrument, speed=60.0, seed=3, wall_clock=lambda: 0.0, poll_interval_s=0.0)
    w.claim()

    h_alice, h_rita, h_bob = session_headers(alice), session_headers(rita), session_headers(bob)

    async def go() -> None:
        owner, ok1, _ = await connect(h_alice)
        risk, ok2, _ = await connect(h_rita)
        other, ok3, _ = await connect(h_bob)
        assert ok1 and ok2 and ok3
        from channels.db import database_sync_to_async

        written = await database_sync_to_async(w.step)(sim_until=5 * 60)  # commits, then broadcasts
        assert written > 0
        first = await _drain(owner)
        seen = _events_for(first, order.pk)
        assert seen and seen == list(range(1, len(seen) + 1))
        assert _events_for(await _drain(risk), order.pk) == seen
        assert _events_for(await _drain(other), order.pk) == []

        # The owner's socket drops mid-order; the order keeps trading; it reconnects.
        await owner.disconnect()
        await database_sync_to_async(w.step)(sim_until=21 * 60)
        again, ok, _ = await connect(h_alice)
        assert ok
        await again.send_json_to({"type": "resume", "last_seq": {str(order.pk): seen[-1]}})
        replay = await _drain(again)
        caught_up = seen + _events_for(replay, order.pk)
        stored = await database_sync_to_async(
            lambda: list(OrderEvent.objects.filter(parent=order).values_list("seq", flat=True))
        )()
        assert caught_up == stored  # nothing missing, nothing twice
        final = await database_sync_to_async(lambda: ParentOrder.objects.get(pk=order.pk).status)()
        assert final == "FILLED"
        for comm in (again, risk, other):
            await comm.disconnect()

    async_to_sync(go)()


def test_a_deactivated_or_re_roled_users_open_sockets_are_closed(
    alice: User, rita: User, adam: User
) -> None:
    from oversight.services import user_deactivate, user_role_set

    blotter_headers, console_headers = session_headers(alice), session_headers(rita)

    async def go() -> None:
        blotter, ok, _ = await connect(blotter_headers)
        console = WebsocketCommunicator(application, "/ws/risk/", headers=console_headers)
        ok2, _ = await console.connect(timeout=5)
        assert ok and ok2
        await database_sync_to_async(user_deactivate)(actor=adam, user=alice, reason="left")
        await assert_closed(blotter, 4401)
        await database_sync_to_async(user_role_set)(
            actor=adam, user=rita, role="trader", reason="moved"
        )
        while True:  # the console may send an exposure tick first
            out = await console.receive_output(timeout=5)
            if out["type"] == "websocket.close":
                break
        assert out["code"] == 4401
        await console.disconnect(4401)
        # Reconnecting is checked afresh: alice may not, rita now sees a trader's blotter.
        again, ok, code = await connect(blotter_headers)
        assert not ok and code == 4403
        await again.disconnect()

    async_to_sync(go)()


def test_logging_out_closes_that_sessions_sockets_and_not_another_logins(alice: User) -> None:
    """A trial's second tab kept streaming fills after its session logged out."""
    tab, other = Client(), Client()
    tab.force_login(alice)
    other.force_login(alice)  # another browser: its own session

    def headers(c: Client) -> list[tuple[bytes, bytes]]:
        cookie = f"sessionid={c.cookies['sessionid'].value}".encode()
        return [(b"origin", b"http://localhost"), (b"cookie", cookie)]

    here, there = headers(tab), headers(other)

    async def go() -> None:
        mine, ok, _ = await connect(here)
        theirs, ok2, _ = await connect(there)
        assert ok and ok2
        await database_sync_to_async(tab.post)("/logout/")
        await assert_closed(mine, 4403)
        assert await theirs.receive_nothing(timeout=0.5)
        await theirs.disconnect()
        again, ok, code = await connect(here)  # the logged-out session may not reconnect
        assert not ok and code == 4403
        await again.disconnect()

    async_to_sync(go)()


def test_a_websocket_at_an_unknown_path_is_closed_with_4404(alice: User) -> None:
    headers = session_headers(alice)

    async def go() -> None:
        for path in ("/ws/nothing/", "/ws/blotter/extra/", "/"):
            comm = WebsocketCommunicator(application, path, headers=headers)
            ok, _ = await comm.connect(timeout=5)
            assert ok  # accepted only to be closed with a reason
            closed = await comm.receive_output(timeout=5)
            assert closed["type"] == "websocket.close" and closed["code"] == 4404, closed
            assert closed["reason"].startswith("no websocket at ")
            await comm.disconnect()

    async_to_sync(go)()


def test_an_order_blocked_at_entry_and_its_refusal_reach_open_blotters(
    instrument: Instrument, alice: User, rita: User
) -> None:
    """No worker ever holds a blocked order, so nothing else would tell an open blotter it
    exists, or that a risk manager refused its override: both are the order's events."""
    from oversight.risk.services import override_reject, override_request
    from tests.risk.conftest import set_limit

    set_limit("max_order_qty", 4_000)
    h_alice, h_rita = session_headers(alice), session_headers(rita)

    async def go() -> None:
        owner, ok1, _ = await connect(h_alice)
        risk, ok2, _ = await connect(h_rita)
        assert ok1 and ok2
        order = await database_sync_to_async(parent_order_submit)(
            user=alice, instrument=instrument, side="buy", quantity=5_000,
            start_minute=0, end_minute=30, strategy="twap", params={},
        )  # fmt: skip
        assert order.status == "BLOCKED"
        for comm in (owner, risk):
            [ev] = [e for m in await _drain(comm) for e in m["events"]]
            assert (ev["order_id"], ev["seq"], ev["status"]) == (order.pk, 1, "BLOCKED")
        ov = await database_sync_to_async(override_request)(
            user=alice, order_id=order.pk, reason="index rebalance"
        )
        await database_sync_to_async(override_reject)(user=rita, override_id=ov.pk, note="no")
        [ev] = [e for m in await _drain(owner) for e in m["events"]]
        assert (ev["seq"], ev["status"], ev["previous"]) == (2, "REJECTED", "BLOCKED")
        for comm in (owner, risk):
            await comm.disconnect()

    async_to_sync(go)()


def test_a_long_catch_up_comes_in_messages_under_the_limit_and_skips_unlisted_history(
    instrument: Instrument, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page back from a network gap asked for megabytes in one message; Daphne closed the
    socket (1011) and the page reconnected for ever (a trial). Now the catch-up is split,
    and an order the page does not list sends only its latest event."""
    from execution import consumers

    order = parent_order_submit(
        user=alice,
        instrument=instrument,
        side="buy",
        quantity=15_000,
        start_minute=0,
        end_minute=20,
        strategy="twap",
        params={},
    )
    w = MarketWorker(instrument, speed=60.0, seed=3, wall_clock=lambda: 0.0, poll_interval_s=0.0)
    w.claim()
    w.step(sim_until=21 * 60)
    stored = list(OrderEvent.objects.filter(parent=order).values_list("seq", flat=True))
    assert len(stored) > 50
    monkeypatch.setattr(consumers, "REPLAY_CHUNK_BYTES", 4_000)
    headers = session_headers(alice)

    async def go() -> None:
        comm, ok, _ = await connect(headers)
        assert ok
        await comm.send_json_to({"type": "resume", "last_seq": {str(order.pk): 0}})
        replay = await _drain(comm)
        assert len(replay) > 3
        assert all(m["replay"] for m in replay)
        assert [bool(m.get("more")) for m in replay] == [True] * (len(replay) - 1) + [False]
        assert all(len(json.dumps(m["events"])) < 2 * 4_000 for m in replay)
        assert _events_for(replay, order.pk) == stored  # in order, nothing missing or twice
        # Not listed: only where the order is, for the page to load its row whole.
        await comm.send_json_to({"type": "resume", "last_seq": {}})
        assert _events_for(await _drain(comm), order.pk) == [stored[-1]]
        assert not any(m.get("incomplete") for m in replay)
        # More than one reply holds for an order: the last message says to ask again (a
        # trial's page stopped at 5,000 of 12,927 missed events, seeing no gap).
        monkeypatch.setattr(consumers, "events_after", functools.partial(events_after, limit=20))
        await comm.send_json_to({"type": "resume", "last_seq": {str(order.pk): 0}})
        first = await _drain(comm)
        assert _events_for(first, order.pk) == stored[:20] and first[-1]["incomplete"] is True
        await comm.send_json_to({"type": "resume", "last_seq": {str(order.pk): stored[19]}})
        assert _events_for(await _drain(comm), order.pk) == stored[20:40]
        await comm.disconnect()

    async_to_sync(go)()


@pytest.mark.parametrize("how", ["reset", "outside"])
def test_a_password_change_closes_the_users_open_sockets(alice: User, adam: User, how: str) -> None:
    """The sessions end with the old password, and a new socket under them is refused;
    the sockets already open went on streaming fills (a review): a reset is what an
    admin does when a login may be known to someone else."""
    from oversight.services import user_password_reset

    one, two = session_headers(alice), session_headers(alice)

    def change() -> None:
        if how == "reset":
            user_password_reset(
                actor=adam, user=alice, password="a-new-long-password-91", reason="leaked"
            )
        else:  # manage.py changepassword, the shell
            user = User.objects.get(pk=alice.pk)
            user.set_password("a-new-long-password-91")
            user.save()

    async def go() -> None:
        first, ok, _ = await connect(one)
        second, ok2, _ = await connect(two)
        assert ok and ok2
        await database_sync_to_async(change)()
        for comm in (first, second):
            await assert_closed(comm, 4401)
        again, ok, code = await connect(one)
        assert not ok and code == 4403
        await again.disconnect()
        if how == "reset":  # logged in with the admin's password: the Password page first
            fresh = Client()
            assert await database_sync_to_async(fresh.login)(
                username="alice", password="a-new-long-password-91"
            )
            cookie = f"sessionid={fresh.cookies['sessionid'].value}".encode()
            due, ok, code = await connect([(b"origin", b"http://localhost"), (b"cookie", cookie)])
            assert not ok and code == 4403
            await due.disconnect()

    async_to_sync(go)()


@pytest.mark.parametrize(("second", "closed"), [("bob", True), ("alice", False)])
def test_another_user_logging_in_on_the_browser_closes_the_first_ones_sockets(
    alice: User, bob: User, second: str, closed: bool
) -> None:
    """Django ends the first user's session without a logout, so the logout's closing of
    its sockets never came: alice's blotter streamed her fills to bob's screen (a
    review). The same user logging in again keeps theirs."""
    tab = Client()
    assert tab.login(username="alice", password="pw-alice")
    headers = [
        (b"origin", b"http://localhost"),
        (b"cookie", f"sessionid={tab.cookies['sessionid'].value}".encode()),
    ]

    async def go() -> None:
        sock, ok, _ = await connect(headers)
        assert ok
        again = await database_sync_to_async(tab.post)(
            "/login/", {"username": second, "password": f"pw-{second}"}
        )
        assert again.status_code == 302
        if closed:
            await assert_closed(sock, 4403)
        else:
            assert await sock.receive_nothing(timeout=0.5)
            await sock.disconnect()

    async_to_sync(go)()


def test_changing_ones_own_password_keeps_this_browsers_pages_live_and_ends_the_others(
    alice: User,
) -> None:
    """Every socket of the user is told to check again (4401): this browser's session
    goes on under the new password and is let in again; another is refused. A 4403 here
    froze the changing browser's own blotter, its pages taking 4403 as final (a review)."""
    here, elsewhere = Client(), Client()
    assert here.login(username="alice", password="pw-alice")
    assert elsewhere.login(username="alice", password="pw-alice")

    def cookie(c: Client) -> list[tuple[bytes, bytes]]:
        return [
            (b"origin", b"http://localhost"),
            (b"cookie", f"sessionid={c.cookies['sessionid'].value}".encode()),
        ]

    before_here, before_there = cookie(here), cookie(elsewhere)

    async def go() -> None:
        mine, ok, _ = await connect(before_here)
        theirs, ok2, _ = await connect(before_there)
        assert ok and ok2
        new = "a-new-long-password-91"
        done = await database_sync_to_async(here.post)(
            "/password/",
            {"old_password": "pw-alice", "new_password": new, "new_password_again": new},
        )
        assert done.status_code == 302
        for comm in (mine, theirs):
            await assert_closed(comm, 4401)
        again, ok, _ = await connect(cookie(here))  # this browser, its session kept
        assert ok
        await again.disconnect()
        refused, ok, code = await connect(before_there)
        assert not ok and code == 4403
        await refused.disconnect()

    async_to_sync(go)()


def test_a_message_to_a_socket_the_browser_just_closed_is_dropped_not_an_error() -> None:
    """Daphne raises Disconnected for a send that meets a tab closing; it reached the
    server's log as "Exception inside application" (a trial). Daphne's own transport is
    stood in for by a send that raises as its protocol does."""
    from autobahn.exception import Disconnected

    from execution.consumers import BlotterConsumer
    from oversight.risk.consumers import RiskConsumer

    async def closed(message: dict[str, Any]) -> None:
        raise Disconnected("Attempt to send on a closed protocol")

    async def go() -> None:
        for cls in (BlotterConsumer, RiskConsumer):
            consumer = cls()
            consumer.base_send = closed
            await consumer.send_json({"type": "events", "events": []})  # does not raise

    async_to_sync(go)()
