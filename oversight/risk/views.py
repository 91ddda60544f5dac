"""The risk screens: the console (exceptions, kill switches, exposure), limits under four
eyes, overrides; and the POST endpoints behind them. Thin: reads through
oversight.risk.selectors, writes through oversight.risk.services.

Every POST answers in one of two ways: a form post is redirected back to where it came
from with a message (success, or the service's refusal in its own words); a request that
asks for JSON (the blotter's and console's scripts) gets {"ok": ..., "message"|"error"}.
A request that cannot be understood (an id that is not a number, a field that is not
there) is a 400, an unknown object a 404, each with a message; never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from execution.algos.params import written_plainly
from oversight.risk import selectors, services
from oversight.risk.answers import Bad, act, field, kept_form, messages_of
from oversight.risk.models import (
    LIMIT_SCOPES,
    KillSwitch,
    LimitRequest,
    Metric,
    Override,
    RiskException,
    Scope,
)
from oversight.risk.pretrade import plain_number
from oversight.roles import MANAGE_RISK, TRADE, asked_at_posted, first_eyes_problem

KILL_STATES = [
    (KillSwitch.HALTED, "Halt (cancel everything in scope)"),
    (KillSwitch.REDUCING, "Reduce only"),
]


def _whole(value: str, label: str) -> int:
    try:
        if not written_plainly(value):  # int() reads "١" as 1 and "1_2" as 12
            raise ValueError(value)
        n = int(value.strip())
    except ValueError:
        raise Bad(400, f"{label} must be a whole number, not {value[:40]!r}") from None
    if n <= 0:
        raise Bad(400, f"{label} must be a positive number")
    return n


def _get(model: Any, pk: int, label: str) -> Any:
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise Bad(404, f"there is no {label} {pk}")
    return obj


def _is_risk_manager(user: Any) -> bool:
    return bool(user.has_perm(MANAGE_RISK))


# -- formatting for the templates --------------------------------------------------------


def _clock(at: datetime | None) -> str:
    """A wall-clock time as the console shows it: UTC to the millisecond."""
    return at.strftime("%H:%M:%S.") + f"{at.microsecond // 1000:03d}" if at else ""


def _exception_row(e: RiskException) -> dict[str, Any]:
    return {
        **selectors.exception_json(e),
        "raised_clock": _clock(e.raised_at),
        "last_clock": _clock(e.last_at),
        "pinned": e.escalated_at is not None
        and (e.severity == RiskException.CRITICAL or e.status == RiskException.OPEN),
        "acked_by": e.acked_by.get_username() if e.acked_by_id else "",
        "resolved_by": e.resolved_by.get_username() if e.resolved_by_id else "",
        "resolved_clock": _clock(e.resolved_at),
        "resolution": e.resolution,
        "comments": [
            {"by": c.author.get_username(), "text": c.text, "at": _clock(c.at)}
            for c in e.comments.all()
        ],
    }


def _kill_row(k: KillSwitch, me: Any, waiting: dict[int, int] | None = None) -> dict[str, Any]:
    return {
        **selectors.kill_json(k),
        "k": k,
        "engaged_clock": _clock(k.engaged_at),
        "mine_reset": k.reset_requested_by_id == me.pk,
        # Counted by the selectors' query (_kills), which every card comes from.
        "applied_text": selectors.applied_text(
            k.ack_workers, k.ack_orders, k.ack_children, k.ack_unheld
        )
        + selectors.kill_waiting_text((waiting or {}).get(k.pk, 0)),
    }


def _plain(d: Decimal | None) -> str:
    return "none" if d is None else plain_number(d)


# -- pages -------------------------------------------------------------------------------


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    from execution.services import blocked_expire

    blocked_expire()  # as the overrides page: nothing over is shown as waiting
    exposure = selectors.exposure()
    keys = selectors.scope_keys()
    kills = list(selectors.kills_active())
    waiting = selectors.kills_waiting(kills)
    return render(
        request,
        "risk/console.html",
        {
            "exceptions": [_exception_row(e) for e in selectors.exceptions_open()],
            "open_count": selectors.exceptions_open_count(),
            "ended_count": selectors.exceptions_open_about_ended(user=request.user).count(),
            "resolved": [_exception_row(e) for e in selectors.exceptions_resolved(limit=20)],
            "kills": [_kill_row(k, request.user, waiting) for k in kills],
            "kills_reset": [_kill_row(k, request.user) for k in selectors.kills_reset(limit=10)],
            "exposure": exposure,
            "scope_keys": keys,
            "scopes": Scope.choices,
            # A blotter row's "Halt…" opens the console on its order's scope (a trial: a
            # risk manager had to type the order's number here).
            "kill_prefill": {
                "scope_type": (
                    request.GET["scope_type"]
                    if request.GET.get("scope_type") in services.KILL_SCOPES
                    else "trader"
                ),
                "scope_key": request.GET.get("scope_key", "")[:64],
            },
            "kill_states": KILL_STATES,
            "managers": selectors.risk_managers(),
            "placeholder": _placeholder_exception(),
            "kill_placeholder": {
                "id": "__ID__",
                "state": "",
                "scope_type": "",
                "scope_key": "",
                "reset_requested_by": "",
            },
            "exc_base": reverse("risk_exception_ack", args=[0]).removesuffix("0/ack/"),
            "kill_base": reverse("risk_kill_reset_request", args=[0]).removesuffix(
                "0/reset-request/"
            ),
            "config": {
                "ws_path": "/ws/risk/",
                "me": request.user.get_username(),
                "preview_url": reverse("risk_kill_preview"),
                "order_url": reverse("order_detail", args=[0]).replace("/0/", "/{id}/"),
                "reset_request_url": reverse("risk_kill_reset_request", args=[0]).replace(
                    "/0/", "/{id}/"
                ),
                "reset_approve_url": reverse("risk_kill_reset_approve", args=[0]).replace(
                    "/0/", "/{id}/"
                ),
                "rows": selectors.CONSOLE_ROWS,
            },
        },
    )


def _placeholder_exception() -> dict[str, Any]:
    """The exception row's template, which the live console fills in for a new one."""
    return {
        "id": "__ID__",
        "severity": "",
        "kind": "",
        "code": "",
        "scope": "",
        "order": None,
        "title": "",
        "detail": "",
        "suggested_action": "",
        "count": 1,
        "status": "OPEN",
        "assigned_to": "",
        "raised_at": "",
        "raised_clock": "",
        "last_clock": "",
        "pinned": False,
        "escalated": False,
        "comments": [],
        "order_ended": "",
    }


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_GET
def limits(request: HttpRequest) -> HttpResponse:
    allowed = {s.value for s in LIMIT_SCOPES}
    # Requests past their time are ended now, not when a market worker next looks: one
    # was offered for approval an hour after it had expired (a trial, no worker running).
    services.limit_requests_expire()
    # A link's scope and limit, or a refused request's as typed (value and reason too).
    asked = {**request.GET.dict(), **kept_form(request, reverse("risk_limits"))}
    prefill = {
        "scope_type": asked.get("scope_type", "") if asked.get("scope_type") in allowed else "firm",
        "scope_key": asked.get("scope_key", "")[:64],
        "metric": asked.get("metric", "") if asked.get("metric") in Metric.values else "",
        "new_value": asked.get("new_value", "")[:64],
        "reason": asked.get("reason", ""),
    }
    keys = selectors.scope_keys()
    return render(
        request,
        "risk/limits.html",
        {
            "groups": [
                (label, [{"l": lim, "value": _plain(lim.value)} for lim in rows])
                for label, rows in selectors.limits_by_scope()
            ],
            "pending": [
                {
                    "r": r,
                    "old": _plain(r.old_value),
                    "new": _plain(r.new_value),
                    "mine": r.requested_by_id == request.user.pk,
                    "lapsed": bool(
                        first_eyes_problem(r.requested_by, MANAGE_RISK, "it", r.requested_at)
                    ),
                }
                for r in selectors.limit_requests_pending()
            ],
            "history": [
                {"r": r, "old": _plain(r.old_value), "new": _plain(r.new_value)}
                for r in selectors.limit_requests_recent()
            ],
            "scopes": [(s.value, s.label) for s in LIMIT_SCOPES],
            "scope_keys": {k: v for k, v in keys.items() if k in allowed},
            "metrics": Metric.choices,
            "metric_labels": dict(Metric.choices),
            "prefill": prefill,
            "ttl_hours": int(services.LIMIT_REQUEST_TTL.total_seconds() // 3600),
        },
    )


def _desk_empty_note(req: LimitRequest) -> str:
    """A desk's limit may be set before a trader sits on it; said, so a mistyped desk is
    not taken for the one meant (a trial's "NO-SUCH-DESK" was "active now")."""
    if req.scope_type != "desk" or req.new_value is None:
        return ""
    if services.desk_has_traders(req.scope_key):
        return ""
    return f" (no trader is on desk {req.scope_key} yet: it binds nobody until one is)"


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_GET
def overrides(request: HttpRequest) -> HttpResponse:
    from execution.services import blocked_expire

    # An order whose window (or day) is over expires, and its request lapses, before the
    # page lists it as pending (a trial's stayed so until a trader opened a blotter).
    blocked_expire()
    return render(
        request,
        "risk/overrides.html",
        {
            "pending": [
                {"v": v, "mine": v.requested_by_id == request.user.pk}
                for v in selectors.overrides_pending()
            ],
            "history": selectors.overrides_recent(),
            "default_minutes": services.OVERRIDE_DEFAULT_MINUTES,
        },
    )


# -- limits ------------------------------------------------------------------------------


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def limit_request(request: HttpRequest) -> HttpResponse:
    def go() -> str:
        req = services.limit_change_request(
            user=request.user,
            scope_type=field(request, "scope_type", "scope type"),
            scope_key=request.POST.get("scope_key", ""),
            metric=field(request, "metric"),
            new_value=field(request, "new_value", "new value").strip(),
            reason=field(request, "reason"),
        )
        # As the limits page names them: "trader tina, Max child order value ($): …".
        scope = f"{req.get_scope_type_display().lower()} {req.scope_key}".strip()
        what = (
            f"{scope}, {req.get_metric_display()}: "
            f"{_plain(req.old_value)} → {_plain(req.new_value)}"
        )
        # A desk's limit may be set before anyone sits on it; said, so a mistyped desk is
        # not taken for the one meant (a trial's "NO-SUCH-DESK" was "active now").
        empty = _desk_empty_note(req)
        if req.status == LimitRequest.ACTIVE:
            return (
                f"Limit request {req.pk} active now (a tightening takes one person): {what}" + empty
            )
        return f"Limit request {req.pk} waits for a second risk manager's approval: {what}" + empty

    return act(
        request,
        reverse("risk_limits"),
        go,
        keep=("scope_type", "scope_key", "metric", "new_value", "reason"),
    )


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def limit_approve(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _get(LimitRequest, pk, "limit request")
        req = services.limit_request_approve(
            user=request.user, request_id=pk, note=request.POST.get("note", "")
        )
        if req.status == LimitRequest.ACTIVE:
            where = f"{req.get_scope_type_display().lower()} {req.scope_key}".strip()
            return (
                f"Limit request {pk} approved and active: {where}, "
                f"{req.get_metric_display()} = {_plain(req.new_value)}" + _desk_empty_note(req)
            )
        # Approved too late, or the limit moved since: the service says so on the request.
        raise ValidationError(
            f"limit request {pk} was not applied: it is {req.status.lower()}"
            + (f" ({req.decision_note})" if req.decision_note else "")
        )

    return act(request, reverse("risk_limits"), go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def limit_reject(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _get(LimitRequest, pk, "limit request")
        req = services.limit_request_reject(
            user=request.user, request_id=pk, note=request.POST.get("note", "")
        )
        return f"Limit request {pk} {'withdrawn' if req.decided_by_id is None else 'rejected'}"

    return act(request, reverse("risk_limits"), go)


# -- kill switches -----------------------------------------------------------------------


def _kill_back(request: HttpRequest) -> str:
    return reverse("risk_console") if _is_risk_manager(request.user) else reverse("blotter")


@login_required
@require_POST
def kill_engage(request: HttpRequest) -> HttpResponse:
    """Traders may stop their own trading or one of their orders; risk managers any scope
    (the service decides; admins never get that far)."""
    if not (_is_risk_manager(request.user) or request.user.has_perm(TRADE)):
        raise PermissionDenied("traders and risk managers only")

    def go() -> str:
        k = services.kill_switch_engage(
            user=request.user,
            scope_type=field(request, "scope_type", "scope type"),
            scope_key=request.POST.get("scope_key", ""),
            state=request.POST.get("state", KillSwitch.HALTED) or KillSwitch.HALTED,
            reason=field(request, "reason"),
        )
        where = f"{k.scope_type} {k.scope_key}".strip()
        verb = "halted" if k.state == KillSwitch.HALTED else "restricted to reducing orders"
        note = selectors.kill_preview(k.scope_type, k.scope_key).inside_note()
        return f"Kill switch {k.pk} engaged: {where} {verb}. A reset takes two risk managers{note}."

    return act(request, _kill_back(request), go)


@login_required
@require_GET
def kill_preview(request: HttpRequest) -> JsonResponse:
    """What engaging a kill switch would stop now, for the confirmation dialog."""
    user = request.user
    if not (_is_risk_manager(user) or user.has_perm(TRADE)):
        return JsonResponse({"ok": False, "error": "traders and risk managers only"}, status=403)
    scope_type = request.GET.get("scope_type", "")
    state = request.GET.get("state", KillSwitch.HALTED)
    if state not in (KillSwitch.HALTED, KillSwitch.REDUCING):  # as engaging it would say
        return JsonResponse({"ok": False, "error": "state: must be HALTED or REDUCING"}, status=400)
    refused = JsonResponse(
        {"ok": False, "error": "traders may stop their own trading or their own orders"},
        status=403,
    )
    raw_key = request.GET.get("scope_key", "")
    if scope_type in services.KILL_SCOPES and not services.kill_allowed(user, scope_type, raw_key):
        return refused  # before asking whether it exists: that would tell a trader
    try:
        key = services.scope_check(scope_type, raw_key, kill=True)
    except ValidationError as e:
        return JsonResponse({"ok": False, "error": " ".join(messages_of(e))}, status=400)
    if not services.kill_allowed(user, scope_type, key, stored=True):
        return refused
    p = selectors.kill_preview(scope_type, key)
    return JsonResponse(
        {
            "ok": True,
            "scope_type": scope_type,
            "scope_key": key,
            "orders": p.orders,
            "blocked": p.blocked,
            "children": p.children,
            "text": p.text(state),
        }
    )


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def kill_reset_request(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _get(KillSwitch, pk, "kill switch")
        services.kill_switch_reset_request(
            user=request.user, kill_id=pk, reason=field(request, "reason")
        )
        return f"Reset of kill switch {pk} requested: a second risk manager must approve it"

    return act(request, reverse("risk_console"), go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def kill_reset_decline(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _get(KillSwitch, pk, "kill switch")
        _, verb = services.kill_switch_reset_decline(
            user=request.user,
            kill_id=pk,
            reason=request.POST.get("reason", ""),
            asked_at=asked_at_posted(request.POST),
        )
        return f"The reset of kill switch {pk} is {verb}: it stays engaged"

    return act(request, reverse("risk_console"), go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def kill_reset_approve(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _get(KillSwitch, pk, "kill switch")
        k = services.kill_switch_reset_approve(
            user=request.user,
            kill_id=pk,
            asked_at=asked_at_posted(request.POST),
            note=request.POST.get("note", ""),
        )
        if k.scope_type == "order":  # an order does not trade orders: it may work again
            return (
                f"Kill switch {pk} reset: order {k.scope_key} stays stopped (a stopped order "
                "is not restarted); its trader may enter a new one"
            )
        where = f"{k.scope_type} {k.scope_key}".strip()
        return (
            f"Kill switch {pk} reset: {where} may trade new orders again "
            "(stopped orders stay stopped)"
        )

    return act(request, reverse("risk_console"), go)


# -- the exception console ---------------------------------------------------------------


def _exception_action(
    request: HttpRequest, pk: int, call: Callable[[], Any], done: str
) -> HttpResponse:
    def go() -> str:
        _get(RiskException, pk, "exception")
        call()
        return f"Exception {pk} {done}"

    return act(request, reverse("risk_console"), go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def exception_ack(request: HttpRequest, pk: int) -> HttpResponse:
    return _exception_action(
        request,
        pk,
        lambda: services.exception_acknowledge(user=request.user, exception_id=pk),
        "acknowledged",
    )


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def exception_assign(request: HttpRequest, pk: int) -> HttpResponse:
    assignee = request.POST.get("assignee", "")
    return _exception_action(
        request,
        pk,
        lambda: services.exception_assign(
            user=request.user, exception_id=pk, assignee=field(request, "assignee")
        ),
        f"assigned to {assignee}",
    )


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def exception_comment(request: HttpRequest, pk: int) -> HttpResponse:
    return _exception_action(
        request,
        pk,
        lambda: services.exception_comment(
            user=request.user, exception_id=pk, text=field(request, "text", "comment")
        ),
        "commented",
    )


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def exception_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _exception_action(
        request,
        pk,
        lambda: services.exception_resolve(
            user=request.user, exception_id=pk, resolution=field(request, "resolution")
        ),
        "resolved",
    )


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def exceptions_resolve_ended(request: HttpRequest) -> HttpResponse:
    def go() -> str:
        seen = request.POST.get("seen", "")
        n = services.exceptions_resolve_ended(
            user=request.user,
            resolution=field(request, "resolution"),
            seen=int(seen) if seen.isascii() and seen.isdigit() and len(seen) < 9 else None,
        )
        return f"Resolved {n} exception{'' if n == 1 else 's'} about orders that have ended"

    return act(request, reverse("risk_console"), go)


# -- overrides ---------------------------------------------------------------------------


@login_required
@require_POST
def override_request(request: HttpRequest) -> HttpResponse:
    """The blocked order's trader (or a risk manager) asks for an override."""
    if not (_is_risk_manager(request.user) or request.user.has_perm(TRADE)):
        raise PermissionDenied("traders and risk managers only")
    default = reverse("risk_overrides") if _is_risk_manager(request.user) else reverse("blotter")

    def go() -> str:
        from execution.models import ParentOrder

        order_id = _whole(field(request, "order", "order id"), "the order id")
        visible = ParentOrder.objects.all()
        mine_only = not _is_risk_manager(request.user)
        if mine_only:
            visible = visible.filter(owner=request.user)  # another's order: as if not there
        if not visible.filter(pk=order_id).exists():
            raise Bad(404, f"there is no order {order_id}" + (" of yours" if mine_only else ""))
        ov = services.override_request(
            user=request.user, order_id=order_id, reason=field(request, "reason")
        )
        return f"Override {ov.pk} for order {order_id} requested: a risk manager will decide"

    return act(request, default, go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def override_grant(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _get(Override, pk, "override")
        raw = request.POST.get("minutes", "").strip()
        # A value typed into the page's field: said back on the page, as the service's own
        # range check is (not a separate error page). Plain digits only ("1_0" and "١٠" are
        # numbers to int(), not to a person), and never echoed at length.
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
            raise ValidationError(
                {"minutes": f"a whole number between 1 and 1440, not {raw[:40]!r}"}
            )
        minutes = int(raw) if raw else services.OVERRIDE_DEFAULT_MINUTES
        ov = services.override_grant(
            user=request.user, override_id=pk, minutes=minutes, note=request.POST.get("note", "")
        )
        return (
            f"Override {pk} granted for {minutes} min: order {ov.order_id} goes to the market "
            + (
                f"for these breaches only ({', '.join(ov.codes)})"
                if ov.codes
                # Asked for after a limit change put it within its limits (a trial read
                # "for these breaches only ()").
                else "within its limits as they stand now"
            )
        )

    return act(request, reverse("risk_overrides"), go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def override_reject(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _get(Override, pk, "override")
        ov = services.override_reject(
            user=request.user, override_id=pk, note=request.POST.get("note", "")
        )
        verb = "withdrawn" if ov.granted_by_id is None else "rejected"
        return f"Override {pk} {verb}: order {ov.order_id} is rejected"

    return act(request, reverse("risk_overrides"), go)
