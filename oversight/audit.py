"""Writing the audit trail: every action by a person or by the system, with before/after,
appended to the hash chain (oversight/audit_chain.py)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.functional import LazyObject, empty

from oversight.audit_chain import CANONICAL_VERSION, GENESIS, json_normalise, record_hash
from oversight.models import AuditRecord
from oversight.request_id import current_client_addr, current_request_id
from oversight.roles import FourEyesRefused, role_of

log = logging.getLogger(__name__)

# pg_advisory_xact_lock's key for the chain head: any fixed bigint no other code uses.
CHAIN_LOCK_KEY = 0x4F56_4155_4449_54  # "OVAUDIT"


def four_eyes_refusals_audited(
    action: str, model: str, key: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A service whose FourEyesRefused is recorded as `action`.refused, by its `user`, on
    the `model` ("app.Model") row whose id is its keyword `key`, with the refusal's words:
    after the service's own transaction has rolled back, so the record is not undone with
    it. A regulator's first question about four eyes is who tried to do without them."""

    def wrap(service: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(service)
        def audited(*args: Any, **kwargs: Any) -> Any:
            try:
                return service(*args, **kwargs)
            except FourEyesRefused as refused:
                from django.apps import apps

                obj = apps.get_model(model).objects.filter(pk=kwargs.get(key)).first()
                audit_record(
                    actor=kwargs.get("user"),
                    action=f"{action}.refused",
                    obj=obj,
                    reason=" ".join(refused.messages),
                )
                raise

        return audited

    return wrap


def audit_record(
    *,
    actor: Any | None,
    action: str,
    obj: Any | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    request_id: str = "",
    role: str | None = None,
) -> AuditRecord:
    """Append one record to the chain. actor None means the system (a worker).

    Inside the caller's transaction, if any: the record commits or rolls back with the
    action it describes, and seq stays gapless either way.
    """
    return audit_records([dict(actor=actor, action=action, obj=obj, before=before, after=after,
                               reason=reason, request_id=request_id, role=role)])[0]  # fmt: skip


def audit_records(entries: list[dict[str, Any]]) -> list[AuditRecord]:
    """Append several records (each audit_record's keywords) under one take of the chain's
    lock and one read of its head: a kill's worker records every order it stops, and one
    lock per record held the lock through the whole kill, so the workers applied it one
    after another (bench_kill: p50 894 ms where it had been 304 on this machine)."""
    records = [_record_of(**e) for e in entries]
    if not records:
        return records
    with transaction.atomic():
        _chain_lock()
        head = AuditRecord.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS)
        for record in records:
            seq += 1
            record.seq, record.prev_hash = seq, prev
            # Stamped under the lock, so time never runs backwards along the chain.
            record.at = timezone.now()
            record.hash = record_hash(
                {f: getattr(record, f) for f in ("seq", "at", "prev_hash", *_CONTENT)}
            )
            prev = record.hash
        AuditRecord.objects.bulk_create(records)
    return records


def _record_of(
    *,
    actor: Any | None,
    action: str,
    obj: Any | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    request_id: str = "",
    role: str | None = None,
) -> AuditRecord:
    person = actor if actor is not None and actor.is_authenticated else None
    if isinstance(obj, LazyObject):
        # request.user, as the logout signal passes it: recorded as the User it wraps, not
        # as "SimpleLazyObject" (a trial).
        if obj._wrapped is empty:
            obj._setup()
        obj = obj._wrapped
    actor_role = role if role is not None else (role_of(actor) if actor is not None else "system")
    record = AuditRecord(
        actor=person,
        actor_username=person.get_username() if person is not None else "",
        actor_role=actor_role,
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or ""),
        # As the database will return them, so the hash recomputes the same when read back.
        before=json_normalise(before),
        after=json_normalise(after),
        reason=reason,
        request_id=(request_id or current_request_id())[:64],
        chain_version=CANONICAL_VERSION,
        # The system's own records have no client, even when a page view set them off (a
        # blocked order expiring as the console is read: a trial saw the viewer's address).
        client_addr="" if actor_role == "system" else current_client_addr(),
    )
    return record


_CONTENT = (
    "actor_id",
    "actor_username",
    "actor_role",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "request_id",
    "chain_version",
    "client_addr",
)


