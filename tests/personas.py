"""Named test personas and an instrument, shared by every Django test (Healthchecks style):
alice and bob trade, rita and ruth manage risk (four eyes takes two), adam administers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from execution.models import Instrument
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
    return demo_instrument()


def demo_instrument(scenario: str = "demo-midcap-buy") -> Instrument:
    """An Instrument row from one of the repo's scenarios (HBRK by default)."""
    data = json.loads((REPO_SCENARIOS / f"{scenario}.json").read_text())
    inst = data["instrument"]
    return Instrument.objects.create(
        symbol=inst["symbol"],
        name=data.get("name", ""),
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
def ruth(db: Any) -> User:
    return make_user("ruth", "risk_manager")


@pytest.fixture
def adam(db: Any) -> User:
    return make_user("adam", "admin")


def approved_model(name: str = "policy-v1") -> Any:
    """A shipped policy registered and approved under four eyes by two risk managers (made
    here if the test has not), as a firm would before an adaptive order may trade."""
    from execution.model_registry import model_approve, model_recommend, model_register
    from execution.models import ModelVersion

    mv = ModelVersion.objects.filter(name=name).first()
    if mv is None:
        from execution.algos.adaptive import MODEL_DIR

        mv = model_register(path=MODEL_DIR / f"{name}.onnx", note="test")
    if mv.status == ModelVersion.APPROVED:
        return mv
    users = User.objects.filter(groups__name="risk_manager").order_by("pk")
    first = users.first() or make_user("rm-one", "risk_manager")
    second = users.exclude(pk=first.pk).first() or make_user("rm-two", "risk_manager")
    model_recommend(user=first, version_id=mv.pk, reason="test: evaluated")
    return model_approve(user=second, version_id=mv.pk, note="test: checked")


def set_limit(metric: str, value: Any, scope_type: str = "firm", scope_key: str = "") -> Any:
    """A limit as it stands after an approved change (arranging a test, not testing four eyes)."""
    from django.utils import timezone

    from oversight.risk.models import RiskLimit

    limit, _ = RiskLimit.objects.update_or_create(
        scope_type=scope_type,
        scope_key=scope_key,
        metric=metric,
        defaults={"value": Decimal(str(value)), "updated_at": timezone.now()},
    )
    RiskLimit.objects.filter(pk=limit.pk).update(version=limit.version + 1)
    limit.refresh_from_db()
    return limit


def confirm_role(user: User, *, by: User) -> User:
    """The second person confirms the role an admin asked for `user` (oversight.services:
    a role takes effect only so), once its owner has chosen their own password, as they do
    at their first login (user_password_change ends the PasswordChangeDue)."""
    from oversight.models import PasswordChangeDue, RoleGrant
    from oversight.services import role_grant_confirm

    PasswordChangeDue.objects.filter(user=user).delete()
    grant = RoleGrant.objects.get(user=user, status=RoleGrant.PENDING)
    return role_grant_confirm(user=by, grant_id=grant.pk, note="test: confirmed")
