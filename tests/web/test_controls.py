"""The control endpoint: each action's answer as JSON and as a redirect with a message;
errors are shown, never a 500."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from execution.models import ControlRequest
from oversight.models import AuditRecord

from .conftest import client_for, make_order

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def control(client, order, **data):
    return client.post(reverse("order_control", args=[order.pk]), data, **JSON)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("WORKING", "pause"),
        ("PAUSED", "resume"),
        ("SUSPENDED", "resume"),
        ("WORKING", "cancel"),
        ("PAUSED", "cancel"),
    ],
)
def test_allowed_actions_are_recorded_and_audited(
    alice, instrument, status, action, django_capture_on_commit_callbacks
) -> None:
    order = make_order(alice, instrument, status=status)
    with django_capture_on_commit_callbacks(execute=False):
        resp = control(client_for(alice), order, action=action, reason="desk call")
    assert resp.status_code == 200, resp.content
    assert resp.json()["ok"] is True and action in resp.json()["message"]
    req = ControlRequest.objects.get()
    assert (req.action, req.parent_id, req.requested_by) == (action, order.pk, alice)
    audit = AuditRecord.objects.get(action=f"order.{action}.request")
    assert audit.reason == "desk call"


def test_amend_sends_only_parameters(alice, adam, instrument) -> None:
    order = make_order(alice, instrument, strategy="pov", params={"participation_rate": 0.1})
    resp = control(
        client_for(alice),
        order,
        action="amend",
        param_participation_rate="0.2",
        param_decision_interval_s="",
    )
    assert resp.status_code == 200, resp.content
    assert ControlRequest.objects.get().changes == {"participation_rate": 0.2}
    assert resp.json()["changes"] == {"participation_rate": 0.2}
    # Recorded as the change it asks for (a trial's audit page showed the whole order
    # "→ —", as if the amend had erased its instrument and quantity).
    audit = AuditRecord.objects.get(action="order.amend.request")
    assert (audit.before, audit.after) == ({"participation_rate": 0.1}, {"participation_rate": 0.2})
    page = client_for(adam).get(reverse("audit_list")).content.decode()
    assert "participation_rate: 0.1 → 0.2" in page


def test_a_resume_may_replan(alice, instrument, django_capture_on_commit_callbacks) -> None:
    order = make_order(alice, instrument, status="PAUSED")
    c = client_for(alice)
    for said in ("maybe", ""):
        bad = control(c, order, action="resume", replan=said)
        assert bad.status_code == 400 and bad.json()["errors"] == {"replan": ["yes or no"]}
    with django_capture_on_commit_callbacks(execute=False):
        resp = control(c, order, action="resume", replan="1", reason="after lunch")
    assert resp.status_code == 200, resp.content
    assert ControlRequest.objects.get().changes == {"replan": True}
    assert resp.json()["message"].endswith(
        "(re-planned: what is left is spread over what is left of the window)"
    )
    audit = AuditRecord.objects.get(action="order.resume.request")
    assert (audit.before, audit.after) == (
        {"status": "PAUSED"},
        {"status": "WORKING", "replan": True},
    )


@pytest.mark.parametrize(("sent", "replanned"), [({}, True), ({"replan": "0"}, False)])
def test_a_resume_is_replanned_unless_told_not_to_and_says_which(
    alice, instrument, django_capture_on_commit_callbacks, sent, replanned
) -> None:
    """A trial: a client that did not send the field resumed without a re-plan, silently,
    while the dialog ticks it by default."""
    order = make_order(alice, instrument, status="PAUSED")
    with django_capture_on_commit_callbacks(execute=False):
        resp = control(client_for(alice), order, action="resume", **sent)
    assert resp.status_code == 200, resp.content
    assert ControlRequest.objects.get().changes == ({"replan": True} if replanned else {})
    said = "(re-planned: " if replanned else "(not re-planned: it catches up with its schedule)"
    assert said in resp.json()["message"]


@pytest.mark.parametrize(
    ("status", "data", "key", "text"),
    [
        ("WORKING", {"action": "explode"}, "action", "unknown action 'explode': one of pause, "),
        ("WORKING", {}, "action", "missing: one of pause, resume, cancel, amend"),
        ("WORKING", {"action": "resume"}, "action", "cannot resume an order that is working"),
        ("FILLED", {"action": "cancel"}, "action", "cannot cancel an order that is filled"),
        ("CANCELED", {"action": "pause"}, "action", "cannot pause"),
        ("WORKING", {"action": "amend"}, "changes", "nothing to amend"),
        (
            "WORKING",
            {"action": "amend", "param_participation_rate": "lots"},
            "param_participation_rate",
            "must be a number",
        ),
        (
            "WORKING",
            {"action": "amend", "param_participation_rate": "0.9"},
            "param_participation_rate",
            "at most",
        ),
        ("WORKING", {"action": "amend", "param_bogus": "1"}, "param_bogus", "unknown parameter"),
        # Not an amendable field: named, not ignored as "nothing to amend".
        (
            "WORKING",
            {"action": "amend", "quantity": "-5"},
            "__all__",
            "quantity: cannot be amended",
        ),
    ],
)
def test_refused_controls_say_why(alice, instrument, status, data, key, text) -> None:
    order = make_order(
        alice, instrument, status=status, strategy="pov", params={"participation_rate": 0.1}
    )
    resp = control(client_for(alice), order, **data)
    assert resp.status_code == 400
    body = resp.json()
    assert body["ok"] is False
    assert any(text in m for m in body["errors"][key]), body
    assert not ControlRequest.objects.exists()


def test_an_amend_can_remove_a_limit_and_reads_only_plain_digits(alice, instrument) -> None:
    """A trial could not remove a limit once set (the blank field was dropped: "nothing to
    amend"); a review's full-width "８.３０" and "8.3_0" were read as 8.30."""
    from decimal import Decimal

    order = make_order(alice, instrument, limit_price=Decimal("40.60"))
    c = client_for(alice)
    for typed in ("８.３０", "8.3_0", "٤٠.٦٠"):
        resp = control(c, order, action="amend", param_limit_price=typed)
        assert resp.status_code == 400
        assert resp.json()["errors"]["limit_price"] == ["write it with the digits 0-9"]
    resp = control(c, order, action="amend", param_limit_price="", param_dark_fraction="")
    assert resp.status_code == 200, resp.content
    assert ControlRequest.objects.get().changes == {"limit_price": None}
    # A blank field of an order with no limit, or a blank parameter, changes nothing.
    plain = make_order(alice, instrument)
    resp = control(c, plain, action="amend", param_limit_price="", param_dark_fraction="")
    assert resp.json()["errors"]["changes"] == ["nothing to amend"]
    resp = control(c, plain, action="amend", limit_price="41")
    assert resp.json()["errors"]["__all__"] == [
        "limit_price: send it as param_limit_price, as the amend dialog does"
    ]


def test_an_amend_may_reduce_the_quantity_not_below_what_is_filled_or_working(
    alice, instrument
) -> None:
    order = make_order(alice, instrument, quantity=10_000, filled_qty=3_000, working_qty=1_500)
    c = client_for(alice)
    for typed, says in (
        ("12000", "an amend can only reduce the quantity: enter less than 10,000"),
        ("10000", "an amend can only reduce the quantity: enter less than 10,000"),
        ("4000", "at least 4,500: 3,000 filled and 1,500 working: pause the order first"),
        ("3000", "at least 4,500: 3,000 filled"),
        ("５０００", "a whole number of shares, written with the digits 0-9"),
        ("5000.5", "a whole number of shares"),
        # Thousands are grouped by three or not at all (it took "8,0,00" as 8000).
        ("5,0,00", "a whole number of shares"),
        ("50,00", "a whole number of shares"),
    ):
        resp = control(c, order, action="amend", param_quantity=typed)
        assert resp.status_code == 400, typed
        assert resp.json()["errors"]["quantity"][0].startswith(says), (typed, resp.json())
    assert not ControlRequest.objects.exists()
    resp = control(c, order, action="amend", param_quantity="6,000")
    assert resp.status_code == 200, resp.content
    assert ControlRequest.objects.get().changes == {"quantity": 6000}
    # A second cut is against the first, still waiting for the worker: 7,000 is no cut of
    # 6,000 (a trial's was accepted here and refused by the worker).
    resp = control(c, order, action="amend", param_quantity="7000")
    assert resp.json()["errors"]["quantity"] == [
        "an amend can only reduce the quantity: enter less than 6,000 (an amend to 6,000 is "
        "waiting for the worker)"
    ]
    assert control(c, order, action="amend", param_quantity="5000").status_code == 200
    # Paused, nothing works: it is not told to pause (a trial's was).
    paused = make_order(alice, instrument, quantity=10_000, filled_qty=3_000, status="PAUSED")
    resp = control(c, paused, action="amend", param_quantity="3000")
    assert resp.json()["errors"]["quantity"] == [
        "at least 3,001: 3,000 are filled already (cancel it to stop here)"
    ]


def test_an_amend_names_every_bad_field_at_once(alice, instrument) -> None:
    # A trial fixed the field it was told of, to be told of the next.
    order = make_order(alice, instrument, quantity=10_000)
    resp = control(
        client_for(alice),
        order,
        action="amend",
        param_quantity="abc",
        param_decision_interval_s="0",
        param_limit_price="NaN",
    )
    assert resp.status_code == 400
    errors = resp.json()["errors"]
    assert sorted(errors) == ["limit_price", "param_decision_interval_s", "quantity"], errors
    assert errors["limit_price"] == ["must be a price"]
    assert not ControlRequest.objects.exists()
    # A limit that parses but the price collar refuses is said with the others too.
    from tests.personas import set_limit

    set_limit("price_collar_bps", 50)
    resp = control(
        client_for(alice), order, action="amend", param_quantity="abc", param_limit_price="1.00"
    )
    assert sorted(resp.json()["errors"]) == ["limit_price", "quantity"], resp.json()
    # Every bad parameter, not the first of them (a trial was told of one of three).
    resp = control(
        client_for(alice), order, action="amend", param_decision_interval_s="0",
        param_dark_fraction="9", param_max_take_ticks="-1",
    )  # fmt: skip
    assert sorted(resp.json()["errors"]) == [
        "param_dark_fraction",
        "param_decision_interval_s",
        "param_max_take_ticks",
    ], resp.json()


def test_a_blocked_order_cancelled_says_it_is_canceled_now(alice, instrument) -> None:
    """No worker holds it: it is canceled at once, and the answer says so (it said a
    worker would apply it)."""
    order = make_order(alice, instrument, status="BLOCKED")
    resp = control(client_for(alice), order, action="cancel")
    assert resp.status_code == 200 and resp.json()["message"] == f"Order {order.pk}: canceled"
    order.refresh_from_db()
    assert order.status == "CANCELED"


def test_without_javascript_errors_come_back_as_messages(alice, instrument) -> None:
    order = make_order(alice, instrument, status="FILLED")
    c = client_for(alice)
    detail = reverse("order_detail", args=[order.pk])
    resp = c.post(reverse("order_control", args=[order.pk]), {"action": "cancel", "next": detail})
    assert resp.status_code == 302 and resp["Location"] == detail
    texts = [str(m) for m in get_messages(resp.wsgi_request)]
    assert texts == [f"Order {order.pk}: cannot cancel an order that is filled"]


def test_without_javascript_success_redirects_to_the_blotter(alice, instrument) -> None:
    order = make_order(alice, instrument)
    c = client_for(alice)
    resp = c.post(
        reverse("order_control", args=[order.pk]),
        {"action": "pause", "next": "https://evil.example/"},
    )
    assert resp.status_code == 302 and resp["Location"] == reverse("blotter")
    page = c.get(reverse("blotter")).content.decode()
    assert "pause requested" in page
    # Marked as waiting for the worker, so the live page replaces it with the outcome.
    assert f'<li class="msg msg-success" data-pending="{order.pk}:pause:WORKING">' in page


def test_control_needs_post(alice, instrument) -> None:
    order = make_order(alice, instrument)
    assert client_for(alice).get(reverse("order_control", args=[order.pk])).status_code == 405


def test_unknown_order_is_404(alice, instrument) -> None:
    resp = control(client_for(alice), type("O", (), {"pk": 999})(), action="pause")
    assert resp.status_code == 404  # the blotter's script gets JSON it can show
    assert resp.json() == {
        "ok": False,
        "errors": {"__all__": ["there is no order 999 you can see"]},
    }
    page = client_for(alice).post(reverse("order_control", args=[999]), {"action": "pause"})
    assert page.status_code == 404


@pytest.mark.parametrize(
    ("first", "then", "text"),
    [
        ("cancel", "cancel", "a cancel is already pending"),
        ("cancel", "pause", "a cancel is already pending"),
        ("pause", "pause", "a pause is already pending"),
    ],
)
def test_a_second_click_while_the_first_is_pending_is_refused(
    alice, instrument, first: str, then: str, text: str, django_capture_on_commit_callbacks
) -> None:
    order = make_order(alice, instrument, status="WORKING")
    c = client_for(alice)
    with django_capture_on_commit_callbacks(execute=False):
        assert control(c, order, action=first).status_code == 200
        resp = control(c, order, action=then)
    assert resp.status_code == 400
    assert text in resp.json()["errors"]["action"][0]
    assert ControlRequest.objects.count() == 1
    # Once the worker has applied the first, the order's state decides again.
    ControlRequest.objects.update(applied_at="2026-01-01T00:00:00Z", outcome="applied")
    with django_capture_on_commit_callbacks(execute=False):
        assert control(c, order, action=then).status_code == 200


def test_a_suspended_order_is_never_stuck_behind_a_request_its_lost_worker_left(
    alice, instrument, django_capture_on_commit_callbacks
) -> None:
    """A cancel asked while WORKING, then the worker is lost (SUSPENDED) before applying
    it: the order must still be resumable and cancellable."""
    order = make_order(alice, instrument, status="WORKING")
    c = client_for(alice)
    with django_capture_on_commit_callbacks(execute=False):
        assert control(c, order, action="cancel").status_code == 200
    type(order).objects.filter(pk=order.pk).update(status="SUSPENDED")  # the worker was lost
    with django_capture_on_commit_callbacks(execute=False):
        assert control(c, order, action="resume").status_code == 200
        assert control(c, order, action="resume").status_code == 200  # asked again: dispatches
        assert control(c, order, action="cancel").status_code == 200  # done here and now
    order.refresh_from_db()
    assert order.status == "CANCELED"
    assert not ControlRequest.objects.filter(parent=order, applied_at__isnull=True).exists()


def test_an_amend_to_what_the_order_has_already_is_refused_as_nothing(alice, instrument) -> None:
    """A trial amended the limit 41.00 to 41.00 and it was recorded as applied."""
    from decimal import Decimal

    order = make_order(alice, instrument, limit_price=Decimal("41.00"), strategy="pov",
                       params={"participation_rate": 0.1})  # fmt: skip
    c = client_for(alice)
    resp = control(c, order, action="amend", param_limit_price="41")
    assert resp.status_code == 400
    assert resp.json()["errors"]["changes"] == ["nothing to amend: limit price is 41 already"]
    resp = control(c, order, action="amend", param_participation_rate="0.10")
    assert resp.json()["errors"]["changes"] == [
        "nothing to amend: participation rate is 0.1 already"
    ]
    # Against the order as its queued amends leave it: one may undo another (a review).
    control(c, order, action="amend", param_participation_rate="0.2")
    undo = control(c, order, action="amend", param_participation_rate="0.1")
    assert undo.status_code == 200, undo.content
    assert [r.changes for r in ControlRequest.objects.order_by("pk")] == [
        {"participation_rate": 0.2},
        {"participation_rate": 0.1},
    ]
    ControlRequest.objects.all().delete()
    assert not ControlRequest.objects.exists()
    # With a real change beside it, the unchanged value is dropped, not sent.
    resp = control(
        c, order, action="amend", param_limit_price="41.00", param_participation_rate="0.2"
    )
    assert resp.status_code == 200, resp.content
    assert ControlRequest.objects.get().changes == {"participation_rate": 0.2}


def test_the_order_page_shows_a_request_on_the_market_clock_with_its_reason(
    alice, instrument
) -> None:
    """A trial: a pause at 09:02 UTC read as before an order that started at 10:29 (its
    fills were on the market's clock), and the trader's reason was nowhere on the page."""
    from django.utils import timezone

    from execution.models import MarketSession

    MarketSession.objects.create(
        instrument=instrument, worker="w", seed=1, speed=60.0, sim_ts=3725.0, day=2,
        status=MarketSession.RUNNING, mid_px=Decimal("40"), heartbeat_at=timezone.now(),
    )  # fmt: skip
    order = make_order(alice, instrument, start_minute=30, end_minute=120)
    resp = control(client_for(alice), order, action="pause", reason="client on the phone")
    assert resp.status_code == 200, resp.content
    req = ControlRequest.objects.get()
    assert (req.market_day, req.market_ts, req.reason) == (2, 3725.0, "client on the phone")
    page = client_for(alice).get(reverse("order_detail", args=[order.pk])).content.decode()
    row = page.split("<h2>Control requests</h2>")[1].split("</tr>")[1]
    assert "d2 10:32:05" in row and "UTC" in row and "client on the phone" in row


def test_a_json_body_is_told_controls_take_form_fields(alice, instrument) -> None:
    """A trial's JSON cancel was told "unknown action ''", as if it had sent no action."""
    order = make_order(alice, instrument)
    resp = client_for(alice).post(
        reverse("order_control", args=[order.pk]),
        '{"action": "cancel"}',
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    assert resp.status_code == 400
    assert resp.json()["errors"] == {
        "__all__": ["controls take form fields (application/x-www-form-urlencoded), not JSON"]
    }
    order.refresh_from_db()
    assert order.status == "WORKING"


def test_an_amend_to_a_limit_far_through_the_market_is_warned_as_the_ticket_does(
    alice, instrument, django_capture_on_commit_callbacks
) -> None:
    """A trial amended a $40.6 sell's limit to $1 and was told only "amend requested";
    the ticket says of the same price that it protects nothing."""
    order = make_order(alice, instrument, side="sell")
    c = client_for(alice)
    with django_capture_on_commit_callbacks(execute=False):
        far = control(c, order, action="amend", param_limit_price="1")
        near = control(c, order, action="amend", param_limit_price="39.5")
    assert far.status_code == 200 and near.status_code == 200
    assert far.json()["message"].endswith(
        "Note: the limit 1.00 is 9,750 bps below the market (about 40.00): that far through "
        "the market it protects nothing; check it is the price you meant"
    ), far.json()["message"]
    assert "Note:" not in near.json()["message"]


def test_the_order_page_says_a_resume_without_replan_and_a_removed_limit(
    alice, instrument, django_capture_on_commit_callbacks
) -> None:
    """Its control requests showed "—" for both (a trial)."""
    from execution.templatetags.desk_format import param_changes

    assert param_changes({"limit_price": ""}) == "Limit removed"
    assert param_changes({"replan": True}) == "Replan yes"
    order = make_order(alice, instrument, status="PAUSED")
    with django_capture_on_commit_callbacks(execute=False):
        assert control(client_for(alice), order, action="resume", replan="0").status_code == 200
    page = client_for(alice).get(reverse("order_detail", args=[order.pk])).content.decode()
    assert '<td>resume</td><td class="small">Replan no</td>' in page
