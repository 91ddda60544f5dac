"""Role × action for every risk page and endpoint: anonymous → login, traders and admins
kept off the risk manager's pages, traders may stop only their own trading, four eyes holds
over HTTP."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from oversight.models import AuditRecord
from oversight.risk import services
from oversight.risk.models import KillSwitch, LimitRequest, Override, RiskException

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db

PAGES = ["risk_console", "risk_limits", "risk_overrides", "risk_restricted"]
# Risk managers only; each takes the id of a limit request, override, kill switch or
# exception where it has one (1: none need exist to be refused).
MANAGER_POSTS = [
    ("risk_limit_request", []),
    ("risk_limit_approve", [1]),
    ("risk_limit_reject", [1]),
    ("risk_override_grant", [1]),
    ("risk_override_reject", [1]),
    ("risk_kill_reset_request", [1]),
    ("risk_kill_reset_approve", [1]),
    ("risk_exception_ack", [1]),
    ("risk_exception_assign", [1]),
    ("risk_exception_comment", [1]),
    ("risk_exception_resolve", [1]),
    ("model_recommend", [1]),
    ("model_approve", [1]),
    ("model_reject", [1]),
    ("model_retire", [1]),
    ("risk_restrict", []),
    ("risk_restriction_lift_request", [1]),
    ("risk_restriction_lift_approve", [1]),
]
# Traders (for what is theirs) and risk managers.
SHARED_POSTS = [("risk_kill", []), ("risk_override_request", [])]


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [("get", p, []) for p in [*PAGES, "risk_kill_preview", "model_list"]]
    + [("post", n, a) for n, a in MANAGER_POSTS + SHARED_POSTS],
)
def test_anonymous_is_sent_to_login(method: str, name: str, args: list[int]) -> None:
    resp = getattr(Client(), method)(reverse(name, args=args))
    assert resp.status_code == 302
    assert resp["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("persona", ["alice", "adam"])
@pytest.mark.parametrize(
    ("method", "name", "args"),
    [("get", p, []) for p in PAGES] + [("post", n, a) for n, a in MANAGER_POSTS],
)
def test_traders_and_admins_are_refused_the_risk_managers_pages(
    request, persona: str, method: str, name: str, args: list[int]
) -> None:
    c = client_for(request.getfixturevalue(persona))
    resp = getattr(c, method)(reverse(name, args=args), {"reason": "x"})
    assert resp.status_code == 403
    assert "Your role " in resp.content.decode()  # not an empty page
    js = getattr(c, method)(
        reverse(name, args=args), {"reason": "x"}, HTTP_ACCEPT="application/json"
    )
    assert js.status_code == 403
    # An admin is not told to ask an admin (a trial), but what the role is for.
    said = (
        "your role (admin) does not allow this: admins manage users and review the audit "
        "trail; trading and risk are for traders and risk managers"
        if persona == "adam"
        else "your role does not allow this: ask an admin if it should"
    )
    assert js.json() == {"ok": False, "error": said}


@pytest.mark.parametrize("name", ["risk_kill", "risk_override_request"])
def test_admins_cannot_stop_trading_or_ask_for_overrides(adam, name: str) -> None:
    resp = client_for(adam).post(reverse(name), {"scope_type": "firm", "reason": "x"})
    assert resp.status_code == 403
    assert not KillSwitch.objects.exists()
    assert client_for(adam).get(reverse("risk_kill_preview")).status_code == 403


def test_pages_render_for_risk_managers_and_refuse_other_methods(rita) -> None:
    c = client_for(rita)
    for name in PAGES:
        assert c.get(reverse(name)).status_code == 200
        assert c.post(reverse(name)).status_code == 405
        assert c.put(reverse(name)).status_code == 405
    for name, args in MANAGER_POSTS + SHARED_POSTS:
        assert c.get(reverse(name, args=args)).status_code == 405, name
    assert c.post(reverse("risk_kill_preview")).status_code == 405


def test_trader_may_stop_their_own_trading_only(alice, bob) -> None:
    c = client_for(alice)
    ok = c.post(
        reverse("risk_kill"),
        {"scope_type": "trader", "scope_key": "alice", "state": "HALTED", "reason": "runaway"},
        follow=True,
    )
    assert ok.status_code == 200
    assert ok.redirect_chain[-1][0] == reverse("blotter")
    assert "Kill switch" in ok.content.decode() and "trader alice halted" in ok.content.decode()
    k = KillSwitch.objects.get()
    assert (k.scope_type, k.scope_key, k.engaged_by, k.active) == ("trader", "alice", alice, True)

    for scope_type, key, status, says in (
        ("trader", "bob", 403, "traders may stop their own trading"),  # a role's limit
        ("firm", "", 403, "traders may stop their own trading"),
        # Not a trader's to stop, whether it exists or not (which is not theirs to learn).
        ("instrument", "HBRK", 403, "traders may stop their own trading"),
        ("trader", "nosuchuser", 403, "traders may stop their own trading"),
        ("order", "99999", 403, "traders may stop their own trading"),
    ):
        resp = c.post(
            reverse("risk_kill"),
            {"scope_type": scope_type, "scope_key": key, "reason": "not mine"},
            HTTP_ACCEPT="application/json",
        )
        assert resp.status_code == status, (scope_type, resp.content)
        assert says in resp.json()["error"]
    page = c.post(reverse("risk_kill"), {"scope_type": "firm", "reason": "not mine"})
    assert page.status_code == 403 and "traders may stop their own trading" in page.content.decode()
    assert KillSwitch.objects.count() == 1


def test_trader_may_stop_their_own_order_not_anothers(alice, bob, instrument) -> None:
    mine, theirs = make_order(alice, instrument), make_order(bob, instrument)
    c = client_for(alice)
    bad = c.post(
        reverse("risk_kill"),
        {"scope_type": "order", "scope_key": str(theirs.pk), "reason": "x"},
        HTTP_ACCEPT="application/json",
    )
    assert bad.status_code == 403 and "may not engage" in bad.json()["error"]
    good = c.post(
        reverse("risk_kill"),
        {"scope_type": "order", "scope_key": str(mine.pk), "reason": "x"},
        HTTP_ACCEPT="application/json",
    )
    assert good.status_code == 200 and good.json()["ok"] is True
    assert list(KillSwitch.objects.values_list("scope_key", flat=True)) == [str(mine.pk)]


def test_trader_preview_is_for_their_own_scope_only(alice, bob, instrument) -> None:
    c = client_for(alice)
    ok = c.get(reverse("risk_kill_preview"), {"scope_type": "trader", "scope_key": "alice"})
    assert ok.status_code == 200 and ok.json()["orders"] == 0
    for q in ({"scope_type": "trader", "scope_key": "bob"}, {"scope_type": "firm"}):
        assert c.get(reverse("risk_kill_preview"), q).status_code == 403
    # Another trader's order and no order at all answer alike: a review could tell which
    # order ids and usernames exist from a 400 "there is no order" beside a 403.
    theirs = make_order(bob, instrument)
    answers = {
        c.get(reverse("risk_kill_preview"), {"scope_type": t, "scope_key": k}).content
        for t, k in (
            ("order", str(theirs.pk)),
            ("order", "99999"),
            ("order", "1" * 5000),
            ("trader", "bob"),
            ("trader", "nosuchuser"),
        )
    }
    assert len(answers) == 1 and b"traders may stop their own trading" in answers.pop()
    # Alice's own name, typed in another case, is hers.
    assert (
        c.get(reverse("risk_kill_preview"), {"scope_type": "trader", "scope_key": "Alice"}).json()[
            "scope_key"
        ]
        == "alice"
    )


def test_a_very_long_order_id_is_a_bad_value_not_a_server_error(rita) -> None:
    c = client_for(rita)
    resp = c.get(reverse("risk_kill_preview"), {"scope_type": "order", "scope_key": "1" * 5000})
    assert resp.status_code == 400 and "there is no order" in resp.json()["error"]


def test_risk_manager_may_stop_any_scope(rita, alice, instrument) -> None:
    c = client_for(rita)
    for scope_type, key in (("firm", ""), ("instrument", "HBRK"), ("trader", "alice")):
        resp = c.post(
            reverse("risk_kill"),
            {"scope_type": scope_type, "scope_key": key, "state": "REDUCING", "reason": "vol"},
        )
        assert resp.status_code == 302 and resp["Location"] == reverse("risk_console")
    assert KillSwitch.objects.filter(state="REDUCING").count() == 3


def test_admin_cannot_approve_limits(rita, adam) -> None:
    services.limit_change_request(
        user=rita, scope_type="firm", scope_key="", metric="max_order_qty",
        new_value="5000", reason="cap",
    )  # fmt: skip
    req = services.limit_change_request(
        user=rita, scope_type="firm", scope_key="", metric="max_order_qty",
        new_value="", reason="remove",
    )  # fmt: skip
    resp = client_for(adam).post(reverse("risk_limit_approve", args=[req.pk]))
    assert resp.status_code == 403
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.PENDING


def test_four_eyes_on_limit_requests_over_http(rita, rob) -> None:
    c = client_for(rita)
    resp = c.post(
        reverse("risk_limit_request"),
        {"scope_type": "firm", "scope_key": "", "metric": "max_order_qty",
         "new_value": "", "reason": "no cap"},
        follow=True,
    )  # fmt: skip
    # Removing a limit that is not there yet is "that is the limit already": set one first.
    assert "that is the limit already" in resp.content.decode()
    resp = c.post(
        reverse("risk_limit_request"),
        {"scope_type": "firm", "metric": "max_order_qty", "new_value": "5000", "reason": "cap"},
        follow=True,
    )
    assert "active now" in resp.content.decode()  # a tightening takes one person
    # Named as the limits page names it, not by its keys.
    assert "firm, Max parent order quantity (shares): none → 5,000" in resp.content.decode()
    c.post(
        reverse("risk_limit_request"),
        {"scope_type": "firm", "metric": "max_order_qty", "new_value": "9000", "reason": "more"},
    )
    req = LimitRequest.objects.get(status=LimitRequest.PENDING)
    own = c.post(reverse("risk_limit_approve", args=[req.pk]), follow=True)
    assert "you cannot approve your own request" in own.content.decode()
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.PENDING
    theirs = client_for(rob).post(reverse("risk_limit_approve", args=[req.pk]), follow=True)
    assert f"Limit request {req.pk} approved and active" in theirs.content.decode()
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.ACTIVE


def test_four_eyes_on_overrides_over_http(rita, rob, alice, bob, instrument) -> None:
    order = make_order(alice, instrument, status="BLOCKED",
                       status_reason="MAX_ORDER_QTY: 10,000 shares > 5,000 (firm)")  # fmt: skip
    # Another trader cannot ask for it; the order's trader can.
    other = client_for(bob).post(
        reverse("risk_override_request"),
        {"order": str(order.pk), "reason": "please"},
        HTTP_ACCEPT="application/json",
    )
    assert other.status_code == 404
    ask = client_for(alice).post(
        reverse("risk_override_request"),
        {"order": str(order.pk), "reason": "client confirmed the size"},
        HTTP_ACCEPT="application/json",
    )
    assert ask.status_code == 200 and ask.json()["ok"] is True
    ov = Override.objects.get()
    assert ov.requested_by == alice and ov.codes == ["MAX_ORDER_QTY"]
    # A risk manager's own request cannot be granted by them.
    ov.delete()
    services.override_request(user=rita, order_id=order.pk, reason="desk head asked")
    ov = Override.objects.get()
    own = client_for(rita).post(
        reverse("risk_override_grant", args=[ov.pk]), {"note": "fine"}, follow=True
    )
    assert "you cannot grant your own request" in own.content.decode()
    assert Override.objects.get(pk=ov.pk).status == Override.PENDING


def test_four_eyes_on_kill_switch_reset_over_http(rita, rob) -> None:
    k = services.kill_switch_engage(user=rita, scope_type="firm", reason="halt")
    c = client_for(rita)
    c.post(reverse("risk_kill_reset_request", args=[k.pk]), {"reason": "venues back"})
    read = {"asked_at": KillSwitch.objects.get(pk=k.pk).reset_requested_at.isoformat()}
    own = c.post(reverse("risk_kill_reset_approve", args=[k.pk]), read, follow=True)
    assert "you cannot approve your own reset" in own.content.decode()
    assert KillSwitch.objects.get(pk=k.pk).active
    ok = client_for(rob).post(
        reverse("risk_kill_reset_approve", args=[k.pk]),
        {"note": "checked the venues", **read},
        follow=True,
    )
    assert f"Kill switch {k.pk} reset" in ok.content.decode()
    assert not KillSwitch.objects.get(pk=k.pk).active
    # The second person's own words are kept beside the request's (a trial's were dropped).
    rec = AuditRecord.objects.get(action="kill.reset")
    assert rec.actor_username == "rob"
    assert rec.reason == "venues back; approved: checked the venues"
    assert rec.after["approval_note"] == "checked the venues"


def test_exception_handling_by_a_risk_manager(rita, rob) -> None:
    e = services.exception_raise(
        kind="VENUE_OUTAGE", severity="CRITICAL", scope_type="instrument",
        scope_key="HBRK", title="Venue X is down",
    )  # fmt: skip
    c = client_for(rita)
    assert c.post(reverse("risk_exception_ack", args=[e.pk])).status_code == 302
    c.post(reverse("risk_exception_assign", args=[e.pk]), {"assignee": "rob"})
    c.post(reverse("risk_exception_comment", args=[e.pk]), {"text": "called the venue"})
    resp = c.post(
        reverse("risk_exception_resolve", args=[e.pk]), {"resolution": "venue back"}, follow=True
    )
    assert f"Exception {e.pk} resolved" in resp.content.decode()
    e.refresh_from_db()
    assert (e.status, e.acked_by, e.assigned_to, e.resolution) == (
        RiskException.RESOLVED, rita, rob, "venue back"
    )  # fmt: skip
    assert list(e.comments.values_list("text", flat=True)) == ["called the venue"]


def test_posts_need_the_csrf_token(rita, alice) -> None:
    for user, name in ((rita, "risk_kill"), (alice, "risk_kill"), (rita, "risk_limit_request")):
        c = Client(enforce_csrf_checks=True)
        c.force_login(user)
        resp = c.post(reverse(name), {"scope_type": "trader", "scope_key": "alice", "reason": "x"})
        assert resp.status_code == 403
    assert not KillSwitch.objects.exists()


def test_names_differing_only_in_case_are_matched_exactly_or_not_at_all(alice) -> None:
    """Older data can hold both "Alice" and "alice", "EQ-1" and "eq-1": a review's trader
    alice halted user Alice's orders by typing her own name."""
    from django.contrib.auth import get_user_model

    from oversight.risk.models import Desk

    get_user_model().objects.create_user("Alice")  # as createsuperuser could have made
    c = client_for(alice)
    own = c.post(reverse("risk_kill"), {"scope_type": "trader", "scope_key": "alice",
                                        "reason": "mine"}, HTTP_ACCEPT="application/json")  # fmt: skip
    assert own.status_code == 200
    assert list(KillSwitch.objects.values_list("scope_key", flat=True)) == ["alice"]
    theirs = c.post(reverse("risk_kill"), {"scope_type": "trader", "scope_key": "Alice",
                                           "reason": "x"}, HTTP_ACCEPT="application/json")  # fmt: skip
    assert theirs.status_code == 403
    either = c.get(reverse("risk_kill_preview"), {"scope_type": "trader", "scope_key": "ALICE"})
    assert either.status_code == 400
    assert "could be Alice or alice: type it exactly" in either.json()["error"]
    Desk.objects.create(name="EQ-1")
    Desk.objects.create(name="eq-1")
    assert services.scope_check("desk", "eq-1", kill=True) == "eq-1"
    assert services.scope_check("desk", "EQ-1", kill=True) == "EQ-1"
    with pytest.raises(ValidationError, match="could be EQ-1 or eq-1"):
        services.scope_check("desk", "Eq-1", kill=True)
