"""Writes for users and roles (HackSoft style): each checks, changes, and records itself in
the audit trail with before and after, in one transaction.

An admin cannot lock themselves out (deactivate themselves, or drop their own admin role),
and no change may leave the desk without an active admin. The rows concerned are locked in
id order first, so two admins acting on each other at once queue instead of deadlocking.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from oversight.audit import audit_record, four_eyes_refusals_audited, services_recording
from oversight.login_throttle import is_locked, locks_cleared
from oversight.models import PasswordChangeDue, RoleGrant
from oversight.password_due import password_due
from oversight.reasons import reason_given
from oversight.risk.notify import user_sockets_close
from oversight.roles import (
    ADMIN,
    MANAGE_RISK,
    MANAGE_USERS,
    RISK_MANAGER,
    ROLE_LABELS,
    ROLES,
    TRADER,
    FourEyesRefused,
    first_eyes_problem,
    role_of,
    set_aside_as,
)

User = get_user_model()

# Used only where settings.AUTH_PASSWORD_VALIDATORS names none: an admin-made login to a
# trading system gets Django's standard checks either way.
DEFAULT_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


def user_create(
    *,
    actor: Any,
    username: str,
    password: str,
    role: str,
    reason: str = "",
    request_id: str = "",
) -> Any:
    """A new, active login; its role waits for a second person to confirm it (a role
    grant: `role_grant_confirm`). Raises ValidationError per field."""
    _require_manager(actor)
    reason = reason_given(reason)
    username = username.strip()
    errors: dict[str, list[str]] = {}
    try:
        User._meta.get_field("username").clean(username, None)
        # ASCII only: a name with a Cyrillic "а" in it reads as another user's in the
        # audit trail and on every approval (Django's own validator allows it).
        ASCIIUsernameValidator()(username)
    except ValidationError as e:
        errors["username"] = e.messages
    else:
        if User.objects.filter(username__iexact=username).exists():
            errors["username"] = [f"{username} is taken"]
    if role not in ROLES:
        errors["role"] = [f"unknown role {role!r}"]
    if not reason.strip():
        # Who may do what is the trail's first question: a login made with no reason was
        # the one user change recorded without one (a trial).
        errors["reason"] = ["say why: a new login is recorded with its reason"]
    try:
        _password_check(password, User(username=username), "password")
    except ValidationError as e:
        errors.update(e.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(), services_recording():
        user = User.objects.create_user(username=username, password=password)
        # Its owner chooses their own at the first login, as after a reset: the admin who
        # typed it must not go on knowing a working password (an authorization audit).
        PasswordChangeDue.objects.create(user=user, set_by=actor, set_at=timezone.now())
        # Tries at the name before it was anyone's are no one's to answer for: a stranger
        # could otherwise lock a new joiner's login before it exists (a trial).
        cleared = locks_cleared(username)
        audit_record(
            actor=actor,
            action="user.create",
            obj=user,
            before={"login_locks": cleared} if cleared else None,
            after=_user_json(user),
            reason=reason,
            request_id=request_id,
        )
        _grant_ask(actor, user, role, reason, request_id)
    return user


def user_role_set(
    *, actor: Any, user: Any, role: str, reason: str = "", request_id: str = ""
) -> Any:
    """Give the user exactly this role (other, non-role groups are kept)."""
    _require_manager(actor)
    reason = reason_given(reason)
    if role not in ROLES:
        raise ValidationError({"role": [f"unknown role {role!r}"]})
    with transaction.atomic(), services_recording():
        user = _lock(user)
        before = _user_json(user)
        if before["role"] == role:
            raise ValidationError(f"{user.get_username()} is already {_label(role)}")
        if user.pk == actor.pk and role != ADMIN:
            raise ValidationError("you cannot remove your own admin role")
        if before["role"] == ADMIN:
            _keep_an_admin(without=user)
        _require_reason(reason, "a role change")
        # The role held is taken away at once (the safe direction); the new one waits for
        # a second person (an authorization audit: one admin made risk managers of logins
        # they controlled and approved their own limit change with them).
        if before["role"]:  # one with no role has none to take away (nor to record)
            _role_take_away(
                actor,
                user,
                before,
                no_longer=f"{user.get_username()} no longer trades",
                reason=reason,
                request_id=request_id,
            )
        _grant_ask(actor, user, role, reason, request_id)
    return user


def _role_take_away(
    actor: Any, user: Any, before: dict[str, Any], *, no_longer: str, reason: str, request_id: str
) -> None:
    """The role `before` names, taken away at once (the safe direction) and audited; a
    trader's pending overrides lapse (`no_longer` says why), and a risk manager's going is
    checked against the four eyes' staffing."""
    _role_groups_set(user, None)
    if before["role"] == RISK_MANAGER:
        _four_eyes_staffing_check()
    if before["role"] == TRADER:
        from oversight.risk.services import overrides_lapse_for_trader

        overrides_lapse_for_trader(user, no_longer)
        _orders_left_uncontrolled(user, no_longer)
    audit_record(
        actor=actor,
        action="user.role_set",
        obj=user,
        before=before,
        after=_user_json(user),
        reason=reason,
        request_id=request_id,
    )


