"""Role × action: who may see the blotter, enter orders, open an order and control it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from execution.models import ControlRequest, ParentOrder

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db

TICKET = {
    "side": "buy",
    "quantity": "10000",
    "start_minute": "0",
    "end_minute": "60",
    "limit_price": "",
    "strategy": "twap",
}


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "blotter", []),
        ("get", "order_new", []),
        ("post", "order_new", []),
        ("get", "order_detail", [1]),
        ("get", "order_row", [1]),
        ("post", "order_control", [1]),
    ],
)
def test_anonymous_is_sent_to_login(method: str, name: str, args: list[int]) -> None:
    url = reverse(name, args=args)
    resp = getattr(Client(), method)(url)
    assert resp.status_code == 302
    assert resp["Location"].startswith(reverse("login"))


def test_anonymous_is_told_in_json_by_a_json_only_view() -> None:
    """The estimate answers nothing but JSON: a logged-out script is told so, not sent the
    login page it cannot read."""
    resp = Client().get(reverse("order_estimate"))
    assert resp.status_code == 401
    assert resp.json()["error"].startswith("you are logged out")


def test_login_page_renders_and_logs_in(alice) -> None:
    c = Client()
    assert c.get(reverse("login")).status_code == 200
    resp = c.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert resp.status_code == 302 and resp["Location"] == reverse("blotter")
    assert c.get(reverse("blotter")).status_code == 200


def test_trader_sees_only_own_orders(alice, bob, instrument) -> None:
    mine = make_order(alice, instrument)
    theirs = make_order(bob, instrument, quantity=7777)
    c = client_for(alice)
    resp = c.get(reverse("blotter"))
    assert resp.status_code == 200
    assert [r["o"].pk for r in resp.context["rows"]] == [mine.pk]
    assert f'id="order-{theirs.pk}"' not in resp.content.decode()
    assert c.get(reverse("order_detail", args=[mine.pk])).status_code == 200
    assert c.get(reverse("order_detail", args=[theirs.pk])).status_code == 404
    assert c.get(reverse("order_row", args=[theirs.pk])).status_code == 404


def test_trader_controls_own_orders_only(alice, bob, instrument) -> None:
    mine = make_order(alice, instrument)
    theirs = make_order(bob, instrument)
    c = client_for(alice)
    ok = c.post(
        reverse("order_control", args=[mine.pk]),
        {"action": "pause"},
        HTTP_ACCEPT="application/json",
    )
    assert ok.status_code == 200 and ok.json()["ok"] is True
    denied = c.post(
        reverse("order_control", args=[theirs.pk]),
        {"action": "cancel"},
        HTTP_ACCEPT="application/json",
    )
    assert denied.status_code == 404
    assert list(ControlRequest.objects.values_list("parent_id", "action")) == [(mine.pk, "pause")]


def test_trader_gets_the_ticket_and_control_buttons(alice, instrument) -> None:
    make_order(alice, instrument)
    c = client_for(alice)
    assert c.get(reverse("order_new")).status_code == 200
    page = c.get(reverse("blotter")).content.decode()
    assert 'value="cancel"' in page and 'href="/orders/new/"' in page


def test_risk_manager_sees_everything_but_cannot_trade_or_control(
    alice, bob, rita, instrument
) -> None:
    a, b = make_order(alice, instrument), make_order(bob, instrument)
    c = client_for(rita)
    resp = c.get(reverse("blotter"))
    assert resp.status_code == 200
    assert {r["o"].pk for r in resp.context["rows"]} == {a.pk, b.pk}
    assert 'value="cancel"' not in resp.content.decode()  # no control buttons
    assert c.get(reverse("order_detail", args=[a.pk])).status_code == 200
    assert c.get(reverse("order_new")).status_code == 403
    assert c.post(reverse("order_new"), {**TICKET, "instrument": instrument.pk}).status_code == 403
    assert c.get(reverse("order_estimate"), {"instrument": instrument.pk}).status_code == 403
    for action in ("pause", "cancel"):
        assert c.post(reverse("order_control", args=[a.pk]), {"action": action}).status_code == 403
        r = c.post(
            reverse("order_control", args=[a.pk]),
            {"action": action},
            HTTP_ACCEPT="application/json",
        )
        assert r.status_code == 403 and r.json()["ok"] is False
    assert ParentOrder.objects.count() == 2
    assert not ControlRequest.objects.exists()


def test_admin_cannot_trade_or_see_orders(alice, adam, instrument) -> None:
    order = make_order(alice, instrument)
    c = client_for(adam)
    # The home page sends an admin to their first screen (it said "not allowed": a trial).
    home = c.get(reverse("blotter"))
    assert home.status_code == 302 and home["Location"] == reverse("user_list")
    assert c.get(reverse("order_new")).status_code == 403
    assert c.post(reverse("order_new"), {**TICKET, "instrument": instrument.pk}).status_code == 403
    assert c.get(reverse("order_detail", args=[order.pk])).status_code == 403
    assert (
        c.post(reverse("order_control", args=[order.pk]), {"action": "cancel"}).status_code == 404
    )
    assert ParentOrder.objects.count() == 1
    assert not ControlRequest.objects.exists()


def test_user_without_a_role_is_refused(db, instrument) -> None:
    from django.contrib.auth.models import User

    c = client_for(User.objects.create_user("nobody", password="x"))
    assert c.get(reverse("blotter")).status_code == 403
    assert c.get(reverse("order_new")).status_code == 403


def test_a_refusal_is_logged_in_one_line_and_a_fault_with_its_traceback() -> None:
    import logging
    import sys

    from oversight.log_filters import QuietForbidden

    try:
        raise PermissionError("no")
    except PermissionError:
        info = sys.exc_info()
    quiet = QuietForbidden()
    forbidden = logging.LogRecord("django.request", logging.WARNING, "", 0, "Forbidden", (), info)
    forbidden.status_code = 403
    fault = logging.LogRecord("django.request", logging.ERROR, "", 0, "Internal", (), info)
    fault.status_code = 500
    assert quiet.filter(forbidden) and forbidden.exc_info is None
    assert quiet.filter(fault) and fault.exc_info is info


def test_a_live_page_can_ask_whether_its_session_holds(alice) -> None:
    """What a page asks when its socket is refused: 401 once logged out, 403 (JSON) when a
    password change is due, and the user otherwise; never a redirect or a page."""
    from django.test import Client
    from django.utils import timezone

    from oversight.models import PasswordChangeDue

    json = {"HTTP_ACCEPT": "application/json"}
    assert Client().get("/session/", **json).status_code == 401
    c = client_for(alice)
    assert c.get("/session/", **json).json() == {"user": "alice"}
    # For the page that asks: a role that no longer allows it ends it too (a trial: a
    # trader made a risk manager watched "reconnecting" for ever).
    assert c.get("/session/?need=watch", **json).status_code == 200
    refused = c.get("/session/?need=risk", **json)
    assert refused.status_code == 403 and refused.json()["error"] == (
        "your role no longer allows this page"
    )
    assert c.get("/session/?need=<x>", **json).status_code == 400
    PasswordChangeDue.objects.create(user=alice, set_at=timezone.now())
    due = c.get("/session/", **json)
    assert due.status_code == 403 and "password" in due.json()["error"]
