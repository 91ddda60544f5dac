"""A login left idle is logged out; each request renews it (a compliance trial found
Django's two-week default)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from .conftest import client_for

pytestmark = pytest.mark.django_db


def test_an_idle_login_expires_and_a_request_renews_it(alice) -> None:
    assert settings.SESSION_COOKIE_AGE == 480 * 60 and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    c = client_for(alice)
    key = c.cookies["sessionid"].value
    # Two hours in: a request renews the session to a full idle period from now.
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(hours=6))
    assert c.get(reverse("blotter")).status_code == 200
    renewed = Session.objects.get(pk=key).expire_date - timezone.now()
    assert renewed > timedelta(hours=7, minutes=59)
    # Idle past it: logged out.
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    resp = c.get(reverse("blotter"))
    assert resp.status_code == 302 and resp["Location"].startswith(reverse("login"))
