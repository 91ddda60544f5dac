"""Role × action for the audit and user pages: anonymous users are sent to log in, users
without the permission get 403 and change nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from oversight.models import AuditRecord

from .conftest import client_for

pytestmark = pytest.mark.django_db

AUDIT = [
    ("get", "audit_list", []),
    ("get", "audit_export", []),
    ("post", "audit_verify", []),
]
USERS = [
    ("get", "user_list", []),
    ("post", "user_new", []),
    ("post", "user_role", [1]),
    ("post", "user_active", [1]),
]


@pytest.mark.parametrize(("method", "name", "args"), AUDIT + USERS)
def test_anonymous_is_sent_to_login(method: str, name: str, args: list[int]) -> None:
    resp = getattr(Client(), method)(reverse(name, args=args))
    assert resp.status_code == 302
    assert resp["Location"].startswith(reverse("login"))


def _who(request, persona: str) -> User:
    return request.getfixturevalue(persona)


@pytest.mark.parametrize("persona", ["alice", "rita"])
def test_traders_and_risk_managers_cannot_reach_or_change_users(request, persona, bob) -> None:
    who = _who(request, persona)
    c = client_for(who)
    records = AuditRecord.objects.count()
    assert c.get(reverse("user_list")).status_code == 403
    new = {"username": "mallory", "password": "a-long-enough-pass-47", "role": "admin"}
    assert c.post(reverse("user_new"), new).status_code == 403
    assert c.post(reverse("user_role", args=[bob.pk]), {"role": "admin"}).status_code == 403
    assert c.post(reverse("user_active", args=[bob.pk]), {"active": "0"}).status_code == 403
    assert not User.objects.filter(username="mallory").exists()
    bob.refresh_from_db()
    assert bob.is_active and list(bob.groups.values_list("name", flat=True)) == ["trader"]
    # Nothing changed; each refused change (not the refused read) is recorded, by whom,
    # what they tried and why (an authorization audit: they left no trace).
    denied = list(AuditRecord.objects.filter(seq__gt=records).order_by("seq"))
    assert [(d.action, d.actor_username, d.after["path"]) for d in denied] == [
        ("access.denied", who.username, path)
        for path in (
            reverse("user_new"),
            reverse("user_role", args=[bob.pk]),
            reverse("user_active", args=[bob.pk]),
        )
    ]
    assert all(d.after["method"] == "POST" and d.reason for d in denied)


def test_trader_cannot_see_the_audit_trail(alice) -> None:
    c = client_for(alice)
    records = AuditRecord.objects.count()
    assert c.get(reverse("audit_list")).status_code == 403
    assert c.get(reverse("audit_export")).status_code == 403
    assert c.post(reverse("audit_verify")).status_code == 403
    # Nothing verified, nothing exported: the refused POST is recorded as refused.
    assert list(AuditRecord.objects.filter(seq__gt=records).values_list("action", flat=True)) == [
        "access.denied"
    ]
    page = c.get(reverse("blotter")).content.decode()
    assert 'href="/audit/"' not in page and 'href="/users/"' not in page


def test_risk_manager_reads_the_audit_trail_but_not_users(rita) -> None:
    c = client_for(rita)
    assert c.get(reverse("audit_list")).status_code == 200
    assert c.get(reverse("audit_export")).status_code == 200
    assert c.post(reverse("audit_verify")).status_code == 302
    page = c.get(reverse("blotter")).content.decode()
    assert 'href="/audit/"' in page and 'href="/users/"' not in page


def test_admin_reaches_both_and_the_nav_says_so(adam) -> None:
    c = client_for(adam)
    page = c.get(reverse("user_list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/users/" aria-current="page"' in html and 'href="/audit/"' in html
    assert 'href="/orders/new/"' not in html  # admins cannot trade
    audit = c.get(reverse("audit_list")).content.decode()
    assert 'href="/audit/" aria-current="page"' in audit


def test_user_without_a_role_is_refused(db) -> None:
    c = client_for(User.objects.create_user("nobody", password="x"))
    for name in ("audit_list", "audit_export", "user_list"):
        assert c.get(reverse(name)).status_code == 403


def test_each_role_lands_on_its_own_first_screen(alice, rita, adam) -> None:
    for username, landing in [("alice", "blotter"), ("rita", "blotter"), ("adam", "user_list")]:
        resp = Client().post(reverse("login"), {"username": username, "password": f"pw-{username}"})
        assert resp.status_code == 302 and resp["Location"] == reverse(landing)


def test_there_is_no_way_to_edit_or_delete_a_record(adam) -> None:
    c = client_for(adam)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(c, method)(reverse("audit_list")).status_code == 405
        assert getattr(c, method)(reverse("audit_export")).status_code == 405
