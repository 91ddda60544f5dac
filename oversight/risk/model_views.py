"""The model registry's pages, under /risk/models/: every version of the adaptive policy
with its card, evaluation, hashes and status, and the four-eyes approval (risk managers).
Traders may read them: the ticket offers the approved versions."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from execution import model_registry as registry
from execution.models import ModelVersion, ParentOrder
from execution.selectors import orders_visible_to
from oversight.risk.answers import act, field
from oversight.roles import APPROVE_MODEL, TRADE, VIEW_ALL_ORDERS

CARD_SECTIONS = ("validation", "config", "data")


def _require_reader(request: HttpRequest) -> None:
    u = request.user
    if not any(u.has_perm(p) for p in (APPROVE_MODEL, TRADE, VIEW_ALL_ORDERS)):
        raise PermissionDenied("only traders and risk managers see the model registry")


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    versions = list(
        ModelVersion.objects.select_related("recommended_by", "decided_by", "retired_by")
    )
    gates = registry.live_gates()  # once for the page, not once a row
    return render(
        request,
        "risk/models.html",
        {
            "rows": [_row(mv, request.user, gates) for mv in versions],
            "can_decide": request.user.has_perm(APPROVE_MODEL),
            **_defaults(request.user),
        },
    )


def _defaults(user: Any) -> dict[str, Any]:
    """The ticket's default version, how it became so, and any proposal waiting."""
    pending = registry.pending_default()
    return {
        **registry.default_state(),
        "pending_default": pending,
        "pending_mine": pending is not None and pending.requested_by_id == user.pk,
    }


@login_required
@require_GET
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_reader(request)
    mv = get_object_or_404(
        ModelVersion.objects.select_related(
            "registered_by", "recommended_by", "decided_by", "retired_by"
        ),
        pk=pk,
    )
    card = mv.card if isinstance(mv.card, dict) else {}
    return render(
        request,
        "risk/model_detail.html",
        {
            "r": _row(mv, request.user),
            "mv": mv,
            "problem": registry.integrity_problem(mv),
            "validation": _readable(card.get("validation") or {}),
            # As JSON, the format the card is written in (not Python's repr of a dict).
            "card_rest": json.dumps(
                {k: v for k, v in card.items() if k not in ("history",)}, indent=2, default=str
            ),
            "experts": _experts(mv),
            "metrics": mv.metrics or {},
            "metrics_json": json.dumps(mv.metrics, indent=2, default=str) if mv.metrics else "",
            "comparison": _comparison(mv.metrics if isinstance(mv.metrics, dict) else {}),
            # Linked only where the reader may open them: a trader sees their own (a
            # review: another trader's order numbers were listed to them).
            # And those it traded as a gated version's expert (its page said 0: a trial).
            "orders": orders_visible_to(request.user)
            .filter(Q(model_version=mv) | Q(model_expert=mv.name))
            .order_by("-id")[:20],
            "order_count": ParentOrder.objects.filter(
                Q(model_version=mv) | Q(model_expert=mv.name)
            ).count(),
            "can_decide": request.user.has_perm(APPROVE_MODEL),
            "trades_every_spread": registry.spread_band_of(mv) is None,
            **_defaults(request.user),
        },
    )


def _readable(section: Any) -> dict[str, str]:
    """A card section's values as a person reads them: JSON for nested values, numbers to
    four significant digits (the card itself keeps every digit)."""
    if not isinstance(section, dict):
        return {}

    def tidy(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.4g}")
        if isinstance(v, dict):
            return {k: tidy(x) for k, x in v.items()}
        if isinstance(v, list):
            return [tidy(x) for x in v]
        return v

    return {
        str(k): json.dumps(tidy(v)) if isinstance(v, dict | list) else str(tidy(v))
        for k, v in section.items()
    }


def _experts(mv: ModelVersion) -> list[dict[str, Any]]:
    """A gated version's experts with the band of spread each trades and how the registry
    holds each (a gate's rejected expert was not shown as such: a trial), empty otherwise."""
    experts = registry.experts_of(mv)
    held = {
        (v.name, v.sha256): v
        for v in ModelVersion.objects.filter(name__in=[e["model"] for e in experts])
    }
    return [
        {
            **e,
            "band": registry.band_words(e["from_bps"], e["below_bps"]),
            "registered": held.get((e["model"], e["sha256"])),
        }
        for e in experts
    ]


