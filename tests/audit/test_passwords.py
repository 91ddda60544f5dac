"""Passwords: an admin's reset of another user's, and everyone's change of their own. Every
session under the old password ends; the change is audited, the password never."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from oversight.models import AuditRecord
from oversight.services import user_password_change, user_password_reset
from tests.personas import confirm_role, ruth, set_limit

__all__ = ["ruth"]

from .conftest import client_for

pytestmark = pytest.mark.django_db
NEW = "a-new-long-password-91"


def actions_on(user: User) -> list[str]:
    """What the trail says was done to the user's password."""
    return list(
        AuditRecord.objects.filter(
            object_type="User", object_id=str(user.pk), action__startswith="user.password"
        ).values_list("action", flat=True)
    )


def logged_in(client: Client) -> bool:
    return client.get(reverse("blotter")).status_code == 200


def test_an_admins_reset_ends_the_users_sessions_and_is_audited_without_the_password(
    adam, alice
) -> None:
    tab = client_for(alice)
    assert logged_in(tab)
    user_password_reset(actor=adam, user=alice, password=NEW, reason="locked out", request_id="r-1")
    assert not logged_in(tab)  # the session under the old password has ended
    assert Client().login(username="alice", password=NEW)
    assert not Client().login(username="alice", password="pw-alice")
    rec = AuditRecord.objects.filter(action="user.password_reset").get()
    assert (rec.actor_username, rec.object_id, rec.reason, rec.request_id) == (
        "adam",
        str(alice.pk),
        "locked out",
        "r-1",
    )
    stored = User.objects.get(pk=alice.pk).password
    for text in (str(rec.before), str(rec.after)):
        assert NEW not in text and stored not in text
    assert actions_on(alice) == ["user.password_reset"]  # once: the safety net stood aside


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reason": ""}, "say why: a password reset is recorded with its reason"),
        ({"password": "short"}, "This password is too short"),
        ({"password": "alice-pw1"}, "too similar to the username"),
        ({"password": "12345678901"}, "entirely numeric"),
    ],
)
def test_a_reset_refuses_bad_input_by_name(adam, alice, kwargs, message) -> None:
    args = {"password": NEW, "reason": "locked out"} | kwargs
    with pytest.raises(ValidationError, match=message):
        user_password_reset(actor=adam, user=alice, **args)
    assert Client().login(username="alice", password="pw-alice")  # unchanged
    assert "user.password_reset" not in actions_on(alice)


def test_only_an_admin_resets_and_not_their_own(adam, rita, alice) -> None:
    with pytest.raises(PermissionDenied):
        user_password_reset(actor=rita, user=alice, password=NEW, reason="x")
    with pytest.raises(ValidationError, match="change your own password on the Password page"):
        user_password_reset(actor=adam, user=adam, password=NEW, reason="x")


def test_a_reset_through_the_users_page(adam, alice) -> None:
    url = reverse("user_password", args=[alice.pk])
    assert client_for(alice).post(url, {"password": NEW, "reason": "x"}).status_code == 403
    admin = client_for(adam)
    page = admin.get(reverse("user_list")).content.decode()
    assert f'action="{reverse("user_password", args=[alice.pk])}"' in page
    url = reverse("user_password", args=[alice.pk])
    resp = admin.post(
        url, {"password": "short", "password_again": "short", "reason": "locked out"}, follow=True
    )
    said = [str(m) for m in resp.context["messages"]]
    assert any(m.startswith("alice: password: This password is too short") for m in said), said
    # Typed twice: a typo would lock the user out with a password nobody knows (a trial).
    resp = admin.post(
        url, {"password": NEW, "password_again": NEW + "x", "reason": "locked out"}, follow=True
    )
    assert [str(m) for m in resp.context["messages"]] == [
        "alice: password_again: the two passwords differ"
    ]
    resp = admin.post(
        url, {"password": NEW, "password_again": NEW, "reason": "locked out"}, follow=True
    )
    said = [str(m) for m in resp.context["messages"]]
    assert len(said) == 1 and said[0].startswith(
        "alice's password is reset: their sessions have ended; give them the new password "
        "by a channel of your firm's. Their role (trader) is on hold until a second person "
        "confirms it (role grant "
    ), said
    assert Client().login(username="alice", password=NEW)


