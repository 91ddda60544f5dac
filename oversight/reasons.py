"""The reasons people give (for a kill switch, a limit, an override, a control, a role):
one length limit, enforced in the services, that the pages' fields state too.

A reason goes to the audit trail as it was given. One that is too long is refused with
its length, never cut short: a reason cut short is not the one given, and the person who
gave it would not know."""

from __future__ import annotations

from django.core.exceptions import ValidationError

REASON_MAX = 500


def reason_given(text: str | None, missing: str = "", field: str = "reason") -> str:
    """`text` stripped. ValidationError on `field` when it is longer than REASON_MAX, or
    blank and `missing` says what to write instead (a required reason)."""
    text = (text or "").strip()
    if not text and missing:
        raise ValidationError({field: missing})
    if len(text) > REASON_MAX:
        raise ValidationError({field: f"at most {REASON_MAX} characters, got {len(text):,}"})
    return text
