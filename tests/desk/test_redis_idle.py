"""Listening on Redis through idle time: a socket's channel-layer receive and a market
worker's wake-up subscription must outlast seconds with no message. With redis-py 8's
default 5 s read timeout both broke after 5 idle seconds: every quiet console or blotter
socket closed with 1011, and workers fell back to polling for kill switches."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from execution.worker import MarketWorker
from oversight.risk import notify

pytestmark = pytest.mark.django_db

IDLE_S = 6.5  # past redis-py's default read timeout (5 s) and channels-redis's pop (5 s)


def test_a_socket_and_a_worker_keep_listening_through_idle_seconds(instrument: Any) -> None:
    worker = MarketWorker(instrument, speed=60)
    worker._listen()
    try:

        async def receive_after_idle() -> dict[str, Any]:
            layer = get_channel_layer()
            channel = await layer.new_channel()

            async def later() -> None:
                await asyncio.sleep(IDLE_S)
                await layer.send(channel, {"type": "test.late"})

            sender = asyncio.create_task(later())
            message = await asyncio.wait_for(layer.receive(channel), IDLE_S + 10)
            await sender
            return message

        started = time.monotonic()
        # The worker's subscription sits idle meanwhile (the same IDLE_S).
        assert async_to_sync(receive_after_idle)() == {"type": "test.late"}
        assert time.monotonic() - started >= IDLE_S
        assert worker._listener is not None and worker._listener.is_alive()
        worker._wake.clear()
        notify.workers_wake("test")
        assert worker._wake.wait(5), "the wake-up subscription no longer hears the web"
    finally:
        worker._closing = True
        worker._pubsub.close()
