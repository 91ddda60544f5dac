"""Personas and an instrument for the web tests: alice and bob trade, rita manages risk,
adam administers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from execution.models import Instrument, ParentOrder
from tests.conftest import REPO_SCENARIOS


def make_user(username: str, role: str) -> User:
    user = User.objects.create_user(username, password="pw-" + username)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def client_for(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def instrument(db: Any) -> Instrument:
    data = json.loads((REPO_SCENARIOS / "demo-midcap-buy.json").read_text())
    inst = data["instrument"]
    return Instrument.objects.create(
        symbol=inst["symbol"],
        name="demo",
        scenario=data,
        tick_size=Decimal(str(inst["tick_size"])),
        reference_price=Decimal(str(inst["reference_price"])),
        adv_shares=inst["adv_shares"],
    )


@pytest.fixture
def alice(db: Any) -> User:
    return make_user("alice", "trader")


@pytest.fixture
def bob(db: Any) -> User:
    return make_user("bob", "trader")


@pytest.fixture
def rita(db: Any) -> User:
    return make_user("rita", "risk_manager")


@pytest.fixture
def adam(db: Any) -> User:
    return make_user("adam", "admin")


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
    }
    fields.update(over)
    return ParentOrder.objects.create(**fields)
