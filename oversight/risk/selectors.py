"""Reads for the risk screens: the exception queue, kill switches, limits and their
requests, overrides, exposure. Each is a bounded number of queries, whatever the row count."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat

from execution.selectors import trading_today
from oversight.risk.models import (
    LIMIT_SCOPES,
    Desk,
    DeskMembership,
    ExceptionComment,
    KillAck,
    KillSwitch,
    LimitRequest,
    Override,
    RiskException,
    RiskLimit,
    Scope,
)
from oversight.risk.pretrade import market_prices
from oversight.risk.scopes import OrderScopes, covers
from oversight.roles import MANAGE_RISK, TRADE, TRADER, first_eyes_problem

# Parent order statuses that still trade or may trade again (the pre-trade check's OPEN).
OPEN_ORDER = ("NEW", "WORKING", "PAUSED", "PENDING_CANCEL", "SUSPENDED")
WORKING_CHILD = ("SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL")
SEVERITY_RANK = {RiskException.CRITICAL: 0, RiskException.WARNING: 1, RiskException.INFO: 2}
CONSOLE_ROWS = 200
HISTORY_ROWS = 50
CENTS = Decimal("0.01")


# -- exceptions ---------------------------------------------------------------------------


ORDER_ENDED = ("FILLED", "CANCELED", "EXPIRED", "REJECTED")


def _exceptions() -> QuerySet[RiskException]:
    return RiskException.objects.select_related(
        "assigned_to", "acked_by", "resolved_by", "order"
    ).prefetch_related(
        Prefetch("comments", queryset=ExceptionComment.objects.select_related("author"))
    )


def exceptions_open(*, limit: int = CONSOLE_ROWS) -> list[RiskException]:
    """Unresolved exceptions: escalated criticals at the very top, then by severity, then
    the newest first."""
    return list(
        _exceptions()
        .exclude(status=RiskException.RESOLVED)
        .annotate(
            pinned=Case(
                # An escalated one whose cause is over (a warning now) stays on top until
                # someone acknowledges it: nobody has looked yet (a trial found one below
                # newer warnings, its "was critical" unsaid).
                When(severity=RiskException.CRITICAL, escalated_at__isnull=False, then=Value(0)),
                When(status=RiskException.OPEN, escalated_at__isnull=False, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            severity_rank=Case(
                *[When(severity=s, then=Value(r)) for s, r in SEVERITY_RANK.items()],
                default=Value(len(SEVERITY_RANK)),
                output_field=IntegerField(),
            ),
        )
        .order_by("pinned", "severity_rank", "-raised_at", "-id")[:limit]
    )


def exceptions_open_count() -> int:
    return RiskException.objects.exclude(status=RiskException.RESOLVED).count()


def exceptions_open_about_ended(user: Any = None) -> QuerySet[RiskException]:
    """Unresolved warnings and notices about an order that has ended: nothing more will
    come of them, and the console offers to resolve them together. Not criticals: a fill
    outside the collar or a strategy failure wants a person's look whether or not its
    order has ended (a review)."""
    qs = (
        RiskException.objects.exclude(status=RiskException.RESOLVED)
        .exclude(severity=RiskException.CRITICAL)
        .filter(order__status__in=ORDER_ENDED)
    )
    if user is not None:
        # Not another risk manager's case: assigned to them, it is theirs to close.
        qs = qs.exclude(~Q(assigned_to=user), assigned_to__isnull=False)
    return qs


def exceptions_resolved(*, limit: int = HISTORY_ROWS) -> list[RiskException]:
    return list(
        _exceptions().filter(status=RiskException.RESOLVED).order_by("-resolved_at", "-id")[:limit]
    )


# -- kill switches ------------------------------------------------------------------------


# How a halt's cancel of an order no worker holds begins its status reason (_blocked_cancel).
UNHELD_CANCEL = "canceled by kill switch {pk} ("


def _unheld_cancelled() -> Subquery:
    """The orders no worker held that the switch cancelled itself (blocked, released and
    not taken up, or suspended by a lost worker): its card said nothing of them, so a halt
    applied after a lost worker looked like one with nothing in scope (a trial)."""
    from execution.models import ParentOrder

    prefix = Concat(
        Value("canceled by kill switch "),
        Cast(OuterRef("pk"), CharField()),
        Value(" ("),
        output_field=CharField(),
    )
    counted = (
        ParentOrder.objects.filter(status="CANCELED", status_reason__startswith=prefix)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Subquery(counted, output_field=IntegerField())


def _kills() -> QuerySet[KillSwitch]:
    return KillSwitch.objects.select_related(
        "engaged_by", "reset_requested_by", "reset_by"
    ).annotate(
        ack_workers=Count("acks"),
        ack_orders=Coalesce(Sum("acks__orders"), 0),
        ack_children=Coalesce(Sum("acks__children_canceled"), 0),
        ack_unheld=Coalesce(_unheld_cancelled(), 0),
    )


def kills_active() -> list[KillSwitch]:
    return list(_kills().filter(active=True).order_by("-engaged_at", "-id"))


def kills_reset(*, limit: int = 20) -> list[KillSwitch]:
    return list(_kills().filter(active=False).order_by("-reset_at", "-id")[:limit])


def orders_in_scope(scope_type: str, scope_key: str) -> Any:
    from execution.models import ParentOrder

    qs = ParentOrder.objects.all()
    if scope_type == Scope.FIRM:
        return qs
    if scope_type == Scope.DESK:
        return qs.filter(desk=scope_key)  # the desk it was entered on
    if scope_type == Scope.TRADER:
        return qs.filter(owner__username=scope_key)
    if scope_type == Scope.STRATEGY:
        return qs.filter(strategy=scope_key)
    if scope_type == Scope.INSTRUMENT:
        return qs.filter(instrument__symbol=scope_key)
    if scope_type == Scope.ORDER:
        return (
            qs.filter(pk=int(scope_key))
            if scope_key.isascii() and scope_key.isdigit()
            else qs.none()
        )
    if scope_type == Scope.MODEL:  # the version, and the orders it trades as an expert
        return qs.filter(Q(model_version__name=scope_key) | Q(model_expert=scope_key))
    return qs.none()


@dataclass(frozen=True)
class KillPreview:
    scope_type: str
    scope_key: str
    orders: int  # open parent orders in scope, blocked ones included
    children: int  # their working child orders at venues
    blocked: int = 0  # of `orders`, those blocked by pre-trade risk (a kill cancels them too)
    # For a model version that is also an expert inside gated versions: their names (a
    # switch on the expert stops the orders it trades there, not the gate's others).
    inside: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.scope_type} {self.scope_key}".strip()

    def text(self, state: str = KillSwitch.HALTED) -> str:
        # Open: working, paused or waiting for its window (a trial read "2 working" for one
        # waiting and one paused).
        o = f"{self.orders} open order{'' if self.orders == 1 else 's'}" + (
            f" ({self.blocked} blocked)" if self.blocked else ""
        )
        c = f"{self.children} working child order{'' if self.children == 1 else 's'}"
        if state == KillSwitch.REDUCING:
            # Blocked orders are not stopped by a reducing switch: they stay blocked.
            n = self.orders - self.blocked
            o = f"{n} open order{'' if n == 1 else 's'}"
            return (
                f"Restrict {self.where} to reducing orders: of its {o} ({c}), those that add "
                f"to a position will be stopped and their child orders cancelled; new orders "
                f"must reduce a position"
            ) + self.inside_note()
        # "Now": the orders keep sending children until the switch acts, and the card's
        # count after it is of what was working then (a trial read 1 here and 2 there
        # as a mismatch).
        return (
            f"Halt {self.where}: {o} stopped and every child order working then cancelled "
            f"({c} now); no new orders until reset"
        ) + self.inside_note()

    def inside_note(self) -> str:
        if not self.inside:
            return ""
        names = ", ".join(self.inside)
        return (
            f". {self.scope_key} also trades as an expert inside {names}: this switch covers "
            f"the orders it trades there too, not {names}'s others"
        )


def kill_preview(scope_type: str, scope_key: str) -> KillPreview:
    """What a kill switch on this scope would stop now (two counting queries)."""
    from execution.models import ChildOrder

    # A blocked order is cancelled by the switch as well: counted, and said (a trial read
    # "1 open order stopped" and saw two cancelled).
    orders = orders_in_scope(scope_type, scope_key).filter(status__in=[*OPEN_ORDER, "BLOCKED"])
    counts = dict(orders.values_list("status").annotate(n=Count("pk")).order_by())
    return KillPreview(
        scope_type=scope_type,
        scope_key=scope_key,
        orders=sum(counts.values()),
        blocked=counts.get("BLOCKED", 0),
        children=ChildOrder.objects.filter(
            parent__in=orders.values("pk"), status__in=WORKING_CHILD
        ).count(),
        inside=_gated_around(scope_key) if scope_type == Scope.MODEL else (),
    )


def _gated_around(name: str) -> tuple[str, ...]:
    from execution.model_registry import gated_users_of, live_gates
    from execution.models import ModelVersion, ParentOrder

    # And the gates of open orders it trades, a gate retired since among them (a trial's
    # preview named only the approved gate, and counted an order of the retired one).
    trading = set(
        ParentOrder.objects.filter(model_expert=name, status__in=OPEN_ORDER)
        .exclude(model_version__isnull=True)
        .values_list("model_version__name", flat=True)
    )
    mv = ModelVersion.objects.filter(name=name).first()
    if mv is not None:
        return tuple(sorted(set(gated_users_of(mv)) | trading))
    # An expert known only inside a gate: by its name there.
    return tuple(
        sorted(
            {g for g, experts in live_gates() if any(e["model"] == name for e in experts)} | trading
        )
    )


def exception_json(e: RiskException) -> dict[str, Any]:
    return {
        "id": e.pk,
        "kind": e.kind,
        "code": e.code,
        "severity": e.severity,
        "scope": f"{e.scope_type} {e.scope_key}".strip(),
        "order": e.order_id,
        "title": e.title,
        "detail": e.detail,
        "suggested_action": e.suggested_action,
        "count": e.count,
        "status": e.status,
        "assigned_to": e.assigned_to.get_username() if e.assigned_to_id else "",
        "raised_at": e.raised_at.isoformat(),
        "last_at": e.last_at.isoformat(),
        "cause_at": e.cause_at.isoformat(),
        "escalated": e.escalated_at is not None,
        "acked_by": e.acked_by.get_username() if e.acked_by_id else "",
        "resolved_by": e.resolved_by.get_username() if e.resolved_by_id else "",
        "resolved_at": e.resolved_at.isoformat() if e.resolved_at else None,
        "resolution": e.resolution,
        # The order it is about has ended: nothing more will come of it (a trial found
        # the console full of open exceptions about orders long finished).
        "order_ended": (
            e.order.status.lower()
            if e.order_id is not None and e.order is not None and e.order.status in ORDER_ENDED
            else ""
        ),
    }


def kill_applied(k: KillSwitch) -> dict[str, int]:
    """What the workers have applied of a kill switch so far, as its card says it."""
    got = KillAck.objects.filter(kill=k).aggregate(
        workers=Count("pk"),
        orders=Coalesce(Sum("orders"), 0),
        children=Coalesce(Sum("children_canceled"), 0),
    )
    counts = {key: int(got[key] or 0) for key in ("workers", "orders", "children")}
    from execution.models import ParentOrder

    counts["unheld"] = ParentOrder.objects.filter(
        status="CANCELED", status_reason__startswith=UNHELD_CANCEL.format(pk=k.pk)
    ).count()
    return counts


def kills_waiting(kills: list[KillSwitch]) -> dict[int, int]:
    """For each active halt, the orders in its scope still with a worker (working, paused,
    being cancelled): one a worker has applied has none left. One query for every card
    (the console reads a fixed number of queries)."""
    halts = [k for k in kills if k.active and k.state == KillSwitch.HALTED]
    if not halts:
        return {}
    from execution.models import ParentOrder

    # Each order's scopes as the kill switches' own check reads them (scopes.covers).
    scopes = [
        OrderScopes(
            trader=r["owner__username"], desk=r["desk"], strategy=r["strategy"],
            instrument=r["instrument__symbol"], order=str(r["pk"]),
            model=r["model_version__name"] or "", expert=r["model_expert"],
        )
        for r in ParentOrder.objects.filter(
            status__in=("WORKING", "PAUSED", "PENDING_CANCEL")
        ).values(
            "pk", "desk", "owner__username", "strategy", "instrument__symbol",
            "model_version__name", "model_expert",
        )
    ]  # fmt: skip
    return {k.pk: sum(covers(k.scope_type, k.scope_key, sc) for sc in scopes) for k in halts}


def kill_waiting_text(still: int) -> str:
    """An engaged halt that no worker has applied yet, while orders in its scope still
    work: said on its card (a trial's halt, engaged while every worker hung, looked
    exactly like one with nothing in scope)."""
    if not still:
        return ""
    s = "" if still == 1 else "s"
    return f" · not applied yet: {still} order{s} in scope still with a worker"


def applied_text(workers: int, orders: int, children: int, unheld: int = 0) -> str:
    """The card's line, the same whether drawn by the page or the script."""

    def s(n: int) -> str:
        return "" if n == 1 else "s"

    text = ""
    if workers:
        text = (
            f" · applied by {workers} worker{s(workers)}: {orders} order{s(orders)} stopped, "
            f"{children} child order{s(children)} cancelled"
        )
    if unheld:
        text += f" · {unheld} order{s(unheld)} no running worker held cancelled"
    return text


