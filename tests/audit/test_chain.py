"""Each record carries who, when, what, the object, before and after, reason, request id,
and its place in the hash chain; the canonical form the hash covers is pinned here."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from oversight.audit import audit_record
from oversight.audit_chain import GENESIS, audit_chain_verify, canonical_content, record_hash
from oversight.models import AuditRecord

pytestmark = pytest.mark.django_db

PINNED = {
    "seq": 7,
    "at": datetime(2026, 11, 23, 14, 5, 30, 250000, tzinfo=UTC),
    "actor_id": 3,
    "actor_username": "adam",
    "actor_role": "admin",
    "action": "user.role_set",
    "object_type": "User",
    "object_id": "5",
    "before": {"role": "trader", "is_active": True},
    "after": {"role": "admin"},
    "reason": "promotion — approved",
    "request_id": "req-1",
    "prev_hash": "ab" * 32,
}


def test_the_canonical_form_is_sorted_compact_utf8_json_with_utc_microseconds() -> None:
    text = (
        '{"action":"user.role_set","actor_id":3,"actor_role":"admin","actor_username":"adam",'
        '"after":{"role":"admin"},"at":"2026-11-23T14:05:30.250000Z",'
        '"before":{"is_active":true,"role":"trader"},"object_id":"5","object_type":"User",'
        f'"prev_hash":"{"ab" * 32}","reason":"promotion — approved","request_id":"req-1",'
        '"seq":7,"v":1}'
    )
    assert canonical_content(PINNED) == text.encode("utf-8")
    assert record_hash(PINNED) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    # The same instant written in another zone is the same content.
    elsewhere = PINNED["at"].astimezone(timezone(timedelta(hours=-5)))
    assert record_hash({**PINNED, "at": elsewhere}) == record_hash(PINNED)
    # Every field counts, the link to the previous record included.
    for key, other in [("prev_hash", "cd" * 32), ("reason", "x"), ("actor_id", None)]:
        assert record_hash({**PINNED, key: other}) != record_hash(PINNED)


def test_version_2_hashes_where_the_request_came_from() -> None:
    v2 = {**PINNED, "chain_version": 2, "client_addr": "203.0.113.9"}
    text = canonical_content(v2).decode()
    assert text.startswith('{"action":"user.role_set","actor_id":3,') and text.endswith(
        f'"prev_hash":"{"ab" * 32}","reason":"promotion — approved","request_id":"req-1",'
        '"seq":7,"v":2}'
    )
    assert '"client_addr":"203.0.113.9"' in text
    for key, other in [
        ("client_addr", "203.0.113.10"),
        ("client_addr", ""),
        ("chain_version", None),
    ]:
        assert record_hash({**v2, key: other}) != record_hash(v2)


def test_a_request_records_the_address_it_came_from(client, adam) -> None:
    client.post("/login/", {"username": "adam", "password": "pw-adam"}, REMOTE_ADDR="203.0.113.7")
    login = AuditRecord.objects.filter(action="auth.login").get()
    assert (login.chain_version, login.client_addr) == (2, "203.0.113.7")
    assert audit_chain_verify().ok
    page = client.get("/audit/", REMOTE_ADDR="203.0.113.8").content.decode()
    assert ">203.0.113.7</td>" in page  # the page's "From" column


def test_the_systems_records_have_no_client_even_during_a_request(adam) -> None:
    """A blocked order expiring as a risk manager read the console was recorded by the
    system with that reader's address (a trial): the address is a person's (or an
    anonymous login try's), never the system's."""
    from oversight.request_id import _client

    token = _client.set("203.0.113.9")
    try:
        system = audit_record(actor=None, action="test.system")
        anonymous = audit_record(actor=None, role="anonymous", action="auth.login_failed")
        person = audit_record(actor=adam, action="test.person")
    finally:
        _client.reset(token)
    assert [r.client_addr for r in (system, anonymous, person)] == [
        "",
        "203.0.113.9",
        "203.0.113.9",
    ]
    assert audit_chain_verify().ok


def test_records_chain_from_genesis_with_every_field(adam) -> None:
    before_count = AuditRecord.objects.count()  # adam's creation is audited too
    r = audit_record(
        actor=adam,
        action="test.change",
        obj=adam,
        before={"limit": 5},
        after={"limit": 6},
        reason="desk call",
        request_id="req-42",
    )
    system = audit_record(actor=None, action="test.system")
    rows = list(AuditRecord.objects.order_by("seq"))
    assert [x.seq for x in rows] == list(range(1, before_count + 3))
    assert rows[0].prev_hash == GENESIS
    for prev, cur in pairwise(rows):
        assert cur.prev_hash == prev.hash
    stored = AuditRecord.objects.get(pk=r.pk)
    assert (stored.actor_id, stored.actor_username, stored.actor_role) == (adam.pk, "adam", "admin")
    assert (stored.object_type, stored.object_id) == ("User", str(adam.pk))
    assert (stored.before, stored.after) == ({"limit": 5}, {"limit": 6})
    assert (stored.reason, stored.request_id) == ("desk call", "req-42")
    assert stored.at.utcoffset() == timedelta(0) and stored.at == r.at  # microseconds kept
    assert (stored.chain_version, stored.client_addr) == (2, "")  # no request: the system's
    fields = {f: getattr(stored, f) for f in (*PINNED, "chain_version", "client_addr")}
    assert stored.hash == r.hash == record_hash(fields)
    assert (system.actor_id, system.actor_username, system.actor_role) == (None, "", "system")
    report = audit_chain_verify()
    assert report.ok and report.count == before_count + 2 and report.head == system.hash


def test_time_runs_forward_along_the_chain(db) -> None:
    for i in range(20):
        audit_record(actor=None, action="test.tick", after={"i": i})
    stamps = list(AuditRecord.objects.order_by("seq").values_list("at", flat=True))
    assert stamps == sorted(stamps)


def test_json_values_hash_the_same_after_the_database_round_trip(db) -> None:
    # jsonb turns 1e16 and -0.0 into integers and refuses NaN: stored as the database
    # returns them, the hash still verifies.
    when = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    r = audit_record(
        actor=None,
        action="test.numbers",
        after={
            "big": 1e16,
            "neg_zero": -0.0,
            "tenth": 0.1,
            "tiny": 1e-7,
            "px": Decimal("40.10"),
            "nan": float("nan"),
            "pair": (1, 2),
            "when": when,
            "nested": [{"z": 1.0, "a": "é"}],
        },
    )
    stored = AuditRecord.objects.get(pk=r.pk)
    assert stored.after == {
        "big": 10**16,
        "neg_zero": 0,
        "tenth": 0.1,
        "tiny": 1e-7,
        "px": "40.10",
        "nan": "nan",
        "pair": [1, 2],
        "when": "2026-01-02T03:04:05.006Z",
        "nested": [{"z": 1, "a": "é"}],
    }
    assert stored.after == r.after
    assert audit_chain_verify().ok


def test_a_rolled_back_action_leaves_no_gap(db) -> None:
    audit_record(actor=None, action="test.kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="test.rolled_back")
        raise RuntimeError("the action failed")
    audit_record(actor=None, action="test.kept")
    assert list(AuditRecord.objects.values_list("seq", "action")) == [
        (1, "test.kept"),
        (2, "test.kept"),
    ]
    assert audit_chain_verify().ok


def _forged(seq: int, prev_hash: str) -> AuditRecord:
    return AuditRecord(
        seq=seq, prev_hash=prev_hash, at=dj_timezone.now(), action="test.fork", hash="f" * 64
    )


def test_the_database_refuses_a_fork_even_without_the_lock(db) -> None:
    """Two writers that both read the same head would write the same seq and prev_hash."""
    first = audit_record(actor=None, action="test.first")
    for seq, prev in [(1, GENESIS), (2, GENESIS), (1, first.hash)]:
        with pytest.raises(IntegrityError), transaction.atomic():
            _forged(seq, prev).save(force_insert=True)
    assert AuditRecord.objects.count() == 1
    audit_record(actor=None, action="test.second")
    assert audit_chain_verify().ok


def test_records_are_written_only_through_audit_record(db) -> None:
    with pytest.raises(ValueError, match="audit_record"):
        AuditRecord(seq=1, prev_hash=GENESIS, at=dj_timezone.now(), action="x").save()
    r = audit_record(actor=None, action="test.once")
    with pytest.raises(ValueError, match="append-only"):
        r.save()
    with pytest.raises(ValueError, match="append-only"):
        r.delete()
