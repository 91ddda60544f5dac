"""A short adaptive episode on a repo scenario, for the tests of the strategy and its
predictor: one definition instead of one per file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from execution.engine.engine import ExecutionEngine, ParentOrderSpec
from execution.sim.market import Market
from execution.sim.scenario import Scenario, load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "execution" / "scenarios" / "demo-midcap-buy.json"


def short_scenario() -> Scenario:
    # A 20-minute window keeps each episode well under a second.
    return load_scenario(SCENARIO).with_order(start_minute=60, end_minute=80, quantity=8000)


def run(
    params: Mapping[str, Any], setup: Callable[[Any], None] | None = None, **spec: Any
) -> ExecutionEngine:
    """Order "A-1" worked by `adaptive` to the end; `setup` gets the strategy before the
    market runs, `spec` goes to the order."""
    sc = short_scenario()
    engine = ExecutionEngine(Market(sc, 11))
    o = sc.order
    engine.add_order(
        ParentOrderSpec(
            order_id="A-1",
            side=o.side,
            qty=o.quantity,
            start_s=o.start_minute * 60.0,
            end_s=o.end_minute * 60.0,
            strategy="adaptive",
            params=dict(params),
            **spec,
        )
    )
    if setup is not None:
        setup(engine.orders["A-1"].strategy)
    engine.run_to_end()
    return engine