def _orders_left_uncontrolled(user: Any, why: str) -> None:
    """Only an order's trader controls it, so one who can no longer (deactivated, or no
    longer a trader) leaves their open orders working with nobody to pause or cancel them:
    said on the risk console, whose kill switch can stop them (a trial's went on filling
    while only the admin, who cannot engage one, was told)."""
    from oversight.risk.models import RiskException
    from oversight.risk.services import exception_raise
    from oversight.selectors import orders_open_of

    ids = list(orders_open_of(user).order_by("pk").values_list("pk", flat=True))
    if not ids:
        return
    name = user.get_username()
    n = len(ids)
    exception_raise(
        kind="ORDERS_WITHOUT_TRADER",
        severity=RiskException.CRITICAL,
        scope_type="trader",
        scope_key=name,
        title=f"{n} open order{'s' if n != 1 else ''} of {name}, who can no longer control them",
        detail=f"{why}; orders {', '.join(map(str, ids[:20]))}{' and more' if n > 20 else ''}",
        suggested_action=f"let them finish, or stop them with a kill switch on trader {name}",
        trader_id=user.pk,
        dedupe_key=f"orders-without-trader:{user.pk}",
    )


def _grant_ask(actor: Any, user: Any, role: str, reason: str, request_id: str) -> RoleGrant:
    """A role for `user`, asked for by `actor`: pending until a second person confirms it.
    One asked for before and not decided is void: the last word is the one to confirm."""
    now = timezone.now()
    grant = RoleGrant.objects.create(
        user=user, role=role, reason=reason, requested_by=actor, requested_at=now
    )
    _grants_void(
        RoleGrant.objects.filter(user=user, status=RoleGrant.PENDING).exclude(pk=grant.pk),
        actor,
        f"replaced by role grant {grant.pk}, for {ROLE_LABELS.get(role, role)}, asked by "
        f"{actor.get_username()}",
        request_id,
    )
    audit_record(
        actor=actor,
        action="user.role_grant.request",
        obj=user,
        after={"role": role, "grant": grant.pk},
        reason=reason,
        request_id=request_id,
    )
    return grant


