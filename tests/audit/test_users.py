"""Admins manage users through services that record before and after; nobody can lock
the desk out of administration; changes made any other way are recorded once, too."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from oversight.audit_chain import audit_chain_verify
from oversight.models import AuditRecord, RoleGrant
from oversight.services import user_create, user_deactivate, user_reactivate, user_role_set
from tests.personas import confirm_role

from .conftest import client_for, make_user

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-47"


def records_for(user: User) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(object_type="User", object_id=str(user.pk)))


def said(client: Client, url: str, data: dict[str, object]) -> list[str]:
    """POST, follow the redirect to the users page, and return the messages it shows."""
    resp = client.post(url, data, follow=True)
    assert resp.redirect_chain == [(reverse("user_list"), 302)] and resp.status_code == 200
    return [str(m) for m in resp.context["messages"]]


def groups(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def test_create_records_who_and_what(adam, rita) -> None:
    user = user_create(
        actor=adam,
        username=" carol ",
        password=PASSWORD,
        role="trader",
        reason="hire",
        request_id="req-7",
    )
    assert user.username == "carol" and user.check_password(PASSWORD) and user.is_active
    # No role until a second person confirms the one asked for (an authorization audit:
    # one admin made two risk managers and approved their own limit change with them).
    assert groups(user) == []
    rec, asked = records_for(user)  # once each: the safety net stood aside
    assert (rec.action, rec.actor_username, rec.actor_role, rec.request_id) == (
        "user.create",
        "adam",
        "admin",
        "req-7",
    )
    assert rec.before is None
    assert rec.after == {
        "username": "carol",
        "role": "",
        "is_active": True,
        "is_superuser": False,
    }
    assert "password" not in str(rec.after) and PASSWORD not in str(rec.after)
    assert (asked.action, asked.after["role"], asked.reason) == (
        "user.role_grant.request",
        "trader",
        "hire",
    )
    confirm_role(user, by=rita)
    assert groups(User.objects.get(pk=user.pk)) == ["trader"]
    confirmed = records_for(user)[-1]
    assert (confirmed.action, confirmed.actor_username) == ("user.role_grant.confirm", "rita")
    assert (confirmed.before["role"], confirmed.after["role"]) == ("", "trader")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"username": "Alice"}, "username"),  # taken, whatever the case
        ({"username": "bad name!"}, "username"),
        ({"username": "\u0430lice"}, "username"),  # a Cyrillic "a": reads as alice
        ({"username": "j\u00f6rg"}, "username"),  # ASCII only, so no name looks like another
        ({"username": ""}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "12345678901"}, "password"),
        ({"role": "superuser"}, "role"),
        ({"reason": " "}, "reason"),  # every user change says why (a trial's did not)
    ],
)
def test_create_refuses_bad_input(adam, alice, kwargs, field) -> None:
    args = {"username": "dave", "password": PASSWORD, "role": "trader", "reason": "hire"}
    args |= kwargs
    users = User.objects.count()
    with pytest.raises(ValidationError) as e:
        user_create(actor=adam, **args)
    assert field in e.value.message_dict
    assert User.objects.count() == users


def test_role_set_and_deactivation_record_before_and_after(adam, bob, rita) -> None:
    user_role_set(actor=adam, user=bob, role="risk_manager", reason="moved desks")
    assert groups(bob) == []  # the old role at once; the new one once confirmed
    confirm_role(bob, by=rita)
    assert groups(bob) == ["risk_manager"]
    user_deactivate(actor=adam, user=bob, reason="left the firm")
    bob.refresh_from_db()
    assert not bob.is_active
    user_reactivate(actor=adam, user=bob, reason="came back")
    bob.refresh_from_db()
    # Active again, but his role waits for a second person, as a new one does: one admin
    # could otherwise revive a risk manager's login and act through it (a trial).
    assert bob.is_active and groups(bob) == []
    confirm_role(bob, by=rita)
    assert groups(bob) == ["risk_manager"]
    mine = [r for r in records_for(bob) if r.actor_username == "adam"]
    assert [(r.action, r.reason) for r in mine] == [
        ("user.role_set", "moved desks"),
        ("user.role_grant.request", "moved desks"),
        ("user.deactivate", "left the firm"),
        ("user.reactivate", "came back"),
        ("user.role_set", "on hold until a second person confirms it: the login was reactivated"),
        ("user.role_grant.request", "the login was reactivated: came back"),
    ]
    role, _, off, on, held, _ = mine
    assert (role.before["role"], role.after["role"]) == ("trader", "")
    assert (off.before["is_active"], off.after["is_active"]) == (True, False)
    assert (on.before["is_active"], on.after["is_active"]) == (False, True)
    assert (held.before["role"], held.after["role"]) == ("risk_manager", "")
    assert audit_chain_verify().ok


def test_role_set_keeps_other_groups(adam, bob, rita) -> None:
    bob.groups.add(Group.objects.create(name="desk-emea"))
    user_role_set(actor=adam, user=bob, role="admin", reason="test")
    assert groups(bob) == ["desk-emea"]
    confirm_role(bob, by=rita)
    assert groups(bob) == ["admin", "desk-emea"]


def test_an_admin_cannot_lock_themselves_out(adam) -> None:
    for change in (
        lambda: user_deactivate(actor=adam, user=adam),
        lambda: user_role_set(actor=adam, user=adam, role="trader"),
    ):
        with pytest.raises(ValidationError):
            change()
    adam.refresh_from_db()
    assert adam.is_active and groups(adam) == ["admin"]


def test_the_last_active_admin_stays(adam) -> None:
    eve = make_user("eve", "admin")
    user_deactivate(actor=adam, user=eve, reason="test")
    # Now adam is the only active admin: a second admin acting on him is not possible
    # (eve is inactive), but a superuser without the admin role is.
    root = User.objects.create_superuser("root", password=PASSWORD)
    for change in (
        lambda: user_deactivate(actor=root, user=adam),
        lambda: user_role_set(actor=root, user=adam, role="trader"),
    ):
        with pytest.raises(ValidationError, match="only active admin"):
            change()
    user_reactivate(actor=adam, user=eve, reason="back")
    confirm_role(eve, by=root)  # her admin role was on hold until a second person confirmed
    user_role_set(actor=root, user=adam, role="trader", reason="test")  # eve is an admin again
    assert groups(adam) == []
    confirm_role(adam, by=eve)
    assert groups(adam) == ["trader"]


def test_only_admins_may_call_the_services(alice, rita, bob) -> None:
    for actor in (alice, rita):
        for change in (
            lambda a=actor: user_create(actor=a, username="x1", password=PASSWORD, role="admin"),
            lambda a=actor: user_role_set(actor=a, user=bob, role="admin"),
            lambda a=actor: user_deactivate(actor=a, user=bob),
        ):
            with pytest.raises(PermissionDenied):
                change()
    bob.refresh_from_db()
    assert bob.is_active and groups(bob) == ["trader"]


def test_no_op_changes_are_refused(adam, bob) -> None:
    with pytest.raises(ValidationError, match="already a trader"):
        user_role_set(actor=adam, user=bob, role="trader")
    with pytest.raises(ValidationError, match="already active"):
        user_reactivate(actor=adam, user=bob)
    user_deactivate(actor=adam, user=bob, reason="left")
    with pytest.raises(ValidationError, match="say why: a reactivation is recorded"):
        user_reactivate(actor=adam, user=bob, reason="")


# -- the pages ---------------------------------------------------------------------------


def test_users_page_lists_role_and_status(adam, alice, rita) -> None:
    user_deactivate(actor=adam, user=alice, reason="test")
    resp = client_for(adam).get(reverse("user_list"))
    rows = {r["u"].username: (r["role"], r["u"].is_active) for r in resp.context["rows"]}
    assert rows == {
        "adam": ("admin", True),
        "alice": ("trader", False),
        "rita": ("risk_manager", True),
    }
    html = resp.content.decode()
    assert "Reactivate" in html and "Deactivate rita" in html
    assert f'action="/users/{adam.pk}/active/"' not in html  # not for oneself


def test_create_through_the_page(adam, rita) -> None:
    from oversight.models import RoleGrant

    c = client_for(adam)
    form = {"username": "carol", "password": PASSWORD, "role": "risk_manager", "reason": "hire"}
    resp = c.post(reverse("user_new"), form, follow=True)
    assert [str(m) for m in resp.context["messages"]] == [
        "Created carol; the role of risk manager waits for another admin or a risk manager "
        "to confirm it (Roles)"
    ]
    assert "risk manager awaiting confirmation" in resp.content.decode()
    carol = User.objects.get(username="carol")
    assert groups(carol) == []
    assert records_for(carol)[0].reason == "hire"
    # The admin who asked cannot confirm it (an authorization audit: one admin made two
    # risk managers and approved a limit with both); a risk manager does, on the Roles page.
    grant = RoleGrant.objects.get(user=carol)
    page = c.get(reverse("role_grants")).content.decode()
    row = page.split(f'id="grant-{grant.pk}"')[1].split("</tr>")[0]
    assert "Withdraw" in row and 'value="confirm"' not in row
    decide = reverse("role_grant_decide", args=[grant.pk])
    c.post(decide, {"decision": "confirm", "note": "me"})
    assert groups(carol) == []
    assert AuditRecord.objects.filter(action="user.role_grant.confirm.refused").exists()
    # Not yet by a risk manager either: the password is still the one the admin typed,
    # so the role would be the admin's to use (a trial).
    early = client_for(rita).post(decide, {"decision": "confirm", "note": "HR says so"},
                                  follow=True)  # fmt: skip
    assert "carol has not chosen their own password yet" in early.content.decode()
    assert groups(carol) == []
    # Carol logs in with what the admin typed, and must choose her own before anything
    # else: the admin does not go on knowing a working password (an authorization audit:
    # an admin made two risk managers whose passwords they knew and approved with both).
    tab = Client()
    assert tab.login(username="carol", password=PASSWORD)
    page = tab.get(reverse("risk_console"))
    assert page.status_code == 302 and page["Location"] == reverse("password_change")
    mine = "carol-chose-this-one-31"
    tab.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password": mine, "new_password_again": mine},
    )
    assert not Client().login(username="carol", password=PASSWORD)
    done = client_for(rita).post(decide, {"decision": "confirm", "note": "checked with her"},
                                 follow=True)  # fmt: skip
    assert "carol is now a risk manager" in done.content.decode()
    assert groups(carol) == ["risk_manager"]
    grant.refresh_from_db()
    assert (grant.status, grant.decided_by, grant.decision_note) == (
        "CONFIRMED",
        rita,
        "checked with her",
    )
    assert tab.get(reverse("risk_console")).status_code == 200


def test_bad_create_shows_messages_by_the_fields(adam, alice) -> None:
    resp = client_for(adam).post(
        reverse("user_new"),
        {"username": "alice", "password": "short", "role": "trader", "reason": "hire"},
    )
    assert resp.status_code == 400
    html = resp.content.decode()
    assert "alice is taken" in html and "too short" in html
    assert 'aria-invalid="true"' in html and "The user was not created" in html


def test_role_change_and_deactivation_through_the_page(adam, bob, rita) -> None:
    c = client_for(adam)
    bob_client = client_for(bob)
    assert bob_client.get(reverse("blotter")).status_code == 200
    role = {"role": "risk_manager", "reason": "x"}
    assert said(c, reverse("user_role", args=[bob.pk]), role) == [
        "bob's role is taken away now; risk manager waits for another admin or a risk "
        "manager to confirm it for bob (Roles)"
    ]
    assert bob_client.get(reverse("blotter")).status_code == 403  # the trader role is gone
    confirm_role(bob, by=rita)
    off = {"active": "0", "reason": "left"}
    assert said(c, reverse("user_active", args=[bob.pk]), off) == ["bob deactivated"]
    # Their open session ends at its next request; they cannot log in again.
    assert bob_client.get(reverse("blotter")).status_code == 302
    assert not Client().login(username="bob", password="pw-bob")
    on = {"active": "1", "reason": "back"}
    (back,) = said(c, reverse("user_active", args=[bob.pk]), on)
    assert back.startswith(
        "bob reactivated. Their role (risk manager) is on hold until a second person confirms "
        "it (role grant "
    ), back
    bob.refresh_from_db()
    assert bob.is_active and groups(bob) == []
    confirm_role(bob, by=rita)
    assert groups(bob) == ["risk_manager"]
    # The session did not come back with the account (an authorization audit: it did,
    # with no login): deactivating deleted it.
    assert bob_client.get(reverse("risk_console")).status_code == 302
    deactivated = AuditRecord.objects.get(action="user.deactivate", object_id=str(bob.pk))
    assert deactivated.after["sessions_ended"] == 1


def test_deactivation_ends_every_session_of_theirs_and_no_one_elses(adam, bob, alice) -> None:
    phone, desk = client_for(bob), client_for(bob)
    other = client_for(alice)
    user_deactivate(actor=adam, user=bob, reason="left the firm")
    user_reactivate(actor=adam, user=bob, reason="rehired")
    for c in (phone, desk):
        assert c.get(reverse("blotter")).status_code == 302
    assert other.get(reverse("blotter")).status_code == 200


def test_the_page_refuses_self_lockout_with_a_message(adam) -> None:
    c = client_for(adam)
    assert said(c, reverse("user_active", args=[adam.pk]), {"active": "0"}) == [
        "adam: you cannot deactivate yourself"
    ]
    assert said(c, reverse("user_role", args=[adam.pk]), {"role": "trader"}) == [
        "adam: you cannot remove your own admin role"
    ]
    adam.refresh_from_db()
    assert adam.is_active and groups(adam) == ["admin"]


def test_bad_row_input_is_a_message_not_an_error(adam, bob) -> None:
    c = client_for(adam)
    assert said(c, reverse("user_role", args=[bob.pk]), {"role": "god"}) == [
        "bob: role: Select a valid choice. god is not one of the available choices."
    ]
    assert said(c, reverse("user_active", args=[bob.pk]), {"active": "x"}) == [
        "bob: active: Select a valid choice. x is not one of the available choices."
    ]
    # A reason too long is refused as such, whichever form it came with; never cut short.
    long = {"reason": "r" * 501}
    assert said(c, reverse("user_role", args=[bob.pk]), {"role": "admin", **long}) == [
        "bob: reason: Ensure this value has at most 500 characters (it has 501)."
    ]
    assert said(c, reverse("user_active", args=[bob.pk]), {"active": "0", **long}) == [
        "bob: reason: Ensure this value has at most 500 characters (it has 501)."
    ]
    assert said(c, reverse("user_desk", args=[bob.pk]), {"desk": "EQ-2", **long}) == [
        "bob: reason: at most 500 characters, got 501"
    ]
    assert c.post(reverse("user_role", args=[99999]), {"role": "admin"}).status_code == 404
    bob.refresh_from_db()
    assert bob.is_active and groups(bob) == ["trader"]


# -- the safety net: changes outside the services --------------------------------------


def test_changes_made_in_the_shell_are_recorded_once(adam) -> None:
    zed = User.objects.create_user("zed", password=PASSWORD)
    zed.groups.add(Group.objects.get(name="trader"))
    zed.is_superuser = True
    zed.save()
    zed.last_name = "Unwatched"
    zed.save()  # no watched flag changed: nothing to record
    zed.groups.remove(Group.objects.get(name="trader"))
    Group.objects.get(name="admin").user_set.add(zed)  # from the group's side
    zed.groups.clear()
    recs = records_for(zed)
    assert [(r.action, r.actor_role, r.before, r.after) for r in recs] == [
        ("user.create", "system", None, {"username": "zed", "is_active": True, "is_superuser": False}),
        ("user.groups_set", "system", {"groups": []}, {"groups": ["trader"]}),
        (
            "user.flags_set",
            "system",
            {"is_active": True, "is_superuser": False},
            {"is_active": True, "is_superuser": True},
        ),
        ("user.groups_set", "system", {"groups": ["trader"]}, {"groups": []}),
        ("user.groups_set", "system", {"groups": []}, {"groups": ["admin"]}),
        ("user.groups_set", "system", {"groups": ["admin"]}, {"groups": []}),
    ]  # fmt: skip
    assert all(r.reason.startswith("changed outside the user pages") for r in recs)
    # A service's change is recorded by the service alone.
    user_role_set(actor=adam, user=zed, role="trader", reason="test")
    user_deactivate(actor=adam, user=zed, reason="test")
    # (zed has no role left to take away: only the request is recorded; the deactivation
    # voids it.)
    assert [r.action for r in records_for(zed)[len(recs) :]] == [
        "user.role_grant.request",
        "user.role_grant.void",
        "user.deactivate",
    ]


def test_a_login_is_not_a_user_change(alice) -> None:
    before = AuditRecord.objects.count()
    assert Client().login(username="alice", password="pw-alice")
    assert list(AuditRecord.objects.values_list("action", flat=True)[before:]) == ["auth.login"]


def test_an_admin_puts_a_trader_on_a_desk_and_its_limits_apply(adam, bob) -> None:
    """The desk is what desk limits and kill switches see; set from the users page,
    audited with a reason, a new desk made by naming it."""
    from oversight.risk.models import DeskMembership
    from oversight.risk.pretrade import desk_of
    from oversight.services import user_desk_set

    c = client_for(adam)
    page = c.get(reverse("user_list")).content.decode()
    assert f'action="{reverse("user_desk", args=[bob.pk])}"' in page
    resp = c.post(reverse("user_desk", args=[bob.pk]), {"desk": "EQ-2", "reason": "joins"},
                  follow=True)  # fmt: skip
    assert "bob is now on desk EQ-2" in resp.content.decode()
    assert desk_of(bob.pk) == "EQ-2"
    rec = AuditRecord.objects.filter(action="user.desk_set").latest("seq")
    assert (rec.before, rec.after, rec.reason) == ({"desk": ""}, {"desk": "EQ-2"}, "joins")
    # A refused change comes back as typed, on its row, once.
    page = c.post(reverse("user_desk", args=[bob.pk]), {"desk": "<b>", "reason": "moving on"},
                  follow=True).content.decode()  # fmt: skip
    assert f'id="desk-{bob.pk}" name="desk" value="&lt;b&gt;"' in page
    assert f'id="desk-reason-{bob.pk}" name="reason" value="moving on"' in page
    again = c.get(reverse("user_list")).content.decode()
    assert f'id="desk-{bob.pk}" name="desk" value="EQ-2"' in again
    for data, says in [
        ({"desk": "EQ-2", "reason": "again"}, "on EQ-2 already"),
        ({"desk": "EQ-3", "reason": ""}, "say why"),
        ({"desk": "<b>", "reason": "x"}, "a desk name is 1 to 32 letters"),
        # Which letters, said: a trial's "Ünï" was refused by a rule that said "letters".
        ({"desk": "Ünï", "reason": "x"}, "letters A-Z or a-z"),
    ]:
        text = c.post(reverse("user_desk", args=[bob.pk]), data, follow=True).content.decode()
        assert says in text
    user_desk_set(actor=adam, user=bob, desk="", reason="left")
    assert not DeskMembership.objects.filter(user=bob).exists()
    with pytest.raises(PermissionDenied):
        user_desk_set(actor=bob, user=bob, desk="EQ-1", reason="me")


def test_a_desk_is_one_desk_whatever_the_case_and_a_long_name_is_refused_not_cut(
    adam, alice, bob
) -> None:
    """A trial put one trader on "eq-1" and another on "EQ-1": two desks, so EQ-1's limits
    and kill switch missed one of them. A review's 75-character name was cut to "EQ-9"."""
    from oversight.risk.models import Desk
    from oversight.risk.pretrade import desk_of
    from oversight.risk.services import scope_check
    from oversight.services import user_desk_set

    user_desk_set(actor=adam, user=alice, desk="EQ-1", reason="joins")
    c = client_for(adam)
    resp = c.post(reverse("user_desk", args=[bob.pk]), {"desk": "eq-1", "reason": "joins"},
                  follow=True)  # fmt: skip
    assert "bob is now on desk EQ-1" in resp.content.decode()
    assert desk_of(bob.pk) == desk_of(alice.pk) == "EQ-1"
    assert list(Desk.objects.values_list("name", flat=True)) == ["EQ-1"]
    assert scope_check("desk", "eq-1", kill=True) == "EQ-1"
    with pytest.raises(ValidationError, match="on EQ-1 already"):
        user_desk_set(actor=adam, user=bob, desk="Eq-1", reason="again")
    long = "EQ-9" + " " * 70 + "X"
    text = c.post(reverse("user_desk", args=[bob.pk]), {"desk": long, "reason": "x"},
                  follow=True).content.decode()  # fmt: skip
    assert "a desk name is 1 to 32 letters" in text
    assert desk_of(bob.pk) == "EQ-1"


