"""The database itself refuses to change or remove audit records: UPDATE, DELETE and (on
PostgreSQL) TRUNCATE raise, whether raw SQL or the ORM's bulk paths."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from oversight.audit import audit_record
from oversight.audit_chain import audit_chain_verify
from oversight.models import AuditRecord

from .conftest import only_pg

pytestmark = pytest.mark.django_db


def refused(sql: str, params: list[object] | None = None) -> str:
    """Run the statement; return the database's error message (it must raise)."""
    with pytest.raises(DatabaseError) as e, transaction.atomic(), connection.cursor() as c:
        c.execute(sql, params)
    return str(e.value)


def test_raw_update_is_refused(db) -> None:
    r = audit_record(actor=None, action="test.original", reason="as it happened")
    msg = refused("UPDATE oversight_auditrecord SET reason = %s WHERE id = %s", ["edited", r.pk])
    assert "append-only" in msg and "UPDATE" in msg
    assert AuditRecord.objects.get(pk=r.pk).reason == "as it happened"


def test_raw_delete_is_refused(db) -> None:
    r = audit_record(actor=None, action="test.original")
    msg = refused("DELETE FROM oversight_auditrecord WHERE id = %s", [r.pk])
    assert "append-only" in msg and "DELETE" in msg
    assert "append-only" in refused("DELETE FROM oversight_auditrecord")
    assert AuditRecord.objects.filter(pk=r.pk).exists()


def test_the_orm_bulk_paths_are_refused_too(db) -> None:
    audit_record(actor=None, action="test.original")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.update(reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.all().delete()
    assert list(AuditRecord.objects.values_list("reason", flat=True)) == [""]
    assert audit_chain_verify().ok


@only_pg
def test_truncate_is_refused_on_postgresql(db) -> None:
    audit_record(actor=None, action="test.original")
    with connection.cursor() as c:
        # Else PostgreSQL refuses first for this test transaction's pending FK checks.
        c.execute("SET CONSTRAINTS ALL IMMEDIATE")
    msg = refused("TRUNCATE oversight_auditrecord")
    assert "append-only" in msg and "TRUNCATE" in msg
    assert AuditRecord.objects.count() == 1


def test_flush_outside_the_test_runner_leaves_the_audit_trail(db, monkeypatch) -> None:
    """Only the test runner may empty the table; anyone else's flush is refused."""
    audit_record(actor=None, action="test.original")
    monkeypatch.delattr(mail, "outbox")  # as outside the test runner
    with pytest.raises(CommandError):
        call_command("flush", interactive=False, verbosity=0)
    assert AuditRecord.objects.count() == 1
