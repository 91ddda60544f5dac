"""Refused attempts to change something are in the audit trail.

A logged-in user's POST (or other unsafe request) that is answered 403 is recorded as
`access.denied`: who, what they tried (method and path) and why it was refused. A trader
pressing another desk's kill switch, an admin entering an order, a form from before a
logout: an examiner's first question is who tried to do what they may not, and these left
only an anonymous line in the server's log (an authorization audit). Reads that are
refused (a trader opening the risk console) change nothing and are not recorded.

At most one record a minute for one user, method and path (a script posting in a loop
would otherwise bury the trail and hold its lock: a review); those held back are counted
in the next one. A request refused for its CSRF token is not shown to be the session
user's own (a page elsewhere may have sent it): `access.csrf_refused`, by no one, naming
the session's user and where it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core.cache import cache

from oversight.audit import audit_record

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
DENIED_WHY = "_oversight_denied_why"  # a request attribute: what the refusal said
DENIED_CSRF = "_oversight_denied_csrf"  # a request attribute: refused for its CSRF token
WINDOW_S = 60


def denied_because(request: Any, message: str, *, csrf: bool = False) -> None:
    """Say why a request is refused, for its audit record (pages that render the refusal
    rather than answer JSON); `csrf`: for its CSRF token."""
    setattr(request, DENIED_WHY, message)
    if csrf:
        setattr(request, DENIED_CSRF, True)


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
    """One refused attempt, by the request's user; or held back and counted, within a
    minute of the last for the same user, method and path."""
    user = request.user
    csrf = bool(getattr(request, DENIED_CSRF, False))
    key = f"oversight-denied:{user.pk}:{int(csrf)}:{request.method}:{request.path[:200]}"
    if not cache.add(key, True, timeout=WINDOW_S):
        try:
            cache.incr(key + ":held")
        except ValueError:
            cache.set(key + ":held", 1, timeout=None)
        return
    held = cache.get(key + ":held", 0)
    if held:
        cache.delete(key + ":held")
    after: dict[str, Any] = {"method": request.method, "path": request.path[:300]}
    if held:
        after["held_back_before"] = held  # refused within a minute of the last record
    if csrf:
        audit_record(
            actor=None,
            role="unverified",
            action="access.csrf_refused",
            after={
                **after,
                "session_of": user.get_username(),
                "origin": request.headers.get("Origin", "")[:200],
                "referer": request.headers.get("Referer", "")[:300],
            },
            reason=why[:500],
            request_id=getattr(request, "request_id", ""),
        )
        return
    audit_record(
        actor=user,
        action="access.denied",
        after=after,
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
