"""The TCA page and its CSV export: who sees what, filters, the figures, the empty state."""

from __future__ import annotations

import csv
import html
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from execution.models import OrderEvent
from tca.views import CSV_COLUMNS
from tests.personas import demo_instrument

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db

URL = reverse("tca_report")
EXPORT = reverse("tca_export")


def event(order: Any, seq: int, kind: str, payload: dict[str, Any]) -> None:
    OrderEvent.objects.create(
        parent=order,
        seq=seq,
        kind=kind,
        sim_ts=10.0 * seq,
        payload={**payload, "seq": seq, "kind": kind, "ts": 10.0 * seq},
    )


def progress(order: Any, seq: int, *, mid: str, volume: float) -> None:
    event(order, seq, "ParentProgress", {"mid_px": mid, "market_volume": volume})


def finished(owner: Any, instrument: Any, **over: Any) -> Any:
    """Bought 600 of 1,000 at 40.10 against 40.00; expired with the mid at 40.30 after
    the market traded 6,000 shares (its final status event)."""
    fields: dict[str, Any] = {
        "quantity": 1000,
        "filled_qty": 600,
        "avg_price": Decimal("40.10"),
        "arrival_price": Decimal("40.00"),
        "status": "EXPIRED",
    }
    fields.update(over)
    order = make_order(owner, instrument, **fields)
    # Stored out of sequence order, among events of other kinds: the final status is the
    # status event with the highest seq, not the newest row, nor a progress report.
    event(
        order,
        5,
        "ParentStatusChanged",
        {"status": "EXPIRED", "end_mid_px": "40.30", "market_volume": 6000, "market_vwap_px": None},
    )
    progress(order, 4, mid="40.20", volume=3000)
    event(order, 2, "ParentStatusChanged", {"status": "WORKING", "end_mid_px": None})
    return order


def rows_of(resp: Any) -> list[int]:
    return [r.order.pk for r in resp.context["rows"]]


def test_the_figures_come_from_the_order_and_its_final_status_event(alice, instrument) -> None:
    order = finished(alice, instrument)
    resp = client_for(alice).get(URL)
    assert resp.status_code == 200
    (row,) = resp.context["rows"]
    assert row.result.facts.end_mid_px == pytest.approx(40.30)
    assert row.result.filled_shortfall_bps == pytest.approx(25.0)
    assert row.result.total_shortfall_bps == pytest.approx(45.0)  # 400 unfilled at 40.30
    assert row.result.participation_pct == pytest.approx(10.0)  # 600 of 6,000
    page = resp.content.decode()
    assert f'<a href="{reverse("order_detail", args=[order.pk])}">{order.pk}</a>' in page
    for field, text in [
        ("filled_bps", "25.00"),
        ("total_bps", "45.00"),
        ("participation", "10.00"),
    ]:
        assert re.search(f'data-field="{field}" data-sort="[^"]+"[^>]*>{text}</td>', page), field
    assert ">40.3000<" in page and ">60.0<" in page
    assert 'title="of 6,000 shares the market traded in its window">10.00<' in page
    assert "positive bps = cost" in page and "not a paired comparison" in page
    (summary,) = resp.context["summaries"]
    assert summary.strategy == "twap" and summary.total.mean == pytest.approx(45.0)


def test_the_final_status_event_gives_the_end_mid_volume_and_vwap(alice, instrument) -> None:
    """The engine puts the market over the window on the final status event: that is what
    the page charges the unfilled rest at and measures the fills against."""
    order = make_order(
        alice, instrument, quantity=1000, filled_qty=600, avg_price=Decimal("40.10"),
        arrival_price=Decimal("40.00"), status="EXPIRED",
    )  # fmt: skip
    event(
        order,
        5,
        "ParentStatusChanged",
        {"status": "EXPIRED", "end_mid_px": "40.50", "market_volume": 8000,
         "market_vwap_px": "40.05"},
    )  # fmt: skip
    (row,) = client_for(alice).get(URL).context["rows"]
    r = row.result
    assert r.facts.end_mid_px == pytest.approx(40.50)
    assert r.total_shortfall_bps == pytest.approx(65.0)  # 600 × 0.10 + 400 × 0.50, of 40,000
    assert r.participation_pct == pytest.approx(7.5)  # 600 of 8,000
    assert r.vwap_slippage_bps == pytest.approx(0.05 / 40.05 * 1e4)
    page = client_for(alice).get(URL).content.decode()
    assert re.search(
        'data-field="vwap_bps" data-sort="[^"]+" title="the market.s VWAP: 40.0500">12.48</td>',
        page,
    )
    export = b"".join(client_for(alice).get(EXPORT).streaming_content).decode()
    lines = list(csv.reader(io.StringIO(export)))
    row_csv = dict(zip(CSV_COLUMNS, lines[1], strict=True))
    assert (row_csv["market_vwap_px"], row_csv["vwap_slippage_bps"]) == ("40.050000", "12.4844")


