"""Desks, risk limits and their change requests, kill switches, overrides and exceptions.

Four eyes is enforced here as well as in the services: every decision column that must
belong to a second person has a CHECK constraint against its requester column, so the
database itself refuses a self-approval (SQLite and PostgreSQL both enforce them).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

USER = settings.AUTH_USER_MODEL


class Scope(models.TextChoices):
    FIRM = "firm", "Firm"
    DESK = "desk", "Desk"
    TRADER = "trader", "Trader"
    STRATEGY = "strategy", "Strategy"
    INSTRUMENT = "instrument", "Instrument"
    ORDER = "order", "Parent order"  # kill switches only
    # Every order an adaptive model version trades, as itself or as an expert in a gate.
    MODEL = "model", "Model version"


# A model's limits too: a new version can be let trade small before it trades large.
LIMIT_SCOPES = [
    Scope.FIRM,
    Scope.DESK,
    Scope.TRADER,
    Scope.STRATEGY,
    Scope.INSTRUMENT,
    Scope.MODEL,
]


class Metric(models.TextChoices):
    """Every limit is a maximum: a lower value is tighter; no limit is loosest."""

    MAX_ORDER_QTY = "max_order_qty", "Max parent order quantity (shares)"
    MAX_ORDER_NOTIONAL = "max_order_notional", "Max parent order value ($)"
    DAILY_NOTIONAL = "daily_notional", "Daily notional, working and done ($)"
    MAX_PARTICIPATION_PCT = "max_participation_pct", "Max participation (% of volume)"
    MAX_CHILD_QTY = "max_child_qty", "Max child order quantity (shares)"
    MAX_CHILD_NOTIONAL = "max_child_notional", "Max child order value ($)"
    PRICE_COLLAR_BPS = "price_collar_bps", "Price collar around the mid (bps)"
    MAX_MSGS_PER_S = "max_msgs_per_s", "Max messages a second (new, amend, cancel)"


LIMIT_VALUE = {"max_digits": 20, "decimal_places": 4}


class Desk(models.Model):
    name = models.CharField(max_length=32, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeskMembership(models.Model):
    """A user's desk (a trader is on at most one)."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="desk_membership")
    desk = models.ForeignKey(Desk, on_delete=models.PROTECT, related_name="members")


class RiskLimit(models.Model):
    """The active value of one limit at one scope. Changed only by an applied LimitRequest."""

    scope_type = models.CharField(max_length=16, choices=Scope.choices)
    scope_key = models.CharField(max_length=64, blank=True)  # "" for the firm
    metric = models.CharField(max_length=32, choices=Metric.choices)
    value = models.DecimalField(null=True, blank=True, **LIMIT_VALUE)  # None: no limit
    version = models.PositiveIntegerField(default=0)  # bumped by every change
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope_type", "scope_key", "metric"], name="one_limit_per_scope_metric"
            )
        ]
        ordering = ["scope_type", "scope_key", "metric"]
        permissions = [
            (
                "manage_risk",
                "Set and approve limits, engage and reset kill switches, grant overrides, "
                "handle exceptions",
            )
        ]


class LimitRequest(models.Model):
    PENDING, APPROVED, ACTIVE = "PENDING", "APPROVED", "ACTIVE"
    REJECTED, EXPIRED, SUPERSEDED = "REJECTED", "EXPIRED", "SUPERSEDED"
    STATUSES = [(s, s.title()) for s in (PENDING, APPROVED, ACTIVE, REJECTED, EXPIRED, SUPERSEDED)]

    scope_type = models.CharField(max_length=16, choices=Scope.choices)
    scope_key = models.CharField(max_length=64, blank=True)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    old_value = models.DecimalField(null=True, blank=True, **LIMIT_VALUE)
    old_version = models.PositiveIntegerField()  # an approval is void if the limit moved since
    new_value = models.DecimalField(null=True, blank=True, **LIMIT_VALUE)  # None: remove
    tightening = models.BooleanField()
    reason = models.TextField()
    requested_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    decided_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("requested_by")),
                name="limit_request_four_eyes",
            )
        ]


