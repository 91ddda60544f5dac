"""Celery tasks: thin, load ids and call the worker."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from execution.models import Instrument
from execution.worker import MarketWorker, SessionTaken


@shared_task(name="execution.market_session_run")
def market_session_run(instrument_id: int) -> str:
    """Run the instrument's market until it has no open orders; no-op if another worker owns it."""
    worker = MarketWorker(Instrument.objects.get(pk=instrument_id), speed=settings.MARKET_SPEED)
    try:
        worker.claim()
    except SessionTaken:
        return "already running"
    worker.run()
    return "done"