def test_deactivating_a_trader_with_working_orders_says_they_still_work(adam, alice) -> None:
    from execution.models import ParentOrder
    from tests.personas import demo_instrument

    instrument = demo_instrument("demo-midcap-buy")

    for status in ("WORKING", "SUSPENDED", "SUSPENDED", "BLOCKED"):
        ParentOrder.objects.create(
            owner=alice, instrument=instrument, side="buy", quantity=100, start_minute=0,
            end_minute=60, strategy="twap", status=status,
        )  # fmt: skip
    off = {"active": "0", "reason": "left the firm"}
    # Said as they are: "3 still working" read 1 working and 2 suspended (a trial); a
    # blocked one counted too (a trial: a kill on the trader cancelled one not counted).
    assert said(client_for(adam), reverse("user_active", args=[alice.pk]), off) == [
        "alice deactivated",
        "alice has 4 open orders (1 working, 2 suspended, 1 blocked) and no login to control "
        "them: a risk manager can stop them with a kill switch on trader alice",
    ]
    # The risk managers are told, on their console: an admin cannot engage a kill switch
    # (a trial's order went on filling with only the admin told).
    from oversight.risk.models import RiskException

    raised = RiskException.objects.get(kind="ORDERS_WITHOUT_TRADER")
    assert raised.severity == RiskException.CRITICAL
    assert (raised.scope_type, raised.scope_key) == ("trader", "alice")
    assert raised.title == "4 open orders of alice, who can no longer control them"
    assert raised.detail.startswith("alice was deactivated; orders ")
    assert "kill switch on trader alice" in raised.suggested_action


