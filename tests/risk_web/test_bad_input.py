"""Bad input to every risk endpoint gets a clear message and a 4xx (or a redirect back
with the service's refusal), never a 500."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from oversight.risk import services
from oversight.risk.models import KillSwitch, LimitRequest, Override, RiskException

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db


def refused(c, url: str, data: dict[str, str], *, status: int, says: str) -> None:
    """As a form post and as a script's JSON request: the status and the message."""
    html = c.post(url, data, follow=status == 302)
    body = unescape(html.content.decode()).lower()
    if status == 302:
        assert html.redirect_chain and html.status_code == 200
    else:
        assert html.status_code == status
    assert says.lower() in body, body[-2000:]
    js = c.post(url, data, HTTP_ACCEPT="application/json")
    assert js.status_code == (400 if status == 302 else status)
    assert js.json()["ok"] is False and says in js.json()["error"]


@pytest.fixture
def setup(rita, rob, alice, instrument):
    # The switch first: a halt cancels the blocked orders it finds in scope.
    kill = services.kill_switch_engage(user=rita, scope_type="firm", reason="halt")
    blocked = make_order(alice, instrument, status="BLOCKED",
                         status_reason="MAX_ORDER_QTY: 10,000 shares > 5,000 (firm)")  # fmt: skip
    exc = services.exception_raise(
        kind="TEST", severity="WARNING", scope_type="firm", title="something"
    )
    return {"blocked": blocked, "exc": exc, "kill": kill, "rm": rita}


def test_limit_request(rita, setup) -> None:
    c, url = client_for(rita), reverse("risk_limit_request")
    good = {"scope_type": "trader", "scope_key": "alice", "metric": "max_order_qty",
            "new_value": "100", "reason": "r"}  # fmt: skip
    refused(c, url, {}, status=400, says="the form has no scope type field")
    refused(c, url, {**good, "scope_type": "galaxy"}, status=302, says="scope type: must be one of")
    refused(c, url, {**good, "scope_key": "nobody"}, status=302, says="there is no trader 'nobody'")
    refused(c, url, {**good, "metric": "bogus"}, status=302, says="metric: unknown limit 'bogus'")
    refused(c, url, {**good, "new_value": "lots"}, status=302, says="new value: must be a number")
    refused(c, url, {**good, "new_value": "-5"}, status=302, says="must be a positive number")
    refused(c, url, {**good, "new_value": "1e400"}, status=302, says="written with digits")
    refused(c, url, {**good, "new_value": "1e3"}, status=302, says="written with digits")
    refused(c, url, {**good, "new_value": "１２３"}, status=302, says="written with digits")
    refused(c, url, {**good, "new_value": "1,5"}, status=302, says="written with digits")
    refused(c, url, {**good, "new_value": "10,00"}, status=302, says="written with digits")
    refused(c, url, {**good, "new_value": "12.5"}, status=302, says="a whole number")
    refused(c, url, {**good, "metric": "max_participation_pct", "new_value": "150"},
            status=302, says="at most 100")  # fmt: skip
    # Would read back wider than the column (SQLite keeps decimals as binary floats).
    refused(c, url, {**good, "new_value": "9999999999999999.9999"}, status=302,
            says="must be at most 1,000,000,000,000")  # fmt: skip
    # Refused, not silently rounded to the column's 4 places (0.00001 would become 0).
    refused(c, url, {**good, "metric": "price_collar_bps", "new_value": "0.00001"},
            status=302, says="may have at most 4 decimal places")  # fmt: skip
    # Dollars to the cent (a trial's $1,000,000.555 was taken).
    refused(c, url, {**good, "metric": "max_order_notional", "new_value": "1000000.555"},
            status=302, says="an amount of dollars: at most two decimal places")  # fmt: skip
    refused(c, url, {**good, "reason": "  "}, status=302, says="reason: say why")
    assert not LimitRequest.objects.exists()


def test_a_refused_limit_request_comes_back_as_it_was_typed(rita, setup) -> None:
    """A trial's typo in the value lost the scope, the limit and a long reason with it."""
    c = client_for(rita)
    typed = {"scope_type": "trader", "scope_key": "alice", "metric": "max_order_notional",
             "new_value": "12abc", "reason": "a long considered reason"}  # fmt: skip
    page = c.post(reverse("risk_limit_request"), typed, follow=True).content.decode()
    assert "new value: must be a number written with digits" in unescape(page)
    form = page.split('id="request-title"')[1].split("</form>")[0]
    assert '<option value="trader" selected>' in form
    assert 'name="scope_key" value="alice"' in form
    assert '<option value="max_order_notional" selected>' in form
    assert 'name="new_value" value="12abc"' in form
    assert 'name="reason" value="a long considered reason"' in form
    again = c.get(reverse("risk_limits")).content.decode()  # once: a fresh visit is blank
    assert 'name="new_value" value=""' in again.split('id="request-title"')[1]
    assert not LimitRequest.objects.exists()


