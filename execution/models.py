"""Orders, fills and the engine's event stream, as persisted.

The engine's domain events are the source of truth: each is stored once (unique per
parent order and sequence number) and the order, child and fill rows are projections of
them written in the same transaction. Prices are Decimal with one precision, declared here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.db import models

from execution.algos.registry import strategy_class
from execution.engine.orders import ChildStatus, ParentStatus

PRICE = {"max_digits": 18, "decimal_places": 6}


@cache
def adaptive_default_lot() -> int:
    """The adaptive strategy's default `min_child_qty`, for a row that lacks the key."""
    (spec,) = (p for p in strategy_class("adaptive").schema() if p.name == "min_child_qty")
    return int(spec.default)


# The database knows one status the engine does not: an order whose worker died. Its
# working children were cancelled; the trader can resume it on another worker.
SUSPENDED = "SUSPENDED"
# And one before any worker sees it: an order that breached a pre-trade limit. It goes to
# the market only with a risk manager's override (oversight/risk), else it is rejected.
BLOCKED = "BLOCKED"
PARENT_STATUS_CHOICES = [(s.value, s.value.replace("_", " ").title()) for s in ParentStatus] + [
    (SUSPENDED, "Suspended"),
    (BLOCKED, "Blocked"),
]
CHILD_STATUS_CHOICES = [(s.value, s.value.replace("_", " ").title()) for s in ChildStatus]
SIDE_CHOICES = [("buy", "Buy"), ("sell", "Sell")]


class Instrument(models.Model):
    symbol = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=128, blank=True)
    # A scenario in FORMAT.md's shape: instrument, venues, profile, regimes, outages. Its
    # "order" part is ignored; orders come from traders.
    scenario = models.JSONField()
    tick_size = models.DecimalField(**PRICE)
    reference_price = models.DecimalField(**PRICE)
    adv_shares = models.BigIntegerField()
    restricted = models.BooleanField(default=False)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class ParentOrder(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=4, choices=SIDE_CHOICES)
    quantity = models.BigIntegerField()
    # As entered, before any reduce amend (None: never cut, or entered before this was
    # kept): a cut order shows what it was, so it does not read as a smaller one done.
    entered_quantity = models.BigIntegerField(null=True, blank=True)
    start_minute = models.FloatField()
    end_minute = models.FloatField()
    limit_price = models.DecimalField(null=True, blank=True, **PRICE)
    strategy = models.CharField(max_length=32)
    # The safe baseline that took over when the strategy failed (the order says so).
    fallback_strategy = models.CharField(max_length=32, blank=True)
    params = models.JSONField(default=dict)
    # An adaptive order's policy: the exact registered version that trades it.
    model_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    # The expert of a gated version that trades it (by its instrument's quoted spread), as
    # it was when the order was entered: not worked out again from a file that may change.
    model_expert = models.CharField(max_length=64, blank=True)
    # A resume that re-planned what was left (the engine's Replan: at_s, done,
    # others_volume), kept so a worker that takes the order up after a loss plans the same.
    replan = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=PARENT_STATUS_CHOICES, default=ParentStatus.NEW.value
    )
    status_reason = models.CharField(max_length=255, blank=True)
    filled_qty = models.BigIntegerField(default=0)
    working_qty = models.BigIntegerField(default=0)
    avg_price = models.DecimalField(null=True, blank=True, **PRICE)
    arrival_price = models.DecimalField(null=True, blank=True, **PRICE)
    target_qty = models.BigIntegerField(default=0)
    # The market over the order's window so far (as of its last event): what a worker that
    # resumes it carries on from, and what a cancel while suspended reports.
    market_volume = models.FloatField(default=0.0)  # shares, ours included
    market_notional = models.FloatField(default=0.0)  # currency, for the window's VWAP
    last_seq = models.IntegerField(default=0)
    session = models.ForeignKey("MarketSession", null=True, blank=True, on_delete=models.SET_NULL)
    # The instrument's market day it was entered for: its window is that day's. Null for
    # orders from before the field (their day is their session's, where they have one).
    day = models.PositiveIntegerField(null=True, blank=True)
    # The trader's desk when the order was entered ("" for none): the desk whose limits it
    # was checked against, whose daily usage and exposure it counts in, and whose kill
    # switch stops it, wherever the trader sits later (a trial: a trader moved off a desk
    # took the day's usage along, and the desk's others got the room back).
    desk = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("trade", "Enter and control one's own parent orders"),
            ("view_all_orders", "See every trader's orders"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="parent_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    start_minute__gte=0,
                    end_minute__lte=390,
                    start_minute__lt=models.F("end_minute"),
                ),
                name="parent_window_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(filled_qty__gte=0, filled_qty__lte=models.F("quantity")),
                name="parent_never_overfilled",
            ),
        ]

    @property
    def running_strategy(self) -> str:
        """The strategy working the order now: the fallback, once its own failed."""
        return self.fallback_strategy or self.strategy

    def running_params(self) -> dict[str, Any]:
        """The order's parameters that the running strategy takes (a fallback takes the
        common ones: lots, dark share, how far to take; not the failed one's model)."""
        if not self.fallback_strategy:
            return dict(self.params)
        known = {p.name for p in strategy_class(self.fallback_strategy).schema()}
        return {k: v for k, v in self.params.items() if k in known}

    @property
    def model_lot(self) -> int:
        """The adaptive order's lot (`min_child_qty`): entered params are stored whole;
        the schema's default is for a row that lacks the key."""
        lot = (self.params or {}).get("min_child_qty")
        return int(lot) if lot else adaptive_default_lot()

    @property
    def by_curve_alone(self) -> bool:
        """An adaptive order too small for its model: worked along its curve alone, so no
        model or expert traded it, whatever it records (Adaptive.by_curve_alone). As
        entered: one the model traded, then cut under the size, was the model's. The one
        reading for the order page, TCA and its export (a trial: the order page named the
        expert of one that TCA said no model had traded)."""
        from execution.algos.adaptive import too_small_for_the_model

        if self.model_version_id is None:
            return False
        return too_small_for_the_model(
            max(self.quantity, self.entered_quantity or 0), self.model_lot
        )

    @property
    def left_paused(self) -> bool:
        """Left paused by its trader until its window ended: the market's volume and VWAP
        over its window count the time it stood still, so it has no participation or VWAP
        comparison to speak of. The one reading for the blotter, the order page and TCA."""
        from execution.engine.engine import ENDED_PAUSED

        return self.status == ParentStatus.EXPIRED.value and self.status_reason == ENDED_PAUSED

    @property
    def engine_id(self) -> str:
        return f"P{self.pk}"