def kill_json(k: KillSwitch) -> dict[str, Any]:
    # A request whose author has since lost the role has lapsed: the card offers a new
    # request instead of an approval nobody can give. Only while the switch is engaged: a
    # reset that was done is history, which later role changes do not rewrite (a trial:
    # "Recent resets" lost a reset's reason when its asker's role changed afterwards).
    asker = k.reset_requested_by
    lapsed = (
        k.active
        and asker is not None
        and bool(first_eyes_problem(asker, MANAGE_RISK, "a reset", k.reset_requested_at))
    )
    asked = asker is not None and not lapsed
    return {
        "id": k.pk,
        "scope_type": k.scope_type,
        "scope_key": k.scope_key,
        "state": k.state,
        "reason": k.reason,
        "active": k.active,
        "engaged_by": k.engaged_by.get_username(),
        "engaged_at": k.engaged_at.isoformat(),
        "reset_requested_by": asker.get_username() if asked else "",  # type: ignore[union-attr]
        "reset_reason": k.reset_reason if asked else "",
        # Sent back with an approval or a decline: the request the person read.
        "reset_requested_at": k.reset_requested_at.isoformat()
        if asked and k.reset_requested_at
        else "",
        "reset_lapsed_by": asker.get_username() if lapsed else "",  # type: ignore[union-attr]
        # For the console's "Recent resets", which a reset now joins in place.
        "reset_by": k.reset_by.get_username() if k.reset_by else "",
        "reset_at": k.reset_at.isoformat() if k.reset_at else "",
    }