def test_a_trader_moved_to_another_role_with_working_orders_is_warned_of(adam, alice) -> None:
    """Only an order's trader controls it: a trial moved a trader to risk manager and her
    working order could be neither paused nor cancelled by her, with no word of it."""
    from execution.models import ParentOrder
    from tests.personas import demo_instrument

    instrument = demo_instrument("demo-midcap-buy")
    ParentOrder.objects.create(
        owner=alice, instrument=instrument, side="buy", quantity=100, start_minute=0,
        end_minute=60, strategy="twap", status="WORKING",
    )  # fmt: skip
    move = {"role": "risk_manager", "reason": "moves to risk"}
    assert said(client_for(adam), reverse("user_role", args=[alice.pk]), move) == [
        "alice's role is taken away now; risk manager waits for another admin or a risk "
        "manager to confirm it for alice (Roles)",
        "alice has 1 open order (1 working) and cannot control them now: a risk manager can "
        "stop them with a kill switch on trader alice",
    ]
    from oversight.risk.models import RiskException

    raised = RiskException.objects.get(kind="ORDERS_WITHOUT_TRADER")
    assert raised.title == "1 open order of alice, who can no longer control them"
    assert raised.detail.startswith("alice no longer trades; orders ")


def test_a_desk_move_cannot_lift_a_desk_kill_nor_carry_open_orders_off_it(
    adam, alice, bob, rita
) -> None:
    """A trial: with a kill switch on EQ-1, one admin moved its trader to EQ-2 and the
    trader traded again, the reset's four eyes skipped; the trader's open orders' exposure
    went with them."""
    from execution.models import ParentOrder
    from oversight.risk.pretrade import desk_of
    from oversight.risk.services import kill_switch_engage
    from oversight.services import user_desk_set
    from tests.personas import demo_instrument
    from tests.web.conftest import make_order

    user_desk_set(actor=adam, user=alice, desk="EQ-1", reason="joins")
    kill = kill_switch_engage(user=rita, scope_type="desk", scope_key="EQ-1", reason="runaway")
    with pytest.raises(ValidationError, match=rf"EQ-1 has an active kill switch \(#{kill.pk}\)"):
        user_desk_set(actor=adam, user=alice, desk="EQ-2", reason="move desk")
    with pytest.raises(ValidationError, match="active kill switch"):
        user_desk_set(actor=adam, user=alice, desk="", reason="off desks")
    assert desk_of(alice.pk) == "EQ-1"
    kill.active = False  # as an approved reset leaves it
    kill.reset_requested_by, kill.reset_by = rita, adam
    kill.save()
    inst = demo_instrument()
    order = make_order(alice, inst)
    with pytest.raises(ValidationError, match="alice has 1 open order on EQ-1"):
        user_desk_set(actor=adam, user=alice, desk="EQ-2", reason="move desk")
    ParentOrder.objects.filter(pk=order.pk).update(status="FILLED")
    user_desk_set(actor=adam, user=alice, desk="EQ-2", reason="move desk")
    assert desk_of(alice.pk) == "EQ-2"
    # From no desk too: an order entered on none stays on none, so a desk kill would not
    # stop it while its trader sat on the desk (a review).
    assert desk_of(bob.pk) == ""
    make_order(bob, inst)
    with pytest.raises(ValidationError, match="bob has 1 open order on no desk"):
        user_desk_set(actor=adam, user=bob, desk="EQ-2", reason="joins")