def _role_held_back(actor: Any, user: Any, why: str, reason: str, request_id: str) -> str:
    """The role `user` holds, taken away at once and asked for again, to take effect once
    a second person confirms it; "" when they hold none. For a password an admin set and a
    login an admin reactivated: one admin could otherwise log in as a risk manager whose
    password they had set (or whose login they had revived) and be the second pair of eyes
    on anything, or trade as a trader (a trial)."""
    role = role_of(user)
    if not role:
        # A role asked for and not yet confirmed is asked for again, by this admin: the
        # request another admin made stood, and the one who set the password could see
        # it confirmed and log in with the role (a review).
        waiting = RoleGrant.objects.filter(user=user, status=RoleGrant.PENDING).first()
        if waiting is None:
            return ""
        _grant_ask(actor, user, waiting.role, f"{why}: {reason}", request_id)
        return waiting.role
    if role == ADMIN:
        # A superuser with no admin role resetting the only admin's password would leave
        # none (a review): the same refusal as taking the role away.
        _keep_an_admin(without=user)
    _role_take_away(
        actor,
        user,
        _user_json(user),
        no_longer=f"{user.get_username()}'s role is on hold: {why}",
        reason=f"on hold until a second person confirms it: {why}",
        request_id=request_id,
    )
    _grant_ask(actor, user, role, f"{why}: {reason}", request_id)
    return role


# A role asked for and neither confirmed nor declined in this long lapses (as a limit
# request does in a day): whoever confirms it reads a reason that may no longer hold.
ROLE_GRANT_TTL = timedelta(days=7)


def _grants_void(grants: Any, actor: Any, why: str, request_id: str = "") -> int:
    """Pending role grants set aside without a decision (replaced, lapsed, expired, the
    login deactivated), each audited as `user.role_grant.void` with why (a trial: a
    replaced request left no trace). `actor` None: the system."""
    n = 0
    for g in grants.select_related("user"):
        g.status, g.decided_at, g.decision_note = RoleGrant.VOID, timezone.now(), why[:2000]
        g.save(update_fields=["status", "decided_at", "decision_note"])
        audit_record(
            actor=actor,
            action="user.role_grant.void",
            obj=g.user,
            after={"role": g.role, "grant": g.pk},
            reason=why,
            request_id=request_id,
        )
        n += 1
    return n


def role_grants_expire() -> int:
    """Pending role grants older than ROLE_GRANT_TTL lapse; returns how many."""
    with transaction.atomic():
        # The grants' rows only: _grants_void reads each with its user, and a lock on the
        # user rows too would be taken grant first, where the user services take the user
        # first (a review: a deadlock, on PostgreSQL).
        old = RoleGrant.objects.select_for_update(no_key=True, of=("self",)).filter(
            status=RoleGrant.PENDING, requested_at__lt=timezone.now() - ROLE_GRANT_TTL
        )
        return _grants_void(old, None, f"expired: not confirmed within {ROLE_GRANT_TTL.days} days")


