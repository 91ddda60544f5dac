"""Orders and a market worker stepped by hand in simulated time, for the tests that drive
a worker in-process (tests/desk, tests/risk): one definition instead of one per file."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from execution.models import Instrument, ParentOrder
from execution.services import parent_order_submit
from execution.worker import MarketWorker


def submit(user: User, instrument: Instrument, **kw: Any) -> ParentOrder:
    """A TWAP buy of 20,000 over minutes 0-30 unless told otherwise, through the service."""
    args: dict[str, Any] = dict(
        user=user,
        instrument=instrument,
        side="buy",
        quantity=20_000,
        start_minute=0,
        end_minute=30,
        strategy="twap",
        params={},
    )
    args.update(kw)
    return parent_order_submit(**args)


def worker(instrument: Instrument, seed: int = 7) -> MarketWorker:
    """A worker that owns the instrument's market and moves only when stepped."""
    w = MarketWorker(instrument, speed=60.0, seed=seed, wall_clock=lambda: 0.0, poll_interval_s=0.0)
    w.claim()
    return w


def run_to(w: MarketWorker, until_s: float, step_s: float = 60.0) -> None:
    t = w.market.now
    while t < until_s:
        t = min(t + step_s, until_s)
        w.step(sim_until=t)
