"""The post-trade TCA page and its CSV export. Thin: rows come from the selectors, every
figure from the pure tca.summary module."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from execution.selectors import can_watch_orders, order_market_day
from execution.session_clock import session_clock
from oversight.risk.answers import export_refused
from tca.forms import FILTER_KEYS, TcaFilterForm
from tca.selectors import TCA_ROWS, TcaRow, tca_rows
from tca.summary import strategy_summaries

CSV_COLUMNS = (
    "order_id",
    "entered_utc",
    "window",
    "market_day",
    "trader",
    "instrument",
    "side",
    "strategy",
    "model_version",
    "model_expert",
    # "no" for an adaptive order too small for its model: worked along its curve alone,
    # whatever version and expert it records (a trial read model_expert as the trader).
    "model_traded",
    "fallback_strategy",
    "status",
    "quantity",
    "entered_quantity",
    "filled_qty",
    "fill_pct",
    "arrival_px",
    "avg_px",
    "end_mid_px",
    "filled_shortfall_bps",
    "total_shortfall_bps",
    "market_volume",
    "participation_pct",
    "market_vwap_px",
    "vwap_slippage_bps",
)
# Text a spreadsheet would read as a formula (OWASP "CSV injection"); usernames may start so.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _refuse_unless_watcher(request: HttpRequest) -> None:
    # The blotter's rule: traders (their own orders) and risk managers (all), no one else.
    if not can_watch_orders(request.user):
        raise PermissionDenied("traders and risk managers only")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)  # plenty for a chart; a smaller page


def _chart_data(rows: list[TcaRow]) -> dict[str, Any]:
    return {
        "order_url": reverse("order_detail", args=[0]).replace("/0/", "/{id}/"),
        "points": [
            {
                "id": r.order.pk,
                "strategy": r.order.strategy,
                "symbol": r.order.instrument.symbol,
                "side": r.order.side,
                "filled_bps": _rounded(r.result.filled_shortfall_bps),
                "total_bps": _rounded(r.result.total_shortfall_bps),
                "participation_pct": _rounded(r.result.participation_pct),
            }
            for r in rows
        ],
    }


def _page(request: HttpRequest, form: TcaFilterForm) -> HttpResponse:
    valid = form.is_valid()
    rows: list[TcaRow] = []
    capped = False
    if valid:
        rows, capped = tca_rows(user=request.user, limit=TCA_ROWS, **form.filters())
    query = urlencode({k: request.GET[k] for k in FILTER_KEYS if request.GET.get(k)})
    return render(
        request,
        "tca/report.html",
        {
            "form": form,
            "valid": valid,
            "problems": [*form.non_field_errors(), *(e for field in form for e in field.errors)],
            "rows": rows,
            "capped": capped,
            "cap": TCA_ROWS,
            "filtered": bool(query),
            "query": query,
            "summaries": strategy_summaries(r.result for r in rows),
            "chart": _chart_data(rows),
        },
        # A filter that names nothing is the person's to fix: say so and list nothing,
        # never an unfiltered table that looks like the answer.
        status=200 if valid else 400,
    )


@login_required
@require_GET
def tca_report(request: HttpRequest) -> HttpResponse:
    _refuse_unless_watcher(request)
    return _page(request, TcaFilterForm(request.GET, user=request.user))


class _Echo:
    """csv.writer's file: hands each line back instead of buffering the export."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def _num(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _csv_lines(rows: Iterable[TcaRow]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        o, r = row.order, row.result
        yield writer.writerow(
            [
                o.pk,
                o.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                f"{session_clock(o.start_minute * 60, ms=False)}-"
                f"{session_clock(o.end_minute * 60, ms=False)}",
                # The instrument's market day the window is on, as the blotter's "d2" (a
                # trial: two days' 09:30-10:30 read the same).
                order_market_day(o) or "",
                _cell(o.owner.get_username()),
                o.instrument.symbol,
                o.side,
                o.strategy,
                _cell(o.model_version.name) if o.model_version else "",
                _cell(o.model_expert),
                ("no" if o.by_curve_alone else "yes") if o.model_version else "",
                o.fallback_strategy or "",
                o.status,
                o.quantity,
                o.entered_quantity if o.entered_quantity is not None else o.quantity,
                o.filled_qty,
                _num(r.fill_pct, 2),
                o.arrival_price,
                "" if o.avg_price is None else o.avg_price,
                _num(r.facts.end_mid_px, 6),
                _num(r.filled_shortfall_bps, 4),
                _num(r.total_shortfall_bps, 4),
                _num(r.facts.market_volume, 0),
                _num(r.participation_pct, 4),
                _num(r.facts.market_vwap_px, 6),
                _num(r.vwap_slippage_bps, 4),
            ]
        )


@login_required
@require_GET
def tca_export(request: HttpRequest) -> HttpResponse:
    """The page's rows (same filters, same visibility, same cap) as CSV."""
    _refuse_unless_watcher(request)
    form = TcaFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return export_refused(request, form, lambda: _page(request, form))
    rows, _ = tca_rows(user=request.user, limit=TCA_ROWS, **form.filters())
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    resp = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="tca-{stamp}.csv"'
    return resp
