"""Forms for the audit and user pages: they parse what the browser sent; the rules about
users live in oversight/services.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from oversight.audit import request_id_of, source_of
from oversight.login_throttle import (
    Attempt,
    device_of,
    lock_message,
    lock_recorded,
    login_attempt,
)
from oversight.reasons import REASON_MAX
from oversight.roles import ROLE_LABELS, ROLES
from oversight.selectors import AuditFilters

ROLE_CHOICES = [(r, ROLE_LABELS[r]) for r in ROLES]
TIME_HELP = "UTC, e.g. 2026-11-23 or 2026-11-23 14:05:30.250"


def parse_utc(value: str, *, end_of_day: bool = False) -> datetime | None:
    """A date or an ISO-8601 date and time, as UTC. Without an offset it is UTC already; a
    bare date is the start of that day, or its last microsecond with end_of_day, and a time
    to the minute (or second) is the start of that minute, or with end_of_day its last
    microsecond: "to 00:10" takes in what happened during 00:10 (a trial's ended at
    00:10:00.000)."""
    value = value.strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise forms.ValidationError(
            f"“{value[:40]}” is not a date and time; write it like 2026-11-23 14:05 (UTC)"
        ) from None
    if end_of_day:
        clock = value.replace("T", " ").split(" ", 1)[-1]
        digits = clock.split("+")[0].split("-")[0].split("Z")[0].split("z")[0]
        if digits.count(":") == 1:  # hh:mm
            at = at.replace(second=59, microsecond=999_999)
        elif "." not in digits:  # hh:mm:ss
            at = at.replace(microsecond=999_999)
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:
        raise forms.ValidationError(
            f"“{value[:40]}” is out of range: write a date and time between years 1 and 9999 in UTC"
        ) from None


class AuditFilterForm(forms.Form):
    user = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    object_type = forms.CharField(required=False, max_length=64, label="Object type")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    since = forms.CharField(required=False, max_length=40, label="From", help_text=TIME_HELP)
    until = forms.CharField(required=False, max_length=40, label="To", help_text=TIME_HELP)

    def clean_object_id(self) -> str:
        # Every object's id in the trail is its row's number: another value names nothing,
        # and is said so, not answered with "No records" (a trial).
        value = self.cleaned_data["object_id"].strip()
        if value and not (value.isascii() and value.isdigit()):
            raise forms.ValidationError(
                f"“{value[:40]}” is not an object id: the trail records whole numbers (an "
                "order's, a user's, a limit's number)"
            )
        return value

    def clean_since(self) -> datetime | None:
        return parse_utc(self.cleaned_data["since"])

    def clean_until(self) -> datetime | None:
        return parse_utc(self.cleaned_data["until"], end_of_day=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        unknown = sorted(k for k in self.data if k not in self.fields and k != "page")
        if unknown:
            # Ignored, it listed the whole trail as if filtered (as TCA's ?expert= did).
            raise forms.ValidationError(
                f"“{unknown[0][:40]}” is not a filter here; the filters are "
                f"{', '.join(self.fields)}"
            )
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since > until:
            self.add_error("until", "“To” is before “From”")
        return data

    def filters(self) -> AuditFilters:
        d = self.cleaned_data
        return AuditFilters(
            user=d["user"].strip(),
            action=d["action"].strip(),
            object_type=d["object_type"].strip(),
            object_id=d["object_id"].strip(),
            since=d["since"],
            until=d["until"],
        )


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    reason = forms.CharField(
        max_length=REASON_MAX,
        error_messages={"required": "say why: a new login is recorded with its reason"},
    )


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    reason = forms.CharField(required=False, max_length=REASON_MAX)


class UserActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", "active"), ("0", "inactive")], coerce=int)
    reason = forms.CharField(required=False, max_length=REASON_MAX)


class PasswordResetForm(forms.Form):
    """An admin's reset of another user's password."""

    password = forms.CharField(strip=False, max_length=4096)
    # Typed twice: a typo would lock the user out with a password nobody knows (a trial).
    password_again = forms.CharField(strip=False, max_length=4096)
    reason = forms.CharField(required=False, max_length=REASON_MAX)

    def clean(self) -> dict[str, Any]:
        return _typed_twice(self, "password", "password_again", "the two passwords differ")


class PasswordChangeForm(forms.Form):
    """A user's change of their own password."""

    old_password = forms.CharField(strip=False, max_length=4096, label="Current password")
    new_password = forms.CharField(strip=False, max_length=4096, label="New password")
    new_password_again = forms.CharField(strip=False, max_length=4096, label="New password, again")

    def clean(self) -> dict[str, Any]:
        return _typed_twice(
            self, "new_password", "new_password_again", "the two new passwords differ"
        )


def _typed_twice(form: forms.Form, first: str, again: str, differ: str) -> dict[str, Any]:
    """A password typed twice: the second field says so when the two differ."""
    data = form.cleaned_data
    if data.get(first) is not None and data.get(again) is not None and data[first] != data[again]:
        form.add_error(again, differ)
    return data


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form, with each try counted before its password is checked and a
    locked name refused unchecked (oversight/login_throttle.py). The view reads
    ``attempt`` after a login, to clear the count and give the browser its device cookie."""

    attempt: Attempt | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        if not (username and self.cleaned_data.get("password")):
            return super().clean()
        attempt = self.attempt = login_attempt(
            username,
            device_of(self.request, username),
            request_id=request_id_of(self.request),
            source=source_of(self.request),
        )
        if attempt.refused:
            raise forms.ValidationError(lock_message(attempt), code="locked")
        try:
            return super().clean()
        except forms.ValidationError:
            if attempt.locks:  # this try's failure locked the name
                lock_recorded(attempt, request_id_of(self.request), source_of(self.request))
                raise forms.ValidationError(
                    [self.get_invalid_login_error(), lock_message(attempt)]
                ) from None
            raise
