"""Fixtures for the web tests: the shared personas, plus order rows made directly."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from execution.models import Instrument, ParentOrder
from oversight.risk.pretrade import desk_of
from tests.personas import adam, alice, bob, client_for, instrument, make_user, rita, ruth

__all__ = [
    "adam", "alice", "bob", "client_for", "instrument", "make_order", "make_user", "rita", "ruth",
]  # fmt: skip


def make_order(owner: User, instrument: Instrument, **over: Any) -> ParentOrder:
    """An order row as the worker would have left it (no dispatch: created directly)."""
    fields: dict[str, Any] = {
        "owner": owner,
        "instrument": instrument,
        "side": "buy",
        "quantity": 10_000,
        "start_minute": 0,
        "end_minute": 60,
        "strategy": "twap",
        "params": {"decision_interval_s": 30.0},
        "status": "WORKING",
        "desk": desk_of(owner.pk),  # as entry records it
    }
    fields.update(over)
    return ParentOrder.objects.create(**fields)
