"""Refused attempts to change something are in the audit trail (an authorization audit:
they left only an anonymous line in the server's log): who tried, what, and why it was
refused. Refused reads change nothing and are not recorded."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.models import AuditRecord
from tests.personas import instrument
from tests.web.conftest import make_order

from .conftest import client_for

pytestmark = pytest.mark.django_db
__all__ = ["instrument"]


def denied_since(seq: int) -> list[tuple[str, str, str, str]]:
    return [
        (r.actor_username, r.after["method"], r.after["path"], r.reason)
        for r in AuditRecord.objects.filter(seq__gt=seq, action="access.denied").order_by("seq")
    ]


def last_seq() -> int:
    return AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_a_refused_change_is_recorded_with_who_what_and_why(
    alice: Any, bob: Any, adam: Any, instrument: Any
) -> None:
    start = last_seq()
    # A trader pressing a desk's kill switch (answered as JSON to the console's script).
    kill = client_for(alice).post(
        reverse("risk_kill"),
        {"scope_type": "firm", "scope_key": "", "reason": "x"},
        HTTP_ACCEPT="application/json",
    )
    assert kill.status_code == 403
    # An admin entering an order (a page refused by role).
    assert client_for(adam).post(reverse("order_new"), {}).status_code == 403
    # A read refused by role: not recorded.
    assert client_for(alice).get(reverse("risk_console")).status_code == 403
    said = denied_since(start)
    assert [(who, how, path) for who, how, path, _ in said] == [
        ("alice", "POST", reverse("risk_kill")),
        ("adam", "POST", reverse("order_new")),
    ]
    assert said[0][3] == kill.json()["error"] and said[1][3]


def test_another_traders_order_is_not_found_and_the_try_is_recorded(
    alice: Any, bob: Any, instrument: Any
) -> None:
    order = make_order(alice, instrument)
    start = last_seq()
    resp = client_for(bob).post(
        reverse("order_control", args=[order.pk]),
        {"action": "cancel", "reason": "x"},
        HTTP_ACCEPT="application/json",
    )
    assert resp.status_code == 404  # nothing about alice's order leaks
    assert denied_since(start) == [
        (
            "bob",
            "POST",
            reverse("order_control", args=[order.pk]),
            f"order {order.pk} is not one they may see",
        )
    ]
    order.refresh_from_db()
    assert order.status == "WORKING"
    # An order that does not exist is simply not found: there was nothing to try.
    start = last_seq()
    missing = client_for(bob).post(reverse("order_control", args=[order.pk + 1000]), {})
    assert missing.status_code == 404 and denied_since(start) == []


def test_a_form_older_than_the_session_is_recorded_as_refused(alice: Any) -> None:
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    start = last_seq()
    resp = c.post(
        reverse("password_change"), {"old_password": "x"}, HTTP_ORIGIN="http://elsewhere.example"
    )
    assert resp.status_code == 403
    # Not shown to be alice's own doing (a page elsewhere may have sent it, a review):
    # recorded by no one, naming whose session it came in and from where.
    assert denied_since(start) == []
    rec = AuditRecord.objects.get(seq__gt=start, action="access.csrf_refused")
    assert (rec.actor_id, rec.actor_role) == (None, "unverified")
    assert rec.after["session_of"] == "alice" and rec.after["origin"] == "http://elsewhere.example"
    assert rec.reason.startswith("CSRF")


def test_refusals_in_a_loop_are_recorded_once_a_minute_and_counted(alice: Any) -> None:
    """A review: a script posting in a loop wrote a record per try, burying the trail and
    holding its lock. Held back within a minute, and counted in the next record."""
    from django.core.cache import cache

    start = last_seq()
    c = client_for(alice)
    for _ in range(4):
        assert (
            c.post(
                reverse("risk_kill"), {"scope_type": "firm", "scope_key": "", "reason": "x"}
            ).status_code
            == 403
        )
    assert len(denied_since(start)) == 1
    cache.delete(f"oversight-denied:{alice.pk}:0:POST:{reverse('risk_kill')}")  # a minute on
    assert (
        c.post(
            reverse("risk_kill"), {"scope_type": "firm", "scope_key": "", "reason": "x"}
        ).status_code
        == 403
    )
    last = AuditRecord.objects.filter(action="access.denied").latest("seq")
    assert last.after["held_back_before"] == 3
    # Another path is its own count.
    assert c.post(reverse("user_new"), {}).status_code == 403
    assert len(denied_since(start)) == 3
