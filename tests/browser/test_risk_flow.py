"""The risk side in headless Chromium against the real stack (Daphne, a Celery worker,
Redis, the test database), one browser context per person, nothing mocked:

- four eyes on a limit change: one risk manager asks to loosen the firm's order size limit
  and cannot approve it herself; a second approves it, and the limit is live;
- a price collar makes the worker deny a trader's children, and her blotter counts
  the denials live, with the last reason;
- a kill switch engaged from the risk console stops a trader's streaming TWAP order (its
  blotter shows it cancelled and the kill's banner, without a reload; the worker's ack and
  the fills agree), and the trader's next order is refused at the ticket.

OVERSIGHT_SCREENSHOTS=1 also saves docs/img/risk-limits.png (the limits page with a pending
request) and docs/img/risk-console.png (the console after the kill), 1366×768.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Max, Sum

from execution.models import ChildOrder, Fill, MarketSession, OrderEvent, ParentOrder
from execution.worker_risk import RISK_DENIALS
from oversight.risk.models import KillAck, KillSwitch, LimitRequest, RiskException, RiskLimit
from oversight.roles import RISK_MANAGER
from tests.browser.conftest import Stack, _user
from tests.browser.test_trader_flow import FILL_ROWS, FILLED, IMG, _expand, _status_is, _wait_js

pytestmark = pytest.mark.browser

WAIT_MS = 20_000  # the most any one expectation waits
LIVE_CHILD = ["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]
CHILD_ROWS = (
    "([id]) => document.querySelectorAll('#order-' + id + ' tbody[data-children] tr').length"
)


def _expect() -> Any:
    """Playwright's expect, waiting up to WAIT_MS (imported here: without Playwright the
    `chromium` fixture has already skipped the test, with the reason)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    return expect


