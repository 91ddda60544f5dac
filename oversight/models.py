"""Users' roles and the append-only, hash-chained audit trail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class AuditRecord(models.Model):
    """One action by a person or the system. Never updated or deleted; a correction is a
    new record.

    Records form a hash chain (oversight/audit_chain.py): `seq` runs 1, 2, 3... with no gap,
    `prev_hash` is the previous record's `hash`, and `hash` covers this record's content and
    `prev_hash`. Write them only with oversight.audit.audit_record, which takes the chain
    lock. The database refuses UPDATE, DELETE and TRUNCATE on this table (migration 0004's
    triggers); on SQLite a migration that rebuilds this table drops them, so such a
    migration must create them again.
    """

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField(db_index=True)  # UTC, stored to the microsecond
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    # The name as it was: hashed with the record, so a later rename cannot break the chain.
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=32, blank=True)  # "system" for the workers
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # The canonical form the hash covers (audit_chain.CANONICAL_VERSION when written);
    # NULL on records written before version 2, which hash as version 1. Nullable, with
    # client_addr, so adding them altered the table in place: on SQLite a NOT NULL column
    # rebuilds it, and the rebuild drops the append-only triggers.
    chain_version = models.PositiveSmallIntegerField(null=True, blank=True)
    # Where the request came from, as the server saw it (REMOTE_ADDR: behind a proxy, the
    # proxy's); '' for the system's own records; NULL before version 2 kept it.
    client_addr = models.CharField(max_length=64, null=True, blank=True)
    # Unique: two records claiming the same predecessor would be a fork.
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]
        permissions = [
            ("manage_users", "Manage users and roles"),
            ("view_audit", "Review, verify and export the audit trail"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("audit records are append-only")
        if not self.hash:
            raise ValueError("write audit records with oversight.audit.audit_record")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("audit records are append-only")


# The risk side's models belong to this app too; they live in their own module.
from oversight.risk.models import (  # noqa: E402
    Desk,
    DeskMembership,
    ExceptionComment,
    KillAck,
    KillSwitch,
    LimitRequest,
    Override,
    RiskException,
    RiskLimit,
)

__all__ = [
    "AuditRecord",
    "Desk",
    "DeskMembership",
    "ExceptionComment",
    "KillAck",
    "KillSwitch",
    "LimitRequest",
    "Override",
    "RiskException",
    "RiskLimit",
]


class PasswordChangeDue(models.Model):
    """A login whose password an admin set: its owner chooses their own before anything
    else (oversight/password_due.py), so the admin does not go on knowing a working
    password (a trial)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_change_due"
    )
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    set_at = models.DateTimeField()


class RoleGrant(models.Model):
    """A role given to a login, by one admin, confirmed by a second person (another admin
    or a risk manager) before it takes effect (oversight/services.py). One admin could
    otherwise make two risk managers, or a trader, of logins they control, and approve
    their own limit changes or trade (an authorization audit). Taking a role away is the
    safe direction: at once."""

    PENDING, CONFIRMED, DECLINED, VOID = "PENDING", "CONFIRMED", "DECLINED", "VOID"
    STATUSES = [(s, s.title()) for s in (PENDING, CONFIRMED, DECLINED, VOID)]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_grants"
    )
    role = models.CharField(max_length=32)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("requested_by"))
                | ~models.Q(status="CONFIRMED"),
                name="role_grant_four_eyes",
            )
        ]


class LoginFailures(models.Model):
    """Tries at logging in under one name from one kind of browser, counted before each
    password is checked (oversight/login_throttle.py). Kept by the name that was typed,
    whether or not such a user exists, so a lock says nothing of which names are real."""

    username = models.CharField(max_length=150)
    # "" for browsers not known for this name; else the device id of the signed cookie a
    # browser gets when it logs in as the user, so strangers' tries cannot lock them out.
    device = models.CharField(max_length=32, blank=True)
    count = models.PositiveIntegerField(default=0)  # since the last lock ran out
    total = models.PositiveIntegerField(default=0)  # since the last login or unlock
    last_at = models.DateTimeField(db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    held = models.BooleanField(default=False)  # locked until an admin unlocks it
    refused = models.PositiveIntegerField(default=0)  # refusals not yet in the trail
    refused_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["username", "device"], name="login_failures_one_row")
        ]
