"""The firm's pre-trade risk gate, alone and inside the engine; the strategy fallback."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from execution.algos.base import REGISTRY, Action, DecisionView
from execution.algos.strategies import TWAP
from execution.engine.engine import ExecutionEngine
from execution.engine.events import (
    ChildDenied,
    ChildFilled,
    ChildSubmitted,
    ParentStatusChanged,
    ParentStrategyFallback,
)
from execution.engine.policy import DenyReason
from execution.engine.risk import ChildLimits, RiskGate
from execution.sim.market import Market
from execution.sim.scenario import Scenario
from tests.test_engine import of, spec

MID = 4000.0  # ticks: $40.00 at a one-cent tick


def gate(**kw: Any) -> RiskGate:
    g = RiskGate(0.01)
    g.set_limits("P1", ChildLimits(account="alice", **kw))
    return g


def check(g: RiskGate, **kw: Any) -> tuple[DenyReason, str] | None:
    args: dict[str, Any] = dict(side=1, qty=100, px_ticks=4000, venue="LIT-NORTH", now=10.0)
    args.update(kw)
    return g.check("P1", mid_ticks=MID, **args)


def test_an_order_without_limits_passes() -> None:
    assert (
        RiskGate(0.01).check("P9", side=1, qty=10**9, px_ticks=1, venue="X", now=0.0, mid_ticks=MID)
        is None
    )


def test_each_limit_denies_with_its_code_and_says_why() -> None:
    halted = check(gate(halted=True, halted_reason="kill switch 3: firm"))
    assert halted == (DenyReason.TRADING_HALTED, "kill switch 3: firm")
    deny = check(gate(max_child_qty=50))
    assert deny is not None and deny[0] == DenyReason.MAX_CHILD_QTY and "50" in deny[1]
    deny = check(gate(max_child_notional=3_000.0))  # 100 x $40 = $4,000
    assert deny is not None and deny[0] == DenyReason.MAX_CHILD_NOTIONAL and "4,000" in deny[1]
    deny = check(gate(price_collar_bps=100.0), px_ticks=4060)  # 150 bps from the mid
    assert deny is not None and deny[0] == DenyReason.PRICE_COLLAR and "150 bps" in deny[1]
    assert check(gate(price_collar_bps=100.0), px_ticks=4039) is None  # 97.5 bps
    # A midpoint peg has no price to be outside the collar, but its notional counts at mid.
    assert check(gate(price_collar_bps=1.0), px_ticks=None) is None
    deny = check(gate(max_child_notional=3_000.0), px_ticks=None)
    assert deny is not None and deny[0] == DenyReason.MAX_CHILD_NOTIONAL


def test_an_identical_child_within_the_window_is_a_duplicate() -> None:
    g = gate(duplicate_window_s=1.0)
    assert check(g, now=10.0) is None
    deny = check(g, now=10.5)
    assert deny is not None and deny[0] == DenyReason.DUPLICATE_ORDER
    assert check(g, now=10.5, qty=101) is None  # a different child is fine
    assert check(g, now=11.6) is None  # and the same one after the window
    # Exactly the window later is after it (a decision every 1 s had a fifth denied).
    assert check(g, now=12.6) is None
    # Equal parts of one decision's split (the same instant) are not duplicates.
    assert check(g, now=12.6) is None


def test_messages_per_second_count_new_and_cancels_together_per_account() -> None:
    g = gate(max_msgs_per_s=3)
    g.set_limits("P2", ChildLimits(account="alice", max_msgs_per_s=3))
    assert check(g, now=1.0, qty=1) is None
    g.count_message("P2", 1.1)  # a cancel of alice's other order
    assert check(g, now=1.2, qty=2) is None
    deny = check(g, now=1.3, qty=3)
    assert deny is not None and deny[0] == DenyReason.MESSAGE_RATE
    assert check(g, now=2.05, qty=4) is None  # the first has left the one-second window
    # Refused messages are not sent, so they do not count.
    assert sum(len(q) for q in g._msgs.values()) == 3


def test_a_fill_outside_the_collar_is_recorded_for_the_console() -> None:
    g = gate(price_collar_bps=50.0)
    g.check_fill("P1", "P1-C1", ts=5.0, px_ticks=4010, mid_ticks=MID)  # 25 bps
    assert g.breaches == []
    g.check_fill("P1", "P1-C2", ts=6.0, px_ticks=3970, mid_ticks=MID)  # 75 bps
    assert [(b.client_order_id, round(b.off_bps)) for b in g.breaches] == [("P1-C2", 75)]


def test_the_engine_sends_nothing_the_gate_refuses(midcap: Scenario) -> None:
    e = ExecutionEngine(Market(midcap, 1), risk=RiskGate(midcap.instrument.tick_size))
    e.add_order(spec(midcap))
    e.risk.set_limits("P1", ChildLimits(account="a", max_child_qty=200))  # type: ignore[union-attr]
    e.run_until(midcap.order.start_minute * 60.0 + 1800)
    sent = of(e.events, ChildSubmitted)
    denied = of(e.events, ChildDenied)
    assert sent and all(c.qty <= 200 for c in sent)
    assert {d.reason for d in denied} <= {"MAX_CHILD_QTY"}
    # A kill switch: from now on every child is refused, whatever the strategy wants.
    e.risk.set_limits("P1", ChildLimits(account="a", halted=True, halted_reason="kill 1"))  # type: ignore[union-attr]
    n_sent = len(of(e.events, ChildSubmitted))
    e.run_until(midcap.order.start_minute * 60.0 + 3600)
    assert len(of(e.events, ChildSubmitted)) == n_sent
    assert Counter(d.reason for d in of(e.events, ChildDenied))["TRADING_HALTED"] > 0


def test_a_limit_far_from_the_mid_does_not_collar_dark_children(midcap: Scenario) -> None:
    """A buy limited 10% above the market: lit children are priced at the market (the
    limit only caps them) and dark ones peg to the midpoint (the limit is their cap, not
    their price). A 50 bps collar must refuse none of them."""
    from decimal import Decimal

    e = ExecutionEngine(Market(midcap, 1), risk=RiskGate(midcap.instrument.tick_size))
    limit = Decimal(str(round(midcap.instrument.reference_price * 1.10, 2)))
    if midcap.order.side != "buy":
        limit = Decimal(str(round(midcap.instrument.reference_price * 0.90, 2)))
    e.add_order(spec(midcap, limit_px=limit))
    e.risk.set_limits("P1", ChildLimits(account="a", price_collar_bps=50.0))  # type: ignore[union-attr]
    e.run_until(midcap.order.start_minute * 60.0 + 1800)
    sent = of(e.events, ChildSubmitted)
    assert any(c.venue.startswith("DARK") for c in sent)  # dark children went out
    assert not [d for d in of(e.events, ChildDenied) if d.reason == "PRICE_COLLAR"]


class Broken(TWAP):
    name = "broken"

    def decide(self, view: DecisionView) -> list[Action]:
        if view.filled_qty > 0:
            raise ZeroDivisionError("model produced nonsense")
        return super().decide(view)


def test_a_failing_strategy_falls_back_to_twap_and_says_so(
    midcap: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY.strategies, "broken", Broken)
    e = ExecutionEngine(Market(midcap, 1))
    e.add_order(spec(midcap, strategy="broken"))
    e.run_to_end()
    fb = of(e.events, ParentStrategyFallback)
    assert len(fb) == 1 and fb[0].to_strategy == "twap" and "nonsense" in fb[0].reason
    assert e.fallbacks == [("P1", "broken", "ZeroDivisionError: model produced nonsense")]
    assert of(e.events, ParentStatusChanged)[-1].status == "FILLED"
    assert sum(f.qty for f in of(e.events, ChildFilled)) == midcap.order.quantity


class Hopeless(TWAP):
    name = "hopeless"

    def decide(self, view: DecisionView) -> list[Action]:
        raise RuntimeError("always")


def test_if_the_baseline_fails_too_the_order_stops_rather_than_loops(
    midcap: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY.strategies, "hopeless", Hopeless)
    monkeypatch.setitem(REGISTRY.strategies, "twap", Hopeless)
    e = ExecutionEngine(Market(midcap, 1))
    e.add_order(spec(midcap, strategy="hopeless"))
    e.run_to_end()
    assert of(e.events, ParentStatusChanged)[-1].status == "CANCELED"
    assert "strategy failed" in of(e.events, ParentStatusChanged)[-1].reason