def _screenshots() -> bool:
    return os.environ.get("OVERSIGHT_SCREENSHOTS", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture
def second_risk_manager(transactional_db: Any) -> Any:
    return _user("rhea", RISK_MANAGER)


def _submit_ticket(page: Any, stack: Stack, *, quantity: int, end_minute: int) -> None:
    """Fill the ticket (HBRK, buy, TWAP from minute 0) and submit it, as a trader does."""
    page.click("a.button.primary:has-text('New order')")
    page.wait_for_url(stack.url + "/orders/new/")
    page.select_option(
        "#id_instrument",
        label=page.locator("#id_instrument option", has_text="HBRK").first.inner_text(),
    )
    page.check("input[name=side][value=buy]")
    page.fill("#id_quantity", str(quantity))
    page.fill("#id_start_minute", "0")
    page.fill("#id_end_minute", str(end_minute))
    page.select_option("#id_strategy", "twap")
    _wait_js(
        page,
        "() => document.querySelector('[data-est=cost_bps]').textContent.trim() !== '—'",
        None,
        "the pre-trade estimate",
        stack,
    )
    page.click("#ticket button[type=submit]")


def _wait_db(check: Callable[[], Any], what: str, stack: Stack, timeout: float = 20.0) -> Any:
    """Poll the database until `check` returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        stack.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_limit_loosening_takes_a_second_risk_manager(
    stack: Stack,
    login: Callable[[str], Any],
    risk_manager: Any,
    second_risk_manager: Any,
) -> None:
    expect = _expect()
    t0 = time.monotonic()
    limit = RiskLimit.objects.create(
        scope_type="firm", scope_key="", metric="max_order_qty", value=Decimal(10_000), version=1
    )

    # Rick asks to loosen the firm's order size limit, with a reason.
    rick = login("rick")
    rick.goto("/risk/limits/")
    row = rick.locator(f"#limit-{limit.pk}")
    expect(row.locator("td").nth(3)).to_have_text("10,000")
    rick.select_option("#limit-scope-type", "firm")
    expect(rick.locator("#limit-scope-key")).to_be_disabled()  # the firm has no key
    rick.select_option("#limit-metric", "max_order_qty")
    rick.fill("#limit-value", "25000")
    rick.fill("#limit-reason", "browser test: index rebalance day")
    rick.click("#limit-form button[type=submit]")
    rick.wait_for_url(stack.url + "/risk/limits/")
    req = LimitRequest.objects.get()
    assert (req.status, req.requested_by_id, req.tightening) == (
        LimitRequest.PENDING,
        risk_manager.pk,
        False,
    )
    assert (req.old_value, req.new_value, req.old_version) == (10_000, 25_000, 1)
    expect(rick.locator("ul.messages")).to_contain_text(
        f"Limit request {req.pk} waits for a second risk manager's approval"
    )

    # On his own page the request is pending, its Approve button disabled with the note.
    mine = rick.locator(f"#request-{req.pk}")
    expect(mine).to_contain_text("firm")
    expect(mine).to_contain_text("Max parent order quantity (shares)")
    expect(mine.locator("td").nth(3)).to_have_text("10,000")
    expect(mine.locator("td").nth(4)).to_have_text("25,000")
    expect(mine).to_contain_text("rick (you)")
    approve = mine.locator("button:has-text('Approve')")
    expect(approve).to_be_disabled()
    expect(approve).to_have_attribute("aria-describedby", f"own-{req.pk}")
    expect(rick.locator(f"#own-{req.pk}")).to_have_text(
        "Your request: a second risk manager must approve it."
    )
    expect(mine.locator("button:has-text('Withdraw')")).to_be_enabled()
    expect(row.locator("td").nth(3)).to_have_text("10,000")  # not applied yet
    if _screenshots():
        IMG.mkdir(parents=True, exist_ok=True)
        rick.locator("#pending-title").scroll_into_view_if_needed()
        rick.mouse.move(1300, 10)
        rick.screenshot(path=str(IMG / "risk-limits.png"))
    limit.refresh_from_db()
    assert (limit.value, limit.version) == (10_000, 1)

    # Rhea, in her own browser context, sees it pending and approves it.
    rhea = login("rhea")
    rhea.goto("/risk/limits/")
    theirs = rhea.locator(f"#request-{req.pk}")
    expect(theirs).to_contain_text("browser test: index rebalance day")
    expect(theirs).not_to_contain_text("(you)")
    expect(theirs.locator("button:has-text('Reject')")).to_be_enabled()
    expect(rhea.locator(f"#own-{req.pk}")).to_have_count(0)
    rhea.fill(f"#approve-note-{req.pk}", "browser test: checked with the desk")
    theirs.locator("button:has-text('Approve')").click()
    rhea.wait_for_url(stack.url + "/risk/limits/")
    expect(rhea.locator("ul.messages")).to_contain_text(
        f"Limit request {req.pk} approved and active: firm, Max parent order quantity (shares) = 25,000"
    )
    expect(rhea.locator(f"#request-{req.pk}")).to_have_count(0)  # no longer pending
    applied = rhea.locator(f"#limit-{limit.pk} td")
    expect(applied.nth(3)).to_have_text("25,000")
    expect(applied.nth(4)).to_have_text("2")
    history = rhea.locator("#history tbody tr", has=rhea.locator(f"td:text-is('{req.pk}')"))
    expect(history.locator(f".badge.req-{LimitRequest.ACTIVE}")).to_have_text("active")
    expect(history.locator("td").nth(7)).to_have_text("rick")
    expect(history.locator("td").nth(8)).to_have_text("rhea")

    # The database agrees.
    limit.refresh_from_db()
    req.refresh_from_db()
    assert (limit.value, limit.version) == (25_000, 2)
    assert (req.status, req.decided_by_id) == (LimitRequest.ACTIVE, second_risk_manager.pk)
    assert req.decision_note == "browser test: checked with the desk"

    # Rick's page, reloaded, shows it active too and nothing left for anyone to approve.
    rick.reload()
    expect(rick.locator(f"#request-{req.pk}")).to_have_count(0)
    expect(rick.locator(f"#limit-{limit.pk} td").nth(3)).to_have_text("25,000")
    assert rick.js_errors == [] and rhea.js_errors == [], (rick.js_errors, rhea.js_errors)
    print(f"\nfour eyes on a limit: {time.monotonic() - t0:.1f} s")


@pytest.mark.django_db(transaction=True)
def test_kill_switch_halts_a_streaming_order_and_refuses_the_next(
    stack: Stack,
    login: Callable[[str], Any],
    trader: Any,
    risk_manager: Any,
    browser_instrument: Any,
) -> None:
    expect = _expect()
    t0 = time.monotonic()

    # Tina submits a TWAP order long enough to keep working, and watches it stream.
    page = login("tina")
    _submit_ticket(page, stack, quantity=6000, end_minute=120)
    page.wait_for_url(stack.url + "/")
    expect(page.locator("ul.messages")).to_contain_text("submitted")
    order = ParentOrder.objects.get(owner=trader)
    oid = order.pk
    assert (order.side, order.quantity, order.strategy) == ("buy", 6000, "twap")
    page.evaluate("() => { window.__notReloaded = true; }")
    _expand(page, oid, stack)
    _wait_js(page, FILL_ROWS, [oid], "the first fills in the trader's blotter", stack)
    _wait_js(page, CHILD_ROWS, [oid], "child orders in the expanded row", stack)
    first = page.evaluate(FILLED, [oid])
    _wait_js(
        page, f"([id, n]) => ({FILLED})([id]) > n", [oid, first], "the progress bar to move", stack
    )
    _status_is(page, oid, "WORKING", stack)
    assert page.evaluate(FILLED, [oid]) < 6000, "the order finished before the kill"
    expect(page.locator("#risk-alerts")).to_be_hidden()
    t_streaming = time.monotonic()

    # Rick engages a kill switch on trader tina from the console, through its dialog.
    rick = login("rick")
    rick.goto("/risk/")
    expect(rick.locator("#conn")).to_have_text("● live")
    expect(rick.locator("#kills-none")).to_be_visible()
    rick.select_option("#kill-scope-type", "trader")
    rick.fill("#kill-scope-key", "tina")
    rick.check("input[name=state][value=HALTED]")
    rick.fill("#kill-reason", "browser test: runaway algo")
    rick.click("#kill-go")
    dialog = rick.locator("#kill-dialog")
    expect(dialog).to_be_visible()
    expect(rick.locator("#kill-dialog-title")).to_have_text(
        "Engage the kill switch on trader tina?"
    )
    expect(rick.locator("#kill-dialog-what")).to_contain_text("Halt trader tina: 1 open order")
    expect(rick.locator("#kill-dialog-reason")).to_have_text("browser test: runaway algo")
    expect(rick.locator("#kill-dialog-error")).to_be_hidden()
    expect(rick.locator("#kill-dialog-back")).to_be_focused()  # a stray Enter must not halt
    go = rick.locator("#kill-dialog-go")
    expect(go).to_have_text("Halt trader tina")
    rick.evaluate("() => { window.__notReloaded = true; }")
    go.click()
    # Answered in place: the message, then the kill's card from the server's event.
    expect(rick.locator("ul.messages")).to_contain_text("engaged")
    expect(rick.locator("#kill-dialog")).to_be_hidden()
    kill = KillSwitch.objects.get()
    expect(rick.locator(f"#kill-{kill.pk}")).to_be_visible()
    assert rick.evaluate("() => window.__notReloaded === true"), "the console reloaded"
    assert (kill.scope_type, kill.scope_key, kill.state, kill.active) == (
        "trader",
        "tina",
        KillSwitch.HALTED,
        True,
    )
    assert kill.engaged_by_id == risk_manager.pk
    expect(rick.locator("ul.messages")).to_contain_text(f"Kill switch {kill.pk} engaged")
    t_kill = time.monotonic()

    # Tina's blotter, not reloaded: the order ends CANCELED, the kill's banner is up, and the
    # filled quantity stops.
    _status_is(page, oid, "CANCELED", stack)
    expect(page.locator(f"#order-{oid} [data-field=status] .badge:not(.denied)")).to_have_text(
        "Canceled"
    )
    banner = page.locator("#risk-alerts")
    expect(banner).to_be_visible()
    alert = banner.locator(f"li.alert-kill[data-kill='{kill.pk}']")
    expect(alert).to_contain_text("Trading halted for trader tina")
    expect(alert).to_contain_text(f"kill switch {kill.pk} (rick): browser test: runaway algo")
    t_stopped = time.monotonic()
    stopped_at = page.evaluate(FILLED, [oid])
    page.wait_for_timeout(2000)
    assert page.evaluate(FILLED, [oid]) == stopped_at, "fills kept coming after the kill"
    assert page.evaluate("() => window.__notReloaded === true")

    # The database: the worker acknowledged the kill once every child order was gone, and
    # nothing filled after that.
    ack = _wait_db(
        lambda: KillAck.objects.filter(kill=kill, done_at__isnull=False).first(),
        "the worker's ack of the kill",
        stack,
    )
    assert ack.applied_at >= kill.engaged_at and ack.done_at >= ack.applied_at
    assert ack.orders == 1, ack.orders
    order.refresh_from_db()
    assert order.status == "CANCELED", (order.status, order.status_reason)
    assert f"kill switch {kill.pk}" in order.status_reason, order.status_reason
    assert not order.children.filter(status__in=LIVE_CHILD).exists(), list(
        order.children.values_list("client_order_id", "status")
    )
    assert ChildOrder.objects.filter(parent=order).exists()
    fills = Fill.objects.filter(parent=order)
    # Sim time of the ack: the order's CANCELED, which the worker reaches when its last child
    # order is confirmed cancelled (the step that also writes done_at).
    canceled_at = OrderEvent.objects.get(
        parent=order, kind="ParentStatusChanged", payload__status="CANCELED"
    ).sim_ts
    late = fills.filter(sim_ts__gt=canceled_at)
    assert not late.exists(), list(late.values_list("trade_id", "sim_ts"))
    late_wall = fills.filter(created_at__gt=ack.done_at)
    assert not late_wall.exists(), list(late_wall.values_list("trade_id", "created_at"))
    at_ack = fills.filter(created_at__lte=ack.done_at).aggregate(s=Sum("quantity"))["s"] or 0
    assert 0 < order.filled_qty < order.quantity
    assert at_ack == order.filled_qty == (fills.aggregate(s=Sum("quantity"))["s"] or 0)
    _wait_js(
        page,
        "([id, seq]) => Number(document.getElementById('order-' + id).dataset.lastSeq) >= seq",
        [oid, order.last_seq],
        f"the blotter to reach sequence number {order.last_seq}",
        stack,
    )
    assert stopped_at == page.evaluate(FILLED, [oid]) == order.filled_qty
    shown = page.inner_text(f"#order-{oid} [data-field=filled]").replace(",", "")
    assert int(shown) == order.filled_qty
    assert fills.aggregate(m=Max("sim_ts"))["m"] <= canceled_at
    t_db = time.monotonic()

    # Tina's next order is refused at the ticket, with the kill's code; nothing is created.
    _submit_ticket(page, stack, quantity=1000, end_minute=60)
    page.wait_for_load_state()
    assert page.url == stack.url + "/orders/new/"
    refused = page.locator("#ticket div.error[role=alert]")
    expect(refused).to_contain_text(
        "The order was not submitted: TRADING_HALTED: trading is halted for trader tina by "
        f"kill switch {kill.pk}: browser test: runaway algo"
    )
    # No field is wrong, so nothing sends the trader to look beside the fields.
    expect(page.locator("#ticket p.error[role=alert]")).to_have_count(0)
    assert ParentOrder.objects.filter(owner=trader).count() == 1

    # Rick's console, live: the kill switch active, its exception and the refused order's.
    card = rick.locator(f"#kill-{kill.pk}")
    expect(card).to_be_visible()
    expect(card.locator("[data-field=state]")).to_have_text("HALTED")
    expect(card.locator("[data-field=scope]")).to_have_text("trader tina")
    expect(rick.locator("#kill-count")).to_have_text("(1)")
    expect(rick.locator("#kills-none")).to_be_hidden()
    kill_exc = RiskException.objects.get(kind="KILL_SWITCH")
    denied = _wait_db(
        lambda: RiskException.objects.filter(kind="ORDER_DENIED", code="TRADING_HALTED").first(),
        "the refused order's exception",
        stack,
    )
    row = rick.locator(f"#exc-{kill_exc.pk}")
    expect(row.locator("[data-field=kind]")).to_have_text("KILL_SWITCH")
    expect(row.locator("[data-field=title]")).to_contain_text(f"Kill switch {kill.pk} engaged")
    expect(row.locator("[data-field=status]")).to_have_text("open")
    refused_row = rick.locator(f"#exc-{denied.pk}")  # arrived over the socket
    expect(refused_row.locator("[data-field=kind]")).to_have_text("ORDER_DENIED")
    expect(refused_row.locator("[data-field=kind]")).to_have_attribute(
        "title", "ORDER_DENIED: TRADING_HALTED"
    )
    expect(refused_row.locator("[data-field=title]")).to_have_text(
        "Order refused for tina: TRADING_HALTED"
    )
    expect(refused_row.locator("[data-field=scope]")).to_have_text("trader tina")
    if _screenshots():
        IMG.mkdir(parents=True, exist_ok=True)
        rick.mouse.move(1300, 10)
        rick.wait_for_timeout(1200)  # the flash animations settle
        rick.screenshot(path=str(IMG / "risk-console.png"))

    assert page.js_errors == [] and rick.js_errors == [], (page.js_errors, rick.js_errors)

    # Let the market session wind down before the worker is stopped (no writes race teardown).
    deadline = time.monotonic() + 30
    while MarketSession.objects.filter(status=MarketSession.RUNNING).exists():
        stack.check_alive()
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)

    print(
        f"\nkill flow: streaming after {t_streaming - t0:.1f} s, kill engaged "
        f"{t_kill - t_streaming:.1f} s later, blotter stopped {t_stopped - t_kill:.1f} s "
        f"after; db checked at {t_db - t0:.1f} s; filled {order.filled_qty} of "
        f"{order.quantity} in {fills.count()} fills; ack: {ack.children_canceled} child "
        f"order(s) cancelled, done {(ack.done_at - ack.applied_at).total_seconds() * 1000:.0f} ms "
        f"after applied"
    )


DENIED_BADGE = "([id]) => Number(document.querySelector('#order-' + id + ' [data-field=denied]').dataset.count)"


@pytest.mark.django_db(transaction=True)
def test_the_trader_sees_the_policy_deny_children_live(
    stack: Stack,
    login: Callable[[str], Any],
    trader: Any,
    browser_instrument: Any,
) -> None:
    """A price collar the trader's TWAP children break: the worker denies them, and the
    trader's blotter counts the denials as they stream, with the last reason. (A child
    size limit no longer does: children are sized within it.)"""
    RiskLimit.objects.create(
        scope_type="trader", scope_key="tina", metric="price_collar_bps",
        value=Decimal("0.5"), version=1,
    )  # fmt: skip  # half a bp: a child at the touch of a 2-tick HBRK spread is 2.5 bp out
    page = login("tina")
    _submit_ticket(page, stack, quantity=6000, end_minute=120)
    page.wait_for_url(stack.url + "/")
    order = ParentOrder.objects.get(owner=trader)
    oid = order.pk
    page.evaluate("() => { window.__notReloaded = true; }")
    at_load = page.evaluate(DENIED_BADGE, [oid])
    _wait_js(
        page, f"([id, n]) => ({DENIED_BADGE})([id]) >= n + 3", [oid, at_load],
        "three more denials counted live", stack,
    )  # fmt: skip
    badge = page.locator(f"#order-{oid} [data-field=denied]")
    assert badge.is_visible()
    assert "the last: PRICE_COLLAR: " in (badge.get_attribute("title") or "")
    page.click(f"#order-{oid} button[name=action][value=cancel]")
    page.fill("#control-reason", "browser test: denied children")
    page.click("#control-go")
    _status_is(page, oid, "CANCELED", stack)
    order.refresh_from_db()
    _wait_js(
        page,
        "([id, seq]) => Number(document.getElementById('order-' + id).dataset.lastSeq) >= seq",
        [oid, order.last_seq], "the last event", stack,
    )  # fmt: skip
    denied = ChildOrder.objects.filter(
        parent=order, status="DENIED", reason__in=RISK_DENIALS
    ).count()
    assert page.evaluate(DENIED_BADGE, [oid]) == denied > at_load
    assert badge.inner_text() == f"{denied} denied"
    assert page.evaluate("() => window.__notReloaded === true")
    assert page.js_errors == [], page.js_errors


@pytest.mark.django_db(transaction=True)
def test_an_instrument_is_restricted_by_one_risk_manager_and_lifted_by_two(
    stack: Stack,
    login: Callable[[str], Any],
    risk_manager: Any,
    second_risk_manager: Any,
    browser_instrument: Any,
) -> None:
    expect = _expect()
    symbol = browser_instrument.symbol
    rick = login("rick")
    rick.click("nav a:has-text('Restricted')")
    rick.wait_for_url(stack.url + "/risk/restricted/")
    rick.select_option("#restrict-instrument", symbol)
    rick.fill("#restrict-reason", "browser test: wall-crossed")
    rick.click("#restrict-form button")
    expect(rick.locator("ul.messages")).to_contain_text(f"{symbol} is on the restricted list")
    browser_instrument.refresh_from_db()
    assert browser_instrument.restricted
    restriction = browser_instrument.restrictions.get(active=True)
    row = rick.locator(f"#restriction-{restriction.pk}")
    expect(row).to_contain_text("browser test: wall-crossed")
    # It fits the screen: nothing to scroll sideways for.
    widths = rick.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    rick.fill(f"#lift-reason-{restriction.pk}", "browser test: deal announced")
    row.locator("button:has-text('Ask to lift')").click()
    expect(rick.locator(f"#own-{restriction.pk}")).to_contain_text("another risk manager")
    expect(row.locator("button:has-text('Approve the lift')")).to_be_disabled()

    rhea = login("rhea")
    rhea.goto("/risk/restricted/")
    rhea.locator(f"#restriction-{restriction.pk} button:has-text('Approve the lift')").click()
    expect(rhea.locator("ul.messages")).to_contain_text(
        f"Restriction {restriction.pk} lifted by rick and rhea"
    )
    expect(rhea.locator(f"#restriction-{restriction.pk}")).to_have_count(0)
    expect(rhea.locator("#lifted")).to_contain_text("browser test: deal announced")
    browser_instrument.refresh_from_db()
    assert not browser_instrument.restricted
    assert rick.js_errors == [] and rhea.js_errors == [], (rick.js_errors, rhea.js_errors)


@pytest.mark.django_db(transaction=True)
def test_console_actions_answer_in_place_and_keep_the_details_open(
    stack: Stack,
    login: Callable[[str], Any],
    risk_manager: Any,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from oversight.risk.services import exception_raise

    expect = _expect()
    # Raised as the workers raise them, off this thread (Playwright's loop runs here, and
    # the console broadcast after commit is synchronous code around an async layer).
    with ThreadPoolExecutor(1) as pool:
        exc = pool.submit(
            exception_raise,
            kind="TEST",
            severity=RiskException.WARNING,
            scope_type="firm",
            title="browser test: something to handle",
        ).result()
    rick = login("rick")
    rick.goto("/risk/")
    expect(rick.locator("#conn")).to_contain_text("live")
    rick.evaluate("() => { window.__notReloaded = true; }")
    row = rick.locator(f"#exc-{exc.pk}")
    row.locator("button.toggle").click()
    detail = rick.locator(f"#exc-detail-{exc.pk}")
    expect(detail).to_be_visible()

    # A comment: in the list, the box emptied, the details still open, no reload.
    rick.fill(f"#comment-{exc.pk}", "browser test: looking into it")
    detail.locator("button:has-text('Comment')").click()
    expect(detail.locator('[data-field="comments"]')).to_contain_text(
        "browser test: looking into it"
    )
    expect(rick.locator("ul.messages")).to_contain_text(f"Exception {exc.pk} commented")
    expect(rick.locator(f"#comment-{exc.pk}")).to_have_value("")
    expect(detail).to_be_visible()
    # Acknowledged: the status changes and the button goes off, still without a reload.
    row.locator(".btn-ack").click()
    expect(row.locator('[data-field="status"]')).to_have_text("acknowledged")
    expect(row.locator(".btn-ack")).to_be_disabled()
    expect(detail).to_be_visible()
    # A refusal comes back as a message too: resolving needs a resolution (the browser's
    # own check is bypassed to send an empty one).
    rick.evaluate(f"() => document.getElementById('resolve-{exc.pk}').removeAttribute('required')")
    detail.locator("button:has-text('Resolve')").click()
    expect(rick.locator("ul.messages .msg-error")).to_be_visible()
    rick.fill(f"#resolve-{exc.pk}", "browser test: handled")
    detail.locator("button:has-text('Resolve')").click()
    expect(rick.locator(f"#exc-{exc.pk}")).to_have_count(0)
    expect(rick.locator("#resolved-rows")).to_contain_text("browser test: something to handle")
    # Its summary's count follows (it kept the figure the page opened with: a trial).
    expect(rick.locator("#resolved-count")).to_have_text(
        str(rick.locator("#resolved-rows tr").count())
    )
    assert rick.evaluate("() => window.__notReloaded === true"), "the console reloaded"
    exc.refresh_from_db()
    assert exc.status == RiskException.RESOLVED and exc.resolution == "browser test: handled"
    assert rick.js_errors == [], rick.js_errors


def test_a_reset_request_is_asked_and_withdrawn_in_place_on_the_console(
    stack: Stack,
    login: Callable[[str], Any],
    risk_manager: Any,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from oversight.risk.models import KillSwitch
    from oversight.risk.services import kill_switch_engage, kill_switch_reset_approve
    from oversight.roles import RISK_MANAGER
    from tests.browser.conftest import _user

    expect = _expect()
    with ThreadPoolExecutor(1) as pool:  # off Playwright's thread, as the test above says
        kill = pool.submit(
            kill_switch_engage,
            user=risk_manager,
            scope_type="firm",
            reason="browser test: a drill",
        ).result()
    rick = login("rick")
    rick.goto("/risk/")
    expect(rick.locator("#conn")).to_contain_text("live")
    rick.evaluate("() => { window.__notReloaded = true; }")
    card = rick.locator(f"#kill-{kill.pk}")
    card.locator(f"#reset-reason-{kill.pk}").fill("browser test: drill over")
    card.locator("button:has-text('Request reset')").click()
    # Asked: the card offers its author a withdrawal (no reason needed), not an approval.
    expect(card.locator('[data-field="decline"]')).to_have_text("Withdraw")
    expect(card.locator('[data-field="approve"]')).to_be_disabled()
    expect(card.locator(f"#decline-reason-{kill.pk}")).to_be_hidden()
    card.locator('[data-field="decline"]').click()
    expect(rick.locator("ul.messages")).to_contain_text(f"kill switch {kill.pk} is withdrawn")
    expect(card.locator('[data-part="request"]')).to_be_visible()
    expect(card.locator('[data-part="approve"]')).to_be_hidden()
    assert rick.evaluate("() => window.__notReloaded === true"), "the console reloaded"
    kill = KillSwitch.objects.get(pk=kill.pk)
    assert kill.active and kill.reset_requested_by is None
    # Asked again and approved by a second risk manager: the card goes, and the reset
    # joins "Recent resets" with its count, in place (they kept the page's first figures).
    expect(rick.locator("#resets-count")).to_have_text("0")
    card.locator(f"#reset-reason-{kill.pk}").fill("browser test: drill over")
    card.locator("button:has-text('Request reset')").click()
    expect(card.locator('[data-field="decline"]')).to_have_text("Withdraw")
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(_user, "rosa", RISK_MANAGER).result()
        pool.submit(kill_switch_reset_approve, user=second, kill_id=kill.pk).result()
    expect(card).to_have_count(0)
    expect(rick.locator("#resets-count")).to_have_text("1")
    expect(rick.locator("#kills-reset")).to_contain_text(
        f"firm  #{kill.pk} halted · reset by rosa at"
    )
    expect(rick.locator("#kills-reset")).to_contain_text("browser test: drill over")
    assert rick.evaluate("() => window.__notReloaded === true"), "the console reloaded"
    assert rick.js_errors == [], rick.js_errors


def test_changing_ones_password_keeps_this_browsers_live_pages_live(
    stack: Stack, login: Callable[[str], Any], risk_manager: Any
) -> None:
    """The user's sockets are told to check again (4401): this browser's session goes on
    and its pages connect again; a 4403 had frozen them, showing "not allowed" (a
    review)."""
    from tests.browser.conftest import PASSWORD

    expect = _expect()
    rick = login("rick")
    rick.goto("/risk/")
    expect(rick.locator("#conn")).to_contain_text("live")
    rick.evaluate("() => { window.__notReloaded = true; }")
    other = rick.context.new_page()
    other.goto("/password/")
    new = "a-new-long-password-91"
    other.fill("#id_old_password", PASSWORD)
    other.fill("#id_new_password", new)
    other.fill("#id_new_password_again", new)
    other.click("main button[type=submit]")
    expect(other.locator("ul.messages")).to_contain_text("Your password is changed")
    # The console closed, connected again and is live, on the same page.
    expect(rick.locator("#conn")).to_contain_text("live")
    assert rick.evaluate("() => window.__notReloaded === true"), "the console reloaded"
    assert "not allowed" not in (rick.locator("#conn").text_content() or "")
    assert rick.js_errors == [], rick.js_errors


def test_a_password_an_admin_reset_ends_the_open_pages_live_view_with_a_word(
    stack: Stack, login: Callable[[str], Any], trader: Any, risk_manager: Any
) -> None:
    """The sockets close to be checked again (4401), the check refuses (the session
    ended with the old password), and the refusal reaches a page as a bare close: the
    blotter and the console said "reconnecting" for ever over figures no longer live (a
    trial). They now ask whether the session holds, and say it has ended."""
    from concurrent.futures import ThreadPoolExecutor

    from oversight.roles import ADMIN
    from oversight.services import user_password_reset
    from tests.browser.conftest import _user

    expect = _expect()
    tina, rick = login("tina"), login("rick")
    rick.goto("/risk/")
    for page in (tina, rick):
        expect(page.locator("#conn")).to_contain_text("live")
    with ThreadPoolExecutor(1) as pool:  # off Playwright's thread, as the tests above say
        admin = pool.submit(_user, "ada", ADMIN).result()
        for user in (trader, risk_manager):
            pool.submit(
                user_password_reset, actor=admin, user=user, password="another-long-pass-73",
                reason="browser test: a leaked login",
            ).result()  # fmt: skip
    for page in (tina, rick):
        expect(page.locator("#conn")).to_contain_text("session ended", timeout=20_000)
        assert page.js_errors == [], page.js_errors


@pytest.mark.django_db(transaction=True)
def test_exceptions_about_ended_orders_are_resolved_together_in_place(
    stack: Stack,
    login: Callable[[str], Any],
    risk_manager: Any,
    trader: Any,
    browser_instrument: Any,
) -> None:
    """The console's "resolve them all" counts the exceptions about ended orders, follows
    an order that ends while the page is open, and resolves them in place."""
    from concurrent.futures import ThreadPoolExecutor

    from oversight.risk.services import exception_raise
    from tests.risk_web.conftest import make_order

    expect = _expect()

    def about(order: ParentOrder) -> RiskException:
        return exception_raise(
            kind="TEST",
            severity=RiskException.WARNING,
            scope_type="order",
            scope_key=str(order.pk),
            order_id=order.pk,
            title=f"browser test: about order {order.pk}",
        )

    # Django's calls run off this thread (Playwright's loop runs here).
    with ThreadPoolExecutor(1) as pool:
        ended = pool.submit(make_order, trader, browser_instrument, status="EXPIRED").result()
        live = pool.submit(make_order, trader, browser_instrument).result()
        for order in (ended, live):
            pool.submit(about, order).result()
        rick = login("rick")
        rick.goto("/risk/")
        expect(rick.locator("#conn")).to_contain_text("live")
        rick.evaluate("() => { window.__notReloaded = true; }")
        expect(rick.locator("#ended-count")).to_have_text("1")
        # The live order is canceled; its exception is raised again, so the console
        # hears that it is now about an ended order.
        pool.submit(ParentOrder.objects.filter(pk=live.pk).update, status="CANCELED").result()
        pool.submit(about, live).result()
        expect(rick.locator("#ended-count")).to_have_text("2")
        rick.fill("#resolve-ended-text", "browser test: both orders over")
        rick.click("#resolve-ended button[type=submit]")
        expect(rick.locator("ul.messages")).to_contain_text(
            "Resolved 2 exceptions about orders that have ended"
        )
        expect(rick.locator("#exceptions tbody.exc")).to_have_count(0)
        expect(rick.locator("#resolve-ended")).to_be_hidden()
        assert rick.evaluate("() => window.__notReloaded === true"), "the console reloaded"
        states = pool.submit(
            lambda: sorted(RiskException.objects.values_list("status", "resolution"))
        ).result()
    assert states == [("RESOLVED", "browser test: both orders over")] * 2
    assert rick.js_errors == [], rick.js_errors


def test_a_page_that_loses_the_network_says_it_is_not_live(
    stack: Stack, login: Callable[[str], Any], risk_manager: Any
) -> None:
    """The badge said "● live" over 15 s offline in which nothing came (a trial)."""
    expect = _expect()
    rick = login("rick")
    for path in ("/risk/", "/"):
        rick.goto(path)
        expect(rick.locator("#conn")).to_have_text("● live")
        rick.context.set_offline(True)
        expect(rick.locator("#conn")).to_have_text("offline: not live")
        rick.context.set_offline(False)
        expect(rick.locator("#conn")).to_contain_text("live")
        expect(rick.locator("#conn")).not_to_contain_text("offline")
    assert rick.js_errors == [], rick.js_errors


def test_a_blocked_orders_time_left_follows_its_market(
    stack: Stack,
    login: Callable[[str], Any],
    trader: Any,
    risk_manager: Any,
    browser_instrument: Any,
) -> None:
    """A blocked order sends no events: its "Left" stood still for minutes on the live
    blotter while its market ran on, and the order page showed its entry time's (a
    trial). Its neighbours' events move it; a replay never moves it back."""
    from concurrent.futures import ThreadPoolExecutor

    from execution.services import parent_order_submit

    page = login("tina")
    _submit_ticket(page, stack, quantity=6000, end_minute=120)
    page.wait_for_url(stack.url + "/")
    working = ParentOrder.objects.get(owner=trader)
    _status_is(page, working.pk, "WORKING", stack)
    with ThreadPoolExecutor(1) as pool:  # off Playwright's thread, as the tests above say
        blocked = pool.submit(
            parent_order_submit,
            user=trader,
            instrument=browser_instrument,
            side="sell",
            quantity=1000,
            start_minute=0,
            end_minute=120,
            strategy="twap",
        ).result()
    assert blocked.status == "BLOCKED"
    left = (
        f"() => {{ const c = document.querySelector('#order-{blocked.pk} [data-field=time_left]');"
        " return c ? Number(c.dataset.sort) : -1; }"
    )
    _wait_js(page, f"() => ({left})() > 0", None, "the blocked row", stack)
    first = page.evaluate(left)
    # 60x: a minute of market time is a second here.
    _wait_js(page, f"([n]) => ({left})() <= n - 60", [first], "its time left to fall", stack)
    # The order page, drawn now and then replaying the order's one event, agrees.
    detail = page.context.new_page()
    detail.goto(f"/orders/{blocked.pk}/")
    _wait_js(detail, f"([n]) => ({left})() <= n - 60", [first], "the order page's", stack)
    assert page.js_errors == [], page.js_errors