def may_confirm_roles(user: Any) -> bool:
    """Who is the second person for a role grant: an admin or a risk manager."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.has_perm(MANAGE_USERS) or user.has_perm(MANAGE_RISK))
    )


@four_eyes_refusals_audited("user.role_grant.confirm", "oversight.RoleGrant", "grant_id")
def role_grant_confirm(*, user: Any, grant_id: int, note: str = "", request_id: str = "") -> Any:
    """The second person: the role takes effect. Not the admin who asked, not the login
    it is for, and not once the asker has lost the admin role since asking."""
    note = reason_given(note, field="note")
    if not may_confirm_roles(user):
        raise PermissionDenied("only an admin or a risk manager may confirm a role")
    role_grants_expire()
    lapsed = ""
    with transaction.atomic(), services_recording():
        grant = RoleGrant.objects.select_for_update(no_key=True).get(pk=grant_id)
        if grant.status != RoleGrant.PENDING:
            raise ValidationError(f"role grant {grant.pk} is {grant.status.lower()}, not pending")
        if grant.requested_by_id == user.pk:
            raise FourEyesRefused(
                "you asked for this role: another admin or a risk manager confirms it"
            )
        if grant.user_id == user.pk:
            raise FourEyesRefused("a role of your own is confirmed by someone else")
        if password_due(grant.user):
            # Its password is still the one an admin typed: confirmed now, the role was the
            # admin's to use (a trial's admin logged in as the new risk manager and approved
            # a limit as the second pair of eyes). Once its owner has chosen their own, the
            # one confirming asks them, not the admin, that it is theirs.
            raise FourEyesRefused(
                f"{grant.user.get_username()} has not chosen their own password yet: an "
                "admin set it. Confirm the role once they have logged in and chosen one "
                "(ask them, not the admin)"
            )
        lapsed = first_eyes_problem(
            grant.requested_by, MANAGE_USERS, f"role grant {grant.pk}", grant.requested_at
        )
        if lapsed:
            # Ended for good, saved, and said once this transaction commits (it stayed
            # under "awaiting confirmation" with working buttons: a trial).
            _grants_void(RoleGrant.objects.filter(pk=grant.pk), user, f"lapsed: {lapsed}")
        else:
            target = _role_grant_apply(grant, user, note, request_id)
    if lapsed:
        raise FourEyesRefused(lapsed)
    return target


def _role_groups_set(user: Any, role: str | None) -> None:
    """The user's role groups: none, or exactly `role` (other groups kept); their open
    websockets close after commit, to be let in again, or refused, under the new role."""
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    uid = user.pk
    transaction.on_commit(lambda: user_sockets_close(uid))


def _role_grant_apply(grant: RoleGrant, user: Any, note: str, request_id: str) -> Any:
    """The confirmed role, given (inside role_grant_confirm's transaction)."""
    target = _lock(grant.user)
    if not target.is_active:
        raise ValidationError(f"{target.get_username()} is inactive: reactivate them first")
    before = _user_json(target)
    _role_groups_set(target, grant.role)
    if grant.role == RISK_MANAGER:
        _four_eyes_staffing_check()
    grant.status, grant.decided_by = RoleGrant.CONFIRMED, user
    grant.decided_at, grant.decision_note = timezone.now(), note
    grant.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_record(
        actor=user,
        action="user.role_grant.confirm",
        obj=target,
        before=before,
        after={
            **_user_json(target),
            "grant": grant.pk,
            "asked_by": grant.requested_by.get_username(),
        },
        reason=note,
        request_id=request_id,
    )
    return target


def role_grant_decline(
    *, user: Any, grant_id: int, note: str = "", request_id: str = ""
) -> RoleGrant:
    """Withdrawn by the admin who asked, or declined by a second person, who says why."""
    if not may_confirm_roles(user):
        raise PermissionDenied("only an admin or a risk manager may decline a role")
    with transaction.atomic():
        grant = RoleGrant.objects.select_for_update(no_key=True).get(pk=grant_id)
        if grant.status != RoleGrant.PENDING:
            raise ValidationError(f"role grant {grant.pk} is {grant.status.lower()}, not pending")
        try:
            verb, why = set_aside_as(
                grant.requested_by, user, "role", f"the role grant {grant.pk}", note
            )
        except ValidationError as e:  # the page's field is "note" (a trial read "reason:")
            if hasattr(e, "error_dict") and "reason" in e.message_dict:
                raise ValidationError({"note": e.message_dict["reason"]}) from None
            raise
        grant.status, grant.decided_at = RoleGrant.DECLINED, timezone.now()
        grant.decided_by = None if verb == "withdrawn" else user
        grant.decision_note = why
        grant.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_record(
            actor=user,
            action=f"user.role_grant.{'withdraw' if verb == 'withdrawn' else 'decline'}",
            obj=grant.user,
            after={"role": grant.role, "grant": grant.pk},
            reason=why,
            request_id=request_id,
        )
    return grant


def user_password_reset(
    *, actor: Any, user: Any, password: str, reason: str = "", request_id: str = ""
) -> Any:
    """An admin sets another user's password (they are locked out, or the login may be
    known to someone else). Every session of theirs ends at its next request (Django
    checks each session against the password) and their open websockets close now
    (oversight/audit.py). Audited with its reason; the password is never recorded."""
    _require_manager(actor)
    reason = reason_given(reason)
    with transaction.atomic(), services_recording():
        user = _lock(user)
        if user.pk == actor.pk:
            raise ValidationError(
                "change your own password on the Password page: it asks for the current one"
            )
        if user.is_superuser and not actor.is_superuser:
            # A superuser holds every permission at once; an admin who set one's password
            # could log in as one, which no service could make them (a review).
            raise ValidationError(
                f"{user.get_username()} is a superuser: their password is changed by "
                "themselves, another superuser or `manage.py changepassword`"
            )
        _require_reason(reason, "a password reset")
        _password_check(password, user, "password")
        user.set_password(password)
        user.save(update_fields=["password"])
        _role_held_back(actor, user, "its password was set by an admin", reason, request_id)
        # Its owner chooses their own before anything else (oversight/password_due.py).
        PasswordChangeDue.objects.update_or_create(
            user=user, defaults={"set_by": actor, "set_at": timezone.now()}
        )
        # Locked out by failed logins is why passwords get reset: the new one works now.
        cleared = locks_cleared(user.get_username())
        audit_record(
            actor=actor,
            action="user.password_reset",
            obj=user,
            before={"login_locks": cleared} if cleared else None,
            reason=reason,
            request_id=request_id,
        )
    return user


def user_password_change(
    *, user: Any, old_password: str, new_password: str, request_id: str = ""
) -> Any:
    """The user's own password, given the current one. Their other sessions end at their
    next request and their open websockets close; the caller keeps this request's session
    (`update_session_auth_hash`). Audited; the password is never recorded."""
    if not (user is not None and user.is_authenticated):
        raise PermissionDenied("log in first")
    if not user.check_password(old_password):
        # Recorded as a failed login is: a guess at the password from an open session
        # left no trace (a review).
        audit_record(
            actor=user,
            action="auth.password_check_failed",
            obj=user,
            reason="a wrong current password on the Password page",
            request_id=request_id,
        )
        raise ValidationError({"old_password": "that is not your current password"})
    with transaction.atomic(), services_recording():
        user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
        if new_password == old_password:
            raise ValidationError({"new_password": "that is your current password"})
        _password_check(new_password, user, "new_password")
        user.set_password(new_password)
        user.save(update_fields=["password"])
        PasswordChangeDue.objects.filter(user=user).delete()
        audit_record(actor=user, action="user.password_change", obj=user, request_id=request_id)
    return user


def user_login_unlock(*, actor: Any, user: Any, reason: str = "", request_id: str = "") -> Any:
    """Ends the locks failed logins put on the user's name (oversight/login_throttle.py),
    every browser's, before they run out: after the admin has made sure that the owner was
    the one trying. Not one's own (another admin's eyes), nor, for an admin who is not one,
    a superuser's (as with a password reset)."""
    _require_manager(actor)
    reason = reason_given(reason)
    with transaction.atomic(), services_recording():
        user = _lock(user)
        name = user.get_username()
        if not is_locked(name):
            raise ValidationError(f"{name} is not locked")
        if user.pk == actor.pk:
            raise ValidationError("another admin unlocks your login")
        if user.is_superuser and not actor.is_superuser:
            raise ValidationError(
                f"{name} is a superuser: another superuser or `manage.py login_unlock` "
                "unlocks their login"
            )
        _require_reason(reason, "an unlock")
        audit_record(
            actor=actor,
            action="user.login_unlock",
            obj=user,
            before={"login_locks": locks_cleared(name)},
            after={"login_locks": []},
            reason=reason,
            request_id=request_id,
        )
    return user


def _password_check(password: str, user: Any, field: str) -> None:
    try:
        password_validation.validate_password(
            password, user, password_validators=_password_validators()
        )
    except ValidationError as e:
        raise ValidationError({field: e.messages}) from None


def user_deactivate(*, actor: Any, user: Any, reason: str = "", request_id: str = "") -> Any:
    """The user can no longer log in; every session of theirs is deleted, and their open
    websockets close."""
    _require_manager(actor)
    reason = reason_given(reason)
    with transaction.atomic(), services_recording():
        user = _lock(user)
        if user.pk == actor.pk:
            raise ValidationError("you cannot deactivate yourself")
        if not user.is_active:
            raise ValidationError(f"{user.get_username()} is already inactive")
        if role_of(user) == ADMIN:
            _keep_an_admin(without=user)
        _require_reason(reason, "a deactivation")
        if role_of(user) == RISK_MANAGER:
            _four_eyes_staffing_check()
        _orders_left_uncontrolled(user, f"{user.get_username()} was deactivated")
        return _set_active(actor, user, False, reason=reason, request_id=request_id)


def user_reactivate(*, actor: Any, user: Any, reason: str = "", request_id: str = "") -> Any:
    _require_manager(actor)
    reason = reason_given(reason)
    with transaction.atomic(), services_recording():
        user = _lock(user)
        if user.is_active:
            raise ValidationError(f"{user.get_username()} is already active")
        # Restoring access says why, as taking it away does (a trial's went through blank).
        _require_reason(reason, "a reactivation")
        user = _set_active(actor, user, True, reason=reason, request_id=request_id)
        _role_held_back(actor, user, "the login was reactivated", reason, request_id)
        return user


def _sessions_end(user_id: int) -> int:
    """Delete every session logged in as the user; returns how many. A deactivation that
    only refused their next request left the session alive, so a reactivation brought it
    back without a login (an authorization audit). The live ones are decoded one by one:
    the session table is not indexed by user, and there are few."""
    from django.contrib.sessions.models import Session

    doomed = [
        s.pk
        for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(s.get_decoded().get("_auth_user_id", "")) == str(user_id)
    ]
    Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def _set_active(actor: Any, user: Any, active: bool, *, reason: str, request_id: str) -> Any:
    before = _user_json(user)
    user.is_active = active
    user.save(update_fields=["is_active"])
    ended = 0
    if not active:
        uid = user.pk
        ended = _sessions_end(uid)
        # A role waiting for them is not confirmed on their return (a trial): void.
        _grants_void(
            RoleGrant.objects.filter(user=user, status=RoleGrant.PENDING),
            actor,
            "the login was deactivated",
            request_id,
        )
        transaction.on_commit(lambda: user_sockets_close(uid))
        from oversight.risk.services import overrides_lapse_for_trader

        overrides_lapse_for_trader(user, f"{user.get_username()} is deactivated")
    audit_record(
        actor=actor,
        action="user.reactivate" if active else "user.deactivate",
        obj=user,
        before=before,
        after={**_user_json(user), "sessions_ended": ended} if not active else _user_json(user),
        reason=reason,
        request_id=request_id,
    )
    return user


def _require_manager(actor: Any) -> None:
    if not (actor is not None and actor.is_authenticated and actor.has_perm(MANAGE_USERS)):
        raise PermissionDenied("only admins manage users")


def _lock(user: Any) -> Any:
    """The user's row and every active admin's, locked in id order; the user, fresh.

    FOR NO KEY UPDATE: it excludes another user service and an order's entry (which take
    it too), but not the KEY SHARE lock that PostgreSQL's foreign-key check takes when a
    row naming one of these users is written (an audit record, an order). With FOR UPDATE,
    such a write holding the audit chain's lock and a user service waiting on that lock
    deadlocked, and PostgreSQL aborted one of them (a review)."""
    admins = User.objects.filter(is_active=True, groups__name=ADMIN).values("pk")
    locked = (
        User.objects.select_for_update(no_key=True)
        .filter(Q(pk=user.pk) | Q(pk__in=admins))
        .order_by("pk")
    )
    fresh = {u.pk: u for u in locked}.get(user.pk)
    if fresh is None:
        raise ValidationError("no such user")
    return fresh


def risk_managers_active() -> int:
    return User.objects.filter(is_active=True, groups__name=RISK_MANAGER).distinct().count()


def _four_eyes_staffing_check() -> None:
    """After a risk manager's role is taken away or their login deactivated (both at once,
    the safe direction, by one admin): with fewer than two left, no limit can be loosened,
    no kill switch reset and no override granted. Not refused (a risk manager who leaves
    must be stopped at once), but raised on the risk console, after commit (a trial: one
    admin removed every risk manager and nothing said so)."""

    def check() -> None:
        from oversight.risk.models import RiskException
        from oversight.risk.services import exception_cause_over, exception_raise

        n = risk_managers_active()
        if n >= 2:
            # Staffed again (a role confirmed): an open alert says so, for a person to
            # resolve, instead of standing as it was (a review).
            exception_cause_over(
                dedupe_key="four-eyes-short",
                title=f"{n} active risk managers again: four-eyes approvals can be given",
                detail="a second risk manager's role was confirmed since",
                suggested_action="check the roles on the users page, then resolve",
            )
            return
        exception_raise(
            kind="FOUR_EYES_SHORT",
            severity=RiskException.CRITICAL if n == 0 else RiskException.WARNING,
            scope_type="firm",
            title=f"{n} active risk manager{'' if n == 1 else 's'}: four-eyes approvals "
            "cannot be given",
            detail="loosening a limit, resetting a kill switch, granting an override and "
            "lifting a restriction each need two risk managers",
            suggested_action="an admin asks for the risk manager role for another login, "
            "and an admin or risk manager other than the asker confirms it",
            dedupe_key="four-eyes-short",
        )

    transaction.on_commit(check)


def _keep_an_admin(*, without: AbstractBaseUser) -> None:
    others = User.objects.filter(is_active=True, groups__name=ADMIN).exclude(pk=without.pk)
    if not others.exists():
        raise ValidationError(
            f"{without.get_username()} is the only active admin: make another admin first"
        )


def _require_reason(reason: str, what: str) -> None:
    # Who may do what is the audit trail's first question: it says why, not only that.
    reason_given(reason, f"say why: {what} is recorded with its reason")


def _user_json(user: Any) -> dict[str, Any]:
    """What the audit trail shows of a user: never the password hash."""
    return {
        "username": user.get_username(),
        "role": role_of(user),
        "is_active": user.is_active,
        "is_superuser": user.is_superuser,
    }


def _label(role: str) -> str:
    return {"admin": "an admin"}.get(role, "a " + ROLE_LABELS.get(role, role))


def _password_validators() -> list[Any]:
    configured = settings.AUTH_PASSWORD_VALIDATORS
    return password_validation.get_password_validators(configured or DEFAULT_PASSWORD_VALIDATORS)


DESK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,31}")


