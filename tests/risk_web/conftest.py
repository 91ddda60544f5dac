"""Fixtures for the risk screens: the shared personas, a second risk manager (four eyes
needs two), order rows made directly, and a logged-in session for websockets."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from execution.models import Instrument, ParentOrder
from oversight.risk.pretrade import desk_of
from tests.personas import adam, alice, bob, client_for, instrument, make_user, rita

__all__ = [
    "adam",
    "alice",
    "bob",
    "client_for",
    "instrument",
    "make_order",
    "make_user",
    "rita",
    "rob",
    "session_headers",
]


@pytest.fixture
def rob(db: Any) -> User:
    """The second risk manager: approves what rita asks for, and the other way round."""
    return make_user("rob", "risk_manager")


def make_order(owner: User, instrument: Instrument, **over: Any) -> ParentOrder:
    """An order row as a worker would have left it (created directly, never dispatched)."""
    fields: dict[str, Any] = {
        "owner": owner,
        "instrument": instrument,
        "side": "buy",
        "quantity": 10_000,
        "start_minute": 0,
        "end_minute": 60,
        "strategy": "twap",
        "params": {},
        "status": "WORKING",
        "desk": desk_of(owner.pk),  # as entry records it
    }
    fields.update(over)
    return ParentOrder.objects.create(**fields)


def session_headers(user: User | None) -> list[tuple[bytes, bytes]]:
    """A websocket's headers: the allowed origin and, for a user, a real session cookie."""
    headers = [(b"origin", b"http://localhost")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers
