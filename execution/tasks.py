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
    if worker.orders_waiting():
        # Entered as this worker was going idle: their own task found the market still
        # taken and returned, and no worker would ever take them (a review). The session
        # is released by now, so the next task can claim the market.
        market_session_run.delay(instrument_id)
    return "stopped" if worker.stop_requested else "done"


@contextlib.contextmanager
def _stopped_in_order_on_sigterm(worker: MarketWorker) -> Iterator[None]:
    """SIGTERM is how a worker is stopped (a service manager), SIGINT how `dev.py run`
    stops it (Ctrl-C). In a Celery pool process billiard turned SIGTERM into SystemExit
    wherever the process was, as often as not in the middle of a step, whose half-done
    state `release()` then persisted; and Celery logged WorkerLostError with a traceback.
    While the market runs, either signal instead ends the loop after its step, and
    `release()` suspends the open orders as a stopped session's. Only a flag is set in
    the handler: the loop sleeps at most a tick, and a signal handler must not take locks.
    Where the task runs in Celery's own process (`--pool solo`) Celery's handler is then
    called, so the worker shuts down as it would have (a review); a pool process's
    billiard handler is not, as the task has ended in order."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread (a threads or gevent pool)
        return
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.stop_requested = True
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(received):
            handler = previous[s]
            if callable(handler) and not getattr(handler, "__module__", "").startswith("billiard"):
                handler(s, None)