def test_a_desk_move_cannot_lift_the_desks_limits(adam, alice) -> None:
    """An authorization audit: a desk's order limit tightened to 100 shares; one admin moved
    its trader to a new desk with no limits and the trader sold 900. Loosening a desk's
    limits takes two risk managers; a move may only keep them or tighten them."""
    from oversight.risk.pretrade import desk_of
    from oversight.services import user_desk_set
    from tests.personas import set_limit

    user_desk_set(actor=adam, user=alice, desk="EQ-B", reason="joins")
    set_limit("max_order_qty", 100, "desk", "EQ-B")
    set_limit("daily_notional", 2_500_000, "desk", "EQ-B")
    set_limit("max_order_qty", 1_000, "desk", "EQ-C")  # looser
    set_limit("daily_notional", 1_000_000, "desk", "EQ-C")  # tighter
    for desk, says, how in (
        (
            "",
            "daily_notional 2,500,000 (no desk: none); max_order_qty 100 (no desk: none).",
            "they loosen EQ-B's first; or put alice on a desk that holds them",
        ),
        # Only what the other desk holds looser is named.
        (
            "EQ-C",
            "would lift EQ-B's limits for them: max_order_qty 100 (EQ-C: 1,000).",
            "they set EQ-C's limits at least as tight first (a new desk's may be set before "
            "anyone is on it), or loosen EQ-B's",
        ),
    ):
        with pytest.raises(ValidationError) as refused:
            user_desk_set(actor=adam, user=alice, desk=desk, reason="reorg")
        text = " ".join(refused.value.message_dict["desk"])
        assert says in text, text
        assert text.endswith(f"Lifting limits takes two risk managers: {how}"), text
    assert desk_of(alice.pk) == "EQ-B"
    # A new desk is set up by a risk manager setting its limits before anyone is on it
    # (copying the old desk's gave split desks a budget each, doubling it: a trial).
    from oversight.risk.services import scope_check

    with pytest.raises(ValidationError) as refused:
        user_desk_set(actor=adam, user=alice, desk="EQ-Z", reason="new desk")
    assert "(EQ-Z: none)" in " ".join(refused.value.message_dict["desk"])
    assert scope_check("desk", "EQ-Z") == "EQ-Z"  # a limit may be set for it now
    with pytest.raises(ValidationError, match="there is no desk 'EQ-Z'"):
        scope_check("desk", "EQ-Z", kill=True)  # a kill switch needs a desk that is there
    set_limit("max_order_qty", 100, "desk", "EQ-Z")
    set_limit("daily_notional", 2_000_000, "desk", "EQ-Z")
    user_desk_set(actor=adam, user=alice, desk="EQ-Z", reason="new desk")
    assert desk_of(alice.pk) == "EQ-Z"
    # Held as tight (equal) or tighter everywhere: the move goes ahead.
    set_limit("max_order_qty", 100, "desk", "EQ-C")
    user_desk_set(actor=adam, user=alice, desk="EQ-C", reason="reorg")
    assert desk_of(alice.pk) == "EQ-C"