def _desk_move_problem(user: Any, desk: str) -> None:
    """Moving someone off a desk (`desk`; "" for none) must not lift its kill switch or its
    limits for them (a trial: one admin's desk change let a trader on a halted desk trade
    again, the four eyes of a reset skipped), nor leave their open orders on a desk they
    no longer sit on: an order stays on the desk it was entered on, whose kill switch then
    would stop it while the new desk's would not (a review: one entered on no desk, then
    put on EQ-A, kept working under EQ-A's halt)."""
    from execution.engine.orders import PARENT_TERMINAL
    from execution.models import ParentOrder
    from oversight.risk.models import KillSwitch

    kill = (
        KillSwitch.objects.filter(active=True, scope_type="desk", scope_key=desk).first()
        if desk
        else None
    )
    if kill is not None:
        raise ValidationError(
            {"desk": f"{desk} has an active kill switch (#{kill.pk}): moving "
             f"{user.get_username()} off it would lift it for them; two risk managers "
             "reset it first"}
        )  # fmt: skip
    open_orders = ParentOrder.objects.filter(owner=user).exclude(
        status__in=[s.value for s in PARENT_TERMINAL]
    )
    n = open_orders.count()
    if n:
        where = desk or "no desk"
        raise ValidationError(
            {"desk": f"{user.get_username()} has {n} open order{'s' if n != 1 else ''} on "
             f"{where}: they trade under {where}'s limits and kill switches; move them "
             "once those have ended"}
        )  # fmt: skip


