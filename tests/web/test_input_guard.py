"""Input no view should see, and requests a view does not take, are refused by name."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.urls import reverse

from oversight.risk.models import KillSwitch

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db


def test_a_nul_character_is_refused_by_field_before_any_view(rita, alice, instrument) -> None:
    """PostgreSQL text cannot hold NUL: nine forms that read raw fields answered 500."""
    order = make_order(alice, instrument)
    c, trader = client_for(rita), client_for(alice)
    cases = [
        (c, "post", reverse("risk_kill"), {"scope_type": "firm", "reason": "halt\x00"}, "reason"),
        # Named as people read it: "scope key", not "Scope_key" (a trial).
        (c, "get", reverse("risk_kill_preview"), {"scope_type": "instrument", "scope_key": "HB\x00"}, "scope key"),
        (trader, "post", reverse("order_control", args=[order.pk]), {"action": "pause", "reason": "x\x00y"}, "reason"),
    ]  # fmt: skip
    for client, method, url, data, field in cases:
        resp = getattr(client, method)(url, data, HTTP_ACCEPT="application/json")
        assert resp.status_code == 400, (url, resp.content)
        # A search changes nothing anyway, and says nothing of it (a trial).
        changed = "" if method == "get" else "; nothing was changed"
        assert resp.json()["error"] == f"{field}: contains a NUL character (\\x00){changed}"
    page = c.post(reverse("risk_kill"), {"scope_type": "firm", "reason": "halt\x00"})
    assert page.status_code == 400 and "contains a NUL character" in page.content.decode()
    assert not KillSwitch.objects.exists()
    order.refresh_from_db()
    assert order.status == "WORKING"


def test_control_characters_are_refused_by_field_and_line_breaks_are_not(alice, instrument):
    """A cancel's reason with a right-to-left override and a bell went into the audit
    trail and its CSV as sent (a trial): a reason that reads otherwise than it is."""
    order = make_order(alice, instrument)
    trader = client_for(alice)
    url = reverse("order_control", args=[order.pk])
    for bad, code in (("a\u202eb", "U+202E"), ("ring\x07", "U+0007"), ("x\x9by", "U+009B")):
        resp = trader.post(url, {"action": "pause", "reason": bad}, HTTP_ACCEPT="application/json")
        assert resp.status_code == 400
        assert resp.json()["error"] == (
            f"reason: contains a control character ({code}); nothing was changed"
        )
    order.refresh_from_db()
    assert order.status == "WORKING"
    ok = trader.post(
        url,
        {"action": "pause", "reason": "two lines,\r\nand a\ttab"},
        HTTP_ACCEPT="application/json",
    )
    assert ok.status_code == 200, ok.content


def test_a_wrong_method_says_which_it_takes(rita) -> None:
    c = client_for(rita)
    resp = c.get(reverse("risk_kill"), HTTP_ACCEPT="application/json")
    assert resp.status_code == 405 and resp["Allow"] == "POST"
    assert resp.json()["error"] == "this address does not take GET; it takes POST"
    page = c.get(reverse("risk_kill"))
    assert page.status_code == 405 and "does not take GET; it takes POST" in page.content.decode()
    # With no CSRF token, as a script sends them: not "this page is out of date" (a trial).
    for method in ("put", "patch", "delete"):
        resp = getattr(Client(enforce_csrf_checks=True), method)(
            reverse("risk_kill"), HTTP_ACCEPT="application/json"
        )
        assert resp.status_code == 405, method
        assert resp.json()["error"] == (
            f"no address here takes {method.upper()}; forms and controls take POST"
        )
    # Still recorded, as a POST without its token is (a review: the 405 skipped it).
    from oversight.models import AuditRecord

    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(rita)
    assert signed_in.delete(reverse("risk_kill")).status_code == 405
    assert AuditRecord.objects.filter(action="access.csrf_refused").exists()


@pytest.mark.parametrize("wants", ["json", "page"])
def test_in_debug_mode_bad_requests_and_missing_pages_are_ours_not_djangos(
    rita, adam, settings, wants
) -> None:
    """`run` is in debug mode: a reason of 3,000,000 characters, 1,200 fields, or an
    address that names nothing drew Django's technical page (a traceback, the settings,
    every URL pattern; a trial)."""
    settings.DEBUG = True
    accept = {"HTTP_ACCEPT": "application/json"} if wants == "json" else {}
    c = client_for(rita)
    cases = [
        (c, reverse("risk_kill"), {"scope_type": "firm", "reason": "x" * 3_000_000}, 400,
         "the request is too large (a form here sends at most 2.5 MB); nothing was done"),
        (c, reverse("risk_kill"), {f"f{i}": "x" for i in range(1_200)}, 400,
         "the request has too many fields (a form here has at most 1,000); nothing was done"),
        (client_for(adam), "/users/abc/active/", {"active": "0", "reason": "x"}, 404,
         "there is no such page"),
    ]  # fmt: skip
    for client, url, data, status, said in cases:
        resp = client.post(url, data, **accept)
        body = resp.content.decode()
        assert resp.status_code == status, (url, body[:300])
        assert "DEBUG = True" not in body and "Traceback" not in body, url
        if wants == "json":
            assert resp.json()["error"] == said
        else:  # the page begins it with a capital
            assert said[1:] in html.unescape(body), body
    assert not KillSwitch.objects.exists()


def test_too_many_fields_is_a_reason_not_a_bare_400(rita, settings) -> None:
    settings.DEBUG = False
    c = client_for(rita)
    data = {f"f{i}": "x" for i in range(1_200)}
    resp = c.post(reverse("risk_kill"), data, HTTP_ACCEPT="application/json")
    assert resp.status_code == 400
    assert resp.json()["error"] == (
        "the request has too many fields (a form here has at most 1,000); nothing was done"
    )
    # Django's own words (the setting to raise, a distrusted host) are not shown.
    assert "DATA_UPLOAD" not in resp.content.decode()
    bad_host = Client(HTTP_HOST="evil.example").get("/", HTTP_ACCEPT="application/json")
    assert bad_host.status_code == 400
    assert bad_host.json()["error"] == "the request's host is not this site"


def test_a_blank_username_says_what_is_missing() -> None:
    resp = Client().post(reverse("login"), {"username": "   ", "password": "x"})
    assert resp.status_code == 200
    assert "Username: This field is required." in resp.content.decode()


def test_a_field_sent_twice_is_refused_everywhere(alice, instrument) -> None:
    """Read as its last value: a rate of 0.05 and 0.3 traded at 0.3, an amend applied the
    second urgency, action=cancel&action=pause paused the order, and the TCA page filtered
    on the second side (a trial)."""
    from execution.models import ControlRequest, ParentOrder

    order = make_order(alice, instrument)
    c = client_for(alice)
    resp = c.post(
        reverse("order_control", args=[order.pk]), "action=cancel&action=pause",
        content_type="application/x-www-form-urlencoded", HTTP_ACCEPT="application/json",
    )  # fmt: skip
    assert resp.status_code == 400
    assert (
        resp.json()["error"]
        == "field “action” given more than once; send it once (nothing was changed)"
    )
    assert not ControlRequest.objects.exists()
    resp = c.get(reverse("tca_report") + "?side=buy&side=sell")
    assert resp.status_code == 400 and "Field “side” given more than once" in resp.content.decode()
    body = (
        f"instrument={instrument.pk}&side=buy&quantity=1000&start_minute=0&end_minute=60"
        "&strategy=pov&param_participation_rate=0.05&param_participation_rate=0.3"
    )
    resp = c.post(reverse("order_new"), body, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and "Field “param_participation_rate” given more than once" in (
        resp.content.decode()
    )
    assert ParentOrder.objects.count() == 1


def test_a_script_whose_session_ended_is_told_so_not_sent_the_login_page(alice, instrument) -> None:
    """The control dialog read the login page as "the server did not answer" after its
    trader logged out in another tab, and did nothing without saying why (a trial)."""
    order = make_order(alice, instrument)
    gone = client_for(alice)
    gone.logout()
    url = reverse("order_control", args=[order.pk])
    resp = gone.post(url, {"action": "cancel", "reason": "x"}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 401
    assert resp.json() == {
        "ok": False,
        "error": "you are logged out (here or in another tab, or the session expired): "
        "log in again; nothing was done",
    }
    order.refresh_from_db()
    assert order.status == "WORKING"
    page = gone.post(url, {"action": "cancel", "reason": "x"})  # a person: the login page
    assert page.status_code == 302 and "/login" in page["Location"]


def test_a_logout_is_done_whatever_the_channel_layer_does(alice, settings) -> None:
    """Its websockets are closed through the channel layer: with Redis gone the logout was
    a 500 and the session stayed logged in (a review). A script's logout is not told
    "nothing was done"."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens there
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        c = client_for(alice)
        resp = c.post(reverse("logout"), HTTP_ACCEPT="application/json")
        assert resp.status_code == 302
        assert c.get(reverse("blotter")).status_code == 302  # logged out: the login page
    finally:
        channel_layers.backends.clear()


