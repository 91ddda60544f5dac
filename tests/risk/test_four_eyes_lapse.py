"""Four eyes takes two people who hold the role when the second acts: a request whose
author has since lost the role, or the account, lapses instead of going through on one
person's say."""

from __future__ import annotations

from typing import Any

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


def _asked_by(rita: User, ruth: User) -> tuple[LimitRequest, KillSwitch, Any]:
    """rita asks for three things a second risk manager must approve: a limit change, a
    kill switch's reset, and a model version's approval."""
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
    return req, kill, mv


def test_requests_lapse_when_their_author_loses_the_role(rita: User, ruth: User) -> None:
    req, kill, mv = _asked_by(rita, ruth)
    _demote(rita)
    with pytest.raises(ValidationError, match=r"rita asked for limit request \d+ but has not held"):
        limit_request_approve(user=ruth, request_id=req.pk)
    with pytest.raises(ValidationError, match="has not held the role that may throughout since"):
        kill_switch_reset_approve(user=ruth, kill_id=kill.pk)
    with pytest.raises(ValidationError, match="has not held the role that may throughout since"):
        model_approve(user=ruth, version_id=mv.pk, note="test: checked")
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.PENDING
    assert KillSwitch.objects.get(pk=kill.pk).active


def test_a_deactivated_author_counts_as_gone(rita: User, ruth: User) -> None:
    kill = kill_switch_engage(user=ruth, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    rita.is_active = False
    rita.save(update_fields=["is_active"])
    with pytest.raises(ValidationError, match="has not held the role that may throughout since"):
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


def test_a_request_lapses_for_good_when_its_authors_role_changes_and_comes_back(
    rita: User, ruth: User, adam: User
) -> None:
    """A trial: the approvals were refused as lapsed while risk was a trader, and went
    through once an admin gave the role back, though nobody asked again."""
    from execution.model_registry import model_default_confirm, model_default_propose
    from oversight.roles import RISK_MANAGER
    from oversight.services import user_role_set
    from tests.personas import approved_model

    req, kill, mv = _asked_by(rita, ruth)
    v2 = approved_model("policy-v2")
    d = model_default_propose(user=rita, version_id=v2.pk, reason="steadier")
    from tests.personas import confirm_role

    user_role_set(actor=adam, user=rita, role=TRADER, reason="moved desk")
    confirm_role(rita, by=ruth)
    user_role_set(actor=adam, user=rita, role=RISK_MANAGER, reason="moved back")
    confirm_role(rita, by=ruth)
    lapsed = "rita asked for .* but has not held the role that may throughout since"
    with pytest.raises(ValidationError, match=lapsed):
        limit_request_approve(user=ruth, request_id=req.pk)
    with pytest.raises(ValidationError, match=lapsed):
        kill_switch_reset_approve(user=ruth, kill_id=kill.pk)
    with pytest.raises(ValidationError, match=lapsed):
        model_approve(user=ruth, version_id=mv.pk, note="test: checked")
    with pytest.raises(ValidationError, match=lapsed):
        model_default_confirm(user=ruth, designation_id=d.pk)
    from django.urls import reverse

    from tests.personas import client_for

    page = client_for(ruth).get(reverse("risk_limits")).content.decode()
    row = page.split(f'<tr id="request-{req.pk}">')[1].split("</tr>")[0]
    assert "rita's request lapsed (their role changed after they asked)" in row
    # Asked again, after the change, it stands: a reset, and a model's recommendation
    # (a version left pending could not be recommended again: a review).
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over, again")
    assert not kill_switch_reset_approve(user=ruth, kill_id=kill.pk).active
    again = model_recommend(user=rita, version_id=mv.pk, reason="evaluated, again")
    assert again.recommended_by == rita and again.recommend_reason == "evaluated, again"
    assert model_approve(user=ruth, version_id=mv.pk, note="test: checked").status == "APPROVED"


def test_a_role_changed_outside_the_users_page_lapses_a_request_too(rita: User, ruth: User) -> None:
    """Group changes made elsewhere (a shell, a seed) are audited as user.groups_set, and
    count as a role change (a review: they let the request come back)."""
    from oversight.roles import RISK_MANAGER

    kill = kill_switch_engage(user=ruth, scope_type="firm", reason="drill")
    kill_switch_reset_request(user=rita, kill_id=kill.pk, reason="drill over")
    _demote(rita)
    rita.groups.set([Group.objects.get(name=RISK_MANAGER)])
    with pytest.raises(ValidationError, match="has not held the role that may throughout since"):
        kill_switch_reset_approve(user=ruth, kill_id=kill.pk)


def test_every_try_to_do_without_four_eyes_is_in_the_audit_trail(
    rita: User, ruth: User, adam: User, alice: User
) -> None:
    """An authorization audit: self-approvals and approvals of lapsed requests were refused
    and left no trace. Each is recorded as `<action>.refused`, by whoever tried, on the
    request, with the refusal's words; a plain refusal (nothing asked) is not."""
    from execution.model_registry import model_default_confirm, model_default_propose
    from oversight.models import AuditRecord
    from oversight.risk.restricted import lift_approve, lift_request, restrict
    from oversight.risk.services import override_grant, override_request
    from tests.personas import approved_model, demo_instrument
    from tests.stepping import submit

    req, kill, mv = _asked_by(rita, ruth)
    d = model_default_propose(user=rita, version_id=approved_model("policy-v2").pk, reason="s")
    inst = demo_instrument()
    r = restrict(user=ruth, symbol=inst.symbol, reason="news pending")
    lift_request(user=rita, restriction_id=r.pk, reason="news out")
    tries = [
        (lambda: limit_request_approve(user=rita, request_id=req.pk), "limit.request.approve"),
        (lambda: kill_switch_reset_approve(user=rita, kill_id=kill.pk), "kill.reset.approve"),
        (lambda: model_approve(user=rita, version_id=mv.pk, note="n"), "model.approve"),
        (lambda: model_default_confirm(user=rita, designation_id=d.pk), "model.default_confirm"),
        (lambda: lift_approve(user=rita, restriction_id=r.pk), "restriction.lift.approve"),
    ]
    for attempt, _ in tries:
        with pytest.raises(ValidationError):
            attempt()
    refused = {a.action: a for a in AuditRecord.objects.filter(action__endswith=".refused")}
    assert sorted(refused) == sorted(f"{action}.refused" for _, action in tries)
    for rec in refused.values():
        assert rec.actor_username == "rita" and rec.object_id, rec
        assert (
            "own" in rec.reason or "you recommended" in rec.reason or "you proposed" in rec.reason
        )
    assert refused["limit.request.approve.refused"].object_id == str(req.pk)
    assert refused["kill.reset.approve.refused"].object_type == "KillSwitch"
    # Nothing the refusals were about changed.
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.PENDING
    assert KillSwitch.objects.get(pk=kill.pk).active
    # An override of one's own order, granted by oneself as a risk manager.
    from oversight.roles import RISK_MANAGER

    lift_approve(user=ruth, restriction_id=r.pk)
    kill_switch_reset_approve(user=ruth, kill_id=kill.pk)  # the firm trades again
    order = submit(alice, inst, quantity=20_000)  # over the firm's 10,000: blocked
    assert order.status == "BLOCKED", order.status_reason
    ov = override_request(user=alice, order_id=order.pk, reason="client needs it")
    alice.groups.set([Group.objects.get(name=RISK_MANAGER)])
    alice = User.objects.get(pk=alice.pk)  # its permissions read afresh
    with pytest.raises(ValidationError, match="you cannot grant your own request"):
        override_grant(user=alice, override_id=ov.pk, note="mine")
    rec = AuditRecord.objects.filter(action="override.grant.refused").get()
    assert rec.actor_username == "alice" and rec.object_id == str(ov.pk)
    # A lapsed author: recorded as refused, by the second person who tried.
    _demote(rita)
    with pytest.raises(ValidationError, match="has not held the role"):
        limit_request_approve(user=ruth, request_id=req.pk)
    lapsed = AuditRecord.objects.filter(action="limit.request.approve.refused").latest("seq")
    assert lapsed.actor_username == "ruth" and "has not held the role" in lapsed.reason
    # A reset nobody asked for is a plain refusal, not a four-eyes one.
    kill_alone = kill_switch_engage(user=ruth, scope_type="trader", scope_key="alice", reason="d")
    with pytest.raises(ValidationError, match="must first be asked for"):
        kill_switch_reset_approve(user=ruth, kill_id=kill_alone.pk)
    assert not AuditRecord.objects.filter(
        action="kill.reset.approve.refused", object_id=str(kill_alone.pk)
    ).exists()