def test_a_role_grant_takes_a_second_person_who_is_neither_the_asker_nor_its_login(
    adam, alice, bob, rita
) -> None:
    """An authorization audit: one admin made two risk managers of logins they controlled
    and approved their own limit change with them."""
    from oversight.models import RoleGrant
    from oversight.services import role_grant_confirm, role_grant_decline

    eve = make_user("eve", "admin")
    user_role_set(actor=adam, user=bob, role="risk_manager", reason="moves to risk")
    grant = RoleGrant.objects.get(user=bob, status="PENDING")
    for who, says in ((adam, "you asked for this role"), (bob, "confirm a role")):
        with pytest.raises((ValidationError, PermissionDenied), match=says):
            role_grant_confirm(user=who, grant_id=grant.pk)
    with pytest.raises(PermissionDenied):
        role_grant_confirm(user=alice, grant_id=grant.pk)  # a trader is no second person
    # A decline says why; the asker's withdrawal need not.
    with pytest.raises(ValidationError, match="say why you decline"):
        role_grant_decline(user=rita, grant_id=grant.pk)
    assert role_grant_decline(user=adam, grant_id=grant.pk).status == "DECLINED"
    assert groups(bob) == []
    # Asked again, and the asker loses the admin role before it is confirmed: it lapses.
    user_role_set(actor=adam, user=bob, role="risk_manager", reason="again")
    again = RoleGrant.objects.get(user=bob, status="PENDING")
    user_role_set(actor=eve, user=adam, role="trader", reason="leaves operations")
    with pytest.raises(ValidationError, match=r"adam asked for role grant .* has not held"):
        role_grant_confirm(user=rita, grant_id=again.pk)
    assert groups(bob) == []
    # Lapsed for good, off the waiting list (it stayed there with working buttons: a trial).
    again.refresh_from_db()
    assert again.status == "VOID" and again.decision_note.startswith("lapsed: adam asked")
    # A later request replaces an undecided one, and says so in the trail.
    user_role_set(actor=eve, user=bob, role="admin", reason="ops, first")
    first = RoleGrant.objects.get(user=bob, status="PENDING")
    user_role_set(actor=eve, user=bob, role="trader", reason="back to the desk, then")
    first.refresh_from_db()
    assert first.status == "VOID"
    void = AuditRecord.objects.filter(action="user.role_grant.void").latest("seq")
    latest = RoleGrant.objects.get(user=bob, status="PENDING")
    assert void.reason == f"replaced by role grant {latest.pk}, for trader, asked by eve"
    role_grant_confirm(user=rita, grant_id=RoleGrant.objects.get(user=bob, status="PENDING").pk)
    assert groups(bob) == ["trader"]
    refused = AuditRecord.objects.filter(action="user.role_grant.confirm.refused")
    assert sorted(r.actor_username for r in refused) == ["adam", "rita"]
    # A login deactivated with a role waiting: the role is not confirmed on its return.
    user_role_set(actor=eve, user=bob, role="risk_manager", reason="to risk")
    user_deactivate(actor=eve, user=bob, reason="leave")
    assert not RoleGrant.objects.filter(user=bob, status="PENDING").exists()
    # And one nobody decided in a week lapses.
    from datetime import timedelta

    from django.utils import timezone

    user_reactivate(actor=eve, user=bob, reason="back")
    user_role_set(actor=eve, user=bob, role="risk_manager", reason="to risk, again")
    RoleGrant.objects.filter(user=bob, status="PENDING").update(
        requested_at=timezone.now() - timedelta(days=8)
    )
    stale = RoleGrant.objects.get(user=bob, status="PENDING")
    with pytest.raises(ValidationError, match="is void, not pending"):
        role_grant_confirm(user=rita, grant_id=stale.pk)
    stale.refresh_from_db()
    assert stale.decision_note == "expired: not confirmed within 7 days"


