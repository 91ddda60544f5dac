"""A reason people give is kept as given: one too long is refused with its length, by
every service that records one, never cut short (oversight/reasons.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from execution.models import ControlRequest, Instrument
from execution.services import order_control_request
from oversight.models import AuditRecord
from oversight.reasons import REASON_MAX
from oversight.risk.models import KillSwitch, LimitRequest
from oversight.risk.services import (
    exception_raise,
    exception_resolve,
    kill_switch_engage,
    limit_change_request,
)
from tests.stepping import submit

pytestmark = pytest.mark.django_db

LONG = "x" * (REASON_MAX + 1)


def _engage(rita: User, alice: User, instrument: Instrument, reason: str) -> Any:
    return kill_switch_engage(user=rita, scope_type="firm", reason=reason)


def _limit(rita: User, alice: User, instrument: Instrument, reason: str) -> Any:
    return limit_change_request(
        user=rita, scope_type="firm", scope_key="", metric="max_child_qty", new_value=10,
        reason=reason,
    )  # fmt: skip


def _resolve(rita: User, alice: User, instrument: Instrument, reason: str) -> Any:
    e = exception_raise(kind="TEST", severity="WARNING", scope_type="firm", title="t")
    return exception_resolve(user=rita, exception_id=e.pk, resolution=reason)


def _pause(rita: User, alice: User, instrument: Instrument, reason: str) -> Any:
    order = submit(alice, instrument)
    order.status = "WORKING"
    order.save(update_fields=["status"])
    return order_control_request(user=alice, order=order, action="pause", reason=reason)


@pytest.mark.parametrize("act", [_engage, _limit, _resolve, _pause])
def test_a_reason_too_long_is_refused_and_one_at_the_limit_kept_whole(
    act: Callable[..., Any], rita: User, alice: User, instrument: Instrument
) -> None:
    before = (
        AuditRecord.objects.count(),
        KillSwitch.objects.count(),
        LimitRequest.objects.count(),
        ControlRequest.objects.count(),
    )
    with pytest.raises(ValidationError) as e:
        act(rita, alice, instrument, LONG)
    assert f"at most {REASON_MAX} characters, got {REASON_MAX + 1}" in str(e.value)
    after = (
        AuditRecord.objects.count(),
        KillSwitch.objects.count(),
        LimitRequest.objects.count(),
        ControlRequest.objects.count(),
    )
    # Nothing of it was recorded (an exception raised for the test is the test's own).
    assert after[1:] == before[1:]
    act(rita, alice, instrument, "y" * REASON_MAX)
    assert AuditRecord.objects.filter(reason="y" * REASON_MAX).exists()
