"""manage.py audit_verify: recompute the audit trail's hash chain from the first record.

Prints "OK: N records, head <hash prefix>" (exit status 0), or "BROKEN at record seq=S
id=I: <what is wrong>" on stderr (exit status 1). It reads the database only, so it can
run against a replica. A chain cut short or rewritten by someone who can drop the
database's triggers still verifies, and only a head filed earlier shows it: each
verification checks the last head filed in AUDIT_ANCHORS (oversight/audit_anchor.py) and
files its own there, and `--expect N:HASH` checks a head kept by hand.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from oversight.audit_anchor import anchor_problem, file_head
from oversight.audit_chain import audit_chain_verify, filed_head_problem
from oversight.audit_check import guard_problem
from oversight.management.ready import require_migrated


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; name the first bad record."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--full-head", action="store_true", help="print the head's whole hash, not a prefix"
        )
        parser.add_argument(
            "--expect",
            metavar="N:HASH",
            help="a head filed earlier: check that record N still has this hash",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        filed = _filed(options["expect"]) if options["expect"] else None
        report = audit_chain_verify()
        summary = report.summary(prefix=64 if options["full_head"] else 16)
        if not report.ok:
            self.stderr.write(summary)
            raise SystemExit(1)
        filed_problem = anchor_problem()
        if filed_problem:
            # Not "OK" first: whatever reads the first line must not take it for a pass
            # (a trial).
            self.stderr.write(
                f"BROKEN: {report.count} records link up, but the filed head does not "
                f"match: {filed_problem}"
            )
            raise SystemExit(1)
        unguarded = guard_problem()
        if unguarded:
            self.stderr.write(f"BROKEN: {report.count} records link up, but {unguarded}")
            raise SystemExit(1)
        self.stdout.write(summary)
        if options["full_head"] and report.count:
            # What to file, as --expect takes it: the record number is the count.
            self.stdout.write(f"file this head: {report.count}:{report.head}")
        if filed is not None:
            problem = filed_head_problem(*filed)
            if problem:
                self.stderr.write(f"FILED HEAD DOES NOT MATCH: {problem}")
                raise SystemExit(1)
            self.stdout.write(f"filed head of record {filed[0]} matches")
        file_head(report.count, report.head)


def _filed(text: str) -> tuple[int, str]:
    # Record numbers start at 1 and fit a bigint (18 digits): anything else is a mistyped
    # argument, not a trail cut short (a record 0 used to be reported as tampering).
    match = re.fullmatch(r"\s*([1-9][0-9]{0,17})\s*:\s*([0-9a-fA-F]{64})\s*", text)
    if match is None:
        raise CommandError(
            "--expect: give the record number (from 1) and its 64-hex hash, N:HASH; "
            f"got {text[:80]!r}"
        )
    return int(match[1]), match[2]
