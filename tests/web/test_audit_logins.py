"""Logins, failed logins and logouts are in the audit trail (never a password)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from oversight.models import AuditRecord


@pytest.mark.django_db
def test_logins_and_failures_are_audited() -> None:
    user = User.objects.create_user("tina", password="right-password")
    user.groups.add(Group.objects.get(name="trader"))
    c = Client()
    c.post("/login/", {"username": "tina", "password": "wrong-password"})
    c.post("/login/", {"username": "tina", "password": "right-password"})
    c.post("/logout/")
    actions = list(
        AuditRecord.objects.filter(action__startswith="auth.").values_list("action", "actor_role")
    )
    assert actions == [
        ("auth.login_failed", "anonymous"),
        ("auth.login", "trader"),
        ("auth.logout", "trader"),
    ]
    failed = AuditRecord.objects.get(action="auth.login_failed")
    # The name tried and where from; linked to the user it names, as the logout is (not
    # to a "SimpleLazyObject", a trial's find).
    assert failed.after == {"username": "tina", "from": "127.0.0.1"}
    for action in ("auth.login_failed", "auth.login", "auth.logout"):
        rec = AuditRecord.objects.get(action=action)
        assert (rec.object_type, rec.object_id) == ("User", str(user.pk)), action
    c.post("/login/", {"username": "nobody-here", "password": "x"})
    stranger = AuditRecord.objects.filter(action="auth.login_failed").last()
    assert (stranger.object_type, stranger.object_id) == ("", "")
    assert "password" not in str(failed.after)
    assert failed.at.tzinfo is not None