def test_limit_decisions(rita, rob, setup) -> None:
    c = client_for(rob)
    for name in ("risk_limit_approve", "risk_limit_reject"):
        refused(c, reverse(name, args=[999]), {}, status=404, says="there is no limit request 999")
    assert c.post("/risk/limits/abc/approve/").status_code == 404  # not a URL at all
    services.limit_change_request(
        user=rita, scope_type="firm", scope_key="", metric="max_order_qty",
        new_value="10", reason="r",
    )  # fmt: skip
    done = LimitRequest.objects.get()  # a tightening: already active
    refused(c, reverse("risk_limit_approve", args=[done.pk]), {}, status=302, says="not pending")


def test_kill_engage(rita, setup) -> None:
    c, url = client_for(rita), reverse("risk_kill")
    before = KillSwitch.objects.count()
    refused(c, url, {"reason": "x"}, status=400, says="the form has no scope type field")
    refused(c, url, {"scope_type": "firm"}, status=400, says="the form has no reason field")
    refused(c, url, {"scope_type": "moon", "reason": "x"}, status=302, says="must be one of")
    refused(c, url, {"scope_type": "order", "scope_key": "abc", "reason": "x"}, status=302,
            says="there is no order 'abc'")  # fmt: skip
    refused(c, url, {"scope_type": "trader", "scope_key": "z" * 10_000, "reason": "x"},
            status=302, says="there is no trader '" + "z" * 64 + "…'")  # fmt: skip
    refused(c, url, {"scope_type": "firm", "state": "PANIC", "reason": "x"}, status=302,
            says="state: must be HALTED or REDUCING")  # fmt: skip
    refused(c, url, {"scope_type": "firm", "reason": ""}, status=302, says="reason: say why")
    refused(c, url, {"scope_type": "firm", "scope_key": "EQ-1", "reason": "x"}, status=302,
            says="the firm takes no name, got 'EQ-1'")  # fmt: skip
    assert KillSwitch.objects.count() == before


def test_kill_preview(rita) -> None:
    c, url = client_for(rita), reverse("risk_kill_preview")
    for q, says in (
        ({}, "must be one of"),
        ({"scope_type": "trader"}, "name the trader"),
        ({"scope_type": "trader", "scope_key": "ghost"}, "there is no trader 'ghost'"),
        ({"scope_type": "order", "scope_key": "x1"}, "there is no order 'x1'"),
        ({"scope_type": "firm", "state": "BOGUS"}, "state: must be HALTED or REDUCING"),
    ):
        resp = c.get(url, q)
        assert resp.status_code == 400 and says in resp.json()["error"]


def test_kill_reset(rita, rob, setup) -> None:
    kill = setup["kill"]
    c = client_for(rob)
    for name in ("risk_kill_reset_request", "risk_kill_reset_approve"):
        refused(c, reverse(name, args=[999]), {"reason": "x"}, status=404,
                says="there is no kill switch 999")  # fmt: skip
    url = reverse("risk_kill_reset_request", args=[kill.pk])
    refused(c, url, {}, status=400, says="the form has no reason field")
    refused(c, url, {"reason": " "}, status=302, says="say why it is safe to trade again")
    # Without the request it was read for, an approval is refused: the stale-request
    # check would be skipped (a review).
    refused(c, reverse("risk_kill_reset_approve", args=[kill.pk]), {}, status=302,
            says="asked_at: missing; the form says which request you read")  # fmt: skip
    refused(c, reverse("risk_kill_reset_approve", args=[kill.pk]), {"asked_at": ""},
            status=302, says="a reset must first be asked for")  # fmt: skip
    assert KillSwitch.objects.get(pk=kill.pk).active


def test_exceptions(rita, setup) -> None:
    c, exc = client_for(rita), setup["exc"]
    for action in ("ack", "assign", "comment", "resolve"):
        refused(c, reverse(f"risk_exception_{action}", args=[999]),
                {"assignee": "rita", "text": "t", "resolution": "r"}, status=404,
                says="there is no exception 999")  # fmt: skip
    refused(c, reverse("risk_exception_assign", args=[exc.pk]), {}, status=400,
            says="the form has no assignee field")  # fmt: skip
    refused(c, reverse("risk_exception_assign", args=[exc.pk]), {"assignee": "alice"},
            status=302, says="'alice' is not a risk manager")  # fmt: skip
    refused(c, reverse("risk_exception_comment", args=[exc.pk]), {"text": ""}, status=302,
            says="text: write something")  # fmt: skip
    refused(c, reverse("risk_exception_comment", args=[exc.pk]), {"text": "x" * 200_000},
            status=302, says="at most 4,000 characters")  # fmt: skip
    refused(c, reverse("risk_exception_resolve", args=[exc.pk]), {"resolution": ""}, status=302,
            says="resolution: say how it was resolved")  # fmt: skip
    c.post(reverse("risk_exception_ack", args=[exc.pk]))
    refused(c, reverse("risk_exception_ack", args=[exc.pk]), {}, status=302,
            says="is acknowledged, not open")  # fmt: skip
    assert RiskException.objects.get(pk=exc.pk).status == RiskException.ACKNOWLEDGED