def _chain_lock() -> None:
    """Serialise writers from reading the head to committing, so two cannot both extend it.

    PostgreSQL: a transaction-level advisory lock (released at commit or rollback; under
    READ COMMITTED the head read after it sees the previous holder's record). SQLite: the
    connection's BEGIN IMMEDIATE (oversight/env.py) already holds the database's single
    write lock. Either way the unique seq and prev_hash refuse a fork.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


def request_id_of(request: Any) -> str:
    """The id RequestIdMiddleware gave the request (else the caller's header, if any)."""
    if request is None:
        return ""
    return str(getattr(request, "request_id", "") or request.headers.get("X-Request-Id", ""))[:64]


def on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    audit_record(actor=user, action="auth.login", obj=user, request_id=request_id_of(request))


def on_logout(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is not None:
        audit_record(actor=user, action="auth.logout", obj=user, request_id=request_id_of(request))


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    # Never the password: only the name that was tried, and where the try came from.
    from oversight.auth_backend import DEACTIVATED_RIGHT_PASSWORD

    username = str(credentials.get("username", ""))[:150]
    after: dict[str, Any] = {"username": username, **source_of(request)}
    if getattr(request, DEACTIVATED_RIGHT_PASSWORD, False):
        after["account"] = "deactivated; the password was right"
    audit_record(
        actor=None,
        role="anonymous",
        action="auth.login_failed",
        obj=login_target(username),
        after=after,
        request_id=request_id_of(request),
    )


def login_target(username: str) -> Any:
    """The user a login try named, if there is one: so a user's page of the trail (object
    User N) shows the tries at their name (a trial found them only inside the JSON)."""
    return get_user_model().objects.filter(username=username[:150]).first()


def source_of(request: Any) -> dict[str, str]:
    """Where a request came from, as the server saw it (behind a proxy, the proxy's)."""
    addr = getattr(request, "META", {}).get("REMOTE_ADDR", "") if request is not None else ""
    return {"from": str(addr)[:64]} if addr else {}


# -- the safety net: user and role changes made outside oversight/services.py --------------
#
# The services record each change themselves, with the acting admin and before/after;
# while one runs, these handlers stand aside so nothing is recorded twice. Anything else
# (the Django shell, a management command) is recorded here, as the system, since no
# person is known. QuerySet.update() sends no signals and is not caught.

_services_recording: ContextVar[bool] = ContextVar("audit_services_recording", default=False)
OUTSIDE = "changed outside the user pages (shell, command or admin)"
WATCHED_FLAGS = ("is_active", "is_superuser")
User = get_user_model()


@contextmanager
def services_recording() -> Iterator[None]:
    """For the user services: they record their own changes."""
    token = _services_recording.set(True)
    try:
        yield
    finally:
        _services_recording.reset(token)


def _group_names(user_id: int) -> list[str]:
    return sorted(Group.objects.filter(user=user_id).values_list("name", flat=True))


@receiver(pre_save, sender=User, dispatch_uid="audit-user-flags-before")
def _user_flags_before(sender: Any, instance: Any, raw: bool = False, **kw: Any) -> None:
    fields = kw.get("update_fields")
    if raw or _services_recording.get() or instance.pk is None:
        return
    if fields is not None and not set(fields) & set(WATCHED_FLAGS):
        return  # e.g. a login's last_login: no extra query
    instance._audit_flags_before = (
        User.objects.filter(pk=instance.pk).values(*WATCHED_FLAGS).first()
    )


@receiver(post_save, sender=User, dispatch_uid="audit-user-saved")
def _user_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **_: Any) -> None:
    if raw:
        return
    # set_password() keeps the new password in _password until the save is done. However
    # it was changed (a reset, the user's own change, `manage.py changepassword`), the
    # user's open websockets close: the sessions they were opened under end with the old
    # password, and their sockets had kept streaming (a review).
    password_changed = not created and instance.__dict__.get("_password") is not None
    if password_changed:
        transaction.on_commit(lambda pk=instance.pk: _sockets_close(pk))
    if _services_recording.get():
        return
    if password_changed:
        audit_record(actor=None, action="user.password_set", obj=instance, reason=OUTSIDE)
    now = {f: getattr(instance, f) for f in WATCHED_FLAGS}
    if created:
        after = {"username": instance.get_username(), **now}
        audit_record(actor=None, action="user.create", obj=instance, after=after, reason=OUTSIDE)
        return
    before = instance.__dict__.pop("_audit_flags_before", None)
    if before is not None and before != now:
        audit_record(
            actor=None,
            action="user.flags_set",
            obj=instance,
            before=before,
            after=now,
            reason=OUTSIDE,
        )


def _sockets_close(user_id: int) -> None:
    from oversight.risk.notify import user_sockets_close

    try:
        user_sockets_close(user_id)
    except Exception:  # the password is changed whatever the channel layer does
        log.warning("could not close user %s's websockets", user_id, exc_info=True)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="audit-user-groups")
def _user_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **_: Any
) -> None:
    """user.groups.add/remove/clear, and the reverse group.user_set.add/remove/clear."""
    if _services_recording.get():
        return
    if action == "pre_clear":
        # Who loses what is known only before the rows go.
        if reverse:
            users = list(instance.user_set.values_list("pk", flat=True))
            instance._audit_cleared = {u: _group_names(u) for u in users}
        else:
            instance._audit_cleared = {instance.pk: _group_names(instance.pk)}
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        befores = instance.__dict__.pop("_audit_cleared", {})
    else:
        if not pk_set:
            return  # add() of groups the user already had
        if reverse:
            user_ids, changed = sorted(pk_set), {instance.name}
        else:
            user_ids = [instance.pk]
            changed = set(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
        befores = {}
        for u in user_ids:
            now = set(_group_names(u))
            befores[u] = sorted(now - changed if action == "post_add" else now | changed)
    for user_id, before in befores.items():
        after = _group_names(user_id)
        if after == before:
            continue
        audit_record(
            actor=None,
            action="user.groups_set",
            obj=User.objects.get(pk=user_id) if reverse else instance,
            before={"groups": before},
            after={"groups": after},
            reason=OUTSIDE,
        )
