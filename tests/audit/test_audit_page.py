"""The audit page: newest first, filters (user, action, object, UTC time range), paging,
the chain's verification, and the CSV export of exactly the filtered records."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from oversight.audit import audit_record
from oversight.audit_chain import record_hash, utc_iso
from oversight.models import AuditRecord

from .conftest import as_dba, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(alice, bob, adam) -> dict[str, AuditRecord]:
    """A few records of different kinds, on top of the personas' own creation records."""
    return {
        "submit": audit_record(
            actor=alice, action="order.submit", obj=alice, after={"qty": 100}, request_id="r1"
        ),
        "cancel": audit_record(
            actor=alice, action="order.cancel.request", obj=alice, reason="desk call"
        ),
        "bob": audit_record(actor=bob, action="order.submit", obj=bob, after={"qty": 5}),
        "role": audit_record(
            actor=adam,
            action="user.role_set",
            obj=bob,
            before={"role": "trader"},
            after={"role": "admin"},
            reason='=HYPERLINK("http://x")',
        ),
        "worker": audit_record(actor=None, action="session.start", after={"seed": 7}),
    }


def seqs(resp) -> list[int]:
    return [row["r"].seq for row in resp.context["rows"]]


def test_newest_first_with_every_column(rita, trail) -> None:
    resp = client_for(rita).get(reverse("audit_list"))  # logging in is the newest record
    assert resp.status_code == 200
    assert seqs(resp) == list(range(AuditRecord.objects.count(), 0, -1))
    html = resp.content.decode()
    role = trail["role"]
    assert f'id="audit-{role.seq}"' in html
    assert "role: &quot;trader&quot; → &quot;admin&quot;" in html
    assert utc_iso(role.at)[:-4].replace("T", " ") in html  # milliseconds, UTC
    assert role.hash[:12] in html and "user.role_set" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"user": "ALICE"}, ["submit", "cancel"]),
        ({"user": "system", "action": "session."}, ["worker"]),
        ({"action": "order."}, ["submit", "cancel", "bob"]),
        ({"action": "order.submit"}, ["submit", "bob"]),
        ({"action": "order.", "user": "bob"}, ["bob"]),
        ({"object_type": "user", "action": "order"}, ["submit", "cancel", "bob"]),
        # From any part's start, not only the first: "request" finds order.cancel.request,
        # "role" finds user.role_set; not from the middle of a part ("ancel").
        ({"action": "request"}, ["cancel"]),
        ({"action": "role"}, ["role"]),
        ({"action": "ancel"}, []),
    ],
)
def test_filters(adam, trail, query, expected) -> None:
    resp = client_for(adam).get(reverse("audit_list"), query)
    assert resp.status_code == 200
    assert seqs(resp) == sorted((trail[k].seq for k in expected), reverse=True)


def test_filter_by_object_id(adam, bob, trail) -> None:
    resp = client_for(adam).get(reverse("audit_list"), {"object_type": "User", "object_id": bob.pk})
    got = {row["r"].pk for row in resp.context["rows"]}
    assert {trail["bob"].pk, trail["role"].pk} <= got
    assert all(row["r"].object_id == str(bob.pk) for row in resp.context["rows"])


def test_time_range_is_utc_to_the_millisecond(adam, trail) -> None:
    since, until = trail["cancel"].at, trail["role"].at
    c = client_for(adam)
    query = {"since": utc_iso(since), "until": utc_iso(until).replace("T", " ")[:-1]}
    resp = c.get(reverse("audit_list"), query)
    assert seqs(resp) == [trail[k].seq for k in ("role", "bob", "cancel")]
    # A bare date is the whole day (UTC): today's "To" includes everything so far.
    today = trail["worker"].at.date().isoformat()
    every = AuditRecord.objects.count()
    assert len(seqs(c.get(reverse("audit_list"), {"since": today, "until": today}))) == every


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "yesterday"}, "is not a date and time"),
        ({"until": "2026-13-45"}, "is not a date and time"),
        ({"since": "2026-11-23T25:00"}, "is not a date and time"),
        ({"since": "2026-11-24", "until": "2026-11-23"}, "is before"),
        ({"user": "x" * 200}, "at most 150 characters"),
        ({"object_id": "abc"}, "“abc” is not an object id: the trail records whole numbers"),
        ({"object_id": "１２"}, "is not an object id"),
        # In range before its offset is applied, not after (a trial read "not a date").
        ({"since": "9999-12-31T23:59:59-01:00"}, "is out of range"),
        # An unknown key was ignored, and the whole trail listed as if filtered.
        ({"actor": "risk"}, "“actor” is not a filter here; the filters are user, action"),
    ],
)
def test_bad_filters_say_so_and_list_nothing(adam, trail, query, message) -> None:
    c = client_for(adam)
    resp = c.get(reverse("audit_list"), query)
    assert resp.status_code == 400
    html = resp.content.decode()
    assert message in html and "No records shown" in html
    assert resp.context["rows"] == []
    export = c.get(reverse("audit_export"), query)
    assert export.status_code == 400 and message in export.content.decode()
    assert export["Content-Type"].startswith("text/plain")  # a script's, not the page