def test_unknown_end_mid_and_volume_show_a_dash(alice, instrument) -> None:
    order = make_order(
        alice, instrument, status="CANCELED", arrival_price=Decimal("40.00"), filled_qty=0
    )
    # A progress report is not the end of the order: its mid is not the end mid.
    progress(order, 1, mid="40.20", volume=3000)
    resp = client_for(alice).get(URL)
    (row,) = resp.context["rows"]
    assert row.result.total_shortfall_bps is None and row.result.participation_pct is None
    page = resp.content.decode()
    assert 'data-field="total_bps" data-sort="">—</td>' in page
    assert re.search('data-field="participation" data-sort="" title="[^"]*">—</td>', page)


def test_only_finished_orders_with_an_arrival_price(alice, instrument) -> None:
    shown = [finished(alice, instrument, status=s).pk for s in ("FILLED", "CANCELED", "EXPIRED")]
    finished(alice, instrument, status="WORKING")
    finished(alice, instrument, status="REJECTED")
    finished(alice, instrument, status="FILLED", arrival_price=None)
    assert rows_of(client_for(alice).get(URL)) == sorted(shown, reverse=True)


def test_trader_sees_own_orders_and_risk_manager_sees_all(alice, bob, rita, instrument) -> None:
    mine = finished(alice, instrument)
    theirs = finished(bob, instrument)
    assert rows_of(client_for(alice).get(URL)) == [mine.pk]
    assert rows_of(client_for(rita).get(URL)) == [theirs.pk, mine.pk]
    exported = client_for(alice).get(EXPORT)
    ids = [line["order_id"] for line in csv.DictReader(io.StringIO(b"".join(exported).decode()))]
    assert ids == [str(mine.pk)]
    # A risk manager picks a trader; a trader has no such filter (theirs are all they see).
    assert rows_of(client_for(rita).get(URL, {"trader": "bob"})) == [theirs.pk]
    assert 'name="trader"' in client_for(rita).get(URL).content.decode()
    assert 'name="trader"' not in client_for(alice).get(URL).content.decode()
    # Naming another is said to name nothing (it answered with their own, as if filtered).
    assert client_for(alice).get(URL, {"trader": "bob"}).status_code == 400
    bad = client_for(rita).get(URL, {"trader": "nobody"})
    assert bad.status_code == 400 and "there is no trader “nobody”" in bad.content.decode()


def test_admin_and_anonymous_are_refused(adam, alice, instrument) -> None:
    finished(alice, instrument)
    c = client_for(adam)
    assert c.get(URL).status_code == 403
    assert c.get(EXPORT).status_code == 403
    for url in (URL, EXPORT):
        resp = Client().get(url)
        assert resp.status_code == 302 and resp["Location"].startswith(reverse("login"))


def test_nav_link_for_traders_and_risk_managers_only(alice, rita, adam) -> None:
    for user in (alice, rita):
        assert 'href="/tca/"' in client_for(user).get(reverse("blotter")).content.decode()
    assert 'href="/tca/" aria-current="page"' in client_for(alice).get(URL).content.decode()
    assert 'href="/tca/"' not in client_for(adam).get(reverse("user_list")).content.decode()


def test_every_bad_filter_is_named_at_once(alice) -> None:
    resp = client_for(alice).get(URL, {"instrument": "X", "side": "up"})
    assert resp.status_code == 400
    assert "No orders shown: there is no instrument “X”; side is buy or sell, not “up”." in (
        resp.content.decode()
    )