# -- limits -------------------------------------------------------------------------------


def limits_by_scope() -> list[tuple[str, list[RiskLimit]]]:
    """Every limit row (a removed one shows as no limit), grouped by scope type in the
    order firm, desk, trader, strategy, instrument."""
    grouped: dict[str, list[RiskLimit]] = {s.value: [] for s in LIMIT_SCOPES}
    for lim in RiskLimit.objects.order_by("scope_type", "scope_key", "metric"):
        grouped.setdefault(lim.scope_type, []).append(lim)
    return [(Scope(s).label, rows) for s, rows in grouped.items()]


def _limit_requests() -> QuerySet[LimitRequest]:
    return LimitRequest.objects.select_related("requested_by", "decided_by")


def limit_requests_pending() -> list[LimitRequest]:
    return list(
        _limit_requests().filter(status=LimitRequest.PENDING).order_by("requested_at", "id")
    )


def limit_requests_recent(*, limit: int = HISTORY_ROWS) -> list[LimitRequest]:
    return list(_limit_requests().exclude(status=LimitRequest.PENDING).order_by("-id")[:limit])


# -- overrides ----------------------------------------------------------------------------


def _overrides() -> QuerySet[Override]:
    return Override.objects.select_related(
        "order", "order__instrument", "order__owner", "requested_by", "granted_by"
    )


