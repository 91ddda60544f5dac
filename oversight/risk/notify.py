"""Telling others, always after commit: the market workers (a Redis message that wakes them
at once, so a kill switch does not wait for their next poll), the risk consoles and the
traders' blotters (the Channels layer)."""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

log = logging.getLogger(__name__)
CONSOLE_GROUP = "risk.console"


def control_channel() -> str:
    # The channel layer's prefix keeps test runs sharing one Redis apart.
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG'].get('prefix', 'asgi')}:control"


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def workers_wake(what: str, **data: Any) -> None:
    """Wake every market worker to re-read kill switches, limits and controls now."""
    try:
        _redis(settings.REDIS_URL).publish(control_channel(), json.dumps({"what": what, **data}))
    except redis.RedisError:
        # The workers still read everything at their next poll (at most 0.25 s later).
        log.warning("could not wake the market workers (%s)", what, exc_info=True)


def console_send(kind: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        CONSOLE_GROUP,
        {"type": "risk.event", "kind": kind, "payload": payload, "sent_at": time.time()},
    )


def trader_alert(user_id: int, kind: str, payload: dict[str, Any]) -> None:
    """Shown in that trader's blotter (their own group only)."""
    from execution.services import orders_user_group

    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        orders_user_group(user_id), {"type": "risk.alert", "kind": kind, "payload": payload}
    )


def user_group(user_id: int) -> str:
    """Every websocket a user has open joins this group, so it can be closed at once."""
    return f"user.{user_id}"


def socket_groups(scope: Any) -> list[str]:
    """The groups a websocket joins so that it can be closed: its user's, and its login
    session's."""
    groups = [user_group(scope["user"].pk)]
    key = getattr(scope.get("session"), "session_key", None)
    if key:
        groups.append(session_group(key))
    return groups


def session_group(session_key: str) -> str:
    """The websockets opened under one login session: closed when it logs out."""
    return f"session.{session_key}"


def session_sockets_close(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """user_logged_out: this session's open websockets end now (a trial's other tab kept
    streaming fills after its session had logged out). The user's other logins keep
    theirs."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    layer = get_channel_layer()
    if not key or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(key), {"type": "session.revoked"})
    except Exception:  # the logout must happen whatever the channel layer does (a review)
        log.warning("could not close the logged-out session's websockets", exc_info=True)


def user_sockets_close(user_id: int) -> None:
    """Close the user's open websockets (deactivated, their role or password changed):
    each page connects again at once and the consumer checks the user afresh, so a changed
    role gets what it now may, and a session the change ended is refused."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        user_group(user_id), {"type": "session.revoked", "recheck": True}
    )
