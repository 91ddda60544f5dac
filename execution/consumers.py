"""The blotter websocket: authenticated, role-scoped, with catch-up by sequence number."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from execution.selectors import can_watch_orders, events_after, in_chunks
from execution.services import ORDERS_ALL_GROUP, orders_user_group
from oversight.password_due import password_due
from oversight.risk.notify import socket_groups
from oversight.roles import VIEW_ALL_ORDERS
from oversight.ws_consumer import Consumer
from oversight.ws_messages import CLOSE_RECHECK, parse_client_message, parse_last_seq

CLOSE_FORBIDDEN = 4403
# A catch-up is sent in messages of about this size, well under Daphne's 1 MiB limit.
REPLAY_CHUNK_BYTES = 256 * 1024


class BlotterConsumer(Consumer):
    """Client → server: {"type": "resume", "last_seq": {"<order id>": <seq>, ...}}.
    Server → client: {"type": "events", "events": [...]} (a catch-up: "replay": true, in
    several messages, all but the last with "more": true; the last with "incomplete": true
    if the page must ask again), {"type": "alert", "kind": ...,
    "payload": ...} (risk alerts: kill switches, escalated exceptions) and
    {"type": "error", "message": ...}.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if (
            user is None
            or not await database_sync_to_async(can_watch_orders)(user)
            or await database_sync_to_async(password_due)(user)  # its pages redirect too
        ):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        sees_all = await database_sync_to_async(user.has_perm)(VIEW_ALL_ORDERS)
        self.group = ORDERS_ALL_GROUP if sees_all else orders_user_group(user.pk)
        self.own = socket_groups(self.scope)
        for group in (self.group, *self.own):
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            for group in (self.group, *self.own):
                await self.channel_layer.group_discard(group, self.channel_name)

    async def session_revoked(self, message: dict[str, Any]) -> None:
        """The user was deactivated, their role or password changed (CLOSE_RECHECK: the
        page connects again and is checked afresh), or this session logged out
        (CLOSE_FORBIDDEN): this socket ends now."""
        await self.close(code=CLOSE_RECHECK if message.get("recheck") else CLOSE_FORBIDDEN)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kw: Any
    ) -> None:
        # Parsed by hand so malformed input gets an answer, not a closed socket.
        msg, problem = parse_client_message(text_data)
        if problem:
            await self.send_json({"type": "error", "message": problem})
            return
        await self.receive_json(msg)

    async def receive_json(self, content: Any, **kw: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "resume":
            await self.send_json(
                {"type": "error", "message": 'expected {"type": "resume", "last_seq": {...}}'}
            )
            return
        last_seq = parse_last_seq(content.get("last_seq", {}))
        if last_seq is None:
            await self.send_json(
                {
                    "type": "error",
                    "message": "last_seq must map order ids (strings of digits 0-9) to "
                    "sequence numbers (whole numbers from 0)",
                }
            )
            return
        events, complete = await database_sync_to_async(events_after)(self.scope["user"], last_seq)
        chunks = in_chunks(events, REPLAY_CHUNK_BYTES)
        for i, chunk in enumerate(chunks):
            message: dict[str, Any] = {"type": "events", "events": chunk, "replay": True}
            if i < len(chunks) - 1:
                message["more"] = True  # the page asks again for gaps after the last one
            elif not complete:
                # An order had more than one reply holds: ask again (a trial's 12,927
                # missed events stopped at 5,000, with no gap for the page to see).
                message["incomplete"] = True
            await self.send_json(message)

    async def order_events(self, message: dict[str, Any]) -> None:
        await self.send_json(
            {"type": "events", "events": message["events"], "sent_at": message.get("sent_at")}
        )

    async def risk_alert(self, message: dict[str, Any]) -> None:
        """A kill switch or an escalated exception, for this trader's alert banner."""
        await self.send_json(
            {"type": "alert", "kind": message.get("kind"), "payload": message.get("payload")}
        )
