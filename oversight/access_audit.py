"""Refused attempts to change something are in the audit trail.

A logged-in user's POST (or other unsafe request) that is answered 403 is recorded as
`access.denied`: who, what they tried (method and path) and why it was refused. A trader
pressing another desk's kill switch, an admin entering an order, a form from before a
logout: an examiner's first question is who tried to do what they may not, and these left
only an anonymous line in the server's log (an authorization audit). Reads that are
refused (a trader opening the risk console) change nothing and are not recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from oversight.audit import audit_record

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
DENIED_WHY = "_oversight_denied_why"  # a request attribute: what the refusal said


def denied_because(request: Any, message: str) -> None:
    """Say why a request is refused, for its audit record (pages that render the refusal
    rather than answer JSON)."""
    setattr(request, DENIED_WHY, message)


def _why(request: Any, response: Any) -> str:
    said = getattr(request, DENIED_WHY, "")
    if said:
        return str(said)
    if "application/json" in response.get("Content-Type", ""):
        try:
            body = json.loads(response.content)
            errors = body.get("errors") or {}
            return str(body.get("error", "")) or " ".join(
                str(m) for msgs in errors.values() for m in msgs
            )
        except (ValueError, AttributeError, TypeError):
            return ""
    return ""


def record_denied(request: Any, why: str) -> None:
    """One refused attempt, by the request's user."""
    audit_record(
        actor=request.user,
        action="access.denied",
        after={"method": request.method, "path": request.path[:300]},
        reason=why[:500],
        request_id=getattr(request, "request_id", ""),
    )


class DeniedAccessAuditMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            response.status_code == 403
            and request.method not in SAFE_METHODS
            and user is not None
            and user.is_authenticated
        ):
            record_denied(request, _why(request, response))
        return response
