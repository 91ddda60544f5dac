"""manage.py audit_verify: recompute the audit trail's hash chain from the first record.

Prints "OK: N records, head <hash prefix>" (exit status 0), or "BROKEN at record seq=S
id=I: <what is wrong>" on stderr (exit status 1). Read-only, so it can run against a
replica. Keep the printed head somewhere else: a chain cut short at its end still
verifies, and only a head recorded earlier shows it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from oversight.audit_chain import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; name the first bad record."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--full-head", action="store_true", help="print the head's whole hash, not a prefix"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        summary = report.summary(prefix=64 if options["full_head"] else 16)
        if report.ok:
            self.stdout.write(summary)
            return
        self.stderr.write(summary)
        raise SystemExit(1)