def test_a_json_only_view_refuses_in_json_whatever_is_accepted(alice) -> None:
    """A review: the ticket's estimate answered a NUL character with the HTML error page
    unless the request asked for JSON; a script reading it could not say why."""
    c = client_for(alice)
    for url in (reverse("order_estimate"), reverse("session_status")):
        resp = c.get(url, {"side": "b\x00uy"})
        assert resp.status_code == 400 and resp["Content-Type"] == "application/json", url
        assert resp.json()["error"] == "side: contains a NUL character (\\x00)"
        wrong = c.post(url)
        assert wrong.status_code == 405 and wrong.json()["error"].startswith(
            "this address does not take POST"
        ), url
    # A page a person reads still gets the page.
    page = c.get(reverse("blotter"), {"q": "\x00"})
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_text_that_is_not_utf8_is_refused_by_field_not_stored_as_replacement_marks(
    rita,
) -> None:
    """A trial: a reason with a lone surrogate (%ED%A0%80) was stored as "���", and the limit
    it came with took effect."""
    from oversight.risk.models import LimitRequest

    c = client_for(rita)
    body = "scope_type=firm&metric=max_order_qty&new_value=100&reason=cut%ED%A0%80it"
    resp = c.post(
        reverse("risk_limit_request"),
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_ACCEPT="application/json",
    )
    said = "reason: is not UTF-8 text (or has the replacement character U+FFFD)"
    assert resp.status_code == 400
    assert resp.json()["error"] == f"{said}; nothing was changed"
    # The same in a multipart body (a review: it went through). Raw bytes in a form body
    # that is not UTF-8 at all are read as Latin-1, whole, by Django: text, not marks.
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    multipart = encode_multipart(
        BOUNDARY, {"scope_type": "firm", "metric": "max_order_qty", "new_value": "100",
                   "reason": "x"},
    ).replace(b"\r\n\r\nx\r\n", b"\r\n\r\ncut\xed\xa0\x80it\r\n")  # fmt: skip
    resp = c.generic("POST", reverse("risk_limit_request"), multipart,
                     content_type=MULTIPART_CONTENT, HTTP_ACCEPT="application/json")  # fmt: skip
    assert resp.status_code == 400 and resp.json()["error"].startswith(said), resp.content
    assert not LimitRequest.objects.exists()
    search = c.get(reverse("audit_list") + "?action=%C3", HTTP_ACCEPT="application/json")
    assert (
        search.json()["error"]
        == "action: is not UTF-8 text (or has the replacement character U+FFFD)"
    )
    # UTF-8 as it should be is taken: "café" and a plus for a space.
    ok = c.get(reverse("audit_list") + "?action=caf%C3%A9+x")
    assert ok.status_code == 200