def test_filters_by_instrument_strategy_and_side(alice, instrument) -> None:
    other = demo_instrument("demo-largecap-sell")
    a = finished(alice, instrument, strategy="twap", side="buy")
    b = finished(alice, instrument, strategy="vwap", side="sell")
    c = finished(alice, other, strategy="twap", side="sell")
    client = client_for(alice)
    assert rows_of(client.get(URL, {"instrument": "HBRK"})) == [b.pk, a.pk]
    assert rows_of(client.get(URL, {"strategy": "twap"})) == [c.pk, a.pk]
    assert rows_of(client.get(URL, {"side": "sell", "instrument": "LGVX"})) == [c.pk]
    # As the page writes them (POV, HBRK) or not: the same filter.
    assert rows_of(client.get(URL, {"strategy": "TWAP", "instrument": "hbrk"})) == [a.pk]
    resp = client.get(URL, {"strategy": "twap", "side": "sell"})
    assert rows_of(resp) == [c.pk]
    # The export link carries the filters.
    assert f'href="{EXPORT}?strategy=twap&amp;side=sell"' in resp.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"instrument": "NOPE"}, "there is no instrument “NOPE”"),
        ({"strategy": "<b>fast</b>"}, "there is no strategy “&lt;b&gt;fast&lt;/b&gt;”"),
        ({"side": "up"}, "side is buy or sell, not “up”"),
        # A long one is named by its start, not echoed whole.
        ({"instrument": "Z" * 10_000}, "there is no instrument “" + "Z" * 64 + "…”"),
    ],
)
def test_a_bad_filter_is_named_and_nothing_is_listed(
    alice, instrument, params: dict[str, str], message: str
) -> None:
    finished(alice, instrument)
    client = client_for(alice)
    resp = client.get(URL, params)
    assert resp.status_code == 400
    assert resp.context["rows"] == []
    page = resp.content.decode()
    assert 'role="alert"' in page and message in page
    assert 'id="tca-orders"' not in page
    assert f"No orders shown: {message}." in page
    assert len(page) < 20_000
    export = client.get(EXPORT, params)  # text: as typed, not escaped for a page
    assert export.status_code == 400 and html.unescape(message) in export.content.decode()
    # A script gets its problem as text; a browser the page (a trial's client read HTML).
    assert export["Content-Type"].startswith("text/plain") and len(export.content) < 1_000
    assert client.get(EXPORT, params, HTTP_ACCEPT="text/html")["Content-Type"].startswith(
        "text/html"
    )


