"""The restricted list's page over HTTP: restrict, ask to lift, approve the lift, each
answered with a message that says what happened and what did not."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from execution.models import Instrument
from oversight.risk.models import Restriction

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db


def _messages(resp) -> list[str]:
    return [str(m) for m in resp.context["messages"]]


def test_restrict_then_lift_under_four_eyes_from_the_page(alice, rita, rob, instrument) -> None:
    make_order(alice, instrument)  # working: the restriction does not stop it, and says so
    rc = client_for(rita)
    page = rc.get(reverse("risk_restricted")).content.decode()
    assert f"<option>{instrument.symbol}</option>" in page and "No instrument is restricted" in page
    assert 'href="/risk/restricted/"' in page  # in the navigation
    resp = rc.post(
        reverse("risk_restrict"),
        {"instrument": instrument.symbol, "reason": "wall-crossed"},
        follow=True,
    )
    r = Restriction.objects.get()
    assert _messages(resp) == [
        f"{instrument.symbol} is on the restricted list (restriction {r.pk}): new orders are "
        "refused. 1 order on it is not finished and not stopped by this: engage an "
        "instrument kill switch to stop it"
    ]
    page = resp.content.decode()
    assert f'id="restriction-{r.pk}"' in page and "wall-crossed" in page
    assert f"<option>{instrument.symbol}</option>" not in page  # not offered twice

    resp = rc.post(
        reverse("risk_restriction_lift_request", args=[r.pk]), {"reason": "announced"}, follow=True
    )
    assert _messages(resp) == [
        f"Lifting restriction {r.pk} ({instrument.symbol}) waits for a second risk manager's "
        "approval"
    ]
    assert "You asked for this lift" in resp.content.decode()
    read = {"asked_at": type(r).objects.get(pk=r.pk).lift_requested_at.isoformat()}
    approve = reverse("risk_restriction_lift_approve", args=[r.pk])
    resp = rc.post(approve, read, follow=True)
    assert _messages(resp) == ["you cannot approve your own lift: a second risk manager must"]
    resp = client_for(rob).post(approve, follow=True)  # not saying which request it read
    assert _messages(resp) == [
        "asked_at: missing; the form says which request you read: reload the page and read "
        "the request again"
    ]
    assert Instrument.objects.get(pk=instrument.pk).restricted
    resp = client_for(rob).post(approve, read, follow=True)
    assert _messages(resp) == [
        f"Restriction {r.pk} lifted by rita and rob: new orders on {instrument.symbol} are "
        "accepted again"
    ]
    assert not Instrument.objects.get(pk=instrument.pk).restricted
    assert "announced" in resp.content.decode()  # in the history


@pytest.mark.parametrize(
    ("url", "data", "status", "message"),
    [
        ("risk_restrict", {"reason": "x"}, 400, "instrument"),
        ("risk_restrict", {"instrument": "NOPE", "reason": "x"}, 302, "there is no instrument"),
        ("risk_restrict", {"instrument": "Z" * 10_000, "reason": "x"}, 302, "'" + "Z" * 64 + "…'"),
        ("risk_restrict", {"instrument": "{sym}"}, 400, "reason"),
        ("risk_restrict", {"instrument": "{sym}", "reason": "x" * 501}, 302, "at most 500"),
    ],
)
def test_a_bad_restriction_is_named_and_changes_nothing(
    rita, instrument, url: str, data: dict[str, str], status: int, message: str
) -> None:
    data = {k: v.format(sym=instrument.symbol) for k, v in data.items()}
    c = client_for(rita)
    resp = c.post(reverse(url), data)
    assert resp.status_code == status
    text = resp.content.decode() if status != 302 else " ".join(_messages(c.get(resp["Location"])))
    assert message in text
    assert not Restriction.objects.exists()
    js = client_for(rita).post(reverse(url), data, HTTP_ACCEPT="application/json")
    assert js.status_code == 400 and message in js.json()["error"]


def test_an_unknown_restriction_is_a_404_with_a_message(rita) -> None:
    for name in ("risk_restriction_lift_request", "risk_restriction_lift_approve"):
        resp = client_for(rita).post(reverse(name, args=[999]), {"reason": "x"})
        assert resp.status_code == 404
        assert "there is no restriction 999" in resp.content.decode().lower()


def test_a_refused_restriction_comes_back_with_its_instrument_chosen(rita, instrument) -> None:
    c = client_for(rita)
    resp = c.post(reverse("risk_restrict"), {"instrument": instrument.symbol, "reason": " "})
    assert resp.status_code == 302 and resp["Location"].endswith(f"?instrument={instrument.symbol}")
    page = c.get(resp["Location"]).content.decode()
    assert f"<option selected>{instrument.symbol}</option>" in page
    assert "reason: say why" in page


def test_a_refused_restriction_keeps_its_reason_as_typed(rita, instrument) -> None:
    c = client_for(rita)
    resp = c.post(reverse("risk_restrict"), {"instrument": "ZZZZ", "reason": "wall-crossed"})
    page = c.get(resp["Location"]).content.decode()
    assert 'name="reason" value="wall-crossed"' in page
    assert 'name="reason" value=""' in c.get(reverse("risk_restricted")).content.decode()


def test_a_lapsed_request_is_offered_again_not_for_approval(rita, rob, instrument) -> None:
    """Its author lost the role: approving it is refused, so the page offers a new request
    (as the console's kill card does for a reset)."""
    from django.contrib.auth.models import Group

    from oversight.risk.restricted import lift_request, restrict
    from oversight.risk.services import kill_switch_engage, kill_switch_reset_request
    from oversight.roles import TRADER

    r = restrict(user=rob, symbol=instrument.symbol, reason="wall-crossed")
    lift_request(user=rita, restriction_id=r.pk, reason="cleared")
    kill = kill_switch_engage(user=rob, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    page = client_for(rob).get(reverse("risk_restricted")).content.decode()
    assert "Approve the lift" in page and f'id="lift-reason-{r.pk}"' not in page
    rita.groups.set([Group.objects.get(name=TRADER)])
    page = client_for(rob).get(reverse("risk_restricted")).content.decode()
    assert "Approve the lift" not in page and f'id="lift-reason-{r.pk}"' in page
    assert "rita's request lapsed" in page
    console = client_for(rob).get(reverse("risk_console")).content.decode()
    card = console.split(f'id="kill-{kill.pk}"')[1].split("</li>")[0]
    assert 'data-part="request" hidden' not in card  # the request form is offered
    assert "rita's request lapsed" in card


def test_a_lift_request_is_withdrawn_or_declined_from_the_page(rita, rob, instrument) -> None:
    from oversight.risk.restricted import lift_request, restrict

    r = restrict(user=rob, symbol=instrument.symbol, reason="wall-crossed")
    lift_request(user=rita, restriction_id=r.pk, reason="cleared")
    decline = reverse("risk_restriction_lift_decline", args=[r.pk])
    r.refresh_from_db()
    read = {"asked_at": r.lift_requested_at.isoformat()}
    mine = client_for(rita).get(reverse("risk_restricted")).content.decode()
    theirs = client_for(rob).get(reverse("risk_restricted")).content.decode()
    assert ">Withdraw</button>" in mine and f'id="decline-reason-{r.pk}"' not in mine
    assert ">Decline</button>" in theirs and f'id="decline-reason-{r.pk}"' in theirs
    resp = client_for(rob).post(decline, {"reason": "", **read}, follow=True)
    assert _messages(resp) == ["reason: say why you decline rita's lift request"]
    resp = client_for(rob).post(decline, {"reason": "not public yet", **read}, follow=True)
    assert _messages(resp) == [
        f"The lift of restriction {r.pk} ({instrument.symbol}) is declined: it stays restricted"
    ]
    page = resp.content.decode()
    assert f'id="lift-reason-{r.pk}"' in page and "Approve the lift" not in page
    resp = client_for(rob).post(decline, {"reason": "again", "asked_at": ""}, follow=True)
    assert _messages(resp) == [
        f"nobody has asked for a lift of restriction {r.pk}: there is nothing to decline"
    ]


def test_a_reset_request_is_withdrawn_from_the_console(rita, rob) -> None:
    from oversight.risk.services import kill_switch_engage, kill_switch_reset_request

    kill = kill_switch_engage(user=rob, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    console = client_for(rita).get(reverse("risk_console")).content.decode()
    card = console.split(f'id="kill-{kill.pk}"')[1].split("</li>")[0]
    assert ">Withdraw</button>" in card
    resp = client_for(rita).post(
        reverse("risk_kill_reset_decline", args=[kill.pk]),
        {"asked_at": type(kill).objects.get(pk=kill.pk).reset_requested_at.isoformat()},
        HTTP_ACCEPT="application/json",
    )
    assert resp.json() == {
        "ok": True,
        "message": f"The reset of kill switch {kill.pk} is withdrawn: it stays engaged",
    }
    kill.refresh_from_db()
    assert kill.active and kill.reset_requested_by is None


def test_an_approval_or_decline_is_for_the_request_that_was_read(rita, rob, instrument) -> None:
    """Its author withdrew it and asked again, with another reason, while it was on the
    approver's screen: the approval (or decline) they send is for the old one, refused."""
    from oversight.risk.restricted import lift_decline, lift_request, restrict
    from oversight.risk.services import (
        kill_switch_engage,
        kill_switch_reset_decline,
        kill_switch_reset_request,
    )

    r = restrict(user=rob, symbol=instrument.symbol, reason="wall-crossed")
    lift_request(user=rita, restriction_id=r.pk, reason="cleared")
    kill = kill_switch_engage(user=rob, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    page = client_for(rob).get(reverse("risk_restricted")).content.decode()
    console = client_for(rob).get(reverse("risk_console")).content.decode()
    lift_read = re.search(r'name="asked_at" value="([^"]+)"', page)[1]
    reset_read = re.search(r'name="asked_at" value="([^"]+)"', console)[1]
    lift_decline(user=rita, restriction_id=r.pk)
    lift_request(user=rita, restriction_id=r.pk, reason="cleared, say the lawyers")
    kill_switch_reset_decline(user=rita, kill_id=kill.pk)
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over, really")
    for name, pk, read, data, what in (
        ("risk_restriction_lift_approve", r.pk, lift_read, {}, f"the lift of restriction {r.pk}"),
        ("risk_restriction_lift_decline", r.pk, lift_read, {"reason": "no"},
         f"the lift of restriction {r.pk}"),
        ("risk_kill_reset_approve", kill.pk, reset_read, {}, f"the reset of kill switch {kill.pk}"),
        ("risk_kill_reset_decline", kill.pk, reset_read, {"reason": "no"},
         f"the reset of kill switch {kill.pk}"),
    ):  # fmt: skip
        resp = client_for(rob).post(
            reverse(name, args=[pk]), {"asked_at": read, **data}, HTTP_ACCEPT="application/json"
        )
        assert resp.json()["ok"] is False, name
        assert resp.json()["error"].startswith(f"{what} has changed since you read it"), name
        # Not a time at all is said as that, not as a change (a trial).
        resp = client_for(rob).post(
            reverse(name, args=[pk]),
            {"asked_at": "garbage", **data},
            HTTP_ACCEPT="application/json",
        )
        assert resp.json()["error"] == (
            "asked_at: 'garbage' is not a time; reload the page and read the request again"
        ), name
    r.refresh_from_db()
    kill.refresh_from_db()
    assert r.active and r.lift_reason == "cleared, say the lawyers"
    assert kill.active and kill.reset_reason == "drill over, really"
    # Read again, it is approved.
    page = client_for(rob).get(reverse("risk_restricted")).content.decode()
    fresh = re.search(r'name="asked_at" value="([^"]+)"', page)[1]
    resp = client_for(rob).post(
        reverse("risk_restriction_lift_approve", args=[r.pk]),
        {"asked_at": fresh},
        HTTP_ACCEPT="application/json",
    )
    assert resp.json()["ok"] is True
    # And the console's card, read again, carries what its approval needs.
    console = client_for(rob).get(reverse("risk_console")).content.decode()
    card = console.split(f'id="kill-{kill.pk}"')[1].split("</li>")[0]
    fresh = re.search(r'name="asked_at" value="([^"]+)"', card)[1]
    resp = client_for(rob).post(
        reverse("risk_kill_reset_approve", args=[kill.pk]),
        {"asked_at": fresh},
        HTTP_ACCEPT="application/json",
    )
    assert resp.json()["ok"] is True, resp.json()
    kill.refresh_from_db()
    assert not kill.active
