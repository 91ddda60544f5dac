"""The three roles, as Django groups with permissions: the one place that says who may do what."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission

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


def first_eyes_problem(first: Any, perm: str, what: str) -> str:
    """Four eyes needs two people who hold the role when the second one acts: a request
    whose author has since lost the role (or the account) lapses. '' if it stands."""
    fresh = type(first).objects.filter(pk=first.pk).first()  # no cached permissions
    if fresh is not None and fresh.is_active and fresh.has_perm(perm):
        return ""
    return (
        f"{first.get_username()} asked for {what} but no longer holds the role that may: "
        "the request lapses; ask for it again"
    )