def test_csv_export_has_a_header_and_the_page_figures(alice, instrument) -> None:
    order = finished(alice, instrument, model_version=None, day=3)
    resp = client_for(alice).get(EXPORT)
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/csv")
    assert resp["Content-Disposition"].startswith('attachment; filename="tca-')
    lines = list(csv.reader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert tuple(lines[0]) == CSV_COLUMNS
    (row,) = [dict(zip(CSV_COLUMNS, line, strict=True)) for line in lines[1:]]
    assert row["order_id"] == str(order.pk)
    assert row["window"] == "09:30:00-10:30:00" and row["entered_utc"].endswith("Z")
    assert row["market_day"] == "3"  # as the blotter's d3 (two days' windows read the same)
    assert (row["trader"], row["instrument"], row["side"], row["strategy"]) == (
        "alice",
        "HBRK",
        "buy",
        "twap",
    )
    assert (row["quantity"], row["filled_qty"], row["status"]) == ("1000", "600", "EXPIRED")
    assert float(row["arrival_px"]) == 40.0 and float(row["end_mid_px"]) == pytest.approx(40.3)
    assert row["filled_shortfall_bps"] == "25.0000"
    assert row["total_shortfall_bps"] == "45.0000"
    assert row["participation_pct"] == "10.0000"
    assert row["market_volume"] == "6000"


def test_empty_state(alice, instrument) -> None:
    make_order(alice, instrument)  # working: not finished yet
    page = client_for(alice).get(URL).content.decode()
    assert "No finished orders yet" in page
    assert 'id="tca-orders"' not in page and 'id="tca-export"' not in page
    finished(alice, instrument, strategy="twap")
    filtered = client_for(alice).get(URL, {"strategy": "pov"}).content.decode()
    assert "No finished orders match these filters" in filtered


def test_one_query_for_any_number_of_orders(alice, instrument) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client_for(alice).get(URL).status_code == 200
        return len(ctx.captured_queries)

    finished(alice, instrument)
    one = queries()
    for _ in range(4):
        finished(alice, instrument)
    assert queries() == one


def test_rows_are_capped_and_the_page_says_so(alice, instrument, monkeypatch) -> None:
    monkeypatch.setattr("tca.views.TCA_ROWS", 2)
    newest = [finished(alice, instrument).pk for _ in range(3)][::-1][:2]
    resp = client_for(alice).get(URL)
    assert rows_of(resp) == newest
    assert "Showing the newest 2 orders only" in resp.content.decode()
    exported = b"".join(client_for(alice).get(EXPORT)).decode().splitlines()
    assert len(exported) == 1 + 2


def test_orders_stopped_before_their_end_are_counted_apart_from_the_fill_rate(
    alice, instrument
) -> None:
    finished(alice, instrument)  # 600 of 1,000, expired
    finished(alice, instrument, quantity=9000, filled_qty=100, status="CANCELED")
    page = client_for(alice).get(URL).content.decode()
    row = page.split('<tr data-strategy="twap">')[1].split("</tr>")[0]
    assert '<td class="num" data-field="stopped">1</td>' in row
    assert '<td class="num" data-field="fill-rate">60.0</td>' in row  # not 700 of 10,000


def test_orders_a_model_gave_up_on_are_counted_under_the_strategy_entered(
    alice, instrument
) -> None:
    fell = finished(alice, instrument, strategy="adaptive", fallback_strategy="twap")
    finished(alice, instrument, strategy="adaptive")
    finished(alice, instrument)  # TWAP as entered: not a fallback
    page = client_for(alice).get(URL).content.decode()
    adaptive = page.split('<tr data-strategy="adaptive">')[1].split("</tr>")[0]
    twap = page.split('<tr data-strategy="twap">')[1].split("</tr>")[0]
    assert '<td class="num" data-field="fell-back">1</td>' in adaptive
    assert '<td class="num" data-field="fell-back">0</td>' in twap
    lines = list(csv.reader(io.StringIO(b"".join(client_for(alice).get(EXPORT)).decode())))
    rows = {r["order_id"]: r for r in (dict(zip(CSV_COLUMNS, x, strict=True)) for x in lines[1:])}
    assert [r["order_id"] for r in rows.values() if r["fallback_strategy"]] == [str(fell.pk)]
    assert rows[str(fell.pk)]["fallback_strategy"] == "twap"


def test_adaptive_orders_are_summarised_by_model_version_and_can_be_filtered_by_it(
    alice, instrument
) -> None:
    """How did this model do? The adaptive row pooled every version (a trial)."""
    from tests.personas import approved_model

    v1, v2 = approved_model("policy-v1"), approved_model("policy-v2")
    a = finished(alice, instrument, strategy="adaptive", model_version=v1)
    finished(alice, instrument, strategy="adaptive", model_version=v1)
    b = finished(alice, instrument, strategy="adaptive", model_version=v2, filled_qty=1000)
    page = client_for(alice).get(URL).content.decode()
    first = page.split('<tr data-strategy="adaptive" data-model="policy-v1">')[1].split("</tr>")[0]
    second = page.split('<tr data-strategy="adaptive" data-model="policy-v2">')[1]
    second = second.split("</tr>")[0]
    assert re.search(r"<td class=\"num\">2</td>", first) and "policy-v1</span>" in first
    assert re.search(r"<td class=\"num\">1</td>", second)
    assert '<td class="num" data-field="fill-rate">100.0</td>' in second
    only = client_for(alice).get(URL, {"model": "policy-v2"})
    assert rows_of(only) == [b.pk] and a.pk not in rows_of(only)
    assert rows_of(client_for(alice).get(URL, {"model": " POLICY-V2 "})) == [b.pk]
    bad = client_for(alice).get(URL, {"model": "policy-v9"}).content.decode()
    assert "there is no model version “policy-v9” with orders" in bad
    # A model with a strategy that has none is always empty: said, not "no orders match".
    both = client_for(alice).get(URL, {"model": "policy-v2", "strategy": "twap"})
    assert both.status_code == 400 and "TWAP orders trade without a model" in both.content.decode()
    assert rows_of(client_for(alice).get(URL, {"model": "policy-v2", "strategy": "adaptive"})) == [
        b.pk
    ]
    # A gated version's orders, by the expert that traded each (recorded at entry).
    v14 = approved_model("policy-v14")
    c = finished(
        alice, instrument, strategy="adaptive", model_version=v14, model_expert="policy-v13"
    )
    page = client_for(alice).get(URL).content.decode()
    assert '<tr data-strategy="adaptive" data-model="policy-v14 · policy-v13">' in page
    assert rows_of(client_for(alice).get(URL, {"model": "policy-v13"})) == [c.pk]
    # Under 5 lots the model does not trade the order: its figures are not the model's.
    tiny = finished(
        alice, instrument, strategy="adaptive", model_version=v14, model_expert="policy-v8",
        quantity=300, filled_qty=300, params={"min_child_qty": 100},
    )  # fmt: skip
    page = client_for(alice).get(URL).content.decode()
    label = "policy-v14 · its curve, no model (under 5 lots)"
    assert f'<tr data-strategy="adaptive" data-model="{label}">' in page
    assert '<tr data-strategy="adaptive" data-model="policy-v14 · policy-v8">' not in page
    row = page.split(f'id="tca-{tiny.pk}"')[1].split("</tr>")[0]
    assert label in row
    lines = list(csv.reader(io.StringIO(b"".join(client_for(alice).get(EXPORT)).decode())))
    rows = {r["order_id"]: r for r in (dict(zip(CSV_COLUMNS, x, strict=True)) for x in lines[1:])}
    assert (rows[str(c.pk)]["model_version"], rows[str(c.pk)]["model_expert"]) == (
        "policy-v14", "policy-v13",
    )  # fmt: skip
    # One reading of "no model traded it" everywhere (a trial: the order page named the
    # expert, the export had no column for it, and the expert's filter listed it).
    assert (rows[str(c.pk)]["model_traded"], rows[str(tiny.pk)]["model_traded"]) == ("yes", "no")
    big = finished(
        alice, instrument, strategy="adaptive", model_version=v14, model_expert="policy-v8",
        quantity=500, filled_qty=500, params={"min_child_qty": 100},
    )  # fmt: skip
    assert rows_of(client_for(alice).get(URL, {"model": "policy-v8"})) == [big.pk]
    assert set(rows_of(client_for(alice).get(URL, {"model": "policy-v14"}))) == {
        c.pk, tiny.pk, big.pk
    }  # fmt: skip
    detail = client_for(alice).get(reverse("order_detail", args=[tiny.pk])).content.decode()
    assert 'id="model-expert"' not in detail
    said = detail.split('id="model-curve-alone">')[1].split("</span>")[0]
    assert said.startswith("too small for the model (under 5 lots of 100 shares)"), said


def test_an_order_cut_by_an_amend_shows_the_size_it_was_entered_with(alice, instrument) -> None:
    """Cut from 4,000 to 1,000 it read as a 1,000-share order filled in full (a trial)."""
    cut = finished(alice, instrument, quantity=1000, filled_qty=1000, entered_quantity=4000)
    whole = finished(alice, instrument)
    page = client_for(alice).get(URL).content.decode()
    assert "cut from 4,000" in page and page.count("cut from") == 1
    lines = list(csv.reader(io.StringIO(b"".join(client_for(alice).get(EXPORT)).decode())))
    rows = {r["order_id"]: r for r in (dict(zip(CSV_COLUMNS, x, strict=True)) for x in lines[1:])}
    assert (rows[str(cut.pk)]["quantity"], rows[str(cut.pk)]["entered_quantity"]) == (
        "1000",
        "4000",
    )
    assert rows[str(whole.pk)]["entered_quantity"] == rows[str(whole.pk)]["quantity"] == "1000"


def test_a_trader_naming_another_trader_is_told_so(alice, bob, instrument) -> None:
    finished(alice, instrument)
    resp = client_for(alice).get(URL, {"trader": "bob"})
    assert resp.status_code == 400
    assert "you see only your own orders, not trader “bob”" in resp.content.decode()
    assert client_for(alice).get(URL, {"trader": "alice"}).status_code == 200


def test_a_filter_the_page_does_not_have_is_refused(alice, instrument) -> None:
    finished(alice, instrument)
    resp = client_for(alice).get(URL, {"expert": "policy-v13"})
    assert resp.status_code == 400
    assert "“expert” is not a filter here; the filters are instrument, strategy, model, side" in (
        resp.content.decode()
    )
