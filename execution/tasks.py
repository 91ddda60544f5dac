"""Celery tasks: thin, load ids and call the worker."""

from __future__ import annotations

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
    worker.run()
    return "done"