@pytest.mark.parametrize(("persona", "status"), [("alice", 403), ("rita", 200), ("adam", 200)])
def test_the_roles_page_is_for_admins_and_risk_managers(request, persona, status) -> None:
    resp = client_for(request.getfixturevalue(persona)).get(reverse("role_grants"))
    assert resp.status_code == status


def test_a_login_with_no_role_yet_is_told_why(adam) -> None:
    """A trial's new login met a bare 403 whose "back to the start" led to the same 403."""
    user_create(actor=adam, username="newbie", password=PASSWORD, role="trader", reason="hire")
    from oversight.models import PasswordChangeDue

    PasswordChangeDue.objects.all().delete()  # chosen already
    page = client_for(User.objects.get(username="newbie")).get(reverse("blotter"))
    assert page.status_code == 403
    assert (
        "You have no role yet: trader, asked for by adam, waits for another admin or a risk "
        "manager to confirm it"
    ) in page.content.decode()


def test_what_nobody_decided_in_time_lapses_on_a_schedule_not_only_when_read(
    adam, bob, rita
) -> None:
    """A review: a role grant's seven days were checked only when the Roles page or a
    confirmation read it, and a limit request's lapse only in a market worker's
    housekeeping. Celery beat runs the lapse every minute."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from oversight.models import RoleGrant
    from oversight.risk.models import LimitRequest
    from oversight.risk.services import limit_change_request
    from oversight.tasks import requests_expire_scheduled

    entry = settings.CELERY_BEAT_SCHEDULE["requests-expire"]
    assert entry["task"] == requests_expire_scheduled.name and entry["schedule"] <= 60
    # On their own queue, which `run` gives its own worker: behind the markets' long tasks
    # a scheduled run expired unrun (a review).
    from oversight.celery import app

    for task in (requests_expire_scheduled.name, "oversight.audit_check_scheduled"):
        assert app.amqp.router.route({}, task)["queue"].name == "oversight"
    assert app.amqp.router.route({}, "execution.market_session_run")["queue"].name == "celery"
    from tests.personas import set_limit

    user_role_set(actor=adam, user=bob, role="risk_manager", reason="moves to risk")
    set_limit("max_order_qty", 10_000)
    req = limit_change_request(user=rita, scope_type="firm", scope_key="",
                               metric="max_order_qty", new_value=50_000, reason="loosen")  # fmt: skip
    assert req.status == LimitRequest.PENDING
    assert requests_expire_scheduled() == {
        "role_grants": 0, "limit_requests": 0, "blocked_orders": 0
    }  # fmt: skip
    RoleGrant.objects.filter(user=bob, status="PENDING").update(
        requested_at=timezone.now() - timedelta(days=8)
    )
    LimitRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now())
    assert requests_expire_scheduled() == {
        "role_grants": 1, "limit_requests": 1, "blocked_orders": 0
    }  # fmt: skip
    grant = RoleGrant.objects.get(user=bob)
    assert (grant.status, grant.decision_note) == (
        RoleGrant.VOID, "expired: not confirmed within 7 days"
    )  # fmt: skip
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.EXPIRED
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"user.role_grant.void", "limit.request.expired"} <= actions


def test_the_roles_link_counts_the_grants_waiting_for_whoever_reads_it(adam, bob, rita) -> None:
    """A trial: nothing told a second person that a role waited for them."""
    import re

    from oversight.models import RoleGrant
    from oversight.services import role_grant_confirm

    def waiting(user) -> int:
        page = client_for(user).get(reverse("user_list" if user is adam else "risk_console"))
        found = re.search(r'data-roles-waiting="(\d+)"', page.content.decode())
        return int(found[1]) if found else 0

    assert (waiting(rita), waiting(adam)) == (0, 0)
    user_role_set(actor=adam, user=bob, role="risk_manager", reason="moves to risk")
    assert waiting(rita) == 1
    assert waiting(adam) == 0  # his own asking is not for him to confirm
    role_grant_confirm(user=rita, grant_id=RoleGrant.objects.get(user=bob, status="PENDING").pk)
    assert waiting(rita) == 0


def test_a_fields_messages_share_the_one_id_its_input_names(adam) -> None:
    """A trial: a weak password's three messages were three elements with the id its
    input's aria-errormessage names; ids are unique, so two were never read out."""
    form = {"username": "carol", "password": "123", "role": "trader", "reason": "hire"}
    page = client_for(adam).post(reverse("user_new"), form).content.decode()
    assert page.count('id="err-password"') == 1
    message = page.split('id="err-password">')[1].split("</small>")[0]
    assert message.count(".") >= 2, message  # every message, in the one element
    assert 'aria-errormessage="err-password"' in page