class KillSwitch(models.Model):
    HALTED, REDUCING = "HALTED", "REDUCING"
    STATES = [(HALTED, "Halted"), (REDUCING, "Reducing only")]

    scope_type = models.CharField(max_length=16, choices=Scope.choices)
    scope_key = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=STATES, default=HALTED)
    reason = models.TextField()
    engaged_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    engaged_at = models.DateTimeField()
    active = models.BooleanField(default=True)  # until a reset is approved; never by itself
    reset_requested_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reset_requested_at = models.DateTimeField(null=True, blank=True)
    reset_reason = models.TextField(blank=True)
    reset_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reset_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Reset by someone, only after someone else asked (a NULL asker would make a
            # bare inequality unknown, and a CHECK lets unknown through).
            models.CheckConstraint(
                condition=models.Q(reset_by__isnull=True)
                | (
                    models.Q(reset_requested_by__isnull=False)
                    & ~models.Q(reset_by=models.F("reset_requested_by"))
                ),
                name="kill_reset_four_eyes",
            ),
            models.CheckConstraint(
                condition=models.Q(active=True) | models.Q(reset_by__isnull=False),
                name="kill_inactive_only_by_reset",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.scope_type} {self.scope_key}".strip()
        return f"kill switch {self.pk} ({where}, {self.state})"


class KillAck(models.Model):
    """A market worker's acknowledgement: it applied the kill to its instrument."""

    kill = models.ForeignKey(KillSwitch, on_delete=models.CASCADE, related_name="acks")
    session = models.ForeignKey("execution.MarketSession", on_delete=models.CASCADE)
    applied_at = models.DateTimeField()  # the worker stopped the orders in scope
    orders = models.PositiveIntegerField(default=0)
    children_canceled = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)  # its last child was confirmed cancelled

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kill", "session"], name="one_ack_per_session")
        ]


class Override(models.Model):
    """A risk manager's single-use, time-boxed permission for one blocked parent order."""

    PENDING, GRANTED, USED, REJECTED, EXPIRED = "PENDING", "GRANTED", "USED", "REJECTED", "EXPIRED"
    STATUSES = [(s, s.title()) for s in (PENDING, GRANTED, USED, REJECTED, EXPIRED)]

    order = models.ForeignKey(
        "execution.ParentOrder", on_delete=models.CASCADE, related_name="overrides"
    )
    codes = models.JSONField()  # the reason codes it overrides, and only those
    reason = models.TextField()
    requested_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    granted_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    @property
    def shown_status(self) -> str:
        """As a person reads it: one that lapsed (its order ended, or its author lost the
        role) is "lapsed", not "rejected": nobody rejected it (a trial)."""
        if self.status == self.REJECTED and self.decision_note.startswith("lapsed:"):
            return "lapsed"
        return self.status.lower()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(granted_by__isnull=True)
                | ~models.Q(granted_by=models.F("requested_by")),
                name="override_four_eyes",
            )
        ]


class RiskException(models.Model):
    """One entry of the exception console. A repeat of an open one (same key) counts up."""

    INFO, WARNING, CRITICAL = "INFO", "WARNING", "CRITICAL"
    SEVERITIES = [(INFO, "Info"), (WARNING, "Warning"), (CRITICAL, "Critical")]
    OPEN, ACKNOWLEDGED, RESOLVED = "OPEN", "ACKNOWLEDGED", "RESOLVED"
    STATUSES = [(OPEN, "Open"), (ACKNOWLEDGED, "Acknowledged"), (RESOLVED, "Resolved")]

    kind = models.CharField(max_length=32, db_index=True)
    code = models.CharField(max_length=32, blank=True)  # a DenyReason where there is one
    severity = models.CharField(max_length=8, choices=SEVERITIES)
    scope_type = models.CharField(max_length=16, choices=Scope.choices)
    scope_key = models.CharField(max_length=64, blank=True)
    order = models.ForeignKey(
        "execution.ParentOrder", null=True, blank=True, on_delete=models.SET_NULL
    )
    trader = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )  # whose it is: that trader sees it too once it escalates
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    suggested_action = models.CharField(max_length=200, blank=True)
    dedupe_key = models.CharField(max_length=200, db_index=True)
    count = models.PositiveIntegerField(default=1)
    cause_at = models.DateTimeField()  # when the cause happened (wall clock)
    raised_at = models.DateTimeField()
    last_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=STATUSES, default=OPEN)
    assigned_to = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acked_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acked_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]


class ExceptionComment(models.Model):
    exception = models.ForeignKey(RiskException, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    text = models.TextField()

    class Meta:
        ordering = ["id"]


class Restriction(models.Model):
    """An instrument on the restricted list (compliance's: inside information, a deal in
    progress): no new orders on it, refused at entry. One risk manager puts it there at
    once, as a tightening; taking it off is a loosening and takes two. Working orders are
    not stopped by it: that is an instrument kill switch's job."""

    instrument = models.ForeignKey(
        "execution.Instrument", on_delete=models.PROTECT, related_name="restrictions"
    )
    reason = models.TextField()
    added_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField()
    active = models.BooleanField(default=True)  # until a lift is approved
    lift_requested_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_requested_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)
    lifted_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument"],
                condition=models.Q(active=True),
                name="restriction_one_active_per_instrument",
            ),
            models.CheckConstraint(
                condition=models.Q(lifted_by__isnull=True)
                | (
                    models.Q(lift_requested_by__isnull=False)
                    & ~models.Q(lifted_by=models.F("lift_requested_by"))
                ),
                name="restriction_lift_four_eyes",
            ),
            models.CheckConstraint(
                condition=models.Q(active=True) | models.Q(lifted_by__isnull=False),
                name="restriction_inactive_only_by_lift",
            ),
        ]

    def __str__(self) -> str:
        return f"restriction {self.pk} ({self.instrument_id})"
