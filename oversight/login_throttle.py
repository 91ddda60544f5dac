"""Failed logins lock the name that was tried, so a password cannot be guessed at speed.

- **Counted before the password is checked**, in one locked step (`login_attempt`): a burst
  of parallel tries cannot get more than ``LOGIN_FAILURES_MAX`` checks past the count (a
  review found that counting after the check let a burst through, and a right guess in it
  log in while the name was locked).
- After ``LOGIN_FAILURES_MAX`` tries in a row that did not log in, the name is refused for
  ``LOGIN_LOCK_MINUTES``, the right password included. Tries while it is locked are refused
  unchecked and do not lengthen it. After ``LOGIN_FAILURES_HOLD`` in a row (locks running
  out in between), it stays locked until an admin unlocks it: guessing does not go on for
  ever at a few tries a quarter hour (NIST SP 800-63B §5.2.2 caps it at 100).
- **A browser the user has logged in on before keeps its own count** (OWASP's "device
  cookie"): a signed cookie set at each login names the user and a random device id, and
  that browser's tries are counted apart from everyone else's. Someone who knows a risk
  manager's name can lock it for strangers' browsers, but not for the risk manager's own.
- A login clears its own count (its device's, or strangers'); an admin's unlock or password
  reset clears them all (oversight/services.py), and `manage.py login_unlock` does when no
  admin can log in. Every failure, lock, refusal and unlock is in the audit trail.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from oversight.audit import audit_record, login_target
from oversight.models import LoginFailures

DEVICE_COOKIE = "oversight_login_device"
DEVICE_SALT = "oversight.login-device"
DEVICE_MAX_AGE_S = 365 * 24 * 3600
# A browser shared at a desk is known for the last few users who logged in on it.
DEVICE_USERS_MAX = 8
# Rows of names never locked are forgotten a quiet day on, and all rows, holds included,
# 90 quiet days on: a stranger typing made-up names must not grow the table for ever.
FORGET_AFTER = timedelta(days=1)
FORGET_LOCKED_AFTER = timedelta(days=90)
# A locked name refused many times a second would write as many audit records, each under
# the chain's lock: refusals are recorded at most once a minute per name and device, with
# how many there were.
REFUSALS_RECORDED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Attempt:
    """One try at logging in, counted before its password is checked."""

    username: str
    device: str  # "" for a browser not known to have logged in as this user
    refused: bool = False  # locked before this try: it is not checked
    locked_until: datetime | None = None  # when the lock (standing, or set by this try) ends
    held: bool = False  # locked until an admin unlocks
    locks: bool = False  # this try set the lock: it stands if the password is wrong


def login_attempt(
    username: str, device: str = "", *, request_id: str = "", source: dict[str, str] | None = None
) -> Attempt:
    """Counts a try at ``username`` from ``device``, or refuses it if the name is locked
    (and records the refusal: a refused try is never checked, so no authenticate() and
    no user_login_failed signal records it)."""
    now = timezone.now()
    window = timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
    username = username[:150]
    with transaction.atomic():
        _forget_old(now)
        row, _ = LoginFailures.objects.select_for_update(no_key=True).get_or_create(
            username=username, device=device, defaults={"last_at": now}
        )
        if row.held or (row.locked_until is not None and row.locked_until > now):
            row.refused += 1
            if row.refused_recorded_at is None or now - row.refused_recorded_at >= (
                REFUSALS_RECORDED_EVERY
            ):
                _refusals_recorded(row, request_id, source or {})
                row.refused_recorded_at = now
            row.save(update_fields=["refused", "refused_recorded_at"])
            return Attempt(
                username, device, refused=True, locked_until=row.locked_until, held=row.held
            )
        if row.locked_until is not None or now - row.last_at > window:
            # A lock that ran out, or tries long ago: the count starts again (the total
            # towards a hold does not).
            row.count, row.locked_until = 0, None
        row.count += 1
        row.total += 1
        row.last_at = now
        locks = row.count >= settings.LOGIN_FAILURES_MAX
        if row.total >= settings.LOGIN_FAILURES_HOLD:
            row.held, locks = True, True
        elif locks:
            row.locked_until = now + window
        row.save()
        return Attempt(username, device, locked_until=row.locked_until, held=row.held, locks=locks)


def login_succeeded(attempt: Attempt) -> None:
    """The password was right: this browser's count (or strangers') starts again."""
    _delete(LoginFailures.objects.filter(username=attempt.username, device=attempt.device))


def locked_rows(now: datetime | None = None) -> QuerySet[LoginFailures]:
    """The counts that lock their name now: held, or locked until later."""
    return LoginFailures.objects.filter(Q(held=True) | Q(locked_until__gt=now or timezone.now()))


def is_locked(username: str) -> bool:
    """Whether any browser's count locks the name now."""
    return locked_rows().filter(username=username[:150]).exists()


def login_locks(username: str) -> list[dict[str, Any]]:
    """Every count on the name, every browser's, as the trail and the Users page say it:
    ``locked_until`` is "until unlocked", an ISO time, or None when it is not locked."""
    now = timezone.now()
    return [
        {
            "browser": browser_of(r.device),
            "locked_until": "until unlocked"
            if r.held
            else (r.locked_until.isoformat() if r.locked_until and r.locked_until > now else None),
            "failures": r.total,
            "refusals_unrecorded": r.refused,
        }
        for r in LoginFailures.objects.filter(username=username[:150]).order_by("device")
    ]


