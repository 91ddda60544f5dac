"""The risk console's websocket: risk managers only, every console event as it commits,
and an exposure snapshot every second (which also escalates overdue criticals, so they
escalate even when no market worker runs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from channels.db import database_sync_to_async

from oversight.password_due import password_due
from oversight.risk import selectors
from oversight.risk.notify import CONSOLE_GROUP, socket_groups
from oversight.risk.selectors import exception_json
from oversight.risk.services import exceptions_escalate
from oversight.roles import MANAGE_RISK
from oversight.ws_consumer import Consumer
from oversight.ws_messages import CLOSE_RECHECK, parse_client_message

CLOSE_FORBIDDEN = 4403
TICK_S = 1.0
log = logging.getLogger(__name__)


def _may_watch(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.has_perm(MANAGE_RISK)
        and not password_due(user)  # its pages redirect to the Password page too
    )


def _tick() -> list[dict[str, Any]]:
    exceptions_escalate()  # broadcasts what it escalates, after its own commit
    return selectors.exposure_json()


def _sync() -> dict[str, Any]:
    """The console's state, for a (re)connecting page to reconcile against."""
    return {
        "type": "sync",
        "exceptions": [exception_json(e) for e in selectors.exceptions_open()],
        "complete": selectors.exceptions_open_count() <= selectors.CONSOLE_ROWS,
        "kills": [selectors.kill_json(k) for k in selectors.kills_active()],
        "sent_at": time.time(),
    }


class RiskConsumer(Consumer):
    """Client → server: {"type": "sync"} (answered with the open exceptions and active
    kill switches). Server → client: {"type": "exception"|"kill"|"limit"|"override",
    "payload": ..., "sent_at": ...}, {"type": "exposure", "groups": [...], "sent_at": ...},
    {"type": "sync", ...} and {"type": "error", "message": ...}.
    """

    ticker: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        if not await database_sync_to_async(_may_watch)(self.scope.get("user")):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.joined = True
        self.own = socket_groups(self.scope)
        for group in (CONSOLE_GROUP, *self.own):
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.ticker = asyncio.create_task(self._ticks())

    async def disconnect(self, code: int) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
            self.ticker = None
        if getattr(self, "joined", False):
            for group in (CONSOLE_GROUP, *self.own):
                await self.channel_layer.group_discard(group, self.channel_name)

    async def session_revoked(self, message: dict[str, Any]) -> None:
        """The user was deactivated, their role or password changed (CLOSE_RECHECK: the
        page connects again and is checked afresh), or this session logged out
        (CLOSE_FORBIDDEN): this socket ends now."""
        await self.close(code=CLOSE_RECHECK if message.get("recheck") else CLOSE_FORBIDDEN)

    async def _ticks(self) -> None:
        while True:
            try:
                groups = await database_sync_to_async(_tick)()
                await self.send_json({"type": "exposure", "groups": groups, "sent_at": time.time()})
            except asyncio.CancelledError:
                raise
            except Exception:
                # One bad second (a locked database, a closed socket) must not end the ticks.
                log.warning("risk console tick failed", exc_info=True)
            await asyncio.sleep(TICK_S)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kw: Any
    ) -> None:
        # Parsed by hand so malformed input gets an answer, not a closed socket.
        msg, problem = parse_client_message(text_data)
        if problem:
            await self.send_json({"type": "error", "message": problem})
            return
        if not isinstance(msg, dict) or msg.get("type") != "sync":
            await self.send_json({"type": "error", "message": 'expected {"type": "sync"}'})
            return
        await self.send_json(await database_sync_to_async(_sync)())

    async def risk_event(self, message: dict[str, Any]) -> None:
        await self.send_json(
            {
                "type": message.get("kind", "event"),
                "payload": message.get("payload"),
                "sent_at": message.get("sent_at"),
            }
        )