def test_a_nul_in_a_filter_is_refused_by_name(adam, trail) -> None:
    c = client_for(adam)
    for name in ("audit_list", "audit_export"):
        resp = c.get(reverse(name), {"action": "a\x00b"})
        assert resp.status_code == 400
        assert "Action: contains a NUL character" in resp.content.decode()


def test_pages_of_one_hundred(adam) -> None:
    for i in range(130):
        audit_record(actor=None, action="test.bulk", after={"i": i})
    c = client_for(adam)
    first = c.get(reverse("audit_list"), {"action": "test."})
    assert len(first.context["rows"]) == 100 and "page 1 of 2" in first.content.decode()
    second = c.get(reverse("audit_list"), {"action": "test.", "page": 2})
    assert [r["r"].after["i"] for r in second.context["rows"]] == list(range(29, -1, -1))
    assert 'href="?action=test.&amp;page=1"' in second.content.decode()
    assert c.get(reverse("audit_list"), {"page": "nonsense"}).status_code == 200
    # A page that is not there is said not to be (a trial read page 99999 as the end).
    far = c.get(reverse("audit_list"), {"action": "test.", "page": "99999"}).content.decode()
    assert "there is no page &#x27;99999&#x27;; showing page 2 of 2" in far
    for before in ("0", "-1"):  # before the first: the first, not the last (a trial)
        got = c.get(reverse("audit_list"), {"action": "test.", "page": before}).content.decode()
        assert f"there is no page &#x27;{before}&#x27;; showing page 1 of 2" in got
    # A digit int() does not read, and numbers too long for it, were a 500 (a fuzz).
    padded = c.get(reverse("audit_list"), {"action": "test.", "page": "0" * 12 + "2"})
    assert len(padded.context["rows"]) == 30 and "there is no page" not in padded.content.decode()
    for odd, shown in (("²", 1), ("9" * 5000, 2), ("-" + "9" * 5000, 1)):
        got = c.get(reverse("audit_list"), {"action": "test.", "page": odd})
        assert got.status_code == 200
        assert f"there is no page &#x27;{odd[:20]}&#x27;; showing page {shown} of 2" in (
            got.content.decode()
        )


def test_the_filters_suggest_each_value_once(adam) -> None:
    """The model's ordering joined the DISTINCT: 511 suggestions for 49 actions (a trial)."""
    from oversight.selectors import audit_filter_choices

    for _ in range(3):
        audit_record(actor=None, action="test.same", obj=adam)
    choices = audit_filter_choices()
    assert choices["actions"].count("test.same") == 1
    assert choices["object_types"].count("User") == 1


def test_verify_shows_ok_and_is_recorded(rita, trail) -> None:
    c = client_for(rita)
    resp = c.post(reverse("audit_verify"), {"query": "action=order.&evil=1"})
    assert resp.status_code == 302 and resp["Location"] == "/audit/?action=order."
    [msg] = [str(m) for m in get_messages(resp.wsgi_request)]
    count = AuditRecord.objects.count() - 1  # the verification's own record comes after
    assert msg.startswith(f"Chain verified: {count} records, numbered 1 to {count} with no gap")
    last = AuditRecord.objects.order_by("-seq").first()
    assert (last.action, last.actor_username, last.after["ok"]) == ("audit.verify", "rita", True)
    # The whole head, to compare with one filed elsewhere (not a 16-character prefix).
    head = last.after["head"]
    assert len(head) == 64 and f"Head (record {count}): {head}. File it outside" in msg
    assert f"audit_verify --expect {count}:<hash>" in msg
    page = c.get(resp["Location"]).content.decode()
    assert "Last verified" in page and f"{count} records" in page
    assert f'id="verify-head">{head}</span>' in page
    assert "It cannot see a rewrite by someone able to drop the database" in page
    # A filter that does not read is dropped, not carried to a 400 page that says
    # "Chain verified" and lists nothing (a trial).
    resp = c.post(reverse("audit_verify"), {"query": "since=yesterday-ish"})
    assert resp.status_code == 302 and resp["Location"] == "/audit/"
    assert c.get(resp["Location"]).status_code == 200