class ChildOrder(models.Model):
    parent = models.ForeignKey(ParentOrder, on_delete=models.CASCADE, related_name="children")
    client_order_id = models.CharField(max_length=64, unique=True)
    venue = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=SIDE_CHOICES)
    quantity = models.BigIntegerField()
    price = models.DecimalField(null=True, blank=True, **PRICE)
    order_type = models.CharField(max_length=16)
    tif = models.CharField(max_length=8)
    intent = models.CharField(max_length=16)
    status = models.CharField(max_length=20, choices=CHILD_STATUS_CHOICES)
    reason = models.CharField(max_length=64, blank=True)
    filled_qty = models.BigIntegerField(default=0)
    sim_ts = models.FloatField()  # simulated seconds after the open, when sent

    class Meta:
        ordering = ["id"]


class Fill(models.Model):
    parent = models.ForeignKey(ParentOrder, on_delete=models.CASCADE, related_name="fills")
    child = models.ForeignKey(ChildOrder, on_delete=models.CASCADE, related_name="fills")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT)
    venue = models.CharField(max_length=32)
    trade_id = models.CharField(max_length=64)  # the venue's, prefixed by the market session
    price = models.DecimalField(**PRICE)
    quantity = models.BigIntegerField()
    liquidity = models.CharField(max_length=16)
    sim_ts = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A retried step can never record the same execution twice.
            models.UniqueConstraint(
                fields=["instrument", "venue", "trade_id"], name="fill_unique_per_venue_trade"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="fill_quantity_positive"
            ),
        ]


class OrderEvent(models.Model):
    """The engine's event stream, exactly: what blotters replay to catch up."""

    parent = models.ForeignKey(ParentOrder, on_delete=models.CASCADE, related_name="events")
    seq = models.IntegerField()
    kind = models.CharField(max_length=32)
    sim_ts = models.FloatField()
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["parent_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["parent", "seq"], name="event_unique_seq")]


class MarketSession(models.Model):
    """One worker's simulated market for one instrument. At most one RUNNING per instrument."""

    RUNNING, STOPPED, DEAD = "RUNNING", "STOPPED", "DEAD"
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="sessions")
    status = models.CharField(max_length=8, default=RUNNING)
    worker = models.CharField(max_length=128)
    seed = models.BigIntegerField()
    speed = models.FloatField()
    # The instrument's simulated trading day: a session that replaces one that stopped or
    # died before the close continues that day from where it was (same day, same seed),
    # so a resumed order keeps its clock; after the close the next session opens a new day.
    day = models.PositiveIntegerField(default=1)
    start_ts = models.FloatField(default=0.0)  # simulated seconds after the open
    sim_ts = models.FloatField(default=0.0)
    # The market's mid as its worker last wrote it (with sim_ts, every step that writes):
    # where the instrument trades now, for what the web process values at the market.
    mid_px = models.DecimalField(null=True, blank=True, **PRICE)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instrument"],
                condition=models.Q(status="RUNNING"),
                name="one_running_session_per_instrument",
            )
        ]