def test_fewer_than_two_risk_managers_is_said_on_the_console_and_the_users_page(
    adam, rita, alice, django_capture_on_commit_callbacks
) -> None:
    """A trial: one admin took the role away from every risk manager (at once, the safe
    direction) and nothing said that no four-eyes approval could now be given."""
    from oversight.risk.models import RiskException
    from oversight.services import risk_managers_active
    from tests.personas import make_user

    make_user("rob", "risk_manager")
    assert risk_managers_active() == 2
    page = client_for(adam).get(reverse("user_list")).content.decode()
    assert "data-four-eyes-short" not in page
    with django_capture_on_commit_callbacks(execute=True):
        user_role_set(actor=adam, user=rita, role="trader", reason="moves to the desk")
    e = RiskException.objects.get(kind="FOUR_EYES_SHORT")
    assert (e.severity, e.title) == (
        "WARNING", "1 active risk manager: four-eyes approvals cannot be given"
    )  # fmt: skip
    page = client_for(adam).get(reverse("user_list")).content.decode()
    assert 'data-four-eyes-short="1"' in page
    with django_capture_on_commit_callbacks(execute=True):
        user_deactivate(actor=adam, user=User.objects.get(username="rob"), reason="left")
    e.refresh_from_db()
    assert e.severity == "CRITICAL" and e.title.startswith("0 active risk managers")
    # A trader's deactivation says nothing of it.
    n = RiskException.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        user_deactivate(actor=adam, user=alice, reason="left")
    assert RiskException.objects.count() == n
    # Two confirmed again: the open alert says so, for a person to resolve (a review: it
    # stood as "0 active risk managers" for good).
    eve = make_user("eve", "admin")
    rob = User.objects.get(username="rob")
    with django_capture_on_commit_callbacks(execute=True):
        user_reactivate(actor=adam, user=rob, reason="back")
        confirm_role(rob, by=eve)
    with django_capture_on_commit_callbacks(execute=True):
        user_role_set(actor=adam, user=rita, role="risk_manager", reason="back to risk")
        confirm_role(rita, by=eve)
    e.refresh_from_db()
    assert (e.severity, e.status, e.title) == (
        "WARNING", "OPEN", "2 active risk managers again: four-eyes approvals can be given"
    )  # fmt: skip