def test_verify_names_the_first_bad_record(adam, trail) -> None:
    target = trail["cancel"]
    with as_dba() as cur:
        cur.execute(
            "UPDATE oversight_auditrecord SET reason = %s WHERE id = %s", ["never", target.pk]
        )
    resp = client_for(adam).post(reverse("audit_verify"))
    [msg] = [str(m) for m in get_messages(resp.wsgi_request)]
    assert msg.startswith(
        f"Chain verification failed. BROKEN at record seq={target.seq} id={target.pk}: "
        "content hash mismatch"
    )
    page = client_for(adam).get(reverse("audit_list")).content.decode()
    assert "BROKEN" in page and f"seq={target.seq} id={target.pk}" in page


def read_csv(resp) -> list[dict[str, str]]:
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/csv")
    assert resp["Content-Disposition"].startswith('attachment; filename="audit-')
    body = b"".join(resp.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body)))


def test_export_is_the_filtered_records_with_every_column(rita, trail) -> None:
    c = client_for(rita)
    rows = read_csv(c.get(reverse("audit_export"), {"action": "order."}))
    assert [int(r["seq"]) for r in rows] == [trail[k].seq for k in ("submit", "cancel", "bob")]
    first = rows[0]
    assert list(first) == [
        "seq", "id", "at_utc", "actor_id", "actor_username", "actor_role", "action",
        "object_type", "object_id", "before", "after", "reason", "request_id",
        "chain_version", "client_addr", "prev_hash", "hash",
    ]  # fmt: skip
    assert (first["chain_version"], first["client_addr"]) == ("2", "")  # written by no request
    submit = trail["submit"]
    assert first["at_utc"] == utc_iso(submit.at)
    assert (first["actor_username"], first["after"], first["request_id"]) == (
        "alice",
        '{"qty": 100}',
        "r1",
    )
    assert (first["prev_hash"], first["hash"]) == (submit.prev_hash, submit.hash)
    exported = AuditRecord.objects.order_by("-seq").first()
    assert exported.action == "audit.export" and exported.actor_username == "rita"
    assert exported.after == {"filters": {"action": "order."}, "records": 3}


def test_export_guards_against_spreadsheet_formulas(adam, trail) -> None:
    [row] = read_csv(client_for(adam).get(reverse("audit_export"), {"action": "user.role_set"}))
    assert row["reason"] == '\'=HYPERLINK("http://x")'
    role = trail["role"]
    # Every other cell is as stored: the record's own hash recomputes from the database.
    assert (
        row["hash"]
        == role.hash
        == record_hash(
            {**AuditRecord.objects.filter(pk=role.pk).values().get(), "actor_id": role.actor_id}
        )
    )


def test_an_unfiltered_export_holds_everything_before_it(adam, trail) -> None:
    c = client_for(adam)
    before = AuditRecord.objects.count()
    rows = read_csv(c.get(reverse("audit_export")))
    assert len(rows) == before
    assert [int(r["seq"]) for r in rows] == list(range(1, before + 1))


def test_a_time_to_the_minute_or_second_ends_at_its_end() -> None:
    """ "To 00:10" ended at 00:10:00.000 and left out what happened during that minute (a
    trial); "From" starts at its start as before."""
    from datetime import UTC, datetime

    from oversight.forms import parse_utc

    def at(*a: int) -> datetime:
        return datetime(*a, tzinfo=UTC)

    assert parse_utc("2026-12-07 00:10", end_of_day=True) == at(2026, 12, 7, 0, 10, 59, 999_999)
    assert parse_utc("2026-12-07T00:10:30", end_of_day=True) == at(2026, 12, 7, 0, 10, 30, 999_999)
    assert parse_utc("2026-12-07 00:10:30.250", end_of_day=True) == at(
        2026, 12, 7, 0, 10, 30, 250_000
    )
    assert parse_utc("2026-12-07T01:10+01:00", end_of_day=True) == at(
        2026, 12, 7, 0, 10, 59, 999_999
    )
    assert parse_utc("2026-12-07 00:10") == at(2026, 12, 7, 0, 10)


def test_the_page_rounds_floats_and_the_export_keeps_every_digit(adam, alice) -> None:
    """A trial read "start_minute: 59.61666666666667" as noise on the page; the export is
    the record, as recorded."""
    audit_record(
        actor=alice, action="order.submit", obj=alice, after={"start_minute": 59.61666666666667}
    )
    c = client_for(adam)
    page = c.get(reverse("audit_list"), {"action": "order.submit"}).content.decode()
    assert "start_minute=59.616667" in page and "59.61666666666667" not in page
    [row] = read_csv(c.get(reverse("audit_export"), {"action": "order.submit"}))
    assert "59.61666666666667" in row["after"]
