"""One backtest episode: a scenario's order worked by one strategy on one seed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from execution.engine.engine import ExecutionEngine, ParentOrderSpec
from execution.sim.calibration import Knobs
from execution.sim.market import Market
from execution.sim.scenario import Scenario
from tca.metrics import implementation_shortfall_bps, vwap_slippage_bps

ORDER_ID = "BT-1"


@dataclass(frozen=True, slots=True)
class EpisodeResult:
    strategy: str
    seed: int
    qty: int
    filled_qty: int
    avg_px: float | None  # currency units
    arrival_mid: float
    end_mid: float
    shortfall_bps: float
    vwap_slippage_bps: float | None
    participation: float  # our fills over market volume in the window
    fees: float
    status: str
    children: int
    denials: int
    events: int
    background_events: int
    elapsed_s: float
    fallback: str = ""  # why the strategy was replaced by TWAP, if it was

    @property
    def fill_rate(self) -> float:
        return self.filled_qty / self.qty


def order_spec(
    scenario: Scenario,
    order_id: str,
    strategy: str,
    params: Mapping[str, Any] | None = None,
    max_participation: float | None = 0.5,
) -> ParentOrderSpec:
    """The scenario's parent order, as the engine takes it (backtests and the learning
    environment alike, limit price included)."""
    o = scenario.order
    return ParentOrderSpec(
        order_id=order_id,
        side=o.side,
        qty=o.quantity,
        start_s=o.start_minute * 60.0,
        end_s=o.end_minute * 60.0,
        strategy=strategy,
        params=dict(params or {}),
        limit_px=Decimal(repr(o.limit_price)) if o.limit_price is not None else None,
        max_participation=max_participation,
    )


def run_episode(
    scenario: Scenario,
    strategy: str,
    seed: int,
    params: Mapping[str, Any] | None = None,
    *,
    knobs: Knobs | None = None,
    max_participation: float | None = 0.5,
    setup: Callable[[ExecutionEngine], None] | None = None,
) -> EpisodeResult:
    """`setup` is called with the engine once the order is in, before the market runs
    (the backtest attaches its decision log there)."""
    started = time.perf_counter()
    market = Market(scenario, seed, knobs)
    engine = ExecutionEngine(market)
    engine.add_order(order_spec(scenario, ORDER_ID, strategy, params, max_participation))
    if setup is not None:
        setup(engine)
    engine.run_to_end()
    w = engine.orders[ORDER_ID]
    p = w.parent
    tick = scenario.instrument.tick_size
    arrival = (w.arrival_mid_ticks or market.mid_ticks()) * tick
    end_mid = (w.end_mid_ticks or market.mid_ticks()) * tick
    avg = p.avg_px_ticks * tick if p.avg_px_ticks is not None else None
    vwap = w.notional_in_window / w.volume_in_window * tick if w.volume_in_window else None
    kinds = [e.kind for e in engine.events]
    return EpisodeResult(
        strategy=strategy,
        seed=seed,
        qty=p.qty,
        filled_qty=p.filled_qty,
        avg_px=avg,
        arrival_mid=arrival,
        end_mid=end_mid,
        shortfall_bps=implementation_shortfall_bps(
            side=p.side,
            qty=p.qty,
            filled_qty=p.filled_qty,
            avg_fill_px=avg,
            arrival_mid=arrival,
            end_mid=end_mid,
            fees=w.fees * tick,
        ),
        vwap_slippage_bps=vwap_slippage_bps(side=p.side, avg_fill_px=avg, market_vwap=vwap),
        participation=p.filled_qty / w.volume_in_window if w.volume_in_window else 0.0,
        fees=w.fees * tick,
        status=p.status.value,
        children=kinds.count("ChildSubmitted"),
        denials=kinds.count("ChildDenied"),
        events=len(engine.events),
        background_events=market.events_processed,
        elapsed_s=time.perf_counter() - started,
        fallback=engine.fallbacks[0][2] if engine.fallbacks else "",
    )
