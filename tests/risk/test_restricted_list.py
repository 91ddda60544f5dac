"""The restricted list: one risk manager restricts at once, two lift; the pre-trade check
refuses new orders while it holds; every step is audited with its reason."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError

from execution.models import Instrument
from oversight.models import AuditRecord
from oversight.risk.models import Restriction
from oversight.risk.restricted import lift_approve, lift_decline, lift_request, restrict
from oversight.roles import TRADER
from tests.stepping import submit

pytestmark = pytest.mark.django_db


def test_a_restricted_instrument_refuses_new_orders_until_two_people_lift_it(
    alice: User, rita: User, ruth: User, instrument: Instrument
) -> None:
    r = restrict(user=rita, symbol=instrument.symbol.lower(), reason="deal team wall-crossed")
    instrument.refresh_from_db()
    assert instrument.restricted and r.active and r.added_by == rita
    with pytest.raises(ValidationError) as refused:
        submit(alice, instrument)
    # The trader reads since when and whom to ask, not only a code; not why (the reason
    # may be the inside information the restriction guards).
    (message,) = refused.value.message_dict["instrument"]
    assert message.startswith(
        f"RESTRICTED_INSTRUMENT: {instrument.symbol} is on the restricted list since "
    )
    assert message.endswith("UTC: no new orders; a risk manager can say more")
    assert "wall-crossed" not in message and "rita" not in message

    lift_request(user=rita, restriction_id=r.pk, reason="deal announced")
    with pytest.raises(ValidationError, match="cannot approve your own lift"):
        lift_approve(user=rita, restriction_id=r.pk)
    instrument.refresh_from_db()
    assert instrument.restricted  # still: asking is not lifting
    lift_approve(user=ruth, restriction_id=r.pk)
    instrument.refresh_from_db()
    r.refresh_from_db()
    assert not instrument.restricted and not r.active and r.lifted_by == ruth
    assert submit(alice, instrument).status == "NEW"
    actions = list(
        AuditRecord.objects.filter(object_type="Restriction", object_id=str(r.pk))
        .order_by("seq")
        .values_list("action", "actor__username", "reason")
    )
    assert actions == [
        ("restriction.add", "rita", "deal team wall-crossed"),
        ("restriction.lift.request", "rita", "deal announced"),
        # rita's own try at the second pair of eyes, refused and recorded.
        (
            "restriction.lift.approve.refused",
            "rita",
            "you cannot approve your own lift: a second risk manager must",
        ),
        ("restriction.lift", "ruth", "deal announced"),
    ]
    # And it can be restricted again later, as a new entry.
    again = restrict(user=ruth, symbol=instrument.symbol, reason="second deal")
    assert again.pk != r.pk and again.active


@pytest.mark.parametrize(
    ("symbol", "reason", "message"),
    [
        ("", "why", "choose an instrument"),
        ("NOPE", "why", "there is no instrument 'NOPE'"),
        ("{sym}", "  ", "say why"),
    ],
)
def test_a_restriction_needs_an_instrument_and_a_reason(
    rita: User, instrument: Instrument, symbol: str, reason: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        restrict(user=rita, symbol=symbol.format(sym=instrument.symbol), reason=reason)
    instrument.refresh_from_db()
    assert not instrument.restricted and not Restriction.objects.exists()


def test_the_list_refuses_what_would_make_no_sense(
    alice: User, rita: User, ruth: User, instrument: Instrument
) -> None:
    r = restrict(user=rita, symbol=instrument.symbol, reason="wall-crossed")
    with pytest.raises(ValidationError, match="on the restricted list already"):
        restrict(user=ruth, symbol=instrument.symbol, reason="again")
    with pytest.raises(ValidationError, match="first be asked for"):
        lift_approve(user=ruth, restriction_id=r.pk)
    with pytest.raises(ValidationError, match="say why it may be traded again"):
        lift_request(user=ruth, restriction_id=r.pk, reason="")
    lift_request(user=rita, restriction_id=r.pk, reason="cleared")
    # Asking again would change the reason under the approver's eyes.
    with pytest.raises(ValidationError, match="you have asked for this lift already"):
        lift_request(user=rita, restriction_id=r.pk, reason="a different story")
    assert Restriction.objects.get(pk=r.pk).lift_reason == "cleared"
    # A second person's request would replace the first's: they approve it instead.
    with pytest.raises(ValidationError, match="rita has asked for this lift already"):
        lift_request(user=ruth, restriction_id=r.pk, reason="also cleared")
    with pytest.raises(ValidationError, match="only a risk manager"):
        restrict(user=alice, symbol=instrument.symbol, reason="a trader may not")
    lift_approve(user=ruth, restriction_id=r.pk)
    with pytest.raises(ValidationError, match="lifted already"):
        lift_approve(user=ruth, restriction_id=r.pk)


def test_a_lift_lapses_when_its_author_loses_the_role(
    rita: User, ruth: User, instrument: Instrument
) -> None:
    r = restrict(user=ruth, symbol=instrument.symbol, reason="wall-crossed")
    lift_request(user=rita, restriction_id=r.pk, reason="cleared")
    rita.groups.set([Group.objects.get(name=TRADER)])
    with pytest.raises(ValidationError, match="has not held the role that may throughout since"):
        lift_approve(user=ruth, restriction_id=r.pk)
    instrument.refresh_from_db()
    assert instrument.restricted
    # The lapsed request may be replaced by a risk manager's own.
    lift_request(user=ruth, restriction_id=r.pk, reason="cleared, asked again")
    r.refresh_from_db()
    assert r.lift_requested_by == ruth


def test_an_instrument_flagged_outside_the_list_can_be_recorded_and_then_lifted(
    rita: User, ruth: User, instrument: Instrument
) -> None:
    from oversight.risk.restricted import flagged_without_record

    Instrument.objects.filter(pk=instrument.pk).update(restricted=True)
    assert list(flagged_without_record()) == [instrument]
    r = restrict(user=rita, symbol=instrument.symbol, reason="found on the admin site")
    assert list(flagged_without_record()) == []
    lift_request(user=rita, restriction_id=r.pk, reason="no reason to keep it")
    lift_approve(user=ruth, restriction_id=r.pk)
    instrument.refresh_from_db()
    assert not instrument.restricted


def test_the_database_refuses_a_lift_or_reset_that_nobody_asked_for(
    rita: User, instrument: Instrument
) -> None:
    """The four-eyes CHECKs hold with no asker too (a NULL asker once made them unknown,
    which a CHECK lets through)."""
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from oversight.risk.services import kill_switch_engage

    r = restrict(user=rita, symbol=instrument.symbol, reason="wall-crossed")
    with pytest.raises(IntegrityError), transaction.atomic():
        Restriction.objects.filter(pk=r.pk).update(
            active=False, lifted_by=rita, lifted_at=timezone.now()
        )
    kill = kill_switch_engage(user=rita, scope_type="firm", reason="drill")
    from oversight.risk.models import KillSwitch

    with pytest.raises(IntegrityError), transaction.atomic():
        KillSwitch.objects.filter(pk=kill.pk).update(
            active=False, reset_by=rita, reset_at=timezone.now()
        )
    assert Restriction.objects.get(pk=r.pk).active and KillSwitch.objects.get(pk=kill.pk).active


def test_an_order_is_refused_if_its_instrument_was_restricted_after_it_was_read(
    alice: User, rita: User, instrument: Instrument
) -> None:
    """The ticket read the instrument before a risk manager restricted it: the order is
    refused under the row lock all the same, and the attempt is recorded."""
    from execution.models import ParentOrder

    stale = Instrument.objects.get(pk=instrument.pk)  # as the ticket's form loaded it
    restrict(user=rita, symbol=instrument.symbol, reason="wall-crossed")
    assert not stale.restricted
    with pytest.raises(ValidationError, match="RESTRICTED_INSTRUMENT"):
        submit(alice, stale)
    assert not ParentOrder.objects.exists()
    assert AuditRecord.objects.filter(action="order.refused").count() == 1


def test_a_lift_request_can_be_withdrawn_or_declined_and_the_list_stays(
    rita: User, ruth: User, instrument: Instrument
) -> None:
    r = restrict(user=ruth, symbol=instrument.symbol, reason="wall-crossed")
    lift_request(user=rita, restriction_id=r.pk, reason="cleared")
    with pytest.raises(ValidationError) as e:
        lift_decline(user=ruth, restriction_id=r.pk)
    assert "decline rita's lift" in str(e.value.message_dict["reason"])
    lift_decline(user=ruth, restriction_id=r.pk, reason="not announced yet")
    r.refresh_from_db()
    instrument.refresh_from_db()
    assert r.active and instrument.restricted and r.lift_requested_by is None
    with pytest.raises(ValidationError, match="first be asked for"):
        lift_approve(user=ruth, restriction_id=r.pk)
    lift_request(user=ruth, restriction_id=r.pk, reason="announced")
    lift_decline(user=ruth, restriction_id=r.pk)  # its author withdraws it
    with pytest.raises(ValidationError, match="nobody has asked"):
        lift_decline(user=rita, restriction_id=r.pk, reason="no")
    assert list(
        AuditRecord.objects.filter(action__startswith="restriction.lift")
        .order_by("pk")
        .values_list("action", "reason")
    ) == [
        ("restriction.lift.request", "cleared"),
        ("restriction.lift.decline", "not announced yet"),
        ("restriction.lift.request", "announced"),
        ("restriction.lift.withdraw", "withdrawn by ruth, who asked for it"),
    ]