def locks_cleared(username: str) -> list[dict[str, Any]]:
    """Clears every count and lock on the name; what there was, for the trail."""
    was = login_locks(username)
    LoginFailures.objects.filter(username=username[:150]).delete()  # counted in `was`
    return was


def lock_message(attempt: Attempt) -> str:
    if attempt.held:
        return "too many failed logins for this name: it is locked until an admin unlocks it"
    assert attempt.locked_until is not None
    return (
        "too many failed logins for this name: it is locked until "
        f"{attempt.locked_until.astimezone(UTC):%H:%M:%S} UTC; an admin can unlock it sooner"
    )


def _forget_old(now: datetime) -> None:
    # A name never locked, a day quiet, is forgotten; one that was locked (or held) keeps
    # its total towards the hold for FORGET_LOCKED_AFTER, so a quiet day between bursts
    # does not start the 100 again (a review).
    _delete(
        LoginFailures.objects.filter(
            Q(total__lt=settings.LOGIN_FAILURES_MAX, held=False, last_at__lt=now - FORGET_AFTER)
            | (
                Q(last_at__lt=now - FORGET_LOCKED_AFTER)
                & (
                    Q(refused_recorded_at__isnull=True)
                    | Q(refused_recorded_at__lt=now - FORGET_LOCKED_AFTER)
                )
            )
        )
    )


def _delete(rows: QuerySet[LoginFailures]) -> None:
    """Deletes the rows, recording first the refusals each held back (nothing is lost)."""
    for row in rows.filter(refused__gt=0):
        _refusals_recorded(row, "", {})
    rows.delete()


def _refusals_recorded(row: LoginFailures, request_id: str, source: dict[str, str]) -> None:
    """One record for the refusals the row counted since its last one (``source``: where
    the last came from); the count is reset."""
    _recorded(
        "auth.login_failed",
        row.username,
        row.device,
        row.held,
        row.locked_until,
        request_id,
        {**source, "refused": row.refused},
        reason="refused unchecked: the name is locked after failed logins",
    )
    row.refused = 0


def lock_recorded(attempt: Attempt, request_id: str, source: dict[str, str]) -> None:
    """The try whose failure locked the name (audit.py records the failure itself)."""
    _recorded(
        "auth.login_locked",
        attempt.username,
        attempt.device,
        attempt.held,
        attempt.locked_until,
        request_id,
        source,
    )


def _recorded(
    action: str,
    username: str,
    device: str,
    held: bool,
    until: datetime | None,
    request_id: str,
    extra: dict[str, Any],
    reason: str = "",
) -> None:
    audit_record(
        actor=None,
        role="anonymous",
        action=action,
        obj=login_target(username),
        after={
            "username": username,
            "locked_until": "until unlocked" if held else (until.isoformat() if until else ""),
            "browser": browser_of(device),
            **extra,
        },
        reason=reason,
        request_id=request_id,
    )


def browser_of(device: str) -> str:
    return "known browser" if device else "other browsers"


# -- the device cookie ---------------------------------------------------------------------


def device_of(request: HttpRequest | None, username: str) -> str:
    """The device id this browser holds for ``username``, or "" if it holds none, or one
    from before the user's password last changed: a copied cookie is of no use to its
    thief once the password is reset (a review)."""
    device, seal = _device_entry(request, username)
    if not device:
        return ""
    user = get_user_model().objects.filter(username=username[:150]).first()
    return device if user is not None and constant_time_compare(seal, _seal(user)) else ""


def device_cookie_set(request: HttpRequest, response: HttpResponse, user: Any, device: str) -> None:
    """After a login: this browser is known for the user from now on, and stays known for
    the last few others who logged in on it."""
    known = {k: v for k, v in _devices(request).items() if k != user.get_username()}
    known[user.get_username()] = [device or secrets.token_hex(8), _seal(user)]
    kept = dict(list(known.items())[-DEVICE_USERS_MAX:])
    response.set_cookie(
        DEVICE_COOKIE,
        signing.dumps(kept, salt=DEVICE_SALT),
        max_age=DEVICE_MAX_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def device_cookie_renewed(request: HttpRequest, response: HttpResponse, user: Any) -> None:
    """After the user changed their own password on this browser: it stays known to them
    (sealed anew, its own count kept). Otherwise the new password made it a stranger's,
    lockable by whoever was guessing, which is when a user changes it (a trial)."""
    device_cookie_set(request, response, user, _device_entry(request, user.get_username())[0])


def _device_entry(request: HttpRequest | None, username: str) -> tuple[str, str]:
    """The (device id, seal) this browser's cookie holds for the name, or ("", "")."""
    entry = _devices(request).get(username[:150])
    if isinstance(entry, list) and len(entry) == 2:
        device, seal = entry
        if isinstance(device, str) and 0 < len(device) <= 32 and isinstance(seal, str):
            return device, seal
    return "", ""


def _devices(request: HttpRequest | None) -> dict[str, Any]:
    value = request.COOKIES.get(DEVICE_COOKIE, "") if request is not None else ""
    if not value:
        return {}
    try:
        data = signing.loads(value, salt=DEVICE_SALT, max_age=DEVICE_MAX_AGE_S)
    except signing.BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def _seal(user: Any) -> str:
    # Changes whenever the password does (its hash is salted anew), as Django's own
    # session hash does.
    return salted_hmac(DEVICE_SALT, user.password, algorithm="sha256").hexdigest()[:16]
