"""The lit book's price-time priority and our queue position, and the dark pool."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from execution.sim.venues import BUY, SELL, DarkPool, Execution, LitBook, RestingOrder


def book(bid: int = 100, ask: int = 102, depth: float = 500.0) -> LitBook:
    b = LitBook("LIT", 0, bid, ask, depth, 0.0)
    b.bids = {bid - k: depth for k in range(5)}
    b.asks = {ask + k: depth for k in range(5)}
    return b


def test_our_passive_order_fills_only_after_the_queue_ahead_has_traded() -> None:
    b = book()
    ours = RestingOrder("C1", BUY, 100, 200)
    b.rest(ours)
    assert ours.ahead == 500.0
    fills: list[Execution] = []
    b.take(SELL, 499, None, fills)
    assert fills == [] and ours.leaves == 200
    b.take(SELL, 51, None, fills)
    assert [(f.oid, f.qty, f.px_ticks, f.liquidity) for f in fills] == [("C1", 50, 100.0, "maker")]
    assert ours.leaves == 150


def test_cancels_ahead_of_us_move_us_up_the_queue() -> None:
    b = book()
    ours = RestingOrder("C1", BUY, 100, 100)
    b.rest(ours)
    b.add(BUY, 100, 500)  # joins behind us
    b.cancel(BUY, 100, 0.5)  # half the level goes, spread through the queue
    assert 0 < ours.ahead < 500
    fills: list[Execution] = []
    b.take(SELL, ours.ahead + 10, None, fills)
    assert sum(f.qty for f in fills) == 10


def test_marketable_order_walks_the_book_level_by_level() -> None:
    b = book(depth=100.0)
    fills: list[Execution] = []
    left, walked = b.take(BUY, 250, None, fills)
    assert left == 0
    assert walked == [(102, 100.0), (103, 100.0), (104, 50.0)]
    assert b.ask == 104 and b.asks[104] == 50.0


def test_a_limit_stops_the_walk() -> None:
    b = book(depth=100.0)
    left, walked = b.take(BUY, 250, 103, [])
    assert left == 50 and [px for px, _ in walked] == [102, 103]


def test_sweeping_a_stale_level_picks_off_our_order_there() -> None:
    b = book()
    ours = RestingOrder("C1", SELL, 102, 300)
    b.rest(ours)
    fills: list[Execution] = []
    b.sweep_best(SELL, fills)
    assert [(f.oid, f.qty) for f in fills] == [("C1", 300)]
    assert b.ask == 103


def test_dark_pool_crosses_at_the_mid_and_respects_our_limit() -> None:
    pool = DarkPool("DARK", 2)
    pool.rest(RestingOrder("D1", BUY, 100, 300))  # limit 100 ticks
    fills: list[Execution] = []
    pool.contra_arrives(BUY, 500, 99.5, fills)  # a buyer: no cross with our buy
    assert fills == []
    pool.contra_arrives(SELL, 200, 100.5, fills)  # mid above our limit: no cross
    assert fills == []
    pool.contra_arrives(SELL, 200, 99.5, fills)
    assert [(f.qty, f.px_ticks, f.liquidity) for f in fills] == [(200, 99.5, "midpoint")]


ops = st.lists(
    st.tuples(
        st.sampled_from(["take", "add", "cancel", "rest", "remove", "sweep"]),
        st.sampled_from([BUY, SELL]),
        st.integers(0, 6),
        st.floats(1, 2000),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_book_invariants_hold_under_any_sequence(
    sequence: list[tuple[str, int, int, float]],
) -> None:
    b = book()
    resting: list[RestingOrder] = []
    original: dict[str, int] = {}
    filled: dict[str, int] = {}
    for n, (op, side, level, size) in enumerate(sequence):
        fills: list[Execution] = []
        best = b.bid if side == BUY else b.ask
        px = best - level if side == BUY else best + level
        if op == "take":
            b.take(side, size, None, fills)
        elif op == "add":
            b.add(side, px, size)
        elif op == "cancel":
            b.cancel(side, px, min(size / 2000, 1.0))
        elif op == "rest":
            o = RestingOrder(f"C{n}", side, px, int(size))
            b.rest(o)
            resting.append(o)
            original[o.oid] = o.leaves
        elif op == "remove" and resting:
            b.remove(resting.pop(0))
        elif op == "sweep":
            b.sweep_best(side, fills)
        for f in fills:
            filled[f.oid] = filled.get(f.oid, 0) + f.qty
        assert b.bid < b.ask, "the book must never be crossed or locked"
        assert all(q >= 0 for q in b.bids.values()) and all(q >= 0 for q in b.asks.values())
        for o in b.resting():
            assert o.leaves > 0 and o.ahead >= 0
            assert (o.px <= b.bid) if o.side == BUY else (o.px >= b.ask)
    for oid, qty in original.items():
        o = next(r for r in [*resting, RestingOrder(oid, BUY, 0, 0)] if r.oid == oid)
        assert filled.get(oid, 0) <= qty, "never more than the order's quantity"
        if o.leaves:
            assert filled.get(oid, 0) + o.leaves == qty
