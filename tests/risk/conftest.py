"""Fixtures for the risk tests: the shared personas, a second risk manager, and helpers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone

from oversight.risk.models import RiskLimit
from tests.personas import adam, alice, bob, instrument, make_user, rita, ruth

__all__ = ["adam", "alice", "bob", "instrument", "make_user", "rita", "ruth", "set_limit"]


def set_limit(metric: str, value: Any, scope_type: str = "firm", scope_key: str = "") -> RiskLimit:
    """A limit as it stands after an approved change (arranging a test, not testing four eyes)."""
    limit, _ = RiskLimit.objects.update_or_create(
        scope_type=scope_type,
        scope_key=scope_key,
        metric=metric,
        defaults={"value": Decimal(str(value)), "updated_at": timezone.now()},
    )
    RiskLimit.objects.filter(pk=limit.pk).update(version=limit.version + 1)
    limit.refresh_from_db()
    return limit
