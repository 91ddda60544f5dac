"""Tests for execution.algos.router: where and at what price the SmartOrderRouter sends children."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from execution.algos.router import Place, SmartOrderRouter, VenueInfo, VenueQuoteView

BUY, SELL = 1, -1


@dataclass(frozen=True)
class View:
    quotes: tuple[VenueQuoteView, ...]
    nbb: int
    nbo: int


def lit(
    name: str, bid: int, ask: int, bid_qty: float = 500, ask_qty: float = 500, up: bool = True
) -> VenueQuoteView:
    return VenueQuoteView(name, "lit", up, bid, float(bid_qty), ask, float(ask_qty))


def dark(name: str, up: bool = True) -> VenueQuoteView:
    return VenueQuoteView(name, "dark", up)


def view(*quotes: VenueQuoteView) -> View:
    """NBBO over the lit venues that are up, as the market computes it."""
    up = [q for q in quotes if q.kind == "lit" and q.up]
    nbb = max((q.bid for q in up), default=0)
    nbo = min((q.ask for q in up), default=0)
    return View(tuple(quotes), nbb, nbo)


def router(**shares: float) -> SmartOrderRouter:
    return SmartOrderRouter(
        tuple(
            VenueInfo(name, "dark" if name.startswith("D") else "lit", share)
            for name, share in shares.items()
        )
    )


def total(places: list[Place]) -> int:
    return sum(p.qty for p in places)


# -- passive --------------------------------------------------------------------------------


def test_passive_buy_goes_where_share_beats_queue() -> None:
    # A has more of the flow but a queue twenty times longer: B fills sooner.
    r = router(A=0.5, B=0.3)
    v = view(lit("A", 100, 101, bid_qty=10_000), lit("B", 100, 101, bid_qty=500))
    (p,) = r.passive(BUY, 100, v, None, improve=False)
    assert (p.venue, p.qty, p.px_ticks, p.ioc, p.intent) == ("B", 100, 100, False, "passive")


def test_passive_sell_looks_at_the_ask_queue() -> None:
    r = router(A=0.5, B=0.3)
    v = view(
        lit("A", 100, 101, bid_qty=10_000, ask_qty=200),
        lit("B", 100, 101, bid_qty=10, ask_qty=5_000),
    )
    (p,) = r.passive(SELL, 100, v, None, improve=False)
    assert (p.venue, p.px_ticks) == ("A", 101)


def test_passive_equal_queues_prefers_the_larger_share() -> None:
    r = router(A=0.2, B=0.4)
    v = view(lit("A", 100, 101, bid_qty=800), lit("B", 100, 101, bid_qty=800))
    (p,) = r.passive(BUY, 100, v, None, improve=False)
    assert p.venue == "B"


@pytest.mark.parametrize(
    ("side", "limit", "px"), [(BUY, 98, 98), (BUY, 105, 100), (SELL, 104, 104), (SELL, 95, 101)]
)
def test_passive_never_through_the_limit(side: int, limit: int, px: int) -> None:
    r = router(A=0.5)
    (p,) = r.passive(side, 100, view(lit("A", 100, 101)), limit, improve=False)
    assert p.px_ticks == px


@pytest.mark.parametrize(("side", "px"), [(BUY, 101), (SELL, 103)])
def test_passive_improves_inside_a_wide_spread(side: int, px: int) -> None:
    r = router(A=0.5, B=0.3)
    v = view(lit("A", 100, 104), lit("B", 100, 104))
    (p,) = r.passive(side, 100, v, None, improve=True)
    assert p.px_ticks == px


@pytest.mark.parametrize("side", [BUY, SELL])
def test_passive_does_not_improve_a_one_tick_spread(side: int) -> None:
    r = router(A=0.5)
    (p,) = r.passive(side, 100, view(lit("A", 100, 101)), None, improve=True)
    assert p.px_ticks == (100 if side == BUY else 101)


def test_passive_improvement_still_respects_the_limit() -> None:
    r = router(A=0.5)
    (p,) = r.passive(BUY, 100, view(lit("A", 100, 104)), 100, improve=True)
    assert p.px_ticks == 100


def test_passive_improvement_never_crosses_the_national_spread() -> None:
    r = router(A=0.2, B=0.6)
    v = view(lit("A", 100, 103, bid_qty=10), lit("B", 99, 101, bid_qty=5_000))
    (p,) = r.passive(BUY, 100, v, None, improve=True)
    assert p.px_ticks is not None
    assert p.px_ticks < v.nbo


def test_passive_improvement_sets_a_new_best_price() -> None:
    r = router(A=0.2, B=0.6)
    v = view(lit("A", 99, 102, bid_qty=10), lit("B", 100, 102, bid_qty=5_000))
    (p,) = r.passive(BUY, 100, v, None, improve=True)
    assert p.px_ticks is not None
    assert v.nbb < p.px_ticks < v.nbo


def test_passive_nothing_when_no_lit_venue_is_up() -> None:
    r = router(A=0.5, D1=0.1)
    v = view(lit("A", 100, 101, up=False), dark("D1"))
    assert r.passive(BUY, 100, v, None, improve=True) == []


def test_passive_nothing_for_no_quantity() -> None:
    assert router(A=0.5).passive(BUY, 0, view(lit("A", 100, 101)), None, improve=False) == []


def test_passive_skips_a_down_venue_with_the_best_odds() -> None:
    r = router(A=0.9, B=0.1)
    v = view(lit("A", 100, 101, bid_qty=0, up=False), lit("B", 100, 101, bid_qty=5_000))
    for improve in (False, True):
        (p,) = r.passive(BUY, 100, v, None, improve=improve)
        assert p.venue == "B"


# -- dark -----------------------------------------------------------------------------------


def test_dark_splits_by_share() -> None:
    r = router(A=0.25, D1=0.5, D2=0.25)
    places = r.dark(BUY, 300, view(lit("A", 100, 101), dark("D1"), dark("D2")), None)
    assert {(p.venue, p.qty) for p in places} == {("D1", 200), ("D2", 100)}
    assert all(p.px_ticks is None and not p.ioc and p.intent == "dark" for p in places)


def test_dark_carries_the_limit() -> None:
    r = router(D1=0.1)
    (p,) = r.dark(SELL, 100, view(dark("D1")), 9_950)
    assert p.px_ticks == 9_950


def test_dark_skips_down_venues() -> None:
    r = router(D1=0.1, D2=0.5)
    (p,) = r.dark(BUY, 100, view(dark("D1"), dark("D2", up=False)), None)
    assert (p.venue, p.qty) == ("D1", 100)


def test_dark_nothing_without_a_dark_venue_up() -> None:
    r = router(A=0.5, D1=0.1)
    assert r.dark(BUY, 100, view(lit("A", 100, 101), dark("D1", up=False)), None) == []
    assert not r.has_dark(view(lit("A", 100, 101), dark("D1", up=False)))
    assert r.has_dark(view(lit("A", 100, 101), dark("D1")))


dark_books = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=0.5), st.booleans()), min_size=1, max_size=5
)


@given(
    books=dark_books,
    qty=st.integers(min_value=1, max_value=100_000),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=20_000)),
)
def test_dark_property(books: list[tuple[float, bool]], qty: int, limit: int | None) -> None:
    names = [f"D{i}" for i in range(len(books))]
    r = router(**{n: s for n, (s, _) in zip(names, books, strict=True)})
    v = view(*(dark(n, up) for n, (_, up) in zip(names, books, strict=True)))
    up_share = {n: s for n, (s, up) in zip(names, books, strict=True) if up}
    places = r.dark(BUY, qty, v, limit)
    if sum(up_share.values()) <= 0:
        assert places == []
        return
    assert total(places) == qty
    assert len({p.venue for p in places}) == len(places)
    for p in places:
        assert p.venue in up_share
        assert p.qty >= 1
        assert p.px_ticks == limit
        # Each venue gets its share of the order, give or take the rounding remainders.
        assert abs(p.qty - qty * up_share[p.venue] / sum(up_share.values())) < len(up_share)


# -- take -----------------------------------------------------------------------------------


def test_take_buy_sweeps_the_best_offers_first() -> None:
    r = router(A=0.3, B=0.3, C=0.3)
    v = view(
        lit("A", 99, 101, ask_qty=100),
        lit("B", 99, 100, ask_qty=200),
        lit("C", 99, 102, ask_qty=500),
    )
    places = r.take(BUY, 250, v, None, max_ticks=2)
    assert [(p.venue, p.qty) for p in places] == [("B", 200), ("A", 50)]
    assert all(p.px_ticks == 102 and p.ioc and p.intent == "take" for p in places)


def test_take_sell_hits_the_best_bids_first() -> None:
    r = router(A=0.3, B=0.3)
    v = view(lit("A", 100, 102, bid_qty=300), lit("B", 99, 102, bid_qty=300))
    places = r.take(SELL, 400, v, None, max_ticks=1)
    assert [(p.venue, p.qty) for p in places] == [("A", 300), ("B", 100)]
    assert all(p.px_ticks == 99 for p in places)


def test_take_price_capped_by_the_limit() -> None:
    r = router(A=0.5, B=0.3)
    v = view(lit("A", 99, 100, ask_qty=100), lit("B", 99, 102, ask_qty=1_000))
    places = r.take(BUY, 300, v, 101, max_ticks=5)
    # B's offer is beyond the cap: what A does not show walks A, the deepest venue.
    assert [(p.venue, p.qty, p.px_ticks) for p in places] == [("A", 300, 101)]


def test_take_at_the_touch_with_no_ticks() -> None:
    r = router(A=0.5)
    (p,) = r.take(SELL, 100, view(lit("A", 100, 101, bid_qty=1_000)), None, max_ticks=0)
    assert p.px_ticks == 100


@pytest.mark.parametrize(("side", "limit"), [(BUY, 100), (SELL, 101)])
def test_take_nothing_when_the_limit_is_behind_the_touch(side: int, limit: int) -> None:
    r = router(A=0.5)
    v = view(lit("A", 100, 101, bid_qty=1_000, ask_qty=1_000))
    assert r.take(side, 100, v, limit, max_ticks=3) == []


@pytest.mark.parametrize(("side", "limit"), [(BUY, 101), (SELL, 100)])
def test_take_limit_at_the_touch_is_fine(side: int, limit: int) -> None:
    r = router(A=0.5)
    v = view(lit("A", 100, 101, bid_qty=1_000, ask_qty=1_000))
    (p,) = r.take(side, 100, v, limit, max_ticks=3)
    assert p.px_ticks == limit


def test_take_rest_beyond_visible_size_goes_to_the_deepest_venue() -> None:
    r = router(A=0.2, B=0.6)
    v = view(lit("A", 99, 100, ask_qty=100), lit("B", 99, 101, ask_qty=100))
    places = r.take(BUY, 1_000, v, None, max_ticks=2)
    assert total(places) == 1_000
    assert dict((p.venue, p.qty) for p in places) == {"A": 100, "B": 900}


def test_take_skips_down_venues_even_with_better_prices() -> None:
    r = router(A=0.9, B=0.1)
    v = view(lit("A", 99, 100, ask_qty=10_000, up=False), lit("B", 99, 101, ask_qty=100))
    places = r.take(BUY, 500, v, None, max_ticks=2)
    assert {p.venue for p in places} == {"B"}
    assert total(places) == 500


def test_take_nothing_when_no_lit_venue_is_up() -> None:
    r = router(A=0.5, D1=0.5)
    assert r.take(BUY, 100, view(lit("A", 100, 101, up=False), dark("D1")), None, max_ticks=2) == []


# -- properties over random books -----------------------------------------------------------


@st.composite
def books(draw: st.DrawFn) -> tuple[SmartOrderRouter, View, set[str]]:
    n_lit = draw(st.integers(min_value=1, max_value=4))
    n_dark = draw(st.integers(min_value=0, max_value=2))
    quotes: list[VenueQuoteView] = []
    shares: dict[str, float] = {}
    for i in range(n_lit):
        bid = draw(st.integers(min_value=95, max_value=105))
        ask = bid + draw(st.integers(min_value=1, max_value=4))
        quotes.append(
            lit(
                f"L{i}",
                bid,
                ask,
                draw(st.integers(0, 3_000)),
                draw(st.integers(0, 3_000)),
                draw(st.booleans()),
            )
        )
        shares[f"L{i}"] = draw(st.floats(min_value=0.0, max_value=0.6))
    for i in range(n_dark):
        quotes.append(dark(f"D{i}", draw(st.booleans())))
        shares[f"D{i}"] = draw(st.floats(min_value=0.0, max_value=0.2))
    v = view(*quotes)
    assume(any(q.kind == "lit" and q.up for q in quotes))
    assume(v.nbb < v.nbo)  # a crossed market is not a book the router is asked about
    down = {q.name for q in quotes if not q.up}
    return router(**shares), v, down


sides = st.sampled_from([BUY, SELL])
limits = st.one_of(st.none(), st.integers(min_value=90, max_value=110))


@given(b=books(), side=sides, qty=st.integers(1, 5_000), limit=limits)
def test_passive_property(
    b: tuple[SmartOrderRouter, View, set[str]], side: int, qty: int, limit: int | None
) -> None:
    r, v, down = b
    (p,) = r.passive(side, qty, v, limit, improve=False)
    assert p.venue not in down
    assert p.qty == qty
    assert p.px_ticks is not None
    if limit is not None:
        assert (p.px_ticks <= limit) if side == BUY else (p.px_ticks >= limit)
    # Resting, never marketable.
    assert (p.px_ticks <= v.nbb) if side == BUY else (p.px_ticks >= v.nbo)


@given(b=books(), side=sides, qty=st.integers(1, 5_000), limit=limits)
def test_passive_improve_property(
    b: tuple[SmartOrderRouter, View, set[str]], side: int, qty: int, limit: int | None
) -> None:
    r, v, down = b
    (p,) = r.passive(side, qty, v, limit, improve=True)
    assert p.venue not in down
    assert p.qty == qty
    assert p.px_ticks is not None
    if limit is not None:
        assert (p.px_ticks <= limit) if side == BUY else (p.px_ticks >= limit)


@given(b=books(), side=sides, qty=st.integers(1, 10_000), limit=limits, max_ticks=st.integers(0, 5))
def test_take_property(
    b: tuple[SmartOrderRouter, View, set[str]],
    side: int,
    qty: int,
    limit: int | None,
    max_ticks: int,
) -> None:
    r, v, down = b
    places = r.take(side, qty, v, limit, max_ticks)
    touch = v.nbo if side == BUY else v.nbb
    worst = touch + max_ticks if side == BUY else touch - max_ticks
    if limit is not None and ((side == BUY and limit < touch) or (side == SELL and limit > touch)):
        assert places == []
        return
    assert total(places) == qty
    assert len({p.venue for p in places}) == len(places)
    for p in places:
        assert p.venue not in down
        assert p.venue.startswith("L")
        assert p.ioc and p.intent == "take" and p.qty >= 1
        assert p.px_ticks is not None
        if side == BUY:
            assert touch <= p.px_ticks <= worst
            assert limit is None or p.px_ticks <= limit
        else:
            assert worst <= p.px_ticks <= touch
            assert limit is None or p.px_ticks >= limit

    # Visible size is taken best price first: while a better-priced venue still shows
    # size we did not take, a worse one gets nothing.
    got = {p.venue: p.qty for p in places}
    cap = places[0].px_ticks
    assert cap is not None
    up_lit = [q for q in v.quotes if q.kind == "lit" and q.up]

    def price(q: VenueQuoteView) -> int:
        return q.ask if side == BUY else q.bid

    def shown(q: VenueQuoteView) -> int:
        return int(q.ask_qty if side == BUY else q.bid_qty)

    def better(a: int, b_: int) -> bool:
        return a < b_ if side == BUY else a > b_

    def within(px: int) -> bool:
        return not better(cap, px)

    takeable = [q for q in up_lit if within(price(q))]
    if sum(shown(q) for q in takeable) >= qty:
        # Enough on show within the cap: no walking, each venue at most what it shows.
        for q in up_lit:
            assert got.get(q.name, 0) <= (shown(q) if within(price(q)) else 0), q.name
        for w in takeable:
            for q in takeable:
                if better(price(w), price(q)) and got.get(q.name, 0) > 0:
                    assert got.get(w.name, 0) == shown(w), (w.name, q.name)


@given(b=books(), side=sides, qty=st.integers(1, 10_000), limit=limits)
def test_dark_never_uses_lit_or_down_venues(
    b: tuple[SmartOrderRouter, View, set[str]], side: int, qty: int, limit: int | None
) -> None:
    r, v, down = b
    for p in r.dark(side, qty, v, limit):
        assert p.venue.startswith("D")
        assert p.venue not in down
