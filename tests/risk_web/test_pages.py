"""What the risk screens show: the console's exception queue, kill switches and exposure;
limits and their requests; overrides; and the trader's side of the blotter."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from execution.models import ChildOrder
from oversight.risk import selectors, services
from oversight.risk.models import Desk, DeskMembership, LimitRequest, RiskException

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db


def raise_exc(title: str, severity: str, *, ago_s: float = 0, escalated: bool = False, **kw):
    e = services.exception_raise(
        kind=kw.pop("kind", "TEST"),
        severity=severity,
        scope_type=kw.pop("scope_type", "firm"),
        title=title,
        dedupe_key=title,
        **kw,
    )
    at = timezone.now() - timedelta(seconds=ago_s)
    RiskException.objects.filter(pk=e.pk).update(
        raised_at=at, escalated_at=timezone.now() if escalated else None
    )
    return RiskException.objects.get(pk=e.pk)


def queue_titles(html: str) -> list[str]:
    # (The page's row template, with no title, is not in the queue.)
    return [t for t in re.findall(r'data-field="title" title="([^"]*)"', html) if t]


def test_console_shows_exceptions_in_order_and_a_kill_switch(rita, alice, instrument) -> None:
    raise_exc("old warning", "WARNING", ago_s=300)
    raise_exc("info", "INFO", ago_s=10)
    raise_exc("new warning", "WARNING", ago_s=5)
    raise_exc("critical, not escalated", "CRITICAL", ago_s=20)
    raise_exc("escalated critical", "CRITICAL", ago_s=600, escalated=True)
    done = raise_exc("already resolved", "CRITICAL")
    services.exception_resolve(user=rita, exception_id=done.pk, resolution="checked the venue")
    k = services.kill_switch_engage(
        user=rita, scope_type="trader", scope_key="alice", reason="fat finger on HBRK"
    )

    resp = client_for(rita).get(reverse("risk_console"))
    assert resp.status_code == 200
    html = resp.content.decode()
    # The kill switch's own exception is a warning raised just now.
    assert queue_titles(html) == [
        "escalated critical",
        "critical, not escalated",
        f"Kill switch {k.pk} engaged: trader alice (halted)",
        "new warning",
        "old warning",
        "info",
    ]
    assert "▲ escalated" in html
    assert re.search(rf'id="kill-{k.pk}".*?trader alice.*?fat finger on HBRK', html, re.S)
    assert "Request reset" in html
    assert 'id="resolved-rows"' in html and "checked the venue" in html
    # The engage form offers every scope with its valid keys.
    assert '<datalist id="keys-trader"><option value="alice"></option></datalist>' in html
    assert '<datalist id="keys-instrument"><option value="HBRK"></option></datalist>' in html


def test_an_exception_about_an_order_that_has_ended_says_so(rita, alice, instrument) -> None:
    """The console filled with open exceptions about orders long finished, told apart
    from live ones by nothing (a trial)."""
    live = make_order(alice, instrument)
    done = make_order(alice, instrument, status="EXPIRED")
    for order in (live, done):
        raise_exc(f"about {order.pk}", "WARNING", scope_type="order", order_id=order.pk)
    page = client_for(rita).get(reverse("risk_console")).content.decode()
    rows = {pk: page.split(f'title="about {pk}"')[1].split("</tr>")[0] for pk in (live.pk, done.pk)}
    assert re.search(r'data-field="order_ended"[^>]*>order expired<', rows[done.pk])
    assert re.search(r'data-field="order_ended"[^>]* hidden>order <', rows[live.pk])
    e = RiskException.objects.get(order=done)
    assert selectors.exception_json(e)["order_ended"] == "expired"


def test_exceptions_about_ended_orders_are_resolved_together(rita, rob, alice, instrument) -> None:
    """A risk manager faced with dozens of them had to resolve each by hand (a trial)."""
    from oversight.models import AuditRecord

    live = make_order(alice, instrument)
    ended = [make_order(alice, instrument, status=s) for s in ("EXPIRED", "CANCELED", "FILLED")]
    for order in (live, *ended):
        raise_exc(f"about {order.pk}", "WARNING", scope_type="order", order_id=order.pk)
    firm = raise_exc("firm-wide", "CRITICAL")
    # A critical about an ended order wants a person's look: not swept (a review).
    collar = make_order(alice, instrument, status="FILLED")
    critical = raise_exc("fills outside the collar", "CRITICAL", scope_type="order",
                         order_id=collar.pk)  # fmt: skip
    resolved_by_hand = RiskException.objects.get(order=ended[2])
    services.exception_resolve(user=rita, exception_id=resolved_by_hand.pk, resolution="seen")
    c = client_for(rita)
    page = c.get(reverse("risk_console")).content.decode()
    assert re.search(r'id="resolve-ended"[^>]* data-count="2">', page)
    url = reverse("risk_exceptions_resolve_ended")

    # A resolution is required, and nothing is resolved without one.
    resp = c.post(url, {"resolution": "  "}, HTTP_ACCEPT="application/json")
    assert (
        resp.status_code == 400 and "resolution: say how they were resolved" in resp.json()["error"]
    )
    assert RiskException.objects.filter(status=RiskException.RESOLVED).count() == 1

    # Another's case is theirs to close; and what was seen is what is resolved (a trial
    # resolved two never on screen, and a colleague's "do not close").
    rob_case = make_order(alice, instrument, status="EXPIRED")
    theirs = raise_exc("rob's case", "WARNING", scope_type="order", order_id=rob_case.pk)
    services.exception_assign(user=rob, exception_id=theirs.pk, assignee="rob")
    seen = c.post(url, {"resolution": "x", "seen": "1"}, HTTP_ACCEPT="application/json")
    assert seen.status_code == 400
    assert seen.json()["error"] == (
        "2 are about orders that have ended now, not the 1 you saw: look again before "
        "resolving them"
    )
    resp = c.post(url, {"resolution": "orders over; nothing to do", "seen": "2"}, follow=True)
    assert "Resolved 2 exceptions about orders that have ended" in resp.content.decode()
    state = {
        e.order_id: (e.status, e.resolution, e.resolved_by_id) for e in RiskException.objects.all()
    }
    for order in ended[:2]:
        assert state[order.pk] == ("RESOLVED", "orders over; nothing to do", rita.pk)
    assert state[ended[2].pk] == ("RESOLVED", "seen", rita.pk)  # not resolved a second time
    assert state[live.pk][0] == "OPEN"
    assert RiskException.objects.get(pk=firm.pk).status == "OPEN"
    assert RiskException.objects.get(pk=critical.pk).status == "OPEN"
    assert RiskException.objects.get(pk=theirs.pk).status == "OPEN"
    # Each is audited on its own, as if resolved by hand.
    audited = AuditRecord.objects.filter(
        action="exception.resolve", reason="orders over; nothing to do"
    )
    assert sorted(int(a.object_id) for a in audited) == sorted(
        RiskException.objects.get(order=o).pk for o in ended[:2]
    )
    page = resp.content.decode()
    assert re.search(r'id="resolve-ended"[^>]* data-count="0" hidden>', page)
    # Again, with none left: said, not a silent success.
    resp = c.post(url, {"resolution": "again"}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 400
    assert (
        resp.json()["error"] == "no unresolved warning or notice is about an order that has ended"
    )


def test_only_a_risk_manager_resolves_exceptions_together(alice, instrument) -> None:
    done = make_order(alice, instrument, status="EXPIRED")
    raise_exc("about it", "WARNING", scope_type="order", order_id=done.pk)
    resp = client_for(alice).post(reverse("risk_exceptions_resolve_ended"), {"resolution": "mine"})
    assert resp.status_code == 403
    assert RiskException.objects.get(order=done).status == "OPEN"


def test_reset_approval_is_disabled_for_whoever_asked(rita, rob) -> None:
    k = services.kill_switch_engage(user=rita, scope_type="firm", reason="market-wide halt")
    services.kill_switch_reset_request(user=rita, kill_id=k.pk, reason="venues are back")
    mine = client_for(rita).get(reverse("risk_console")).content.decode()
    card = mine[mine.index(f'id="kill-{k.pk}"') :]
    assert re.search(r'data-field="approve" disabled', card)
    assert "You asked for this reset" in card
    theirs = client_for(rob).get(reverse("risk_console")).content.decode()
    card = theirs[theirs.index(f'id="kill-{k.pk}"') :]
    assert not re.search(r'data-field="approve" disabled', card)


def test_exposure_holds_every_days_position_todays_notional_and_working_at_the_price(
    rita, alice, bob, instrument
) -> None:
    desk = Desk.objects.create(name="EQ")
    DeskMembership.objects.create(user=alice, desk=desk)
    px = instrument.reference_price
    make_order(alice, instrument, side="buy", quantity=10_000, filled_qty=4_000,
               avg_price=Decimal("10.50"), status="WORKING")  # fmt: skip
    make_order(alice, instrument, side="sell", quantity=1_000, filled_qty=1_000,
               avg_price=Decimal("11"), status="FILLED")  # fmt: skip
    make_order(bob, instrument, side="sell", quantity=2_000, filled_qty=0, status="PAUSED")
    make_order(bob, instrument, side="buy", quantity=500, status="BLOCKED")  # not working
    old = make_order(bob, instrument, side="buy", quantity=900, filled_qty=900,
                     avg_price=Decimal("9"), status="FILLED")  # fmt: skip
    type(old).objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))

    groups = {(g.level, g.key): g for g in selectors.exposure()}
    sym = instrument.symbol
    a = groups[("trader", "alice")].positions[sym]
    assert a.net_qty == 3_000
    assert a.filled_notional == Decimal("53000")  # 4,000 × 10.50 + 1,000 × 11
    assert a.working_notional == 6_000 * px
    b = groups[("trader", "bob")].positions[sym]
    # Held: the 900 bought two days ago carry; their notional is not today's.
    assert (b.net_qty, b.filled_notional, b.working_notional) == (900, 0, 2_000 * px)
    assert groups[("desk", "EQ")].positions[sym].net_qty == 3_000
    firm = groups[("firm", "")].positions[sym]
    assert firm.net_qty == 3_900 and firm.working_notional == 8_000 * px
    assert firm.filled_notional == Decimal("53000")

    html = client_for(rita).get(reverse("risk_console")).content.decode()
    assert f'data-key="trader:alice:{sym}"' in html and "+3,000" in html
    assert "53,000.00" in html


def test_exposure_takes_a_fixed_number_of_queries(
    rita, alice, bob, instrument, django_assert_max_num_queries
) -> None:
    """However many orders and instruments: the instruments' market days (what "today" is
    for each), the orders, the desks, and the instruments' prices now (their sessions' last
    mids), four queries."""
    from tests.personas import demo_instrument

    others = [demo_instrument("demo-largecap-sell"), demo_instrument("demo-smallcap-regime")]
    for i in range(20):
        make_order(alice if i % 2 else bob, instrument, filled_qty=i, avg_price=Decimal("10"))
    with django_assert_max_num_queries(4):
        selectors.exposure_json()
    for i, inst in enumerate(others * 10):
        make_order(alice if i % 2 else bob, inst, filled_qty=i, avg_price=Decimal("10"))
    with django_assert_max_num_queries(4):
        groups = selectors.exposure_json()
    assert {p["instrument"] for p in groups[0]["positions"]} == {"HBRK", "LGVX", "SQNT"}


def test_kill_preview_counts_working_orders_and_children(rita, alice, instrument) -> None:
    a = make_order(alice, instrument)
    make_order(alice, instrument, status="FILLED")
    for i, status in enumerate(["ACCEPTED", "PARTIALLY_FILLED", "FILLED", "CANCELED"]):
        ChildOrder.objects.create(
            parent=a, client_order_id=f"c{i}", venue="X", side="buy", quantity=100,
            order_type="LIMIT", tif="DAY", intent="passive", status=status, sim_ts=0,
        )  # fmt: skip
    resp = client_for(rita).get(
        reverse("risk_kill_preview"), {"scope_type": "trader", "scope_key": "alice"}
    )
    assert resp.status_code == 200
    data = resp.json()
    assert (data["orders"], data["children"]) == (1, 2)
    assert data["text"] == (
        "Halt trader alice: 1 open order stopped and every child order working then "
        "cancelled (2 working child orders now); no new orders until reset"
    )
    # A blocked order is cancelled by the switch too: counted and said (a trial read
    # "1 open order stopped" and saw two cancelled).
    make_order(alice, instrument, status="BLOCKED")
    data = (
        client_for(rita)
        .get(reverse("risk_kill_preview"), {"scope_type": "trader", "scope_key": "alice"})
        .json()
    )
    assert data["orders"] == 2
    assert data["text"].startswith("Halt trader alice: 2 open orders (1 blocked) stopped")


def test_limits_page_groups_limits_and_shows_requests(rita, rob) -> None:
    services.limit_change_request(
        user=rita, scope_type="firm", scope_key="", metric="max_order_qty",
        new_value="50000", reason="initial",
    )  # fmt: skip
    req = services.limit_change_request(
        user=rita, scope_type="firm", scope_key="", metric="max_order_qty",
        new_value="80000", reason="bigger clients",
    )  # fmt: skip
    assert req.status == LimitRequest.PENDING
    mine = client_for(rita).get(reverse("risk_limits"))
    assert mine.status_code == 200
    html = mine.content.decode()
    assert "Max parent order quantity (shares)" in html and "50,000" in html
    row = html[html.index(f'id="request-{req.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "disabled" in row and "a second risk manager must approve" in row
    assert "Withdraw" in row
    other = client_for(rob).get(reverse("risk_limits")).content.decode()
    row = other[other.index(f'id="request-{req.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "disabled" not in row and "Reject" in row
    # Past its time it is not offered, though no market worker has run its housekeeping.
    LimitRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now())
    later = client_for(rob).get(reverse("risk_limits")).content.decode()
    assert f'id="request-{req.pk}"' not in later
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.EXPIRED


def test_overrides_page_lists_pending_with_grant_disabled_for_the_requester(
    rita, rob, alice, instrument
) -> None:
    order = make_order(alice, instrument, status="BLOCKED",
                       status_reason="MAX_ORDER_QTY: 10,000 shares > 5,000 (firm)")  # fmt: skip
    ov = services.override_request(user=rita, order_id=order.pk, reason="client confirmed")
    html = client_for(rita).get(reverse("risk_overrides")).content.decode()
    row = html[html.index(f'id="override-{ov.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "MAX_ORDER_QTY" in row and "client confirmed" in row
    assert re.search(r'class="primary" disabled', row)
    html = client_for(rob).get(reverse("risk_overrides")).content.decode()
    row = html[html.index(f'id="override-{ov.pk}"') :]
    assert not re.search(r'class="primary" disabled', row[: row.index("</tr>")])


def test_nav_shows_risk_links_to_risk_managers_only(rita, alice, adam) -> None:
    for user, shown in ((rita, True), (alice, False), (adam, False)):
        c = client_for(user)
        page = reverse("blotter") if user is not adam else reverse("user_list")
        html = c.get(page).content.decode()
        for name in ("risk_console", "risk_limits", "risk_overrides"):
            assert (f'href="{reverse(name)}"' in html) is shown, (user, name)


def test_trader_blotter_has_kill_button_override_button_and_alerts(
    alice, bob, rita, instrument
) -> None:
    services.kill_switch_engage(user=rita, scope_type="trader", scope_key="alice", reason="x")
    services.kill_switch_engage(user=rita, scope_type="trader", scope_key="bob", reason="y")
    # Rows made after the switches (a halt cancels the blocked orders it finds in scope).
    blocked = make_order(alice, instrument, status="BLOCKED",
                         status_reason="MAX_ORDER_QTY: 10,000 shares > 5,000 (firm)")  # fmt: skip
    working = make_order(alice, instrument)
    critical = raise_exc("fill far from the mid", "CRITICAL", escalated=True,
                         scope_type="order", order_id=working.pk, trader_id=alice.pk)  # fmt: skip
    resp = client_for(alice).get(reverse("blotter"))
    html = resp.content.decode()
    assert 'id="risk-alerts"' in html and "Kill my trading" in html
    assert 'id="risk-dialog"' in html
    tb = html[html.index(f'id="order-{blocked.pk}"') :]
    assert "data-override-form" in tb[: tb.index("</tbody>")]
    tb = html[html.index(f'id="order-{working.pk}"') :]
    assert "data-override-form" not in tb[: tb.index("</tbody>")]
    risk = resp.context["config"]["risk"]
    assert [k["scope_key"] for k in risk["kills"]] == ["alice"]  # not bob's
    assert [x["id"] for x in risk["exceptions"]] == [critical.pk]
    # A risk manager's blotter has neither the kill button nor a trader's alerts.
    html = client_for(rita).get(reverse("blotter")).content.decode()
    assert "Kill my trading" not in html


def test_the_console_reads_a_fixed_number_of_queries_whatever_the_rows(
    rita, rob, alice, instrument
) -> None:
    c = client_for(rita)
    c.get(reverse("risk_console"))  # warm: sessions, permissions, content types

    def add(n: int) -> None:
        for i in range(n):
            e = raise_exc(f"e{i}-{RiskException.objects.count()}", "WARNING")
            services.exception_comment(user=rita, exception_id=e.pk, text="looking")
            services.exception_assign(user=rita, exception_id=e.pk, assignee="rob")
            o = make_order(alice, instrument, filled_qty=10, avg_price=Decimal("10"))
            services.kill_switch_engage(
                user=rita, scope_type="order", scope_key=str(o.pk), reason=f"k{i}"
            )  # one switch per scope: a second on the same would be refused

    add(1)
    with CaptureQueriesContext(connection) as few:
        assert c.get(reverse("risk_console")).status_code == 200
    add(10)
    with CaptureQueriesContext(connection) as many:
        assert c.get(reverse("risk_console")).status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_risk_manager_halts_an_order_from_its_blotter_row(rita, alice, instrument) -> None:
    """A trial: a risk manager had to type an order's number into the console to stop it.
    Each open row links to the console's kill switch on that order, filled in."""
    live = make_order(alice, instrument)
    done = make_order(alice, instrument, status="FILLED")
    page = client_for(rita).get(reverse("blotter")).content.decode()
    link = f'href="{reverse("risk_console")}?scope_type=order&amp;scope_key={live.pk}#kill-form"'
    assert link in page
    done_row = page.split(f'id="order-{done.pk}"')[1].split("</tr>")[0]
    assert 'class="btn small halt" hidden' in done_row
    console = (
        client_for(rita)
        .get(reverse("risk_console"), {"scope_type": "order", "scope_key": str(live.pk)})
        .content.decode()
    )
    assert '<option value="order" selected>' in console
    assert (
        f'list="keys-order" autocomplete="off" placeholder="name or id" aria-describedby="kill-key-help" value="{live.pk}"'
        in console
    )
    # A scope that is not one is ignored, not echoed.
    odd = client_for(rita).get(reverse("risk_console"), {"scope_type": "<x>"}).content.decode()
    assert '<option value="trader" selected>' in odd and "&lt;x&gt;" not in odd
    # A trader sees their own controls, not this.
    mine = client_for(alice).get(reverse("blotter")).content.decode()
    assert "Halt…" not in mine


def test_a_done_reset_keeps_its_reason_after_its_askers_role_changes(rita, rob, adam) -> None:
    """A trial: "Recent resets" showed "reset by rob at 12:03:59 UTC:" with nothing after
    it once the reset's asker had been made an admin: the lapse check, meant for a
    request still waiting, was run on history."""
    from oversight.services import user_role_set

    k = services.kill_switch_engage(user=rita, scope_type="firm", reason="drill")
    services.kill_switch_reset_request(user=rita, kill_id=k.pk, reason="issue understood")
    k.refresh_from_db()
    services.kill_switch_reset_approve(
        user=rob, kill_id=k.pk, asked_at=k.reset_requested_at.isoformat()
    )
    user_role_set(actor=adam, user=rita, role="admin", reason="moves to admin")  # at once
    html = client_for(rob).get(reverse("risk_console")).content.decode()
    resets = html.split('id="kills-reset"')[1].split("</ul>")[0]
    assert f"#{k.pk}" in resets and "UTC: issue understood</li>" in resets
