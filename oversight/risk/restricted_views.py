"""The restricted list's page and its POST endpoints, under /risk/restricted/ (thin:
oversight.risk.restricted does the work; answers as every risk screen does)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from oversight.risk import restricted
from oversight.risk.answers import Bad, act, field, kept_form
from oversight.risk.models import Restriction
from oversight.roles import MANAGE_RISK, asked_at_posted, first_eyes_problem


def _restriction(pk: int) -> Restriction:
    r = Restriction.objects.filter(pk=pk).first()
    if r is None:
        raise Bad(404, f"there is no restriction {pk}")
    return r


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_GET
def restricted_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "risk/restricted.html",
        {
            "active": [
                {
                    "r": r,
                    "mine": r.lift_requested_by_id == request.user.pk,
                    # A request whose author lost the role has lapsed: ask again.
                    "lapsed": r.lift_requested_by is not None
                    and bool(
                        first_eyes_problem(
                            r.lift_requested_by, MANAGE_RISK, "a lift", r.lift_requested_at
                        )
                    ),
                }
                for r in restricted.restrictions_active()
            ],
            "unrecorded": restricted.flagged_without_record(),
            "history": restricted.restrictions_recent(),
            "symbols": restricted.unrestricted_symbols(),
            # After a refusal the form comes back with the instrument still chosen, and
            # the reason as typed (a trial's was lost).
            "selected": request.GET.get("instrument", "")[:16],
            "reason": kept_form(request, reverse("risk_restricted")).get("reason", ""),
        },
    )


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def restrict(request: HttpRequest) -> HttpResponse:
    def go() -> str:
        r = restricted.restrict(
            user=request.user,
            symbol=field(request, "instrument"),
            reason=field(request, "reason"),
        )
        symbol, working = r.instrument.symbol, restricted.working_orders_on(r.instrument)
        text = f"{symbol} is on the restricted list (restriction {r.pk}): new orders are refused"
        if working:
            text += (
                f". {working} order{'s' if working != 1 else ''} on it {'are' if working != 1 else 'is'}"
                f" not finished and not stopped by this: engage an instrument kill switch to stop "
                f"{'them' if working != 1 else 'it'}"
            )
        return text

    chosen = request.POST.get("instrument", "")[:16]
    back = reverse("risk_restricted") + (f"?{urlencode({'instrument': chosen})}" if chosen else "")
    return act(request, back, go, keep=("reason",))


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def lift_request(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _restriction(pk)
        r = restricted.lift_request(
            user=request.user, restriction_id=pk, reason=field(request, "reason")
        )
        return (
            f"Lifting restriction {pk} ({r.instrument.symbol}) waits for a second risk "
            "manager's approval"
        )

    return act(request, reverse("risk_restricted"), go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def lift_decline(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _restriction(pk)
        r, verb = restricted.lift_decline(
            user=request.user,
            restriction_id=pk,
            reason=request.POST.get("reason", ""),
            asked_at=asked_at_posted(request.POST),
        )
        return (
            f"The lift of restriction {pk} ({r.instrument.symbol}) is {verb}: it stays restricted"
        )

    return act(request, reverse("risk_restricted"), go)


@login_required
@permission_required(MANAGE_RISK, raise_exception=True)
@require_POST
def lift_approve(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        _restriction(pk)
        r = restricted.lift_approve(
            user=request.user, restriction_id=pk, asked_at=asked_at_posted(request.POST)
        )
        return (
            f"Restriction {pk} lifted by {r.lift_requested_by.get_username()} and "
            f"{request.user.get_username()}: new orders on {r.instrument.symbol} are accepted again"
        )

    return act(request, reverse("risk_restricted"), go)