def test_a_user_changes_their_own_password_and_keeps_this_session_only(alice) -> None:
    here, elsewhere = Client(), Client()
    assert here.login(username="alice", password="pw-alice")
    assert elsewhere.login(username="alice", password="pw-alice")
    url = reverse("password_change")
    assert here.get(url).status_code == 200
    wrong = here.post(
        url,
        {"old_password": "nope", "new_password": NEW, "new_password_again": NEW},
    )
    assert wrong.status_code == 400
    assert "that is not your current password" in wrong.content.decode()
    differ = here.post(
        url,
        {"old_password": "pw-alice", "new_password": NEW, "new_password_again": NEW + "x"},
    )
    assert differ.status_code == 400 and "the two new passwords differ" in differ.content.decode()
    weak = here.post(
        url, {"old_password": "pw-alice", "new_password": "123", "new_password_again": "123"}
    )
    assert weak.status_code == 400 and "too short" in weak.content.decode()
    assert actions_on(alice) == []
    done = here.post(
        url,
        {"old_password": "pw-alice", "new_password": NEW, "new_password_again": NEW},
        follow=True,
    )
    assert [str(m) for m in done.context["messages"]] == [
        "Your password is changed; your other sessions have ended"
    ]
    assert logged_in(here) and not logged_in(elsewhere)
    assert actions_on(alice) == ["user.password_change"]
    rec = AuditRecord.objects.get(action="user.password_change")
    assert rec.actor_username == "alice" and NEW not in str(rec.after)


def test_a_password_change_needs_the_current_one_and_a_new_one(alice) -> None:
    with pytest.raises(ValidationError, match="that is your current password"):
        user_password_change(user=alice, old_password="pw-alice", new_password="pw-alice")


def test_a_password_set_outside_the_pages_is_recorded_once(alice) -> None:
    """`manage.py changepassword` or the shell: set_password and save."""
    user = User.objects.get(pk=alice.pk)
    user.set_password(NEW)
    user.save()
    user.first_name = "Alice"
    user.save()  # no password change: nothing recorded
    assert actions_on(alice) == ["user.password_set"]
    rec = AuditRecord.objects.get(action="user.password_set")
    assert rec.actor_role == "system"
    assert rec.reason.startswith("changed outside the user pages")


def test_an_admin_cannot_reset_a_superusers_password(adam) -> None:
    """A superuser holds every permission at once: an admin who set one's password could
    log in as one (a review)."""
    root = User.objects.create_superuser("root", password="root-password-long-1")
    with pytest.raises(ValidationError, match="root is a superuser"):
        user_password_reset(actor=adam, user=root, password=NEW, reason="locked out")
    assert Client().login(username="root", password="root-password-long-1")
    page = client_for(adam).get(reverse("user_list")).content.decode()
    assert reverse("user_password", args=[root.pk]) not in page


def test_a_wrong_current_password_is_recorded_and_five_end_the_session(alice) -> None:
    """Guessing from an open session was unlimited and left no trace (a review)."""
    here = client_for(alice)
    url = reverse("password_change")
    wrong = {"old_password": "guess", "new_password": NEW, "new_password_again": NEW}
    for _ in range(4):
        assert here.post(url, wrong).status_code == 400
    recs = AuditRecord.objects.filter(action="auth.password_check_failed")
    assert recs.count() == 4 and {r.actor_username for r in recs} == {"alice"}
    last = here.post(url, wrong, follow=True)
    assert last.redirect_chain[-1][0].startswith(reverse("login"))
    assert "5 wrong current passwords: you are logged out" in last.content.decode()
    assert not logged_in(here)
    assert Client().login(username="alice", password="pw-alice")  # unchanged


def test_after_a_reset_the_user_chooses_their_own_password_before_anything_else(
    adam, alice, rita
) -> None:
    """The admin who typed the reset password must not go on knowing a working one (a
    trial): until its owner changes it, the Password page and Log out are all there is."""
    user_password_reset(actor=adam, user=alice, password=NEW, reason="locked out")
    tab = Client()
    assert tab.login(username="alice", password=NEW)
    page = tab.get(reverse("blotter"))
    assert page.status_code == 302 and page["Location"] == reverse("password_change")
    said = tab.get(reverse("password_change")).content.decode()
    assert "An admin set your password (a new login, or a reset): choose your own to go on" in said
    api = tab.post(reverse("order_new"), {}, HTTP_ACCEPT="application/json")
    assert api.status_code == 403
    assert "an admin set your password: choose your own" in api.json()["error"]
    mine = "alice-chose-this-one-77"
    done = tab.post(
        reverse("password_change"),
        {"old_password": NEW, "new_password": mine, "new_password_again": mine},
    )
    assert done.status_code == 302
    # Her own password now, but her role waits for a second person (below): the admin
    # who set the password could have chosen this one as well.
    assert tab.get(reverse("blotter")).status_code == 403
    confirm_role(alice, by=rita)
    assert tab.get(reverse("blotter")).status_code == 200
    # Only a reset asks it: another user, and alice from now on, are as before.
    assert client_for(adam).get(reverse("user_list")).status_code == 200