def test_override_request(alice, bob, setup) -> None:
    c, url = client_for(alice), reverse("risk_override_request")
    blocked = setup["blocked"]
    refused(c, url, {"reason": "x"}, status=400, says="the form has no order id field")
    refused(c, url, {"order": "abc", "reason": "x"}, status=400,
            says="the order id must be a whole number")  # fmt: skip
    refused(c, url, {"order": "\u0661", "reason": "x"}, status=400,
            says="the order id must be a whole number")  # an Arabic-Indic 1, not order 1  # fmt: skip
    refused(c, url, {"order": "1_2", "reason": "x"}, status=400,
            says="the order id must be a whole number")  # an Arabic-Indic 1, not order 1  # fmt: skip
    refused(c, url, {"order": "99999", "reason": "x"}, status=404,
            says="there is no order 99999 of yours")  # fmt: skip
    # A risk manager sees every order: "of yours" would be wrong.
    resp = client_for(setup["rm"]).post(url, {"order": "99999", "reason": "x"},
                                        HTTP_ACCEPT="application/json")  # fmt: skip
    assert resp.status_code == 404 and resp.json()["error"] == "there is no order 99999"
    refused(c, url, {"order": str(blocked.pk)}, status=400, says="the form has no reason field")
    refused(c, url, {"order": str(blocked.pk), "reason": ""}, status=302,
            says="say why the order should go ahead")  # fmt: skip
    working = make_order(alice, blocked.instrument)
    refused(c, url, {"order": str(working.pk), "reason": "x"}, status=302,
            says="is working, not blocked")  # fmt: skip
    assert not Override.objects.exists()


def test_override_decisions(rita, rob, alice, setup) -> None:
    ov = services.override_request(user=alice, order_id=setup["blocked"].pk, reason="please")
    c = client_for(rob)
    for name in ("risk_override_grant", "risk_override_reject"):
        refused(c, reverse(name, args=[999]), {}, status=404, says="there is no override 999")
    url = reverse("risk_override_grant", args=[ov.pk])
    # Every bad value of the page's field is said back on the page, the same way.
    refused(c, url, {"minutes": "soon", "note": "checked"}, status=302,
            says="minutes: a whole number between 1 and 1440, not 'soon'")  # fmt: skip
    refused(
        c,
        url,
        {"minutes": "0", "note": "checked"},
        status=302,
        says="minutes: between 1 and 1440, not 0",
    )
    refused(c, url, {"minutes": "1_0", "note": "checked"}, status=302, says="not '1_0'")
    refused(
        c,
        url,
        {"minutes": "9" * 4000, "note": "checked"},
        status=302,
        says="not '" + "9" * 40 + "'",
    )
    refused(
        c,
        url,
        {"minutes": "5000", "note": "checked"},
        status=302,
        says="minutes: between 1 and 1440, not 5000",
    )
    # The grant lets an order past the firm's limits: its approver says why.
    refused(c, url, {"minutes": "30", "note": "  "}, status=302,
            says="note: say why this order may go past its limits")  # fmt: skip
    assert Override.objects.get(pk=ov.pk).status == Override.PENDING
    # The firm is halted (the setup's kill switch): no override sends the order out.
    refused(
        c,
        url,
        {"minutes": "", "note": "checked"},
        status=302,
        says="cannot go to the market now: TRADING_HALTED",
    )
    services.kill_switch_reset_request(user=rob, kill_id=setup["kill"].pk, reason="over")
    services.kill_switch_reset_approve(user=rita, kill_id=setup["kill"].pk)
    ok = c.post(
        url, {"minutes": "", "note": "checked"}, follow=True
    )  # empty: the default 30 minutes
    assert f"Override {ov.pk} granted for 30 min" in ok.content.decode()
    refused(c, reverse("risk_override_reject", args=[ov.pk]), {}, status=302,
            says="is granted, not pending")  # fmt: skip


def test_a_limit_on_a_desk_nobody_sits_on_says_so(rita) -> None:
    """A desk's limit may be set before anyone is on it, but a mistyped desk read "active
    now" as if it bound the desk meant (a trial)."""
    c = client_for(rita)
    page = c.post(
        reverse("risk_limit_request"),
        {
            "scope_type": "desk",
            "scope_key": "EQ-9",
            "metric": "max_order_qty",
            "new_value": "5",
            "reason": "set up a new desk",
        },
        follow=True,
    ).content.decode()
    assert "no trader is on desk EQ-9 yet: it binds nobody until one is" in unescape(page)


def test_a_limit_on_a_desk_only_a_risk_manager_sits_on_binds_no_trader(rita, rob, adam) -> None:
    """A trial put a risk manager on a desk, whose limit then read as binding someone."""
    from oversight.services import user_desk_set

    user_desk_set(actor=adam, user=rob, desk="EQ-7", reason="seat")
    page = (
        client_for(rita)
        .post(
            reverse("risk_limit_request"),
            {
                "scope_type": "desk",
                "scope_key": "EQ-7",
                "metric": "max_order_qty",
                "new_value": "5",
                "reason": "a desk of risk",
            },
            follow=True,
        )
        .content.decode()
    )
    assert "no trader is on desk EQ-7 yet" in unescape(page)
