"""The audit trail's hash chain: the canonical form a record's hash covers, and verification.

Each record's `hash` is SHA-256 over the UTF-8 bytes of one canonical JSON object (sorted
keys, no whitespace, no ASCII escaping) holding every field a reader relies on, including
`prev_hash`, the hash of the record before it (GENESIS for the first). Changing, removing
or inserting a record therefore breaks either its own hash or the next record's link.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

# The first record's prev_hash. Fixed, so an emptied-and-restarted chain is recognisable.
GENESIS = "0" * 64
# Bumped (and kept in every record's hashed content) if the canonical form ever changes.
# Each record keeps the version it was written under (its chain_version; NULL is 1), and
# is verified in that form. Version 2 (2026-12-07) adds client_addr.
CANONICAL_VERSION = 2

# The columns verification reads, in the order canonical_content() takes them.
CHAIN_FIELDS = (
    "id",
    "seq",
    "at",
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
    "prev_hash",
    "hash",
)


def utc_iso(at: datetime) -> str:
    """ISO-8601 in UTC with microseconds and a Z: the one spelling the hash covers."""
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_normalise(value: Any) -> Any:
    """The JSON value as the database will hand it back, so a stored record re-hashes the same.

    PostgreSQL's jsonb keeps numbers as numeric: a float such as 1e16 or -0.0 returns as an
    int, and NaN is refused. So integral floats become ints and non-finite floats strings,
    before storing; Decimals, dates and UUIDs become strings (DjangoJSONEncoder), tuples lists.
    """
    plain = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return _fix_numbers(plain)


def _fix_numbers(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_fix_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _fix_numbers(v) for k, v in value.items()}
    return value


def canonical_content(fields: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash covers. `fields` holds CHAIN_FIELDS (id and hash unused).

    In the form of the record's own version: a version-1 record (chain_version NULL or
    absent) has no client_addr in its content. The version is in the content, so turning
    a version-2 record into a version-1 one, to drop where it came from, breaks its hash."""
    version = fields.get("chain_version") or 1
    if version not in (1, 2):
        raise ValueError(f"unknown audit chain version {version!r}")
    content = {
        "v": version,
        "seq": fields["seq"],
        "at": utc_iso(fields["at"]),
        "actor_id": fields["actor_id"],
        "actor_username": fields["actor_username"],
        "actor_role": fields["actor_role"],
        "action": fields["action"],
        "object_type": fields["object_type"],
        "object_id": fields["object_id"],
        "before": fields["before"],
        "after": fields["after"],
        "reason": fields["reason"],
        "request_id": fields["request_id"],
        "prev_hash": fields["prev_hash"],
    }
    if version >= 2:
        # As stored: NULL is not "" (a system record's "no request" could otherwise be
        # rewritten as "not kept" and still verify, a review).
        content["client_addr"] = fields["client_addr"]
    text = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def record_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_content(fields)).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """Verification's answer: OK with the count and head, or the first bad record and why."""

    count: int  # records checked (up to and including the bad one)
    head: str  # the last good record's hash (GENESIS when there is none)
    bad_seq: int | None = None
    bad_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def summary(self, prefix: int = 16) -> str:
        if self.ok:
            return f"OK: {self.count} records, head {self.head[:prefix]}"
        return f"BROKEN at record seq={self.bad_seq} id={self.bad_id}: {self.problem}"


def chain_check(rows: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Walk records in seq order; stop at the first one that is not what the chain says.

    Checks, in order: seq follows on with no gap (a deleted or inserted record), prev_hash
    is the previous record's hash (a broken link), and the stored hash is the hash of the
    stored content (an edited record).
    """
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for row in rows:
        count += 1
        problem = _problem(row, expected_seq, prev_hash)
        if problem:
            return ChainReport(count, prev_hash, row["seq"], row["id"], problem)
        prev_hash, expected_seq = row["hash"], expected_seq + 1
    return ChainReport(count, prev_hash)


def _problem(row: Mapping[str, Any], expected_seq: int, prev_hash: str) -> str:
    if row["seq"] != expected_seq:
        return f"gap in seq: expected {expected_seq}, found {row['seq']}"
    if row["prev_hash"] != prev_hash:
        return (
            f"broken link: prev_hash {row['prev_hash'][:16]}… is not the previous "
            f"record's hash {prev_hash[:16]}…"
        )
    try:
        recomputed = record_hash(row)
    except ValueError as e:  # a version no writer used: edited
        return str(e)
    if row["hash"] != recomputed:
        return (
            f"content hash mismatch: stored {row['hash'][:16]}…, "
            f"the content hashes to {recomputed[:16]}…"
        )
    return ""


def filed_head_problem(seq: int, filed: str) -> str:
    """Why record `seq` no longer has the hash `filed` (a head kept outside the database
    when the trail had `seq` records); '' if it has. Meaningful after the chain verifies:
    then every record up to `seq` is as it was when that head was filed."""
    from oversight.models import AuditRecord

    stored = AuditRecord.objects.filter(seq=seq).values_list("hash", flat=True).first()
    if stored is None:
        return f"there is no record {seq}: the trail was cut short since its head was filed"
    if stored != filed.strip().lower():
        return (
            f"record {seq}'s hash is {stored}, not the filed {filed.strip()}: the trail up "
            "to it was rewritten since"
        )
    return ""


def audit_chain_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Verify the whole stored chain, streaming it in seq order."""
    from oversight.models import AuditRecord

    rows = AuditRecord.objects.order_by("seq").values(*CHAIN_FIELDS).iterator(chunk_size)
    return chain_check(rows)