def test_an_admin_who_sets_a_risk_managers_password_cannot_be_their_second_pair_of_eyes(
    adam, rita, ruth
) -> None:
    """A trial: the admin reset a risk manager's password, logged in as them, chose a new
    one on the Password page, and approved a limit that loosened the firm's participation
    cap. A password an admin sets now puts the login's role on hold until a second person
    (not that admin, not the login's owner) confirms it."""
    from oversight.models import RoleGrant
    from oversight.risk.models import LimitRequest
    from oversight.risk.services import limit_change_request, limit_request_approve

    set_limit("max_participation_pct", 50)  # to loosen: that waits for a second person
    req = limit_change_request(
        user=rita,
        scope_type="firm",
        scope_key="",
        metric="max_participation_pct",
        new_value=100,
        reason="test",
    )
    user_password_reset(actor=adam, user=ruth, password=NEW, reason="forgot")
    as_ruth = Client()
    assert as_ruth.login(username="ruth", password=NEW)
    mine = "the-admin-chose-this-too-5"
    as_ruth.post(
        reverse("password_change"),
        {"old_password": NEW, "new_password": mine, "new_password_again": mine},
    )
    ruth.refresh_from_db()
    assert ruth.check_password(mine) and not ruth.groups.exists()
    approve = as_ruth.post(reverse("risk_limit_approve", args=[req.pk]), {"note": "fine"})
    assert approve.status_code == 403
    with pytest.raises(ValidationError, match="only a risk manager may approve"):
        limit_request_approve(user=User.objects.get(pk=ruth.pk), request_id=req.pk, note="ok")
    assert LimitRequest.objects.get(pk=req.pk).status == LimitRequest.PENDING
    grant = RoleGrant.objects.get(user=ruth, status=RoleGrant.PENDING)
    assert (grant.role, grant.requested_by) == ("risk_manager", adam)
    from oversight.roles import FourEyesRefused
    from oversight.services import role_grant_confirm

    with pytest.raises(FourEyesRefused):  # the admin who set the password cannot
        role_grant_confirm(user=adam, grant_id=grant.pk, note="it is her")
    confirm_role(ruth, by=rita)  # a second person, who spoke to her
    assert list(User.objects.get(pk=ruth.pk).groups.values_list("name", flat=True)) == [
        "risk_manager"
    ]


def test_a_role_is_confirmed_only_once_its_owner_has_chosen_their_own_password(adam, rita) -> None:
    """A trial: the admin created eve as a risk manager, a risk manager confirmed the
    role, and the admin logged in with the password they had typed and approved a limit
    as the second pair of eyes. The confirmation now waits for eve's own password."""
    from oversight.models import RoleGrant
    from oversight.roles import FourEyesRefused
    from oversight.services import role_grant_confirm, user_create, user_password_change

    eve = user_create(
        actor=adam, username="eve", password=NEW, role="risk_manager", reason="joins risk"
    )
    grant = RoleGrant.objects.get(user=eve, status=RoleGrant.PENDING)
    with pytest.raises(FourEyesRefused, match="eve has not chosen their own password yet"):
        role_grant_confirm(user=rita, grant_id=grant.pk, note="she is in risk")
    assert RoleGrant.objects.get(pk=grant.pk).status == RoleGrant.PENDING
    page = Client()
    page.force_login(rita)
    shown = page.get(reverse("role_grants")).content.decode()
    assert "eve has not chosen their own password yet" in shown
    user_password_change(user=eve, old_password=NEW, new_password="eves-own-choice-77")
    role_grant_confirm(user=rita, grant_id=grant.pk, note="asked her")
    assert list(User.objects.get(pk=eve.pk).groups.values_list("name", flat=True)) == [
        "risk_manager"
    ]
