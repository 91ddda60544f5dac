"""The three roles, as Django groups with permissions: the one place that says who may do what."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.core.exceptions import ValidationError


class FourEyesRefused(ValidationError):
    """A refusal by the four-eyes rule itself: one's own request approved, or one whose
    author has lost the role. `four_eyes_refusals_audited` records it once the service's
    transaction has rolled back (an authorization audit: no attempt left a trace)."""


TRADER = "trader"
RISK_MANAGER = "risk_manager"
ADMIN = "admin"
ROLES = (TRADER, RISK_MANAGER, ADMIN)

# app_label.codename, as declared in the models' Meta.permissions.
TRADE = "execution.trade"  # enter and control one's own orders
VIEW_ALL_ORDERS = "execution.view_all_orders"
MANAGE_USERS = "oversight.manage_users"
VIEW_AUDIT = "oversight.view_audit"  # review, verify and export the audit trail
# Set and approve limits, engage and reset kill switches, grant overrides, handle exceptions.
MANAGE_RISK = "oversight.manage_risk"
# Recommend, approve (as the second person), reject and retire adaptive model versions.
APPROVE_MODEL = "execution.approve_model"

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    TRADER: (TRADE,),
    # Risk managers are the desk's compliance oversight: they read the audit trail too.
    RISK_MANAGER: (VIEW_ALL_ORDERS, VIEW_AUDIT, MANAGE_RISK, APPROVE_MODEL),
    ADMIN: (MANAGE_USERS, VIEW_AUDIT),  # admins manage users but cannot trade
}
ROLE_LABELS = {TRADER: "trader", RISK_MANAGER: "risk manager", ADMIN: "admin"}


def roles_ensure() -> None:
    """Create the groups and give each exactly its permissions (idempotent)."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [
            Permission.objects.get(
                content_type__app_label=p.split(".")[0], codename=p.split(".")[1]
            )
            for p in perms
        ]
        group.permissions.set(wanted)


def role_of(user: AbstractBaseUser | AnonymousUser) -> str:
    if not user.is_authenticated:
        return ""
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[union-attr]
    return next((r for r in ROLES if r in names), "")


# What ends a request's standing: its author's role or account changed after asking,
# through the users page or otherwise (group and flag changes are audited by signal).
ROLE_CHANGES = (
    "user.role_set",
    "user.role_grant.confirm",
    "user.deactivate",
    "user.groups_set",
    "user.flags_set",
)


def first_eyes_problem(first: Any, perm: str, what: str, since: Any = None) -> str:
    """Four eyes needs two people who hold the role when the second one acts, and held it
    throughout: a request whose author has since lost the role (or the account), or had
    it changed after asking (`since`: when they asked), lapses, for good (a trial: a
    request said to have lapsed was approved once the role was given back). '' if it
    stands."""
    from django.contrib.auth import get_user_model

    from oversight.models import AuditRecord

    # Fresh from the database (no cached permissions; `first` may be request.user's lazy
    # wrapper, whose type has no manager).
    fresh = get_user_model().objects.filter(pk=first.pk).first()
    held = fresh is not None and fresh.is_active and fresh.has_perm(perm)
    if held and since is not None:
        held = not AuditRecord.objects.filter(
            action__in=ROLE_CHANGES, object_type="User", object_id=str(first.pk), at__gt=since
        ).exists()
    if held:
        return ""
    return (
        f"{first.get_username()} asked for {what} but has not held the role that may "
        "throughout since: the request lapses; ask for it again"
    )


def asked_already(first: Any, user: Any, perm: str, noun: str, what: str, since: Any = None) -> str:
    """Why `user` may not ask for a `noun` ("reset") when `first` has asked already and
    still may: a second request would replace the first's reason, under the eyes of an
    approver who may have read the old one (and, from someone else, with one the asker then
    could not approve). '' when no request stands, or the one there has lapsed."""
    if first is None or first_eyes_problem(first, perm, what, since):
        return ""
    if first.pk == user.pk:
        return f"you have asked for this {noun} already: a second risk manager approves it"
    return (
        f"{first.get_username()} has asked for this {noun} already: approve it (you are the "
        "second risk manager), or leave it"
    )


def asked_at_posted(post: Any) -> str:
    """The `asked_at` an approval or decline form must carry: which request its sender read.
    Missing, the stale-request check below would be skipped, so a form without it (cut, or
    made by hand) is refused (a review: it was optional)."""
    from django.core.exceptions import ValidationError

    said = post.get("asked_at")
    if said is None:
        raise ValidationError(
            "asked_at: missing; the form says which request you read: reload the page and "
            "read the request again"
        )
    return str(said)


def request_unchanged(requested_at: Any, asked_at: str | None, what: str) -> None:
    """ValidationError when the request standing now is not the one the person read (the
    form says when the one they read was asked for): its author withdrew it and asked
    again, with another reason, while it was on their screen. None: not said, not checked."""
    from django.core.exceptions import ValidationError

    if asked_at is None:
        return
    said = asked_at.strip()
    if said:
        from datetime import datetime

        try:
            datetime.fromisoformat(said)
        except ValueError:
            # Not a time at all: a form that was tampered with or cut, not a request that
            # changed meanwhile (a trial's garbage read as "has changed").
            raise ValidationError(
                f"asked_at: {said[:40]!r} is not a time; reload the page and read the request again"
            ) from None
    now = requested_at.isoformat() if requested_at is not None else ""
    if now != said:
        raise ValidationError(
            f"{what} has changed since you read it (withdrawn, or asked again): read it "
            "again before you decide"
        )


def set_aside_as(first: Any, user: Any, noun: str, what: str, note: str) -> tuple[str, str]:
    """A standing request set aside, the safe direction (one risk manager): withdrawn by
    its author, or declined by another, who must say why. (verb, the audited reason);
    ValidationError when none stands or a decline has no reason."""
    from django.core.exceptions import ValidationError

    from oversight.reasons import reason_given

    note = reason_given(note)
    if first is None:
        raise ValidationError(f"nobody has asked for {what}: there is nothing to decline")
    if first.pk == user.pk:
        return "withdrawn", note or f"withdrawn by {user.get_username()}, who asked for it"
    if not note:
        raise ValidationError(
            {"reason": f"say why you decline {first.get_username()}'s {noun} request"}
        )
    return "declined", note


def second_eyes_problem(
    first: Any, user: Any, perm: str, noun: str, what: str, since: Any = None
) -> str:
    """Why `user` may not approve the `noun` that `first` asked for at `since` ('' if they
    may): nobody asked, they asked themselves, or the asker has not held the role
    throughout since (`what` names the request in that message)."""
    if first is None:
        return f"a {noun} must first be asked for, with a reason"
    if first.pk == user.pk:
        return f"you cannot approve your own {noun}: a second risk manager must"
    return first_eyes_problem(first, perm, what, since)