def overrides_pending() -> list[Override]:
    return list(_overrides().filter(status=Override.PENDING).order_by("requested_at", "id"))


def overrides_recent(*, limit: int = HISTORY_ROWS) -> list[Override]:
    return list(_overrides().exclude(status=Override.PENDING).order_by("-id")[:limit])


# -- who and what, for the forms ----------------------------------------------------------


def risk_managers() -> list[Any]:
    app, codename = MANAGE_RISK.split(".")
    perm = Q(
        groups__permissions__content_type__app_label=app, groups__permissions__codename=codename
    ) | Q(user_permissions__content_type__app_label=app, user_permissions__codename=codename)
    return list(
        get_user_model()
        .objects.filter(perm | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


def scope_keys(*, orders: int = 200) -> dict[str, list[str]]:
    """The valid keys of each scope type, for the forms' suggestion lists."""
    from execution.algos.registry import strategy_names
    from execution.model_registry import live_gates
    from execution.models import Instrument, ModelVersion, ParentOrder

    return {
        Scope.FIRM.value: [],
        Scope.DESK.value: list(Desk.objects.values_list("name", flat=True)),
        Scope.TRADER.value: list(
            get_user_model()
            .objects.filter(groups__name=TRADER)
            .order_by("username")
            .values_list("username", flat=True)
            .distinct()
        ),
        Scope.STRATEGY.value: sorted(strategy_names()),
        Scope.INSTRUMENT.value: list(Instrument.objects.values_list("symbol", flat=True)),
        # Open orders only: a kill switch on a finished order stops nothing.
        Scope.ORDER.value: [
            str(pk)
            for pk in ParentOrder.objects.filter(status__in=OPEN_ORDER)
            .order_by("-id")
            .values_list("id", flat=True)[:orders]
        ],
        # Approved and retired versions, the ones orders may still be trading on, and the
        # experts inside the gated ones (a switch on an expert was not suggested: a trial).
        Scope.MODEL.value: sorted(
            set(
                ModelVersion.objects.filter(status__in=["APPROVED", "RETIRED"]).values_list(
                    "name", flat=True
                )
            )
            | {e["model"] for _, experts in live_gates() for e in experts}
            # and the experts of open orders, whatever became of their gate since
            | set(
                ParentOrder.objects.filter(status__in=OPEN_ORDER)
                .exclude(model_expert="")
                .order_by()
                .values_list("model_expert", flat=True)
                .distinct()
            )
        ),
    }


# -- exposure -----------------------------------------------------------------------------


@dataclass
class Position:
    instrument: str
    net_qty: int = 0  # shares held, + long, - short: fills of every day (a position carries)
    filled_notional: Decimal = Decimal(0)  # Σ avg_price × filled_qty, today
    working_notional: Decimal = Decimal(0)  # open orders' unfilled qty × market price now


@dataclass
class Exposure:
    level: str  # "firm", "desk" or "trader"
    key: str
    positions: dict[str, Position] = field(default_factory=dict)

    def at(self, instrument: str) -> Position:
        return self.positions.setdefault(instrument, Position(instrument))

    @property
    def filled_notional(self) -> Decimal:
        return sum((p.filled_notional for p in self.positions.values()), Decimal(0))

    @property
    def working_notional(self) -> Decimal:
        return sum((p.working_notional for p in self.positions.values()), Decimal(0))

    def rows(self) -> list[Position]:
        return [self.positions[k] for k in sorted(self.positions)]


def exposure() -> list[Exposure]:
    """Per instrument, for the firm, each desk and each trader: the position held (the net
    of every day's fills, as a reduce-only kill switch reads it), today's filled notional
    (as the daily limit counts it), and the working notional of every open order.

    One aggregate over parent orders grouped by trader, desk, instrument and side; an
    order counts on the desk it was entered on, as the desk's daily limit counts it.
    """
    from execution.models import PRICE, ParentOrder

    today = trading_today()  # each instrument's market day, as the daily limit counts
    amount = DecimalField(
        max_digits=PRICE["max_digits"] + 12, decimal_places=PRICE["decimal_places"]
    )
    rows = (
        ParentOrder.objects.filter(today | Q(status__in=OPEN_ORDER) | Q(filled_qty__gt=0))
        .values("owner__username", "desk", "instrument_id", "instrument__symbol", "side")
        .annotate(
            filled=Coalesce(Sum("filled_qty"), 0),
            filled_notional=Sum(
                ExpressionWrapper(F("avg_price") * F("filled_qty"), output_field=amount),
                filter=today & Q(avg_price__isnull=False),
            ),
            unfilled=Coalesce(
                Sum(F("quantity") - F("filled_qty"), filter=Q(status__in=OPEN_ORDER)), 0
            ),
        )
        .order_by()
    )
    # What is working is valued where each instrument trades now (its orders' last reported
    # mid), not at the scenario's reference price (a trial: 1,375 × 40.00 while HBRK traded
    # at 40.6).
    prices = market_prices({r["instrument_id"] for r in rows})
    firm = Exposure("firm", "")
    desks: dict[str, Exposure] = {}
    traders: dict[str, Exposure] = {}
    for r in rows:
        trader = r["owner__username"]
        symbol = r["instrument__symbol"]
        sign = 1 if r["side"] == "buy" else -1
        filled_notional = Decimal(r["filled_notional"] or 0)
        working = Decimal(r["unfilled"]) * prices[r["instrument_id"]]
        targets = [firm, traders.setdefault(trader, Exposure("trader", trader))]
        if r["desk"]:
            targets.append(desks.setdefault(r["desk"], Exposure("desk", r["desk"])))
        for t in targets:
            p = t.at(symbol)
            p.net_qty += sign * int(r["filled"])
            p.filled_notional += filled_notional
            p.working_notional += working
    groups = [firm, *(desks[k] for k in sorted(desks)), *(traders[k] for k in sorted(traders))]
    # A position closed on an earlier day, with nothing today or working, is not shown.
    for g in groups:
        g.positions = {
            k: p
            for k, p in g.positions.items()
            if p.net_qty or p.filled_notional or p.working_notional
        }
    return [g for g in groups if g.positions or g.level == "firm"]


def _money(d: Decimal) -> str:
    return str(d.quantize(CENTS))


def exposure_json(groups: list[Exposure] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "level": g.level,
            "key": g.key,
            "filled_notional": _money(g.filled_notional),
            "working_notional": _money(g.working_notional),
            "positions": [
                {
                    "instrument": p.instrument,
                    "net_qty": p.net_qty,
                    "filled_notional": _money(p.filled_notional),
                    "working_notional": _money(p.working_notional),
                }
                for p in g.rows()
            ],
        }
        for g in (exposure() if groups is None else groups)
    ]


# -- the trader's side --------------------------------------------------------------------


def trader_alerts(user: Any) -> dict[str, Any]:
    """What a trader's blotter shows in its alert banner when it loads: the active kill
    switches that cover them or their orders, and escalated critical exceptions about
    their orders that are not resolved yet."""
    from execution.models import ParentOrder

    if not (user.is_authenticated and user.has_perm(TRADE)):
        return {"kills": [], "exceptions": []}
    desk = DeskMembership.objects.filter(user=user).values_list("desk__name", flat=True).first()
    # Their orders of today and any still open or blocked: what a kill switch stops or refuses.
    mine = ParentOrder.objects.filter(owner=user).filter(
        trading_today() | Q(status__in=[*OPEN_ORDER, "BLOCKED"])
    )
    covered = (
        Q(scope_type=Scope.FIRM)
        | Q(scope_type=Scope.TRADER, scope_key=user.get_username())
        | Q(scope_type=Scope.STRATEGY, scope_key__in=mine.values("strategy"))
        | Q(scope_type=Scope.INSTRUMENT, scope_key__in=mine.values("instrument__symbol"))
        | Q(scope_type=Scope.MODEL, scope_key__in=mine.values("model_version__name"))
        | Q(
            scope_type=Scope.MODEL,
            scope_key__in=mine.exclude(model_expert="").values("model_expert"),
        )
        | Q(
            scope_type=Scope.ORDER,
            scope_key__in=[str(pk) for pk in mine.values_list("pk", flat=True)[:500]],
        )
    )
    if desk:
        covered |= Q(scope_type=Scope.DESK, scope_key=desk)
    kills = KillSwitch.objects.filter(covered, active=True).select_related(
        "engaged_by", "reset_requested_by"
    )
    exceptions = RiskException.objects.filter(
        trader=user, severity=RiskException.CRITICAL, escalated_at__isnull=False
    ).exclude(status=RiskException.RESOLVED)
    return {
        "desk": desk or "",
        "kills": [kill_json(k) for k in kills.order_by("-id")[:20]],
        "exceptions": [
            exception_json(e) for e in exceptions.select_related("assigned_to").order_by("-id")[:20]
        ],
    }
