"""Celery tasks: thin, load ids and call the worker."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from celery import shared_task
from django.conf import settings

from execution.models import Instrument
from execution.worker import MARKET_BUILD_ERRORS, MarketWorker, SessionTaken, market_unusable


@shared_task(name="execution.market_session_run")
def market_session_run(instrument_id: int) -> str:
    """Run the instrument's market until it has no open orders; no-op if another worker owns it."""
    instrument = Instrument.objects.get(pk=instrument_id)
    try:
        worker = MarketWorker(instrument, speed=settings.MARKET_SPEED)
    except MARKET_BUILD_ERRORS as e:
        # Its orders would wait for a market that never opens: they are refused, and the
        # console is told why (a scenario seeded before its checks, or edited since).
        market_unusable(instrument, e)
        return "market unusable"
    try:
        worker.claim()
    except SessionTaken:
        return "already running"
    with _stopped_in_order_on_sigterm(worker):
        worker.run()
    return "stopped" if worker.stop_requested else "done"


@contextlib.contextmanager
def _stopped_in_order_on_sigterm(worker: MarketWorker) -> Iterator[None]:
    """SIGTERM is how a worker is stopped (`dev.py run`'s Ctrl-C, a service manager). In
    a Celery pool process billiard turns it into SystemExit wherever the process is, as
    often as not in the middle of a step, whose half-done state `release()` then
    persisted; and Celery logged WorkerLostError with a traceback. While the market runs,
    SIGTERM instead ends the loop after its step, and `release()` suspends the open
    orders as a stopped session's. Only a flag is set here: the loop sleeps at most a
    tick, and a signal handler must not take locks."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread (a threads or gevent pool)
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        worker.stop_requested = True

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