class ControlRequest(models.Model):
    """A person's pause/resume/cancel/amend, picked up by the worker at its next step."""

    PAUSE, RESUME, CANCEL, AMEND = "pause", "resume", "cancel", "amend"
    ACTIONS = [(a, a) for a in (PAUSE, RESUME, CANCEL, AMEND)]
    parent = models.ForeignKey(ParentOrder, on_delete=models.CASCADE, related_name="controls")
    action = models.CharField(max_length=8, choices=ACTIONS)
    changes = models.JSONField(default=dict)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    requested_at = models.DateTimeField(auto_now_add=True)
    # Where the instrument's market was when it was asked (its day and simulated seconds
    # after the open): the order page reads every other time on that clock (a trial: a
    # pause at 09:02 UTC read as before an order that started at 10:29).
    market_day = models.PositiveIntegerField(null=True, blank=True)
    market_ts = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True)  # as the trader gave it (also in the audit trail)
    applied_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]


class ModelVersion(models.Model):
    """One registered version of the adaptive strategy's policy (docs/MODELS.md).

    A version is registered as a CANDIDATE with its file's hash, its model card and its
    evaluation; it trades only once APPROVED, which takes two risk managers: one
    recommends, another approves (the CHECK below refuses a self-approval). An order
    records the exact version that traded it; RETIRED versions are offered to no new order.
    """

    CANDIDATE, PENDING, APPROVED, REJECTED, RETIRED = (
        "CANDIDATE",
        "PENDING",
        "APPROVED",
        "REJECTED",
        "RETIRED",
    )
    STATUSES = [(s, s.title()) for s in (CANDIDATE, PENDING, APPROVED, REJECTED, RETIRED)]

    name = models.CharField(max_length=64, unique=True)  # "policy-v2", what the ticket shows
    # The ONNX file: a path relative to the shipped models folder, or absolute.
    file = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    predictor_file = models.CharField(max_length=500, blank=True)
    predictor_sha256 = models.CharField(max_length=64, blank=True)
    card = models.JSONField(default=dict)  # the model card, as written by the trainer
    metrics = models.JSONField(default=dict)  # evaluation against baselines, by scenario
    status = models.CharField(max_length=10, choices=STATUSES, default=CANDIDATE)
    note = models.CharField(max_length=500, blank=True)  # where it came from
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # None: a command (retrain, seed)
    registered_at = models.DateTimeField(auto_now_add=True)
    recommended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recommended_at = models.DateTimeField(null=True, blank=True)
    recommend_reason = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # approved or rejected it
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    retire_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-registered_at", "-id"]
        permissions = [("approve_model", "Recommend, approve, reject and retire model versions")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("recommended_by")),
                name="model_version_four_eyes",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="APPROVED")
                | models.Q(decided_by__isnull=False, recommended_by__isnull=False),
                name="model_version_approved_by_two",
            ),
            # One file, one version, whatever two registrations at once do (a review): a
            # gate's expert is known by its bytes, which must name one version.
            models.UniqueConstraint(fields=["sha256"], name="model_version_one_per_file"),
        ]

    def __str__(self) -> str:
        return self.name


class ModelDefault(models.Model):
    """Which approved version the order ticket offers first (docs/MODELS.md): proposed by
    one risk manager, confirmed by a second (the CHECK below refuses a self-confirmation).
    At most one is ACTIVE and one PENDING; the rows are the designation's history."""

    PENDING, ACTIVE, ENDED, WITHDRAWN = "PENDING", "ACTIVE", "ENDED", "WITHDRAWN"
    STATUSES = [(s, s.title()) for s in (PENDING, ACTIVE, ENDED, WITHDRAWN)]

    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="default_designations"
    )
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=500)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Why it stopped: replaced by the next one, its version retired, or withdrawn.
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="ACTIVE"),
                name="model_default_one_active",
            ),
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="PENDING"),
                name="model_default_one_pending",
            ),
            models.CheckConstraint(
                condition=models.Q(confirmed_by__isnull=True)
                | ~models.Q(confirmed_by=models.F("requested_by")),
                name="model_default_four_eyes",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="ACTIVE") | models.Q(confirmed_by__isnull=False),
                name="model_default_active_confirmed",
            ),
        ]

    def __str__(self) -> str:
        return f"default {self.version.name} ({self.status.lower()})"
