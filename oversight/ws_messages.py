"""What a browser sends over a websocket, parsed defensively (both consumers use it).

Malformed input gets an answer naming the problem and the socket stays open: not JSON,
too large, or nested too deeply for the parser (a RecursionError is not a ValueError)."""

from __future__ import annotations

import json
from typing import Any

# A client message is a small JSON object ({"type": "resume", "last_seq": {...}}); the
# largest real one names a sequence number per visible order.
MAX_MESSAGE_CHARS = 256 * 1024


def parse_client_message(text_data: str | None) -> tuple[Any, str]:
    """(the parsed message, "") or (None, why it cannot be used)."""
    if text_data is None:
        return None, "message is not JSON (send text frames)"
    if len(text_data) > MAX_MESSAGE_CHARS:
        return None, f"message is too large: at most {MAX_MESSAGE_CHARS:,} characters"
    try:
        return json.loads(text_data), ""
    except RecursionError:
        return None, "message is nested too deeply"
    except ValueError:
        return None, "message is not JSON"


# An order id or a sequence number is a row's number: at most this many digits.
MAX_ID_DIGITS = 18


def parse_last_seq(raw: Any) -> dict[int, int] | None:
    """A resume's {"<order id>": <sequence number>} as ints, or None if it is not one.
    Strict: int() read "1_0" as order 10, " 1 " and "١" as order 1, true as 1 and 1.7 as 1,
    and a list of pairs as a mapping (a fuzz)."""
    if not isinstance(raw, dict):
        return None
    out: dict[int, int] = {}
    for key, value in raw.items():
        if not (
            isinstance(key, str)
            and key.isascii()
            and key.isdigit()
            and len(key) <= MAX_ID_DIGITS
            and type(value) is int
            and 0 <= value < 10**MAX_ID_DIGITS
        ):
            return None
        out[int(key)] = value
    return out


# A close code in the application range, like the 4403 of a refused session.
CLOSE_NOT_FOUND = 4404
# What a socket is closed with when what its user may see changed (deactivated, a new
# role, a new password): the page connects again at once and is let in, or refused
# (4403), by the check every connection gets. A changed password's own browser stays
# live; a 4403 here froze it, as the pages take 4403 as final (a review).
CLOSE_RECHECK = 4401


class NoSuchSocket:
    """The websocket route of any other path: accepted only to be closed with 4404 and a
    reason, so a wrong URL gets an answer rather than an error in the server's log."""

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope, self.receive, self.send = scope, receive, send

    @classmethod
    def as_asgi(cls) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await cls(scope, receive, send).run()

        return app

    async def run(self) -> None:
        message = await self.receive()
        if message.get("type") != "websocket.connect":
            return
        await self.send({"type": "websocket.accept"})
        await self.send(
            {
                "type": "websocket.close",
                "code": CLOSE_NOT_FOUND,
                "reason": f"no websocket at {self.scope.get('path', '')[:80]}",
            }
        )
