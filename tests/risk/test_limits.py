"""Limits under four eyes: PENDING -> APPROVED -> ACTIVE, or REJECTED / EXPIRED / SUPERSEDED."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from oversight.models import AuditRecord
from oversight.risk.models import LimitRequest, RiskLimit
from oversight.risk.services import (
    limit_change_request,
    limit_request_approve,
    limit_request_reject,
    limit_requests_expire,
)
from tests.risk.conftest import set_limit

pytestmark = pytest.mark.django_db


def ask(user: User, value: object, metric: str = "max_order_qty", **kw: object) -> LimitRequest:
    args: dict[str, object] = dict(
        user=user, scope_type="firm", scope_key="", metric=metric, new_value=value, reason="why"
    )
    args.update(kw)
    return limit_change_request(**args)  # type: ignore[arg-type]


def current(metric: str = "max_order_qty") -> Decimal | None:
    return RiskLimit.objects.get(scope_type="firm", scope_key="", metric=metric).value


def test_a_tightening_takes_one_person_and_applies_at_once(rita: User) -> None:
    set_limit("max_order_qty", 100_000)
    req = ask(rita, 50_000)
    assert req.status == "ACTIVE" and req.tightening and req.decided_by is None
    assert current() == Decimal(50_000)
    change = AuditRecord.objects.get(action="limit.change.active")
    assert change.actor_id == rita.pk  # her change, not the system's


def test_a_loosening_waits_for_a_second_risk_manager(rita: User, ruth: User) -> None:
    set_limit("max_order_qty", 100_000)
    req = ask(rita, 200_000)
    assert req.status == "PENDING" and current() == Decimal(100_000)
    with pytest.raises(ValidationError, match="cannot approve your own"):
        limit_request_approve(user=rita, request_id=req.pk)
    limit_request_approve(user=ruth, request_id=req.pk, note="ok for the index rebalance")
    req.refresh_from_db()
    assert req.status == "ACTIVE" and req.decided_by == ruth and current() == Decimal(200_000)
    actions = list(AuditRecord.objects.values_list("action", flat=True))
    assert actions.index("limit.request.approved") < actions.index("limit.change.active")


def test_removing_a_limit_is_a_loosening(rita: User, ruth: User) -> None:
    set_limit("max_order_qty", 100_000)
    req = ask(rita, "")
    assert req.status == "PENDING" and not req.tightening
    limit_request_approve(user=ruth, request_id=req.pk)
    assert current() is None


def test_the_database_refuses_a_self_approval_too(rita: User) -> None:
    set_limit("max_order_qty", 100_000)
    req = ask(rita, 200_000)
    with pytest.raises(IntegrityError), transaction.atomic():
        LimitRequest.objects.filter(pk=req.pk).update(decided_by=rita)


def test_an_approval_is_void_if_the_limit_changed_since_the_request(rita: User, ruth: User) -> None:
    set_limit("max_order_qty", 100_000)
    loosen = ask(rita, 200_000)
    ask(ruth, 150_000, metric="max_child_qty")  # another limit: no effect
    set_limit("max_order_qty", 90_000)  # this one moved (someone tightened it)
    limit_request_approve(user=ruth, request_id=loosen.pk)
    loosen.refresh_from_db()
    assert loosen.status == "SUPERSEDED" and "changed since the request" in loosen.decision_note
    assert current() == Decimal(90_000)


def test_a_newer_request_supersedes_a_pending_one(rita: User, ruth: User) -> None:
    set_limit("max_order_qty", 100_000)
    first = ask(rita, 200_000)
    second = ask(ruth, 300_000)
    first.refresh_from_db()
    assert first.status == "SUPERSEDED" and second.status == "PENDING"
    with pytest.raises(ValidationError, match="superseded, not pending"):
        limit_request_approve(user=ruth, request_id=first.pk)


def test_rejected_and_expired_requests_change_nothing(rita: User, ruth: User) -> None:
    set_limit("max_order_qty", 100_000)
    req = ask(rita, 200_000)
    with pytest.raises(ValidationError) as e:  # another's request: say why (a trial)
        limit_request_reject(user=ruth, request_id=req.pk, note=" ")
    assert e.value.message_dict == {"note": ["say why you reject rita's request"]}
    limit_request_reject(user=ruth, request_id=req.pk, note="not today")
    req.refresh_from_db()
    assert req.status == "REJECTED" and req.decided_by == ruth
    old = ask(rita, 250_000)
    LimitRequest.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert limit_requests_expire() == 1
    with pytest.raises(ValidationError, match="expired"):
        limit_request_approve(user=ruth, request_id=old.pk)
    assert current() == Decimal(100_000)


def test_only_risk_managers_ask_or_decide_and_bad_input_is_named(
    alice: User, adam: User, rita: User, ruth: User
) -> None:
    for who in (alice, adam):
        with pytest.raises(ValidationError, match="only a risk manager"):
            ask(who, 1)
    set_limit("max_order_qty", 100_000)
    req = ask(rita, 200_000)
    for who in (alice, adam):
        with pytest.raises(ValidationError, match="only a risk manager"):
            limit_request_approve(user=who, request_id=req.pk)
    for bad, field in (("-5", "new_value"), ("abc", "new_value"), ("NaN", "new_value")):
        with pytest.raises(ValidationError) as e:
            ask(ruth, bad)
        assert field in e.value.message_dict
    with pytest.raises(ValidationError) as e:
        ask(ruth, 5, metric="max_bananas")
    assert "metric" in e.value.message_dict
    with pytest.raises(ValidationError) as e:
        ask(ruth, 5, scope_type="trader", scope_key="nobody")
    assert "no trader 'nobody'" in str(e.value.message_dict["scope_key"])
    with pytest.raises(ValidationError) as e:  # a risk manager: it would never apply
        ask(ruth, 5, scope_type="trader", scope_key="rita")
    assert e.value.message_dict["scope_key"] == [
        "'rita' is not a trader: a trader's limit applies to their orders"
    ]
    with pytest.raises(ValidationError) as e:
        ask(ruth, 5, reason=" ")
    assert "reason" in e.value.message_dict


def test_a_value_may_be_typed_as_the_page_shows_it(rita: User) -> None:
    """The page shows 2,000,000; typed back so, it is that number (groups of three only)."""
    set_limit("max_order_qty", 5_000_000)
    ask(rita, "2,000,000")
    assert current() == Decimal(2_000_000)
    ask(rita, "1,500.5", metric="max_order_notional")
    assert current("max_order_notional") == Decimal("1500.5")
    with pytest.raises(ValidationError, match="written with digits"):
        ask(rita, "2,00,000")


def test_an_instrument_scope_is_read_whatever_its_case(rita: User, instrument) -> None:
    from oversight.risk.services import kill_switch_engage

    kill = kill_switch_engage(
        user=rita, scope_type="instrument", scope_key=instrument.symbol.lower(), reason="news"
    )
    assert kill.scope_key == instrument.symbol
