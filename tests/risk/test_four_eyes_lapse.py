"""Four eyes takes two people who hold the role when the second acts: a request whose
author has since lost the role, or the account, lapses instead of going through on one
person's say."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError

from execution.algos.adaptive import MODEL_DIR
from execution.model_registry import model_approve, model_recommend, model_register
from oversight.risk.models import KillSwitch, LimitRequest, RiskLimit
from oversight.risk.services import (
    kill_switch_engage,
    kill_switch_reset_approve,
    kill_switch_reset_request,
    limit_change_request,
    limit_request_approve,
)
from oversight.roles import TRADER

pytestmark = pytest.mark.django_db


def _demote(user: User) -> None:
    user.groups.set([Group.objects.get(name=TRADER)])


def test_requests_lapse_when_their_author_loses_the_role(rita: User, ruth: User) -> None:
    RiskLimit.objects.create(
        scope_type="firm", scope_key="", metric="max_order_qty", value=10_000, version=1
    )
    req = limit_change_request(
        user=rita, scope_type="firm", scope_key="", metric="max_order_qty",
        new_value="50000", reason="index day",
    )  # fmt: skip
    kill = kill_switch_engage(user=ruth, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    mv = model_register(path=MODEL_DIR / "policy-v1.onnx", note="test")
    model_recommend(user=rita, version_id=mv.pk, reason="evaluated")
    _demote(rita)
    with pytest.raises(
        ValidationError, match=r"rita asked for limit request \d+ but no longer holds"
    ):
        limit_request_approve(user=ruth, request_id=req.pk)
    with pytest.raises(ValidationError, match="no longer holds the role"):
        kill_switch_reset_approve(user=ruth, kill_id=kill.pk)
    with pytest.raises(ValidationError, match="no longer holds the role"):
        model_approve(user=ruth, version_id=mv.pk)
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.PENDING
    assert KillSwitch.objects.get(pk=kill.pk).active


def test_a_deactivated_author_counts_as_gone(rita: User, ruth: User) -> None:
    kill = kill_switch_engage(user=ruth, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    rita.is_active = False
    rita.save(update_fields=["is_active"])
    with pytest.raises(ValidationError, match="no longer holds the role"):
        kill_switch_reset_approve(user=ruth, kill_id=kill.pk)


def test_a_second_reset_request_does_not_replace_the_first(rita: User, ruth: User) -> None:
    kill = kill_switch_engage(user=ruth, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    with pytest.raises(ValidationError, match="rita has asked for this reset already"):
        kill_switch_reset_request(user=ruth, kill_id=kill.pk, reason="me too")
    # Nor by its own author: the approver may have read the first reason.
    with pytest.raises(ValidationError, match="you have asked for this reset already"):
        kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="another reason")
    assert KillSwitch.objects.get(pk=kill.pk).reset_reason == "drill over"
    assert not kill_switch_reset_approve(user=ruth, kill_id=kill.pk).active
