"""Verification walks the chain and names the first bad record: an edited record, a
re-hashed edit (the next link breaks), a deleted record (a gap in seq)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from oversight.audit import audit_record
from oversight.audit_chain import (
    CHAIN_FIELDS,
    GENESIS,
    audit_chain_verify,
    chain_check,
    record_hash,
)
from oversight.models import AuditRecord

from .conftest import as_dba, on_pg

pytestmark = pytest.mark.django_db
TABLE = "oversight_auditrecord"


def chain(n: int = 5) -> list[AuditRecord]:
    return [
        audit_record(actor=None, action=f"test.step{i}", after={"i": i}, reason="as it was")
        for i in range(n)
    ]


def verify_command() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code or 0), out.getvalue().strip(), err.getvalue().strip()
    return 0, out.getvalue().strip(), err.getvalue().strip()


def test_the_full_head_is_printed_as_expect_takes_it(db) -> None:
    records = chain()
    out = StringIO()
    call_command("audit_verify", "--full-head", stdout=out)
    filed = out.getvalue().splitlines()[-1].removeprefix("file this head: ")
    assert filed == f"{records[-1].seq}:{records[-1].hash}"
    out = StringIO()
    call_command("audit_verify", "--expect", filed, stdout=out)  # and it checks
    assert f"filed head of record {records[-1].seq} matches" in out.getvalue()


def test_an_intact_chain_verifies(db) -> None:
    records = chain()
    report = audit_chain_verify()
    assert report.ok and report.count == 5 and report.head == records[-1].hash
    assert verify_command() == (0, f"OK: 5 records, head {records[-1].hash[:16]}", "")


def test_an_empty_trail_verifies(db) -> None:
    assert verify_command() == (0, f"OK: 0 records, head {GENESIS[:16]}", "")


def _json_param() -> str:
    return "%s::jsonb" if on_pg() else "%s"


@pytest.mark.parametrize(
    "column",
    [
        "reason",
        "after",
        "at",
        "action",
        "actor_role",
        "object_id",
        "actor_username",
        "client_addr",
    ],
)
def test_an_edited_record_is_named(db, column: str) -> None:
    records = chain()
    target = records[2]
    value: object
    placeholder = "%s"
    if column == "after":
        value, placeholder = json.dumps({"i": 99}), _json_param()
    elif column == "at":
        value = connection.ops.adapt_datetimefield_value(target.at + timedelta(milliseconds=1))
    else:
        value = "tampered"
    with as_dba() as c:
        c.execute(f"UPDATE {TABLE} SET {column} = {placeholder} WHERE id = %s", [value, target.pk])
    report = audit_chain_verify()
    assert (report.bad_seq, report.bad_id) == (target.seq, target.pk)
    assert report.problem.startswith("content hash mismatch")
    code, out, err = verify_command()
    assert (code, out) == (1, "")
    assert err.startswith(
        f"BROKEN at record seq={target.seq} id={target.pk}: content hash mismatch"
    )


@pytest.mark.parametrize("version", [None, 1, 2, 3])
def test_a_record_made_to_look_older_to_drop_its_address_is_named(db, version) -> None:
    """A version-2 record hashes its client address; written back as version 1 (the form
    before addresses were kept) with the address gone, it no longer matches its hash; nor
    as version 2 with the address NULL, which the page shows as "not kept" (a review: a
    system record's "" hashed as NULL did)."""
    records = chain()
    target = records[1]
    with as_dba() as c:
        c.execute(
            f"UPDATE {TABLE} SET chain_version = %s, client_addr = NULL WHERE id = %s",
            [version, target.pk],
        )
    report = audit_chain_verify()
    assert (report.bad_seq, report.bad_id) == (target.seq, target.pk)
    assert report.problem.startswith(
        "unknown audit chain version" if version == 3 else "content hash mismatch"
    )


def test_a_trail_of_version_1_records_verifies_and_goes_on_in_version_2(db) -> None:
    """As a database written before addresses were kept reads after migration 0012: its
    records have no version and no address, and hash in version 1's pinned form (the one
    test_chain.py spells out); new records follow them in version 2."""
    prev = GENESIS
    old = []
    for seq in (1, 2):
        fields = dict(seq=seq, at=timezone.now(), actor_id=None, actor_username="",
                      actor_role="system", action="test.before", object_type="", object_id="",
                      before=None, after={"n": seq}, reason="", request_id="", prev_hash=prev)  # fmt: skip
        # Version 1's form: the fields of then, no version and no address.
        prev = record_hash(fields)
        old.append(AuditRecord(**fields, hash=prev, chain_version=None, client_addr=None))
    AuditRecord.objects.bulk_create(old)  # written as the old code wrote them
    new = audit_record(actor=None, action="test.after")
    assert (new.seq, new.prev_hash, new.chain_version) == (3, prev, 2)
    report = audit_chain_verify()
    assert report.ok and report.count == 3, report.problem


def test_records_of_both_versions_verify_in_one_chain(db) -> None:
    """The records written before addresses were kept hash in the form they were written
    in; the chain runs on through them into version 2."""
    rows = [
        {"id": 1, "seq": 1, "prev_hash": GENESIS, "chain_version": None, "client_addr": None},
        {"id": 2, "seq": 2, "chain_version": 2, "client_addr": "198.51.100.4"},
    ]
    prev = GENESIS
    for row in rows:
        row.update(prev_hash=prev, at=timezone.now(), actor_id=None, actor_username="",
                   actor_role="system", action="test.v", object_type="", object_id="",
                   before=None, after=None, reason="", request_id="")  # fmt: skip
        row["hash"] = prev = record_hash(row)
    assert chain_check(rows).ok and chain_check(rows).count == 2
    assert record_hash({**rows[1], "client_addr": "198.51.100.5"}) != rows[1]["hash"]


def test_a_rehashed_edit_breaks_the_next_link(db) -> None:
    records = chain()
    target = records[1]
    with as_dba() as c:
        c.execute(f"UPDATE {TABLE} SET reason = %s WHERE id = %s", ["nothing happened", target.pk])
        row = AuditRecord.objects.filter(pk=target.pk).values(*CHAIN_FIELDS).get()
        c.execute(f"UPDATE {TABLE} SET hash = %s WHERE id = %s", [record_hash(row), target.pk])
    report = audit_chain_verify()
    assert (report.bad_seq, report.bad_id) == (records[2].seq, records[2].pk)
    assert report.problem.startswith("broken link")


def test_a_deleted_middle_record_is_a_gap(db) -> None:
    records = chain()
    with as_dba() as c:
        c.execute(f"DELETE FROM {TABLE} WHERE id = %s", [records[2].pk])
    report = audit_chain_verify()
    assert (report.bad_seq, report.bad_id) == (records[3].seq, records[3].pk)
    assert report.problem == f"gap in seq: expected {records[2].seq}, found {records[3].seq}"
    code, _, err = verify_command()
    assert code == 1
    assert err == (
        f"BROKEN at record seq={records[3].seq} id={records[3].pk}: gap in seq: "
        f"expected {records[2].seq}, found {records[3].seq}"
    )


def test_a_deleted_first_record_is_a_gap(db) -> None:
    records = chain(3)
    with as_dba() as c:
        c.execute(f"DELETE FROM {TABLE} WHERE id = %s", [records[0].pk])
    report = audit_chain_verify()
    assert (report.bad_seq, report.bad_id) == (2, records[1].pk)
    assert report.problem == "gap in seq: expected 1, found 2"


def test_a_renumbered_deletion_breaks_the_link(db) -> None:
    """Closing the gap by renumbering does not help: the next record points at the
    deleted one's hash."""
    records = chain()
    with as_dba() as c:
        c.execute(f"DELETE FROM {TABLE} WHERE id = %s", [records[2].pk])
        for r in records[3:]:
            c.execute(f"UPDATE {TABLE} SET seq = seq - 1 WHERE id = %s", [r.pk])
    report = audit_chain_verify()
    assert (report.bad_seq, report.bad_id) == (3, records[3].pk)
    assert report.problem.startswith("broken link")


def test_rewriting_the_whole_tail_changes_the_head(db) -> None:
    """The known limit of a hash chain: re-hash everything after an edit and it verifies
    again, but its head differs from the one printed before. Keep the head elsewhere."""
    records = chain()
    head_before = audit_chain_verify().head
    with as_dba() as c:
        c.execute(f"UPDATE {TABLE} SET reason = %s WHERE id = %s", ["rewritten", records[1].pk])
        prev = records[0].hash
        for r in records[1:]:
            c.execute(f"UPDATE {TABLE} SET prev_hash = %s WHERE id = %s", [prev, r.pk])
            row = AuditRecord.objects.filter(pk=r.pk).values(*CHAIN_FIELDS).get()
            prev = record_hash(row)
            c.execute(f"UPDATE {TABLE} SET hash = %s WHERE id = %s", [prev, r.pk])
    report = audit_chain_verify()
    assert report.ok and report.head != head_before


def verify_expecting(filed: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", "--expect", filed, stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code or 0), out.getvalue().strip(), err.getvalue().strip()
    return 0, out.getvalue().strip(), err.getvalue().strip()


def test_a_filed_head_shows_a_tail_cut_or_rewritten_which_the_chain_cannot(db) -> None:
    """Someone who can get past the triggers cuts the last records, or rewrites one and
    re-hashes it and everything after: the chain verifies, the head filed earlier does not."""
    records = chain(5)
    filed = f"4:{records[3].hash}"
    assert verify_expecting(filed)[0] == 0
    assert verify_expecting(filed)[1].endswith("filed head of record 4 matches")
    # Cut short: records 4 and 5 gone.
    with as_dba() as c:
        c.execute(f"DELETE FROM {TABLE} WHERE seq >= 4")
    assert audit_chain_verify().ok
    code, _, err = verify_expecting(filed)
    assert code == 1 and "there is no record 4: the trail was cut short" in err
    # Rewritten: record 3 edited and re-hashed (it is now the last, so nothing follows).
    three = AuditRecord.objects.get(seq=3)
    filed = f"3:{three.hash}"
    with as_dba() as c:
        c.execute(f"UPDATE {TABLE} SET reason = %s WHERE id = %s", ["never happened", three.pk])
        row = AuditRecord.objects.filter(pk=three.pk).values(*CHAIN_FIELDS).get()
        c.execute(f"UPDATE {TABLE} SET hash = %s WHERE id = %s", [record_hash(row), three.pk])
    assert audit_chain_verify().ok
    code, _, err = verify_expecting(filed)
    assert code == 1 and "record 3's hash is" in err and "rewritten since" in err


def test_a_filed_head_is_read_strictly(db) -> None:
    from django.core.management.base import CommandError

    # Record 0 and a 5,000-digit number are mistyped arguments: not tampering, not a traceback.
    for bad in ("4", "x:abc", "4:" + "g" * 64, "0:" + "a" * 64, "1" * 5000 + ":" + "a" * 64):
        with pytest.raises(CommandError, match="--expect: give the record number"):
            call_command("audit_verify", "--expect", bad, stdout=StringIO(), stderr=StringIO())


def test_a_trail_cut_short_at_its_end_is_found_by_the_head_filed_outside(
    db, settings, tmp_path
) -> None:
    """An authorization audit deleted the last three records (triggers dropped) and the
    in-app check still said "verified": the chain of what is left is whole. Each
    verification now files its head outside the database and checks the last one filed."""
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.urls import reverse

    settings.AUDIT_ANCHORS = tmp_path / "anchors.jsonl"
    records = chain()
    assert verify_command()[0] == 0
    [line] = settings.AUDIT_ANCHORS.read_text().splitlines()
    assert json.loads(line)["seq"] == records[-1].seq
    assert json.loads(line)["hash"] == records[-1].hash
    # A second look with nothing new files nothing more.
    assert verify_command()[0] == 0
    assert len(settings.AUDIT_ANCHORS.read_text().splitlines()) == 1
    with as_dba() as c:
        c.execute(f"DELETE FROM {TABLE} WHERE seq >= %s", [records[-2].seq])
    assert audit_chain_verify().ok  # the chain alone cannot tell
    code, out, err = verify_command()
    assert code == 1 and out == ""
    assert f"there is no record {records[-1].seq}: the trail was cut short" in err
    assert err.startswith(f"BROKEN: {records[-2].seq - 1} records link up, but the filed head")
    # The page says so, and records it as a failed verification.
    admin = User.objects.create_user("auditor", password="pw")
    admin.groups.add(Group.objects.get(name="admin"))
    c = Client()
    c.force_login(admin)
    resp = c.post(reverse("audit_verify"), follow=True)
    said = [str(m) for m in resp.context["messages"]]
    # (Making the auditor wrote records again: record 5 exists, but is not the one filed.)
    assert said[0].startswith(
        f"Chain verification failed: the records link up, but record {records[-1].seq}'s hash is "
    ), said
    assert f"the head filed at {json.loads(line)['at']} in {settings.AUDIT_ANCHORS}" in said[0]
    verified = AuditRecord.objects.filter(action="audit.verify").latest("seq")
    assert verified.after["ok"] is False and "not the filed" in verified.after["problem"]
    # The page's last-verified line says it as it is (it read "at record seq=None").
    page = resp.content.decode()
    assert "seq=None" not in page and "the records link up, but record" in page


def test_a_file_of_heads_that_is_not_one_is_said_not_a_500(db, settings, tmp_path) -> None:
    settings.AUDIT_ANCHORS = tmp_path / "anchors.jsonl"
    settings.AUDIT_ANCHORS.write_text('{"seq": 1, "hash": "not a hash"}\n')
    chain(2)
    code, _, err = verify_command()
    assert code == 1
    assert f"the filed heads cannot be checked: {settings.AUDIT_ANCHORS}, line 1" in err


def test_the_scheduled_check_raises_a_broken_trail_on_the_risk_console(
    db, settings, tmp_path
) -> None:
    """A trial: a broken chain was seen only by whoever pressed Verify. Celery beat runs
    this task (settings.CELERY_BEAT_SCHEDULE); a break is a critical on the console."""
    from oversight.risk.models import RiskException
    from oversight.tasks import audit_check_scheduled

    settings.AUDIT_CHECK_MINUTES = 10.0
    assert settings.CELERY_BEAT_SCHEDULE["audit-check"]["task"] == audit_check_scheduled.name
    settings.AUDIT_ANCHORS = tmp_path / "anchors.jsonl"
    records = chain()
    assert audit_check_scheduled() == "ok"
    assert not RiskException.objects.filter(kind="AUDIT_BROKEN").exists()
    verified = AuditRecord.objects.filter(action="audit.verify").latest("seq")
    assert (verified.actor_role, verified.after["scheduled"]) == ("system", True)
    assert settings.AUDIT_ANCHORS.read_text().count("\n") == 1
    with as_dba() as c:
        c.execute(f"UPDATE {TABLE} SET reason = %s WHERE id = %s", ["edited", records[2].pk])
    said = audit_check_scheduled()
    assert said.startswith(f"broken: BROKEN at record seq={records[2].seq}")
    (e,) = RiskException.objects.filter(kind="AUDIT_BROKEN")
    assert (e.severity, e.status, e.scope_type) == ("CRITICAL", "OPEN", "firm")
    assert "content hash mismatch" in e.detail
    audit_check_scheduled()  # again: the same exception, counted, not a second one
    assert RiskException.objects.get(kind="AUDIT_BROKEN").count == 2


def test_a_trail_whose_guard_is_gone_does_not_verify(db, settings, tmp_path) -> None:
    """A trial dropped the UPDATE trigger and pressed Verify: "Chain verified". Records
    could then be changed, and the chain says nothing until one is. The check names the
    missing guard, on the page, in the command and on the console."""
    from oversight.audit_check import GUARD_TRIGGERS, audit_check
    from oversight.risk.models import RiskException
    from oversight.tasks import audit_check_scheduled

    settings.AUDIT_ANCHORS = tmp_path / "anchors.jsonl"
    chain(3)
    assert audit_check().ok and verify_command()[0] == 0
    with as_dba():  # the triggers dropped (SQLite) or disabled (PostgreSQL)
        check = audit_check()
        assert not check.ok and check.report.ok
        for name in GUARD_TRIGGERS["postgresql" if on_pg() else "sqlite"]:
            assert name in check.problem
        assert check.problem.startswith("the records link up, but the database no longer guards")
        code, _, err = verify_command()
        assert code == 1 and err.startswith("BROKEN: ") and "no longer guards" in err
        assert audit_check_scheduled().startswith("broken: the records link up")
        (e,) = RiskException.objects.filter(kind="AUDIT_BROKEN")
        assert e.title == "The audit trail is no longer append-only"
    assert audit_check().ok  # the guard back