def test_a_trader_on_no_desk_is_flagged_on_the_users_page(adam, alice, rita) -> None:
    """A trial made a trader with no desk: their orders escaped the desk's limits and
    would escape a desk kill switch, and nothing said so."""
    from oversight.services import user_desk_set

    def flagged(user: User) -> bool:
        page = client_for(adam).get(reverse("user_list")).content.decode()
        row = page.split(f'id="user-{user.pk}"')[1].split("</tr>")[0]
        return 'data-field="no-desk"' in row

    assert flagged(alice)  # a trader, on no desk
    assert not flagged(rita)  # a risk manager needs none
    user_desk_set(actor=adam, user=alice, desk="EQ-1", reason="joins")
    assert not flagged(alice)
    carol = user_create(
        actor=adam, username="carol", password=PASSWORD, role="trader", reason="hire"
    )
    assert flagged(carol)  # her trader role awaits confirmation: on no desk still


def test_a_reset_of_a_login_whose_role_awaits_confirmation_asks_for_it_again(adam, rita) -> None:
    """eve asked for carol's risk manager role; adam then set carol's password. eve's
    request stood, so rita could confirm it and adam log in with the role (a review): it
    is asked for again, by adam, who then cannot confirm it."""
    from oversight.models import RoleGrant
    from oversight.roles import FourEyesRefused
    from oversight.services import role_grant_confirm, user_password_reset

    eve = make_user("eve", "admin")
    carol = user_create(
        actor=eve, username="carol", password=PASSWORD, role="risk_manager", reason="hire"
    )
    first = RoleGrant.objects.get(user=carol, status=RoleGrant.PENDING)
    user_password_reset(actor=adam, user=carol, password=PASSWORD + "x", reason="forgot")
    first.refresh_from_db()
    assert first.status == RoleGrant.VOID
    again = RoleGrant.objects.get(user=carol, status=RoleGrant.PENDING)
    assert (again.role, again.requested_by) == ("risk_manager", adam)
    assert again.reason == "its password was set by an admin: forgot"
    with pytest.raises(FourEyesRefused):
        role_grant_confirm(user=adam, grant_id=again.pk, note="me")
    confirm_role(carol, by=rita)
    assert groups(carol) == ["risk_manager"]


def test_a_superuser_cannot_leave_the_firm_without_an_admin_by_a_reset(adam) -> None:
    from oversight.services import user_password_reset

    root = User.objects.create_superuser("root", password=PASSWORD)
    with pytest.raises(ValidationError, match="only active admin"):
        user_password_reset(actor=root, user=adam, password=PASSWORD + "x", reason="locked")
    adam.refresh_from_db()
    assert groups(adam) == ["admin"]


def test_the_four_eyes_alert_is_titled_as_things_are_now(
    adam, rita, django_capture_on_commit_callbacks
) -> None:
    """Short, staffed again, then short again: the open alert says 1, not "2 again"
    (a review)."""
    from oversight.risk.models import RiskException

    rob = make_user("rob", "risk_manager")
    eve = make_user("eve", "admin")
    with django_capture_on_commit_callbacks(execute=True):
        user_role_set(actor=adam, user=rita, role="trader", reason="moves")
    with django_capture_on_commit_callbacks(execute=True):
        user_role_set(actor=adam, user=rita, role="risk_manager", reason="back")
        confirm_role(rita, by=eve)
    e = RiskException.objects.get(kind="FOUR_EYES_SHORT")
    assert e.title.startswith("2 active risk managers again")
    with django_capture_on_commit_callbacks(execute=True):
        user_role_set(actor=adam, user=rob, role="trader", reason="moves")
    e.refresh_from_db()
    assert e.title == "1 active risk manager: four-eyes approvals cannot be given"


def test_the_roles_page_shows_the_desk_a_new_trader_will_count_on(adam, rita) -> None:
    """A trial confirmed a new trader on no desk, whose order then passed the desk's
    tighter limit: the one confirming sees the desk, or that there is none."""
    from oversight.services import user_create, user_desk_set

    tina = user_create(actor=adam, username="tina", password=PASSWORD, role="trader", reason="hire")
    tom = user_create(actor=adam, username="tom", password=PASSWORD, role="trader", reason="hire")
    user_desk_set(actor=adam, user=tom, desk="EQ-1", reason="his desk")
    page = client_for(rita).get(reverse("role_grants")).content.decode()

    def desk_cell(user: User) -> str:
        grant = RoleGrant.objects.get(user=user, status="PENDING")
        row = page.split(f'id="grant-{grant.pk}"')[1].split("</tr>")[0]
        return row.split('data-field="desk">')[1].split("</td>")[0]

    assert "no desk" in desk_cell(tina) and "desk kill switches will not cover" in desk_cell(tina)
    assert desk_cell(tom) == "EQ-1"