def _row(mv: ModelVersion, user: Any, gates: Any = None) -> dict[str, Any]:
    card = mv.card if isinstance(mv.card, dict) else {}
    validation = card.get("validation") or {}
    diff = validation.get("adaptive_minus_twap_bps") or {}
    inside = registry.gated_users_of(mv, gates)
    approved = (  # asked only for an expert: not a query for every row of the list
        set(
            ModelVersion.objects.filter(name__in=inside, status=ModelVersion.APPROVED).values_list(
                "name", flat=True
            )
        )
        if inside
        else set()
    )
    return {
        "mv": mv,
        # A file changed or gone since it was registered: said on the list, not only on
        # the version's own page (a trial's approved version traded as TWAP so).
        "problem": registry.integrity_problem(mv) if mv.status != mv.REJECTED else "",
        # An expert trades inside the gated versions that carry it, whatever its own
        # status (a trial: v13 read "Candidate" while it traded every wide name).
        "inside": inside,
        # Said as covered by the gate's approval (a trial read "Candidate · expert in
        # policy-v14" as an unapproved model trading live).
        "inside_approved": [n for n in inside if n in approved],
        "inside_pending": [n for n in inside if n not in approved],
        "mine": mv.recommended_by_id == user.pk,
        "trained": card.get("date", ""),
        "method": card.get("method", ""),
        "vs_twap": diff,
        # Worked around the volume curve, its edge over TWAP includes what VWAP's schedule
        # alone saves: the page marks it, so it is not read as the policy's own.
        "volume_curve": validation.get("schedule") == "volume",
        "fallbacks": validation.get("fallbacks"),
        "scenarios": validation.get("scenarios"),
    }


def _comparison(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The retrain's evaluation as rows: each arm's mean shortfall and the candidate minus
    it, paired by day (empty when the version has no such evaluation)."""
    means = metrics.get("mean_shortfall_bps")
    diffs = metrics.get("candidate_minus")
    if not isinstance(means, dict) or not isinstance(diffs, dict):
        return []
    rows = []
    for arm, mean in means.items():
        d = diffs.get(arm) if isinstance(diffs.get(arm), dict) else None
        rows.append(
            {
                "arm": arm,
                "mean": mean,
                "diff": d,
                "better": bool(d and d.get("ci95_high") is not None and d["ci95_high"] < 0),
                "worse": bool(d and d.get("ci95_low") is not None and d["ci95_low"] > 0),
            }
        )
    return rows


def _back(pk: int) -> str:
    """Where an action on version `pk` returns: its page, or the list if there is none."""
    if ModelVersion.objects.filter(pk=pk).exists():
        return reverse("model_detail", args=[pk])
    return reverse("model_list")


@login_required
@permission_required(APPROVE_MODEL, raise_exception=True)
@require_POST
def model_recommend(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        mv = registry.model_recommend(
            user=request.user, version_id=pk, reason=field(request, "reason")
        )
        return f"{mv.name} recommended: a second risk manager must approve it before it trades"

    return act(request, _back(pk), go)


@login_required
@permission_required(APPROVE_MODEL, raise_exception=True)
@require_POST
def model_approve(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        mv = registry.model_approve(
            user=request.user, version_id=pk, note=request.POST.get("note", "")
        )
        # A gated version trades through its experts, whatever their own status: said
        # here, where the approval is made (a trial read "approved" and found its expert,
        # a candidate, trading the next order).
        experts = ", ".join(e["model"] for e in registry.experts_of(mv))
        through = f"; it trades through its experts {experts}" if experts else ""
        return (
            f"{mv.name} approved: the order ticket offers it from now on{through}; "
            f"{registry.default_note()}"
        )

    return act(request, _back(pk), go)


@login_required
@permission_required(APPROVE_MODEL, raise_exception=True)
@require_POST
def model_reject(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        mv = registry.model_reject(user=request.user, version_id=pk, note=field(request, "note"))
        if mv.status == ModelVersion.CANDIDATE:
            return f"your recommendation of {mv.name} is withdrawn: it is a candidate again"
        return f"{mv.name} rejected"

    return act(request, _back(pk), go)


@login_required
@permission_required(APPROVE_MODEL, raise_exception=True)
@require_POST
def model_retire(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        mv = registry.model_retire(
            user=request.user, version_id=pk, reason=field(request, "reason")
        )
        return (
            f"{mv.name} retired: no new order may use it; orders already working on it keep "
            f"it (a kill switch on the model scope stops them); {registry.default_note()}"
        )

    return act(request, _back(pk), go)


@login_required
@permission_required(APPROVE_MODEL, raise_exception=True)
@require_POST
def model_default_propose(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        d = registry.model_default_propose(
            user=request.user, version_id=pk, reason=field(request, "reason")
        )
        return (
            f"{d.version.name} proposed as the default: a second risk manager must confirm "
            "it before the ticket offers it first"
        )

    return act(request, _back(pk), go)


@login_required
@permission_required(APPROVE_MODEL, raise_exception=True)
@require_POST
def model_default_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        d = registry.model_default_confirm(user=request.user, designation_id=pk)
        return f"{d.version.name} is the default for new adaptive orders"

    return act(request, reverse("model_list"), go)


@login_required
@permission_required(APPROVE_MODEL, raise_exception=True)
@require_POST
def model_default_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    def go() -> str:
        d = registry.model_default_withdraw(
            user=request.user, designation_id=pk, reason=field(request, "reason")
        )
        return f"the proposal of {d.version.name} as the default is withdrawn"

    return act(request, reverse("model_list"), go)
