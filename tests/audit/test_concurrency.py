"""Concurrent writers on real connections never fork the chain: on PostgreSQL the advisory
lock serialises them, on SQLite the database's write lock; the unique seq and prev_hash
would turn any fork into an error, which these tests would see."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connections, transaction

from oversight.audit import audit_record
from oversight.audit_chain import audit_chain_verify
from oversight.models import AuditRecord

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 8
EACH = 25


def run_writers(work: Any) -> list[BaseException]:
    """Start WRITERS threads at once, each on its own database connection."""
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as e:  # reported by the test, not lost in the thread
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


def test_concurrent_writers_make_one_gapless_chain() -> None:
    def work(n: int) -> None:
        for i in range(EACH):
            audit_record(actor=None, action="test.concurrent", after={"writer": n, "i": i})

    errors = run_writers(work)
    assert errors == []
    report = audit_chain_verify()
    assert report.ok, report.summary()
    assert report.count == WRITERS * EACH
    rows = list(AuditRecord.objects.order_by("seq").values_list("seq", "at", "after"))
    assert [seq for seq, _, _ in rows] == list(range(1, WRITERS * EACH + 1))
    stamps = [at for _, at, _ in rows]
    assert stamps == sorted(stamps)
    for n in range(WRITERS):  # each writer's records, in its own order, none lost
        assert [a["i"] for _, _, a in rows if a["writer"] == n] == list(range(EACH))


def test_writers_inside_longer_transactions_queue_for_the_head() -> None:
    """An action's transaction holds the chain from its first record to commit: records
    written in one transaction stay adjacent, and a rolled-back one leaves no gap."""

    def work(n: int) -> None:
        for i in range(3):
            try:
                with transaction.atomic():
                    audit_record(actor=None, action="test.first", after={"writer": n, "i": i})
                    time.sleep(0.002)  # the rest of the action's work
                    audit_record(actor=None, action="test.second", after={"writer": n, "i": i})
                    if i == 1:
                        raise RuntimeError("this action fails and rolls back")
            except RuntimeError:
                pass

    errors = run_writers(work)
    assert errors == []
    report = audit_chain_verify()
    assert report.ok, report.summary()
    rows = list(AuditRecord.objects.order_by("seq").values_list("action", "after"))
    assert len(rows) == WRITERS * 2 * 2
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert (first[0], second[0]) == ("test.first", "test.second")
        assert first[1] == second[1] and first[1]["i"] != 1