def _desk_limits_lifted(source: str, target: str) -> list[str]:
    """The source desk's limits that the target desk (or no desk, "") does not hold as
    tight: moving a trader so would lift them for that trader, one admin's doing where
    loosening them takes two risk managers (an authorization audit)."""
    from oversight.risk.models import RiskLimit
    from oversight.risk.pretrade import plain_number

    def limits(desk: str) -> dict[str, Any]:
        if not desk:
            return {}
        rows = RiskLimit.objects.filter(scope_type="desk", scope_key=desk, value__isnull=False)
        return {r.metric: r.value for r in rows}

    there = limits(target)
    return [
        f"{metric} {plain_number(value)} ({target or 'no desk'}: "
        f"{'none' if there.get(metric) is None else plain_number(there[metric])})"
        for metric, value in sorted(limits(source).items())
        if there.get(metric) is None or there[metric] > value
    ]


def user_desk_set(*, actor: Any, user: Any, desk: str, reason: str, request_id: str = "") -> Any:
    """Put the user on a desk (made if new) or on none (""): the desk's limits and kill
    switches apply to their orders from the next order on. Audited, with a reason."""
    from oversight.risk.models import Desk, DeskMembership

    _require_manager(actor)
    reason = reason_given(reason)
    name = (desk or "").strip()
    if name and not DESK_NAME.fullmatch(name):
        raise ValidationError(
            {
                "desk": "a desk name is 1 to 32 letters A-Z or a-z, digits, spaces, '_', '.' "
                "or '-', starting with a letter or a digit"
            }
        )
    if not (reason or "").strip():
        raise ValidationError({"reason": "say why: desk limits and kill switches follow it"})
    with transaction.atomic(), services_recording():
        user = _lock(user)
        current = DeskMembership.objects.filter(user=user).select_related("desk").first()
        before = current.desk.name if current is not None else ""
        # One desk whatever the case it is typed in: "eq-1" is EQ-1, or its limits and kill
        # switches would miss whoever was put on the other spelling (a trial).
        same = list(Desk.objects.filter(name__iexact=name)) if name else []
        exact = [d for d in same if d.name == name]
        if not exact and len(same) > 1:
            raise ValidationError(
                {"desk": f"{name!r} could be {' or '.join(sorted(d.name for d in same))}: "
                 "type it exactly"}
            )  # fmt: skip
        existing = (exact or same or [None])[0]
        name = existing.name if existing is not None else name
        if before == name:
            raise ValidationError(f"{user.get_username()} is on {name or 'no desk'} already")
        _desk_move_problem(user, before)
        if before:
            # A new desk too: its limits are set by a risk manager first (a desk's limits
            # may be set before anyone is on it). Copying the old desk's gave the split
            # desks a budget each, doubling it (a trial).
            lifted = _desk_limits_lifted(before, name)
            if lifted:
                how = (
                    f"they set {name}'s limits at least as tight first (a new desk's may be "
                    f"set before anyone is on it), or loosen {before}'s"
                    if name
                    else f"they loosen {before}'s first; or put {user.get_username()} on a "
                    "desk that holds them"
                )
                raise ValidationError(
                    {"desk": f"moving {user.get_username()} from {before} to "
                     f"{name or 'no desk'} would lift {before}'s limits for them: "
                     f"{'; '.join(lifted)}. Lifting limits takes two risk managers: {how}"}
                )  # fmt: skip
        if current is not None:
            current.delete()
        if name:
            target = existing or Desk.objects.create(name=name)
            DeskMembership.objects.create(user=user, desk=target)
        audit_record(
            actor=actor, action="user.desk_set", obj=user, before={"desk": before},
            after={"desk": name}, reason=reason, request_id=request_id,
        )  # fmt: skip
    return user
