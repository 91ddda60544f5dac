"""A request id for every HTTP request, so each audit record names the request that made it.

The id is the caller's X-Request-Id when it sends a sane one (a proxy's or a load
balancer's), else a new one; it is echoed in the response's X-Request-Id header, so a
person reporting a problem can quote it and find the records.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable
from typing import Any

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str:
    return _current.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        given = request.headers.get("X-Request-Id", "")
        rid = given if _SANE.match(given) else uuid.uuid4().hex
        request.request_id = rid
        token = _current.set(rid)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-Id"] = rid
        return response
