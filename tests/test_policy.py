"""Tests for execution.engine.policy: the checks every child order passes before it is sent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from execution.engine.policy import ChildCheck, DenyReason, ExecutionPolicy, check_child

BUY, SELL = 1, -1


def policy(**kw: Any) -> ExecutionPolicy:
    base: dict[str, Any] = {
        "start_s": 600.0,
        "end_s": 3600.0,
        "limit_px_ticks": None,
        "allowed_venues": None,
        "max_child_qty": None,
        "max_participation": 0.5,
        "participation_grace_qty": 100,
    }
    return ExecutionPolicy(**{**base, **kw})


def child(**kw: Any) -> ChildCheck:
    base: dict[str, Any] = {
        "side": BUY,
        "qty": 100,
        "px_ticks": 10_000,
        "venue": "LIT1",
        "now": 1200.0,
        "leaves_unallocated": 10_000,
        "ours_qty": 0,
        "others_volume": 50_000.0,
        "venue_known": True,
    }
    return ChildCheck(**{**base, **kw})


def reason(p: ExecutionPolicy, c: ChildCheck) -> DenyReason | None:
    out = check_child(p, c)
    if out is None:
        return None
    code, detail = out
    assert isinstance(detail, str) and detail  # people read it beside the denied child
    return code


def test_a_reasonable_child_is_allowed() -> None:
    assert check_child(policy(), child()) is None


# -- one minimal case per reason ------------------------------------------------------------


@pytest.mark.parametrize("now", [0.0, 599.999, 3600.0, 5000.0])
def test_outside_window(now: float) -> None:
    assert reason(policy(), child(now=now)) == DenyReason.OUTSIDE_WINDOW


@pytest.mark.parametrize("now", [600.0, 3599.999])
def test_window_is_half_open(now: float) -> None:
    assert reason(policy(), child(now=now)) is None


@pytest.mark.parametrize("qty", [0, -1])
def test_invalid_qty(qty: int) -> None:
    assert reason(policy(), child(qty=qty)) == DenyReason.INVALID_QTY


def test_exceeds_leaves() -> None:
    assert reason(policy(), child(qty=101, leaves_unallocated=100)) == DenyReason.EXCEEDS_LEAVES
    assert reason(policy(), child(qty=100, leaves_unallocated=100)) is None


def test_max_child_qty() -> None:
    assert reason(policy(max_child_qty=99), child(qty=100)) == DenyReason.MAX_CHILD_QTY
    assert reason(policy(max_child_qty=100), child(qty=100)) is None


def test_unknown_venue_is_not_allowed_even_without_a_venue_list() -> None:
    assert reason(policy(), child(venue="NOPE", venue_known=False)) == DenyReason.VENUE_NOT_ALLOWED


def test_venue_outside_the_allowed_list() -> None:
    p = policy(allowed_venues=frozenset({"LIT2", "DARK1"}))
    assert reason(p, child(venue="LIT1")) == DenyReason.VENUE_NOT_ALLOWED
    assert reason(p, child(venue="LIT2")) is None


def test_empty_allowed_list_allows_nothing() -> None:
    assert reason(policy(allowed_venues=frozenset()), child()) == DenyReason.VENUE_NOT_ALLOWED


# -- the limit price ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "px", "denied"),
    [
        (BUY, 10_001, True),  # paying more than the limit
        (BUY, 10_000, False),
        (BUY, 9_990, False),
        (SELL, 9_999, True),  # selling below the limit
        (SELL, 10_000, False),
        (SELL, 10_010, False),
    ],
)
def test_limit_price_by_side(side: int, px: int, denied: bool) -> None:
    got = reason(policy(limit_px_ticks=10_000), child(side=side, px_ticks=px))
    assert got == (DenyReason.LIMIT_PRICE if denied else None)


@pytest.mark.parametrize("side", [BUY, SELL])
def test_unpriced_child_under_a_limit_is_denied(side: int) -> None:
    assert (
        reason(policy(limit_px_ticks=10_000), child(side=side, px_ticks=None))
        == DenyReason.LIMIT_PRICE
    )


def test_unpriced_child_without_a_limit_is_allowed() -> None:
    assert reason(policy(), child(px_ticks=None, venue="DARK1")) is None


# -- participation --------------------------------------------------------------------------


def test_participation_cap_at_half() -> None:
    # 50% of the market: as much as everyone else together, plus the grace.
    p = policy(max_participation=0.5, participation_grace_qty=100)
    assert reason(p, child(ours_qty=900, qty=200, others_volume=1000.0)) is None
    assert (
        reason(p, child(ours_qty=900, qty=201, others_volume=1000.0))
        == DenyReason.MAX_PARTICIPATION
    )


def test_participation_cap_at_a_fifth() -> None:
    # 20%: a quarter of what the others traded (our 250 of a 1250 total), plus the grace.
    p = policy(max_participation=0.2, participation_grace_qty=50)
    assert reason(p, child(ours_qty=200, qty=100, others_volume=1000.0)) is None
    assert (
        reason(p, child(ours_qty=200, qty=101, others_volume=1000.0))
        == DenyReason.MAX_PARTICIPATION
    )


def test_grace_lets_the_first_child_go_at_the_open() -> None:
    p = policy(max_participation=0.1, participation_grace_qty=100)
    assert reason(p, child(qty=100, ours_qty=0, others_volume=0.0)) is None
    assert reason(p, child(qty=101, ours_qty=0, others_volume=0.0)) == DenyReason.MAX_PARTICIPATION


def test_working_quantity_counts_against_the_cap() -> None:
    p = policy(max_participation=0.1, participation_grace_qty=100)
    assert reason(p, child(qty=10, ours_qty=95, others_volume=0.0)) == DenyReason.MAX_PARTICIPATION


@pytest.mark.parametrize("cap", [None, 1.0])
def test_no_participation_cap(cap: float | None) -> None:
    p = policy(max_participation=cap)
    assert reason(p, child(qty=10_000, leaves_unallocated=10_000, others_volume=0.0)) is None


@given(
    cap=st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.5, 0.75]),
    grace=st.integers(min_value=0, max_value=1000),
    others=st.integers(min_value=0, max_value=1_000_000),
    ours=st.integers(min_value=0, max_value=500_000),
    qty=st.integers(min_value=1, max_value=100_000),
)
def test_participation_means_a_share_of_the_volume(
    cap: float, grace: int, others: int, ours: int, qty: int
) -> None:
    # Allowed exactly when, beyond the grace, we would be at most `cap` of all volume.
    beyond = ours + qty - grace
    slack = cap * (others + beyond) - beyond
    assume(abs(slack) > 1e-6 * (others + ours + qty + 1))  # not on the float boundary
    p = policy(max_participation=cap, participation_grace_qty=grace)
    got = reason(
        p, child(qty=qty, ours_qty=ours, others_volume=float(others), leaves_unallocated=qty)
    )
    assert (got == DenyReason.MAX_PARTICIPATION) == (slack < 0)


# -- precedence -----------------------------------------------------------------------------

# Each entry breaks one rule; the policy reports the first broken rule in this order.
BREAKS: list[tuple[DenyReason, dict[str, Any], dict[str, Any]]] = [
    (DenyReason.OUTSIDE_WINDOW, {}, {"now": 10.0}),
    (DenyReason.INVALID_QTY, {}, {"qty": 0}),
    (DenyReason.EXCEEDS_LEAVES, {}, {"leaves_unallocated": 50}),
    (DenyReason.MAX_CHILD_QTY, {"max_child_qty": 60}, {}),
    (DenyReason.VENUE_NOT_ALLOWED, {"allowed_venues": frozenset({"LIT2"})}, {}),
    (DenyReason.LIMIT_PRICE, {"limit_px_ticks": 9_000}, {}),
    (
        DenyReason.MAX_PARTICIPATION,
        {"max_participation": 0.01, "participation_grace_qty": 0},
        {"ours_qty": 1000},
    ),
]


# The firm's risk codes: the risk gate's (tests/test_risk_gate.py) and the parent order
# pre-trade check's (tests/risk/), not the execution policy's.
RISK_CODES = {
    DenyReason.TRADING_HALTED,
    DenyReason.REDUCE_ONLY,
    DenyReason.MAX_CHILD_NOTIONAL,
    DenyReason.PRICE_COLLAR,
    DenyReason.DUPLICATE_ORDER,
    DenyReason.OPPOSITE_SIDE_WORKING,
    DenyReason.MESSAGE_RATE,
    DenyReason.MAX_ORDER_QTY,
    DenyReason.MAX_ORDER_NOTIONAL,
    DenyReason.DAILY_NOTIONAL,
    DenyReason.RESTRICTED_INSTRUMENT,
}


def test_every_reason_is_covered() -> None:
    # ORDER_NOT_WORKING is in the code set but check_child cannot return it: ChildCheck
    # carries no parent status (the engine only asks for children while WORKING).
    assert set(DenyReason) - {r for r, _, _ in BREAKS} - RISK_CODES == {
        DenyReason.ORDER_NOT_WORKING
    }


@pytest.mark.parametrize("first", range(len(BREAKS)))
def test_precedence(first: int) -> None:
    """Break this rule and every rule after it: the reported reason is this one."""
    p_kw: dict[str, Any] = {}
    c_kw: dict[str, Any] = {}
    for _, pk, ck in BREAKS[first:]:
        p_kw.update(pk)
        c_kw.update(ck)
    assert reason(policy(**p_kw), child(**c_kw)) == BREAKS[first][0]


@pytest.mark.parametrize("only", range(len(BREAKS)))
def test_each_rule_alone(only: int) -> None:
    want, pk, ck = BREAKS[only]
    assert reason(policy(**pk), child(**ck)) == want


# -- a child within every bound -------------------------------------------------------------


@given(
    data=st.data(),
    side=st.sampled_from([BUY, SELL]),
    qty=st.integers(min_value=1, max_value=10_000),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=100_000)),
    cap=st.one_of(st.none(), st.floats(min_value=0.01, max_value=0.99)),
    grace=st.integers(min_value=0, max_value=1000),
)
def test_a_child_within_every_bound_is_never_denied(
    data: st.DataObject, side: int, qty: int, limit: int | None, cap: float | None, grace: int
) -> None:
    start = data.draw(st.floats(min_value=0.0, max_value=20_000.0))
    end = data.draw(st.floats(min_value=start + 1.0, max_value=23_400.0))
    now = data.draw(st.floats(min_value=start, max_value=end).filter(lambda t: t < end))
    if limit is None:
        px = data.draw(st.one_of(st.none(), st.integers(min_value=1, max_value=100_000)))
    elif side == BUY:
        px = data.draw(st.integers(min_value=1, max_value=limit))
    else:
        px = data.draw(st.integers(min_value=limit, max_value=limit + 10_000))
    venues = data.draw(
        st.one_of(st.none(), st.frozensets(st.sampled_from(["LIT1", "LIT2", "DARK1"]), min_size=1))
    )
    venue = data.draw(st.sampled_from(sorted(venues) if venues else ["LIT1", "LIT2", "DARK1"]))
    max_child = data.draw(st.one_of(st.none(), st.integers(min_value=qty, max_value=20_000)))
    leaves = data.draw(st.integers(min_value=qty, max_value=1_000_000))
    ours = data.draw(st.integers(min_value=0, max_value=100_000))
    others = float(data.draw(st.integers(min_value=0, max_value=10_000_000)))
    if cap is not None:
        # Enough volume by others that ours, this child included, stays under the cap.
        need = (ours + qty) * (1.0 - cap) / cap
        others = max(others, need * 1.001 + 1.0)
    p = ExecutionPolicy(
        start_s=start,
        end_s=end,
        limit_px_ticks=limit,
        allowed_venues=venues,
        max_child_qty=max_child,
        max_participation=cap,
        participation_grace_qty=grace,
    )
    c = ChildCheck(
        side=side,
        qty=qty,
        px_ticks=px,
        venue=venue,
        now=now,
        leaves_unallocated=leaves,
        ours_qty=ours,
        others_volume=others,
        venue_known=True,
    )
    assert check_child(p, c) is None


@given(side=st.sampled_from([BUY, SELL]), px=st.integers(min_value=1, max_value=20_000))
def test_limit_is_exactly_the_worst_acceptable_price(side: int, px: int) -> None:
    got = reason(policy(limit_px_ticks=10_000), child(side=side, px_ticks=px))
    through = px > 10_000 if side == BUY else px < 10_000
    assert (got == DenyReason.LIMIT_PRICE) == through


def test_a_participation_denial_names_the_cap_as_it_was_set() -> None:
    """A 0.5% limit was said as "would exceed 0% of volume" (a trial)."""
    p = policy(max_participation=0.005, participation_grace_qty=0)
    found = check_child(p, child(ours_qty=0, qty=100, others_volume=1000.0))
    assert found is not None
    assert found[1] == "100 would exceed 0.5% of volume (5 allowed)"
