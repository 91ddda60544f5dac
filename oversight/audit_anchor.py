"""Verified heads of the audit trail, filed outside the database.

The hash chain shows any record edited or removed in the middle, but not a trail cut
short at its end, or rewritten and re-hashed whole, by someone able to drop the
database's triggers: only a head kept elsewhere shows that (an authorization audit cut
three records off the end and the in-app check still said "verified"). So every
successful verification appends its head (record number, hash, time) to a file outside
the database (`AUDIT_ANCHORS`, var/audit-anchors.jsonl unless set), and every
verification first checks that the trail still holds the last head filed. Someone who
can alter the database but not that file is found out; keep the file where the
database's administrators cannot write (or copy it there), as `manage.py audit_verify
--expect` takes a head by hand.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from oversight.audit_chain import filed_head_problem

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str


class AnchorFileError(Exception):
    """The file of filed heads cannot be read as one: said with its path and line."""


def anchors_path() -> Path | None:
    path = getattr(settings, "AUDIT_ANCHORS", None)
    return Path(path) if path else None


def last_anchor(path: Path) -> Anchor | None:
    """The last head filed in `path`; None when there is no file yet or it is empty."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise AnchorFileError(f"{path}: cannot be read ({e})") from None
    last: Anchor | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            anchor = Anchor(int(row["seq"]), str(row["hash"]), str(row.get("at", "")))
        except (ValueError, KeyError, TypeError):
            raise AnchorFileError(f"{path}, line {number}: not a filed head") from None
        if anchor.seq < 1 or not _HASH.fullmatch(anchor.hash):
            raise AnchorFileError(f"{path}, line {number}: not a filed head")
        if last is None or anchor.seq >= last.seq:
            last = anchor
    return last


def anchor_problem() -> str:
    """Why the trail does not hold the last head filed outside the database ('' if it does,
    or if none has been filed). Meaningful after the chain itself verifies."""
    path = anchors_path()
    if path is None:
        return ""
    try:
        last = last_anchor(path)
    except AnchorFileError as e:
        return f"the filed heads cannot be checked: {e}"
    if last is None:
        return ""
    problem = filed_head_problem(last.seq, last.hash)
    if problem:
        return (
            f"{problem} (the head filed at {last.at or 'an unknown time'} in {shown(path)}; "
            "if the database was recreated on purpose, move that file aside)"
        )
    return ""


def file_head(seq: int, head: str) -> str:
    """Append a verified head to the file, if it is past the last one filed; returns the
    file's path ('' when filing is off, or nothing is newer). Never raises for the file:
    a verification is not undone because its head could not be filed, it says so."""
    path = anchors_path()
    if path is None or seq < 1:
        return ""
    try:
        last = last_anchor(path)
    except AnchorFileError:
        return ""
    if last is not None and last.seq >= seq:
        return ""
    line = json.dumps({"seq": seq, "hash": head, "at": timezone.now().isoformat()})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One short line, appended: concurrent verifications may each add theirs.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        return ""
    return shown(path)


def shown(path: Path) -> str:
    """The file as the operator configured it: under the project, relative (the server's
    absolute layout is no one else's business: a review)."""
    try:
        return str(path.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)
