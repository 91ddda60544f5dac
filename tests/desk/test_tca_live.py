"""The TCA page over an order a real worker traded: the figures come from the events the
engine stored (their real payloads, through the database's JSON functions): its final
status event carries the market over the window."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from execution.models import Instrument, OrderEvent
from tca.metrics import implementation_shortfall_bps
from tests.personas import client_for
from tests.stepping import run_to, submit, worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_expired_pov_order_is_charged_for_what_it_left(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        # 1% of the market over ten minutes cannot fill 50,000 shares: it expires part-done.
        order = submit(
            alice,
            instrument,
            quantity=50_000,
            end_minute=10,
            strategy="pov",
            params={"participation_rate": 0.01},
        )
    run_to(worker(instrument), 11 * 60)
    order.refresh_from_db()
    assert order.status == "EXPIRED" and 0 < order.filled_qty < order.quantity
    final = OrderEvent.objects.filter(parent=order, kind="ParentStatusChanged").order_by("-seq")[0]
    assert final.payload["status"] == "EXPIRED"
    mid, volume = float(final.payload["end_mid_px"]), float(final.payload["market_volume"])
    vwap = float(final.payload["market_vwap_px"])

    (row,) = client_for(alice).get(reverse("tca_report")).context["rows"]
    r = row.result
    assert r.facts.end_mid_px == pytest.approx(mid)
    assert r.facts.market_volume == pytest.approx(volume)
    assert r.participation_pct == pytest.approx(100 * order.filled_qty / volume)
    # Over the whole window, not to the last fill: near the 1% the order was given.
    assert 0.5 < r.participation_pct < 2.0
    assert r.vwap_slippage_bps == pytest.approx((float(order.avg_price) - vwap) / vwap * 1e4)
    assert r.total_shortfall_bps == pytest.approx(
        implementation_shortfall_bps(
            side=1,
            qty=order.quantity,
            filled_qty=order.filled_qty,
            avg_fill_px=float(order.avg_price),
            arrival_mid=float(order.arrival_price),
            end_mid=mid,
        )
    )
    assert r.filled_shortfall_bps == pytest.approx(
        float((order.avg_price - order.arrival_price) / order.arrival_price * 10_000)
    )


def test_an_order_left_paused_until_its_window_ended_counts_as_stopped(
    instrument: Instrument, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Its expiry is its trader's doing, not its strategy's: a trial's paused orders
    counted against TWAP's fill rate."""
    from execution.services import order_control_request
    from tca.selectors import order_facts, tca_orders

    with django_capture_on_commit_callbacks(execute=False):
        paused = submit(alice, instrument, end_minute=30)
        worked = submit(alice, instrument, end_minute=30, quantity=20_001)
    w = worker(instrument)
    run_to(w, 10 * 60)
    order_control_request(user=alice, order=paused, action="pause")
    run_to(w, 32 * 60)
    facts = {o.pk: order_facts(o) for o in tca_orders(user=alice)}
    paused.refresh_from_db()
    assert paused.status == "EXPIRED" and paused.status_reason == "window ended while paused"
    assert facts[paused.pk].stopped and not facts[worked.pk].stopped
    page = client_for(alice).get(reverse("tca_report")).content.decode()
    row = page.split('<tr data-strategy="twap">')[1].split("</tr>")[0]
    assert '<td class="num" data-field="stopped">1</td>' in row
    # Nor has it a participation on the blotter, as on the TCA page: the market's volume
    # over its window counts the time it stood still (a trial read 0.2% there, "—" here).
    assert facts[paused.pk].left_paused and not facts[worked.pk].left_paused
    blotter = client_for(alice).get(reverse("blotter")).content.decode()
    cell = blotter.split(f'id="order-{paused.pk}"')[1].split('data-field="participation"')[1]
    assert cell.split("</td>")[0].endswith(">—"), cell[:300]
