"""A request id for every HTTP request, so each audit record names the request that made it.

The id is always new, so no caller can give their request another's id (a trial's
trader sent a risk manager's, and their kill switch shared that approval's id in the
trail). A sane X-Request-Id from the caller (a proxy's or a load balancer's) goes in
front of it, to find the request in that proxy's logs. It is echoed in the response's
X-Request-Id header, so a person reporting a problem can quote it and find the records.
The request's client address is kept beside it, for the audit record's "from".
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable
from typing import Any

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_client: contextvars.ContextVar[str] = contextvars.ContextVar("client_addr", default="")
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str:
    return _current.get()


def current_client_addr() -> str:
    """The address the current request came from, as the server saw it (behind a proxy,
    the proxy's); '' outside a request (a worker, a command)."""
    return _client.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        given = request.headers.get("X-Request-Id", "")
        rid = uuid.uuid4().hex
        if _SANE.match(given):
            rid = f"{given[:31]}/{rid}"  # 64 at most, the audit record's column
        request.request_id = rid
        token = _current.set(rid)
        client = _client.set(str(request.META.get("REMOTE_ADDR", "") or "")[:64])
        try:
            response = self.get_response(request)
        finally:
            _client.reset(client)
            _current.reset(token)
        response["X-Request-Id"] = rid
        return response
