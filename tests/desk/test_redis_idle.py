"""A socket's channel-layer receive must outlast seconds with no message. With redis-py
8's default 5 s read timeout against channels-redis's 5 s blocking pop, it failed after 5
idle seconds ("Timeout reading from ..."), and every quiet console or blotter socket
closed with 1011 and reconnected. (A market worker's wake-up subscription was not hit:
redis-py's `PubSub.listen()` reads without a timeout.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

IDLE_S = 6.5  # past redis-py's default read timeout (5 s) and channels-redis's pop (5 s)


def test_a_socket_keeps_listening_through_idle_seconds() -> None:
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
    assert async_to_sync(receive_after_idle)() == {"type": "test.late"}
    assert time.monotonic() - started >= IDLE_S
