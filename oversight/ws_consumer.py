"""The base of the product's websocket consumers."""

from __future__ import annotations

import contextlib
from typing import Any

from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class Consumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def send_json(self, content: Any, close: bool = False) -> None:
        """Send, or drop the message if the browser has just gone: a broadcast that meets
        a tab closing between Daphne's check and its write raises Disconnected, which
        reached the server's log as "Exception inside application: Attempt to send on a
        closed protocol" (a trial). The disconnect that follows cleans up."""
        with contextlib.suppress(Disconnected):
            await super().send_json(content, close=close)

    async def close(self, code: Any = None, reason: Any = None) -> None:
        # A socket told to close (a revoked session) may be gone already (a review).
        with contextlib.suppress(Disconnected):
            await super().close(code=code, reason=reason)
