"""Tests for execution.engine.orders: the child and parent order state machines.

The property tests throw arbitrary event sequences at a fresh order and check, after every
event, that it either made a transition the table allows (to the state a model predicts)
or raised InvalidTransition and left the order exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.engine.events import (
    ChildAccepted,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildDenied,
    ChildEvent,
    ChildFilled,
    ChildRejected,
    ChildSubmitted,
    DomainEvent,
    ParentAccepted,
    ParentProgress,
    ParentStatusChanged,
)
from execution.engine.orders import (
    CHILD_TERMINAL,
    CHILD_TRANSITIONS,
    PARENT_TERMINAL,
    PARENT_TRANSITIONS,
    ChildOrder,
    ChildStatus,
    InvalidTransition,
    ParentOrder,
    ParentStatus,
)

C = ChildStatus
P = ParentStatus
CID = "P1-C1"
CHILD_KINDS = ("submit", "deny", "accept", "reject", "fill", "cancel_req", "cancel_rej", "canceled")


# -- builders -------------------------------------------------------------------------------


def new_child(qty: int = 100) -> ChildOrder:
    return ChildOrder(
        client_order_id=CID,
        parent_id="P1",
        venue="LIT1",
        side=1,
        qty=qty,
        px_ticks=10_000,
        intent="passive",
    )


def child_event(
    kind: str, seq: int = 1, qty: int = 0, *, trade_id: str = "", cid: str = CID
) -> ChildEvent:
    common: dict[str, Any] = {
        "order_id": "P1",
        "seq": seq,
        "ts": float(seq),
        "client_order_id": cid,
        "venue": "LIT1",
    }
    match kind:
        case "submit":
            return ChildSubmitted(
                **common,
                side="buy",
                qty=100,
                px=Decimal("100.00"),
                order_type="limit",
                tif="DAY",
                intent="passive",
            )
        case "deny":
            return ChildDenied(
                **common,
                side="buy",
                qty=100,
                px=Decimal("100.00"),
                reason="MAX_CHILD_QTY",
                detail="too big",
            )
        case "accept":
            return ChildAccepted(**common)
        case "reject":
            return ChildRejected(**common, reason="VENUE_DOWN")
        case "fill":
            return ChildFilled(
                **common,
                trade_id=trade_id or f"T{seq}",
                px=Decimal("100.00"),
                qty=qty,
                liquidity="maker",
                leaves_qty=0,
            )
        case "cancel_req":
            return ChildCancelRequested(**common, reason="REPRICE")
        case "cancel_rej":
            return ChildCancelRejected(**common, reason="TOO_LATE")
        case "canceled":
            return ChildCanceled(**common, canceled_qty=0, reason="REPRICE")
    raise AssertionError(kind)


def apply_all(c: ChildOrder, *steps: tuple[str, int] | str) -> None:
    for seq, step in enumerate(steps, start=1):
        kind, qty = (step, 0) if isinstance(step, str) else step
        c.apply(child_event(kind, seq, qty))


def child_snapshot(c: ChildOrder) -> tuple[ChildStatus, int, int, bool]:
    return c.status, c.filled_qty, c.leaves_qty, c.is_open


def assert_child_invariants(c: ChildOrder) -> None:
    assert 0 <= c.filled_qty <= c.qty
    if c.status in CHILD_TERMINAL:
        assert not c.is_open
        assert c.leaves_qty == 0
    else:
        assert c.is_open
        assert c.leaves_qty == c.qty - c.filled_qty
    assert (c.status == C.FILLED) == (c.filled_qty == c.qty)
    if c.status in (C.INITIALIZED, C.SUBMITTED, C.ACCEPTED, C.DENIED):
        assert c.filled_qty == 0  # nothing has traded yet
    if c.status == C.PARTIALLY_FILLED:
        assert 0 < c.filled_qty < c.qty


# -- the child order: properties ------------------------------------------------------------


def test_child_table_never_leaves_a_terminal_state() -> None:
    for event_type, allowed in CHILD_TRANSITIONS.items():
        assert not allowed & CHILD_TERMINAL, event_type.__name__


def test_child_terminal_state_accepts_no_event() -> None:
    terminal_paths: list[tuple[tuple[str, int] | str, ...]] = [
        ("deny",),
        ("submit", "reject"),
        ("submit", "accept", ("fill", 100)),
        ("submit", "accept", "cancel_req", "canceled"),
        ("submit", "canceled"),
    ]
    for path in terminal_paths:
        for kind in CHILD_KINDS:
            c = new_child()
            apply_all(c, *path)
            assert c.status in CHILD_TERMINAL
            before = child_snapshot(c)
            with pytest.raises(InvalidTransition):
                c.apply(child_event(kind, 99, 1))
            assert child_snapshot(c) == before


@dataclass
class _ChildModel:
    """What the child should look like, tracked independently of the implementation."""

    status: ChildStatus = C.INITIALIZED
    filled: int = 0
    before_cancel: ChildStatus = C.ACCEPTED

    def next_status(self, kind: str, fill_qty: int, qty: int) -> ChildStatus:
        match kind:
            case "submit":
                return C.SUBMITTED
            case "deny":
                return C.DENIED
            case "accept":
                # An ack that arrives after we asked to cancel leaves the cancel pending.
                return C.PENDING_CANCEL if self.status == C.PENDING_CANCEL else C.ACCEPTED
            case "reject":
                return C.REJECTED
            case "fill":
                if self.filled + fill_qty == qty:
                    return C.FILLED
                # A partial fill does not undo a cancel we are waiting on.
                return C.PENDING_CANCEL if self.status == C.PENDING_CANCEL else C.PARTIALLY_FILLED
            case "cancel_req":
                return C.PENDING_CANCEL
            case "cancel_rej":
                return C.PARTIALLY_FILLED if self.filled else self.before_cancel
            case "canceled":
                return C.CANCELED
        raise AssertionError(kind)


child_steps = st.lists(
    st.tuples(st.sampled_from(CHILD_KINDS), st.integers(min_value=-2, max_value=60)),
    max_size=40,
)


@settings(max_examples=300)
@given(qty=st.integers(min_value=1, max_value=50), steps=child_steps)
def test_child_random_event_sequences(qty: int, steps: list[tuple[str, int]]) -> None:
    c = new_child(qty)
    model = _ChildModel()
    for seq, (kind, n) in enumerate(steps, start=1):
        ev = child_event(kind, seq, n)
        before = child_snapshot(c)
        in_table = c.status in CHILD_TRANSITIONS[type(ev)]
        fill_ok = kind != "fill" or 0 < n <= c.qty - c.filled_qty
        # With a cancel pending, the venue's ack or reject may still come, but only if the
        # cancel overtook it (requested while SUBMITTED), and only once.
        answer_ok = not (
            kind in ("accept", "reject")
            and model.status == C.PENDING_CANCEL
            and model.before_cancel != C.SUBMITTED
        )
        if in_table and fill_ok and answer_ok:
            expected = model.next_status(kind, n, qty)
            c.apply(ev)
            if kind == "cancel_req":
                model.before_cancel = model.status
            if kind == "accept" and model.status == C.PENDING_CANCEL:
                model.before_cancel = C.ACCEPTED
            if kind == "fill":
                model.filled += n
            model.status = expected
            assert c.status == expected, (kind, before)
        else:
            with pytest.raises(InvalidTransition):
                c.apply(ev)
            assert child_snapshot(c) == before, kind
        assert c.filled_qty == model.filled
        assert_child_invariants(c)


@given(
    qty=st.integers(min_value=1, max_value=1000),
    fills=st.lists(st.integers(min_value=1, max_value=1000), max_size=20),
)
def test_child_fills_never_exceed_qty(qty: int, fills: list[int]) -> None:
    c = new_child(qty)
    apply_all(c, "submit", "accept")
    for seq, n in enumerate(fills, start=10):
        if c.is_open and c.filled_qty + n <= qty:
            c.apply(child_event("fill", seq, n))
        else:
            before = child_snapshot(c)
            with pytest.raises(InvalidTransition):
                c.apply(child_event("fill", seq, n))
            assert child_snapshot(c) == before
        assert_child_invariants(c)


# -- the child order: lifecycles ------------------------------------------------------------


def test_child_submit_accept_partial_fill() -> None:
    c = new_child(100)
    assert (c.status, c.leaves_qty) == (C.INITIALIZED, 100)
    apply_all(c, "submit")
    assert (c.status, c.leaves_qty) == (C.SUBMITTED, 100)
    c.apply(child_event("accept", 2))
    assert (c.status, c.leaves_qty) == (C.ACCEPTED, 100)
    c.apply(child_event("fill", 3, 30))
    assert (c.status, c.filled_qty, c.leaves_qty) == (C.PARTIALLY_FILLED, 30, 70)
    c.apply(child_event("fill", 4, 70))
    assert (c.status, c.filled_qty, c.leaves_qty, c.is_open) == (C.FILLED, 100, 0, False)


def test_child_cancel_rejected_goes_back_to_working() -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept", "cancel_req")
    assert c.status == C.PENDING_CANCEL
    assert c.leaves_qty == 100  # still working at the venue until the cancel lands
    c.apply(child_event("cancel_rej", 9))
    assert c.status == C.ACCEPTED
    assert c.is_open


def test_child_partially_filled_while_cancel_pending_then_cancel_rejected() -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept", ("fill", 10), "cancel_req", ("fill", 20))
    assert (c.status, c.filled_qty, c.leaves_qty) == (C.PENDING_CANCEL, 30, 70)
    c.apply(child_event("cancel_rej", 9))
    assert (c.status, c.leaves_qty) == (C.PARTIALLY_FILLED, 70)


def test_child_first_fill_while_cancel_pending_then_cancel_rejected() -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept", "cancel_req", ("fill", 20))
    assert (c.status, c.filled_qty) == (C.PENDING_CANCEL, 20)
    c.apply(child_event("cancel_rej", 9))
    assert (c.status, c.leaves_qty) == (C.PARTIALLY_FILLED, 80)


def test_child_filled_while_cancel_pending_is_filled() -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept", "cancel_req", ("fill", 100))
    assert (c.status, c.leaves_qty) == (C.FILLED, 0)
    with pytest.raises(InvalidTransition):
        c.apply(child_event("canceled", 9))


def test_child_ioc_fill_then_remainder_canceled() -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept", ("fill", 40), "canceled")
    assert (c.status, c.filled_qty, c.leaves_qty, c.is_open) == (C.CANCELED, 40, 0, False)


def test_child_canceled_before_the_ack() -> None:
    c = new_child(100)
    apply_all(c, "submit", "canceled")
    assert (c.status, c.leaves_qty) == (C.CANCELED, 0)


def test_child_denied_is_terminal() -> None:
    c = new_child(100)
    c.apply(child_event("deny", 1))
    assert (c.status, c.leaves_qty, c.is_open) == (C.DENIED, 0, False)
    with pytest.raises(InvalidTransition):
        c.apply(child_event("submit", 2))
    assert c.status == C.DENIED


def test_child_rejected_is_terminal() -> None:
    c = new_child(100)
    apply_all(c, "submit", "reject")
    assert (c.status, c.leaves_qty, c.is_open) == (C.REJECTED, 0, False)


def test_child_cannot_be_filled_before_it_is_sent() -> None:
    c = new_child(100)
    with pytest.raises(InvalidTransition):
        c.apply(child_event("fill", 1, 10))
    assert (c.status, c.filled_qty) == (C.INITIALIZED, 0)


@pytest.mark.parametrize("bad_qty", [0, -5, 101])
def test_child_rejects_empty_negative_and_overfilling_fills(bad_qty: int) -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept")
    with pytest.raises(InvalidTransition):
        c.apply(child_event("fill", 5, bad_qty))
    assert (c.status, c.filled_qty, c.leaves_qty) == (C.ACCEPTED, 0, 100)


def test_child_refuses_another_childs_event() -> None:
    c = new_child(100)
    apply_all(c, "submit")
    with pytest.raises(InvalidTransition):
        c.apply(child_event("accept", 2, cid="P1-C2"))
    assert c.status == C.SUBMITTED


def test_child_ack_arriving_after_a_cancel_request() -> None:
    # The cancel went out within the venue's latency, so the ack comes back after it.
    c = new_child(100)
    apply_all(c, "submit", "cancel_req", "accept")
    assert (c.status, c.leaves_qty) == (C.PENDING_CANCEL, 100)  # still waiting on the cancel
    c.apply(child_event("cancel_rej", 9))
    assert c.status == C.ACCEPTED


def test_child_ack_after_a_cancel_request_then_canceled() -> None:
    c = new_child(100)
    apply_all(c, "submit", "cancel_req", "accept", "canceled")
    assert (c.status, c.leaves_qty) == (C.CANCELED, 0)


def test_child_rejected_while_cancel_pending() -> None:
    c = new_child(100)
    apply_all(c, "submit", "cancel_req", "reject")
    assert (c.status, c.leaves_qty, c.is_open) == (C.REJECTED, 0, False)


def test_child_cannot_be_rejected_after_it_traded() -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept", ("fill", 10), "cancel_req")
    with pytest.raises(InvalidTransition):
        c.apply(child_event("reject", 9))
    assert (c.status, c.filled_qty) == (C.PENDING_CANCEL, 10)


def test_child_rejects_a_duplicate_trade_id() -> None:
    c = new_child(100)
    apply_all(c, "submit", "accept")
    c.apply(child_event("fill", 3, 10, trade_id="T1"))
    with pytest.raises(InvalidTransition):
        c.apply(child_event("fill", 4, 10, trade_id="T1"))
    assert c.filled_qty == 10


# -- the parent order -----------------------------------------------------------------------


def status_event(status: ParentStatus, seq: int = 1, previous: str = "") -> ParentStatusChanged:
    return ParentStatusChanged(
        order_id="P1", seq=seq, ts=float(seq), status=status.value, previous=previous, reason="test"
    )


def fill_event(
    qty: int, trade_id: str, venue: str = "LIT1", seq: int = 1, px: str = "100.00"
) -> ChildFilled:
    return ChildFilled(
        order_id="P1",
        seq=seq,
        ts=float(seq),
        client_order_id=CID,
        venue=venue,
        trade_id=trade_id,
        px=Decimal(px),
        qty=qty,
        liquidity="maker",
        leaves_qty=0,
    )


def new_parent(qty: int = 100) -> ParentOrder:
    return ParentOrder(order_id="P1", side=1, qty=qty)


def parent_snapshot(p: ParentOrder) -> tuple[ParentStatus, int, int, float | None, bool]:
    return p.status, p.filled_qty, p.leaves_qty, p.avg_px_ticks, p.is_done


def assert_parent_invariants(p: ParentOrder) -> None:
    assert 0 <= p.filled_qty <= p.qty
    if p.status in PARENT_TERMINAL:
        assert p.is_done
        assert p.leaves_qty == 0
    else:
        assert not p.is_done
        assert p.leaves_qty == p.qty - p.filled_qty
    if p.status == P.FILLED:
        assert p.filled_qty == p.qty


def test_parent_table_never_leaves_a_terminal_state() -> None:
    assert not set(PARENT_TRANSITIONS) & PARENT_TERMINAL


def test_parent_qty_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ParentOrder(order_id="P1", side=1, qty=0)


parent_steps = st.lists(
    st.one_of(
        st.tuples(st.just("status"), st.sampled_from(list(ParentStatus))),
        st.tuples(
            st.just("fill"),
            st.integers(min_value=-1, max_value=30),
            st.sampled_from(["T1", "T2", "T3", "T4", "T5", "T6"]),
            st.sampled_from(["LIT1", "DARK1"]),
            st.integers(min_value=9_990, max_value=10_010),
        ),
    ),
    max_size=40,
)


@settings(max_examples=300)
@given(qty=st.integers(min_value=1, max_value=40), steps=parent_steps)
def test_parent_random_event_sequences(qty: int, steps: list[tuple[Any, ...]]) -> None:
    p = new_parent(qty)
    status, filled, notional = P.NEW, 0, 0.0
    seen: set[tuple[str, str]] = set()
    for seq, step in enumerate(steps, start=1):
        before = parent_snapshot(p)
        if step[0] == "status":
            new = step[1]
            ev: DomainEvent = status_event(new, seq, status.value)
            ok = new in PARENT_TRANSITIONS.get(status, frozenset()) and (
                new != P.FILLED or filled == qty
            )
            px_ticks = None
        else:
            _, n, trade_id, venue, px_ticks = step
            ev = fill_event(n, trade_id, venue, seq)
            ok = (
                status in (P.WORKING, P.PAUSED, P.PENDING_CANCEL)
                and (venue, trade_id) not in seen
                and 0 < n <= qty - filled
            )
        if ok:
            p.apply(ev, px_ticks=px_ticks)
            if step[0] == "status":
                status = step[1]
            else:
                filled += n
                notional += n * px_ticks
                seen.add((venue, trade_id))
        else:
            with pytest.raises(InvalidTransition):
                p.apply(ev, px_ticks=px_ticks)
            assert parent_snapshot(p) == before
        assert (p.status, p.filled_qty) == (status, filled)
        if filled:
            assert p.avg_px_ticks == pytest.approx(notional / filled)
        else:
            assert p.avg_px_ticks is None
        assert_parent_invariants(p)


@pytest.mark.parametrize("terminal", sorted(PARENT_TERMINAL))
def test_parent_terminal_state_accepts_no_event(terminal: ParentStatus) -> None:
    p = new_parent(10)
    path = {
        P.REJECTED: [P.REJECTED],
        P.CANCELED: [P.CANCELED],
        P.EXPIRED: [P.WORKING, P.PENDING_CANCEL, P.EXPIRED],
        P.FILLED: [P.WORKING],
    }[terminal]
    for seq, s in enumerate(path, start=1):
        p.apply(status_event(s, seq))
    if terminal == P.FILLED:
        p.apply(fill_event(10, "T1"), px_ticks=100)
        p.apply(status_event(P.FILLED, 9))
    assert p.status == terminal
    before = parent_snapshot(p)
    for s in ParentStatus:
        with pytest.raises(InvalidTransition):
            p.apply(status_event(s, 20))
    with pytest.raises(InvalidTransition):
        p.apply(fill_event(1, "T99"), px_ticks=100)
    assert parent_snapshot(p) == before


def test_parent_lifecycle_to_filled() -> None:
    p = new_parent(100)
    assert (p.status, p.leaves_qty, p.avg_px_ticks) == (P.NEW, 100, None)
    p.apply(status_event(P.WORKING))
    p.apply(fill_event(40, "T1"), px_ticks=100)
    p.apply(fill_event(60, "T2"), px_ticks=101)
    assert (p.status, p.filled_qty, p.leaves_qty) == (P.WORKING, 100, 0)
    assert p.avg_px_ticks == pytest.approx(100.6)
    p.apply(status_event(P.FILLED))
    assert (p.status, p.leaves_qty, p.is_done) == (P.FILLED, 0, True)


def test_parent_avg_px_from_the_event_price_without_ticks() -> None:
    p = new_parent(100)
    p.apply(status_event(P.WORKING))
    p.apply(fill_event(10, "T1", px="12.5"))
    assert p.avg_px_ticks == pytest.approx(12.5)


def test_parent_cannot_be_filled_short() -> None:
    p = new_parent(100)
    p.apply(status_event(P.WORKING))
    p.apply(fill_event(99, "T1"), px_ticks=100)
    with pytest.raises(InvalidTransition):
        p.apply(status_event(P.FILLED))
    assert (p.status, p.leaves_qty) == (P.WORKING, 1)


def test_parent_pause_resume_and_wind_down_to_expired() -> None:
    p = new_parent(100)
    for s in (P.WORKING, P.PAUSED, P.WORKING, P.PENDING_CANCEL):
        p.apply(status_event(s))
    # A fill that was on its way when we started cancelling still counts.
    p.apply(fill_event(30, "T1"), px_ticks=100)
    assert (p.status, p.filled_qty, p.leaves_qty) == (P.PENDING_CANCEL, 30, 70)
    p.apply(status_event(P.EXPIRED))
    assert (p.status, p.filled_qty, p.leaves_qty) == (P.EXPIRED, 30, 0)


def test_parent_cannot_go_back_to_working_once_cancelling() -> None:
    p = new_parent(100)
    p.apply(status_event(P.WORKING))
    p.apply(status_event(P.PENDING_CANCEL))
    with pytest.raises(InvalidTransition):
        p.apply(status_event(P.WORKING))
    assert p.status == P.PENDING_CANCEL


def test_parent_not_fillable_before_it_works() -> None:
    p = new_parent(100)
    with pytest.raises(InvalidTransition):
        p.apply(fill_event(10, "T1"), px_ticks=100)
    assert (p.status, p.filled_qty) == (P.NEW, 0)


def test_parent_rejects_a_duplicate_trade_id_per_venue() -> None:
    p = new_parent(100)
    p.apply(status_event(P.WORKING))
    p.apply(fill_event(10, "T1", "LIT1"), px_ticks=100)
    with pytest.raises(InvalidTransition):
        p.apply(fill_event(10, "T1", "LIT1"), px_ticks=100)
    assert (p.filled_qty, p.avg_px_ticks) == (10, 100)
    # Trade ids are the venue's: the same id elsewhere is another trade.
    p.apply(fill_event(10, "T1", "LIT2"), px_ticks=102)
    assert (p.filled_qty, p.avg_px_ticks) == (20, 101)


def test_parent_refused_overfill_does_not_burn_the_trade_id() -> None:
    p = new_parent(10)
    p.apply(status_event(P.WORKING))
    with pytest.raises(InvalidTransition):
        p.apply(fill_event(11, "T1"), px_ticks=100)
    p.apply(fill_event(10, "T1"), px_ticks=100)
    assert p.filled_qty == 10


@pytest.mark.parametrize(
    "event",
    [
        ParentAccepted(order_id="P1", seq=1, ts=0.0, side="buy", qty=100, strategy="twap"),
        ParentProgress(
            order_id="P1",
            seq=1,
            ts=0.0,
            filled_qty=0,
            leaves_qty=100,
            working_qty=0,
            avg_px=None,
            target_qty=0,
        ),
        ChildAccepted(order_id="P1", seq=1, ts=0.0, client_order_id=CID, venue="LIT1"),
    ],
)
def test_parent_ignores_nothing_silently(event: DomainEvent) -> None:
    p = new_parent(100)
    p.apply(status_event(P.WORKING))
    with pytest.raises(InvalidTransition):
        p.apply(event)
    assert (p.status, p.filled_qty) == (P.WORKING, 0)
