"""A form or script older than the session (logged in or out in another tab since) is
refused by Django's CSRF check: said as what it is and what to do, as JSON to a script,
never "the server did not answer" (a trial)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from oversight.error_views import CSRF_REFUSED
from tests.personas import make_user

pytestmark = pytest.mark.django_db


def test_a_script_gets_the_reason_as_json() -> None:
    alice = make_user("alice", "trader")
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    r = c.post(
        reverse("order_control", args=[1]),
        {"action": "pause"},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 403
    assert r.json() == {"ok": False, "error": CSRF_REFUSED}


def test_a_page_says_reload() -> None:
    make_user("alice", "trader")
    r = Client(enforce_csrf_checks=True).post(
        reverse("login"), {"username": "alice", "password": "pw-alice"}
    )
    assert r.status_code == 403
    page = r.content.decode()
    assert "reload the page and try again" in page and "CSRF verification failed" not in page
