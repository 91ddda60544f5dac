"""The order ticket: fields from the schema, a message beside each bad field, nothing
created on error, dispatch after commit on success; the pre-trade estimate endpoint."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from execution.algos.registry import strategy_names
from execution.models import Instrument, MarketSession, ParentOrder
from oversight.models import AuditRecord
from tests.personas import set_limit
from tests.stepping import submit

from .conftest import client_for

pytestmark = pytest.mark.django_db


def ticket(instrument: Any, **over: str) -> dict[str, Any]:
    data = {
        "instrument": str(instrument.pk),
        "side": "buy",
        "quantity": "12000",
        "start_minute": "45",
        "end_minute": "105",
        "limit_price": "",
        "strategy": "twap",
    }
    data.update(over)
    return data


def test_ticket_renders_every_schema_and_the_selected_fields(alice, instrument) -> None:
    resp = client_for(alice).get(reverse("order_new"))
    assert resp.status_code == 200
    page = resp.content.decode()
    assert set(resp.context["schemas"]) == set(strategy_names())
    blob = page.split('id="strategy-schemas" type="application/json">')[1].split("</script>")[0]
    assert json.loads(blob)["pov"][0]["name"] == "participation_rate"
    assert 'name="param_decision_interval_s"' in page  # TWAP's, rendered server-side
    assert 'name="param_participation_rate"' not in page
    # Labels are for people; the API name stays on the field and in its title.
    assert json.loads(blob)["pov"][0]["label"] == "Participation rate"
    assert (
        '<label for="id_param_max_take_ticks" title="max_take_ticks">Take at most past the touch'
        in page
    )
    assert ">max_take_ticks<" not in page
    # Everything is served from here: no script or stylesheet from another host (a bare
    # "cdn" check failed now and then on a random CSRF token that happened to contain it).
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_submit_creates_the_order_and_dispatches_after_commit(
    alice, instrument, django_capture_on_commit_callbacks
) -> None:
    c = client_for(alice)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = c.post(
            reverse("order_new"),
            ticket(
                instrument, strategy="pov", param_participation_rate="0.15", limit_price="41.25"
            ),
        )
    assert resp.status_code == 302 and resp["Location"] == reverse("blotter")
    order = ParentOrder.objects.get()
    assert (order.owner, order.side, order.quantity, order.strategy) == (alice, "buy", 12000, "pov")
    assert order.params["participation_rate"] == 0.15
    assert str(order.limit_price) == "41.250000"
    assert len(callbacks) == 1  # the dispatch, only once the transaction commits
    assert AuditRecord.objects.filter(action="order.submit").count() == 1
    page = c.get(reverse("blotter")).content.decode()
    assert f"Order {order.pk} submitted" in page


def test_the_ticket_and_its_estimate_take_thousands_grouped_as_the_amend_does(
    alice, instrument
) -> None:
    """A trial: the ticket refused "12,000" ("Enter a whole number") where the amend
    dialog took "8,000"."""
    c = client_for(alice)
    est = c.get(
        reverse("order_estimate"),
        {"instrument": str(instrument.pk), "quantity": "12,000", "start_minute": "0",
         "end_minute": "60", "strategy": "twap"},
    )  # fmt: skip
    assert est.status_code == 200, est.content
    plain = c.get(
        reverse("order_estimate"),
        {"instrument": str(instrument.pk), "quantity": "12000", "start_minute": "0",
         "end_minute": "60", "strategy": "twap"},
    )  # fmt: skip
    assert est.json()["cost_usd"] == plain.json()["cost_usd"] > 0
    for bad in ("12,00", "1,2,000"):
        resp = c.post(reverse("order_new"), ticket(instrument, quantity=bad))
        assert resp.status_code == 400 and not ParentOrder.objects.exists(), bad
    resp = c.post(reverse("order_new"), ticket(instrument, quantity="12,000"))
    assert resp.status_code == 302
    assert ParentOrder.objects.get().quantity == 12_000


def test_every_fields_problem_is_said_at_once(alice, instrument) -> None:
    """A trial was told of a bad quantity first, and of a window backwards and a limit
    off the tick only on the second submit."""
    resp = client_for(alice).post(
        reverse("order_new"),
        ticket(instrument, quantity="lots", start_minute="120", end_minute="60",
               limit_price="40.005"),
    )  # fmt: skip
    assert resp.status_code == 400 and not ParentOrder.objects.exists()
    errors = resp.context["form"].errors
    assert "whole number" in errors["quantity"][0]
    assert errors["end_minute"] == ["the window must satisfy 0 ≤ start < end ≤ 390"]
    assert "multiple of the tick size" in errors["limit_price"][0]
    # With no instrument, a price's sign is still said (a trial).
    resp = client_for(alice).post(
        reverse("order_new"), {**ticket(instrument, limit_price="-3"), "instrument": ""}
    )
    errors = resp.context["form"].errors
    assert "instrument" in errors and errors["limit_price"] == ["must be positive"], errors


@pytest.mark.parametrize(
    ("over", "field", "text"),
    [
        ({"quantity": "0"}, "quantity", "positive whole number"),
        ({"quantity": "-5"}, "quantity", "positive whole number"),
        ({"quantity": "lots"}, "quantity", "whole number"),
        ({"start_minute": "120", "end_minute": "60"}, "end_minute", "0 ≤ start < end ≤ 390"),
        ({"end_minute": "400"}, "end_minute", "0 ≤ start < end ≤ 390"),
        ({"start_minute": "-1"}, "start_minute", "0 ≤ start < end ≤ 390"),  # beside Start
        ({"limit_price": "40.005"}, "limit_price", "multiple of the tick size"),
        ({"limit_price": "-1"}, "limit_price", "positive"),
        # Beyond what the database holds: a message, not a 500.
        ({"quantity": "99999999999999999999999"}, "quantity", "at most 1,000,000,000,000"),
        ({"quantity": "9223372036854775808"}, "quantity", "at most 1,000,000,000,000"),
        (
            {"limit_price": "1000000000000000000000000000000"},
            "limit_price",
            "at most 999,999,999,999",
        ),
        ({"limit_price": "40.005"}, "limit_price", "tick size 0.01"),
        ({"side": "short"}, "side", "valid choice"),
        ({"strategy": "martingale"}, "strategy", "valid choice"),
        # Digits other than 0-9 (full-width, Arabic-Indic): int() reads them; we do not.
        ({"quantity": "\uff11\uff10\uff10\uff10"}, "quantity", "digits 0-9"),
        ({"quantity": "\u0661\u0660\u0660"}, "quantity", "digits 0-9"),
        ({"limit_price": "\uff14\uff10"}, "limit_price", "digits 0-9"),
        ({"quantity": "1_000"}, "quantity", "digits 0-9"),
        ({"limit_price": "4_0.05"}, "limit_price", "digits 0-9"),
    ],
)
def test_bad_fields_get_a_message_beside_them_and_nothing_is_created(
    alice,
    instrument,
    django_capture_on_commit_callbacks,
    over: dict[str, str],
    field: str,
    text: str,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = client_for(alice).post(reverse("order_new"), ticket(instrument, **over))
    assert resp.status_code == 400
    errors = resp.context["form"].errors
    assert field in errors, errors
    assert any(text in m for m in errors[field])
    page = resp.content.decode()
    # The message is the one the field's aria-describedby names.
    assert f'id="id_{field}_error"' in page
    assert field == "side" or f'aria-describedby="id_{field}_error"' in page  # (radios: not)
    assert not ParentOrder.objects.exists()
    assert not callbacks


def test_a_ticket_with_no_form_fields_is_refused_by_field_not_a_500(alice, instrument) -> None:
    """A trial: a POST with the CSRF token in its header and an empty body, or a JSON body,
    left the form unbound, and reading its cleaned data was a 500."""
    c = client_for(alice)
    empty = c.post(reverse("order_new"))
    assert empty.status_code == 400
    assert {"instrument", "side", "quantity"} <= set(empty.context["form"].errors)
    as_json = c.post(
        reverse("order_new"),
        {"instrument": instrument.pk, "side": "sell", "quantity": 100},
        content_type="application/json",
    )
    assert as_json.status_code == 400
    assert as_json.context["form"].errors["__all__"] == [
        "the ticket takes form fields (application/x-www-form-urlencoded), not JSON"
    ]
    assert not ParentOrder.objects.exists()


@pytest.mark.parametrize(
    ("strategy", "param", "value", "text"),
    [
        ("pov", "participation_rate", "0.9", "must be at most 0.5"),
        ("pov", "participation_rate", "lots", "must be a number"),
        ("pov", "participation_rate", "\u0660.\u0661", "digits 0-9"),
        ("pov", "participation_rate", "0.1_5", "digits 0-9"),
        ("twap", "decision_interval_s", "0", "must be at least 1"),
        ("is", "risk_aversion", "-1", "must be at least 0"),
    ],
)
def test_bad_strategy_parameter_gets_its_message(
    alice,
    instrument,
    django_capture_on_commit_callbacks,
    strategy: str,
    param: str,
    value: str,
    text: str,
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        resp = client_for(alice).post(
            reverse("order_new"), ticket(instrument, strategy=strategy, **{f"param_{param}": value})
        )
    assert resp.status_code == 400
    fields = {pf["key"]: pf for pf in resp.context["param_fields"]}
    assert any(text in m for m in fields[f"param_{param}"]["errors"])
    page = resp.content.decode()
    assert f'id="err_param_{param}"' in page and text in page
    assert f'value="{value}"' in page  # what the trader typed stays in the field
    assert not ParentOrder.objects.exists()


def test_every_bad_field_reported_at_once(alice, instrument) -> None:
    resp = client_for(alice).post(
        reverse("order_new"),
        ticket(
            instrument,
            limit_price="40.005",
            strategy="pov",
            param_participation_rate="2",
            param_dark_fraction="7",
        ),
    )
    assert "limit_price" in resp.context["form"].errors
    errors = {pf["key"]: pf["errors"] for pf in resp.context["param_fields"]}
    assert len(errors["param_participation_rate"]) == 1  # checked twice, said once
    assert errors["param_dark_fraction"]
    resp = client_for(alice).post(
        reverse("order_new"),
        ticket(instrument, quantity="abc", strategy="pov", param_participation_rate="2"),
    )
    assert "quantity" in resp.context["form"].errors
    assert resp.context["param_fields"][0]["errors"]
    assert not ParentOrder.objects.exists()


def test_restricted_instrument_is_refused(alice, instrument) -> None:
    instrument.restricted = True
    instrument.save()
    resp = client_for(alice).post(reverse("order_new"), ticket(instrument))
    assert resp.status_code == 400
    assert "restricted" in " ".join(resp.context["form"].errors["instrument"])
    assert not ParentOrder.objects.exists()
    # The ticket marks it before anyone picks it.
    page = client_for(alice).get(reverse("order_new")).content.decode()
    assert f"{instrument.symbol} (restricted)</option>" in page


def test_estimate_returns_cost_uncertainty_participation(alice, instrument) -> None:
    c = client_for(alice)
    url = reverse("order_estimate")
    small = c.get(
        url, {"instrument": instrument.pk, "quantity": 12000, "start_minute": 45, "end_minute": 225}
    ).json()
    assert small["cost_bps"] > small["spread_cost_bps"] > 0
    assert small["uncertainty_bps"] > 0
    assert 0 < small["participation_pct"] < 25
    assert small["warnings"] == []
    big = c.get(
        url,
        {"instrument": instrument.pk, "quantity": 300000, "start_minute": 45, "end_minute": 105},
    ).json()
    assert big["adv_pct"] == pytest.approx(20.0)
    assert len(big["warnings"]) == 2
    assert big["cost_bps"] > small["cost_bps"]


def test_the_estimate_follows_the_strategy_and_its_parameters(alice, instrument) -> None:
    c = client_for(alice)
    base = {"instrument": instrument.pk, "quantity": 60000, "start_minute": 0, "end_minute": 390}

    def est(**over: Any) -> dict[str, Any]:
        return c.get(reverse("order_estimate"), {**base, **over}).json()

    plain, vwap, twap = est(), est(strategy="vwap"), est(strategy="twap")
    # VWAP's schedule is the plain estimate's straight line in volume time.
    assert vwap["impact_bps"] == pytest.approx(plain["impact_bps"], abs=0.02)
    # TWAP trades evenly against a U-shaped day: more impact at midday's thin volume.
    assert twap["impact_bps"] > vwap["impact_bps"]
    assert twap["fill_pct"] == vwap["fill_pct"] == 100.0
    # POV at 1% of a 1.5M-share day: 15,000 of the 60,000, a quarter, and it says so.
    pov = est(strategy="pov", param_participation_rate="0.01")
    assert pov["fill_pct"] == pytest.approx(25.0, abs=0.5)
    assert pov["participation_pct"] == pytest.approx(1.0, abs=0.05)
    assert any("fill about" in w for w in pov["warnings"])
    assert pov["cost_usd"] < twap["cost_usd"]  # costed on what it fills
    # A high rate finishes early: it participates at its rate while it trades, and warns.
    fast = est(strategy="pov", param_participation_rate="0.5", end_minute=60)
    slow = est(strategy="pov", param_participation_rate="0.1", end_minute=60)
    assert fast["participation_pct"] > 40 and fast["impact_bps"] > slow["impact_bps"]
    assert any("above 25%" in w for w in fast["warnings"])
    # Told to complete, a POV that falls short sweeps the rest at the end: it fills, at a
    # price, and the estimate says where the cost is.
    sweep = est(strategy="pov", param_participation_rate="0.01", param_complete="true")
    assert sweep["fill_pct"] == 100.0 and sweep["cost_bps"] > pov["cost_bps"] * 2
    assert any("peaks at" in w and "at the end, sweeping" in w for w in sweep["warnings"])
    # An urgent IS trades sooner: less timing risk, more impact.
    urgent = est(strategy="is", param_risk_aversion="0.001")
    assert urgent["uncertainty_bps"] < twap["uncertainty_bps"]
    assert urgent["impact_bps"] > twap["impact_bps"]
    # Where a schedule peaks is said as it is: at the start for a front-loaded one.
    peaks = [w for w in urgent["warnings"] if "peaks at" in w]
    assert len(peaks) == 1 and "at the start, front-loaded" in peaks[0], urgent["warnings"]
    # A parameter the strategy refuses: costed on its defaults, and said.
    bad = est(strategy="pov", param_participation_rate="7")
    assert bad["fill_pct"] == est(strategy="pov")["fill_pct"]
    assert any("default parameters: participation_rate" in w for w in bad["warnings"])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"quantity": "x"},
        {"quantity": "100", "start_minute": "50", "end_minute": "40"},
        {"instrument": "999"},
    ],
)
def test_estimate_with_an_incomplete_ticket_says_so(
    alice, instrument, params: dict[str, str]
) -> None:
    full = {
        "instrument": str(instrument.pk),
        "quantity": "100",
        "start_minute": "0",
        "end_minute": "60",
    }
    resp = client_for(alice).get(reverse("order_estimate"), {**full, **params} if params else {})
    assert resp.status_code == 400
    assert resp.json()["error"]


@pytest.mark.parametrize(
    ("strategy", "extra", "name"),
    [
        ("twap", {"param_bogus": "1"}, "bogus"),
        ("twap", {"param_urgency": "0.5"}, "urgency"),  # the adaptive strategy's, not TWAP's
    ],
)
def test_a_parameter_the_strategy_does_not_take_is_refused_by_name(
    alice, instrument, strategy: str, extra: dict[str, str], name: str
) -> None:
    resp = client_for(alice).post(
        reverse("order_new"), ticket(instrument, strategy=strategy, **extra)
    )
    assert resp.status_code == 400
    errors = resp.context["form"].non_field_errors()
    assert any(f"parameter {name!r}" in m and "unknown parameter" in m for m in errors), errors
    assert f"parameter &#x27;{name}&#x27;" in resp.content.decode()
    assert not ParentOrder.objects.exists()
    # A blank one is no parameter at all: the order goes in.
    resp = client_for(alice).post(
        reverse("order_new"), ticket(instrument, strategy=strategy, **{k: "" for k in extra})
    )
    assert resp.status_code == 302
    assert ParentOrder.objects.count() == 1


def test_a_blocked_order_is_not_announced_as_submitted(alice, instrument) -> None:
    c = client_for(alice)
    first = c.post(reverse("order_new"), ticket(instrument), follow=True)
    assert [str(m) for m in first.context["messages"]] == [
        f"Order {ParentOrder.objects.get().pk} submitted: buy 12,000 HBRK by TWAP"
    ]
    # The same order again within a minute: a duplicate, held by pre-trade risk.
    again = c.post(reverse("order_new"), ticket(instrument), follow=True)
    blocked = ParentOrder.objects.latest("pk")
    assert blocked.status == "BLOCKED"
    (shown,) = [str(m) for m in again.context["messages"]]
    assert shown.startswith(f"Order {blocked.pk} (buy 12,000 HBRK by TWAP) is blocked by pre-trade")
    assert "DUPLICATE" in shown and "submitted" not in shown
    assert 'class="msg msg-warning"' in again.content.decode()


def test_the_ticket_lists_the_static_strategies_first(alice) -> None:
    resp = client_for(alice).get(reverse("order_new"))
    names = [v for v, _ in resp.context["form"].fields["strategy"].choices]
    assert names[:4] == ["twap", "vwap", "pov", "is"] and "adaptive" in names[4:]


@pytest.mark.parametrize("quantity", ["99999999999999999999999999", "1000000000001"])
def test_estimate_refuses_a_quantity_no_order_may_have(alice, instrument, quantity: str) -> None:
    resp = client_for(alice).get(
        reverse("order_estimate"),
        {
            "instrument": str(instrument.pk),
            "quantity": quantity,
            "start_minute": "0",
            "end_minute": "60",
        },
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "quantity must be at most 1,000,000,000,000 shares"


@pytest.mark.parametrize("quantity", ["-5", "12.5", "abc"])
def test_the_estimate_names_a_quantity_that_is_not_whole_shares(
    alice, instrument, quantity: str
) -> None:
    """Both were "fill in quantity (whole shares) and window (minutes)" (a trial)."""
    resp = client_for(alice).get(
        reverse("order_estimate"),
        {"instrument": str(instrument.pk), "quantity": quantity, "start_minute": "0",
         "end_minute": "60"},
    )  # fmt: skip
    assert resp.status_code == 400
    assert resp.json()["error"] == (
        f"quantity: a positive whole number of shares (12,000 or 12000), not {quantity!r}"
    )


def test_the_estimate_warns_of_a_kill_switch_before_the_ticket_is_sent(alice, instrument) -> None:
    from oversight.risk.services import kill_switch_engage

    c = client_for(alice)
    q = {"instrument": instrument.pk, "quantity": 12000, "start_minute": 45, "end_minute": 225}
    assert c.get(reverse("order_estimate"), q).json()["warnings"] == []
    k = kill_switch_engage(user=alice, scope_type="trader", scope_key="alice", reason="runaway")
    warnings = c.get(reverse("order_estimate"), {**q, "side": "sell", "strategy": "twap"}).json()[
        "warnings"
    ]
    assert warnings == [
        f"this order would be refused: trading is halted for trader alice by kill switch "
        f"{k.pk}: runaway"
    ]


def test_the_estimate_names_the_model_and_the_expert_that_would_trade(alice, instrument) -> None:
    from execution.model_registry import instrument_spread_bps
    from tests.personas import approved_model

    c = client_for(alice)
    q = {"instrument": instrument.pk, "quantity": 12000, "start_minute": 45, "end_minute": 225}
    url = reverse("order_estimate")
    assert "model" not in c.get(url, {**q, "strategy": "twap"}).json()
    none_yet = c.get(url, {**q, "strategy": "adaptive"}).json()
    assert "model" not in none_yet and none_yet["warnings"] == [
        "model: no model version is approved for trading yet: a risk manager recommends one "
        "and a second approves it (Models page)"
    ]
    approved_model("policy-v14")  # gated: policy-v8 under 5 bps, policy-v13 at 5 and over
    bps = instrument_spread_bps(instrument)  # HBRK: 2 ticks of 0.01 at 40.00, 5 bps
    said = c.get(url, {**q, "strategy": "adaptive", "param_model": "policy-v14"}).json()
    assert said["model"] == (
        f"policy-v14, traded by its expert policy-v13 (for a spread of 5 bps or more; "
        f"HBRK quotes {bps:.2f} bps)"
    )
    assert said["warnings"] == []
    shouted = c.get(url, {**q, "strategy": "adaptive", "param_model": "POLICY-V14"}).json()
    assert shouted["model"] == said["model"]  # names are unique whatever the case
    small = c.get(url, {**q, "quantity": 450, "strategy": "adaptive", "param_model": "policy-v14"})
    assert small.json()["model"].endswith(
        "; under 5 lots of 100 shares the order is worked along its curve without the model"
    )
    lots = {**q, "quantity": 450, "strategy": "adaptive", "param_min_child_qty": "50"}
    assert c.get(url, {**lots, "param_model": "policy-v14"}).json()["model"].endswith("bps)")
    from oversight.risk.services import kill_switch_engage
    from tests.personas import make_user

    k = kill_switch_engage(
        user=make_user("rhea", "risk_manager"), scope_type="model", scope_key="policy-v14",
        reason="drift",
    )  # fmt: skip
    halted = c.get(url, {**q, "strategy": "adaptive"}).json()  # the default: policy-v14
    assert halted["warnings"] == [
        f"this order would be refused: trading is halted for model policy-v14 by kill switch "
        f"{k.pk}: drift"
    ]
    unknown = c.get(url, {**q, "strategy": "adaptive", "param_model": "policy-v99"}).json()
    assert "model" not in unknown
    assert unknown["warnings"] == ["model: choose an approved model version: policy-v14"]


def test_a_window_that_has_begun_is_said_to_start_at_the_markets_clock(alice, instrument) -> None:
    MarketSession.objects.create(
        instrument=instrument, worker="w1", seed=1, speed=1.0, sim_ts=3600.0,
        heartbeat_at=timezone.now(),
    )  # fmt: skip  # the market is at 10:30:00
    resp = client_for(alice).post(reverse("order_new"), ticket(instrument), follow=True)
    (shown,) = [str(m) for m in resp.context["messages"]]
    order = ParentOrder.objects.get()
    assert shown == (
        f"Order {order.pk} submitted: buy 12,000 HBRK by TWAP. Its window was to open at "
        "10:15:00, but the HBRK market was at 10:30:00: it works from then to 11:15:00, on "
        "that shorter window's schedule"
    )
    # Stored as it works: the blotter, the order page and TCA show 10:30-11:15; the audit
    # trail keeps what was typed as well.
    assert (order.start_minute, order.end_minute) == (60.0, 105.0)
    submitted = AuditRecord.objects.get(action="order.submit", object_id=str(order.pk)).after
    assert (submitted["start_minute"], submitted["entered_start_minute"]) == (60.0, 45.0)
    assert ">10:30–11:15<" in client_for(alice).get(reverse("blotter")).content.decode()


def test_the_estimate_of_a_window_that_has_begun_costs_what_is_left(alice, instrument) -> None:
    c = client_for(alice)
    url = reverse("order_estimate")
    q = {"instrument": instrument.pk, "quantity": 30000, "strategy": "twap"}
    rest = c.get(url, {**q, "start_minute": 60, "end_minute": 105}).json()
    MarketSession.objects.create(
        instrument=instrument, worker="w1", seed=1, speed=1.0, sim_ts=3600.0,
        heartbeat_at=timezone.now(),
    )  # fmt: skip  # the market is at 10:30:00, a quarter of the window gone
    late = c.get(url, {**q, "start_minute": 45, "end_minute": 105}).json()
    assert (
        late["impact_bps"] == rest["impact_bps"] and late["window_volume"] == rest["window_volume"]
    )
    assert "the HBRK market is at 10:30:00: the order would work from then to 11:15:00" in (
        " ".join(late["warnings"])
    )
    # The limits it would be held to are checked on that window too, as submit checks
    # them: participation over 10:30-11:15, not over the 10:15-11:15 typed.
    from tests.risk.conftest import set_limit

    set_limit("max_participation_pct", late["participation_pct"] - 1)
    warned = c.get(url, {**q, "start_minute": 45, "end_minute": 105}).json()["warnings"]
    assert any("would be blocked" in w and "MAX_PARTICIPATION" in w for w in warned), warned
    order = submit(alice, instrument, quantity=30000, start_minute=45, end_minute=105)
    assert order.status == "BLOCKED"


def test_the_ticket_writes_numbers_as_its_script_does(alice) -> None:
    """The first strategy's fields, rendered by the server, read as the script renders the
    others: 30 and (min 1, max 600), not 30.0 and (min 1.0, max 600.0)."""
    page = client_for(alice).get(reverse("order_new")).content.decode()
    field = re.search(r'<input id="id_param_decision_interval_s"[^>]*>', page)
    assert field is not None and 'value="30"' in field[0]
    assert "(min 1, max 600)" in page and "(min 1.0" not in page


def test_the_ticket_says_which_kill_switches_would_refuse_an_order(alice, rita, instrument) -> None:
    from oversight.risk.services import kill_switch_engage

    assert (
        'id="ticket-kills" hidden>' in client_for(alice).get(reverse("order_new")).content.decode()
    )
    kill_switch_engage(user=rita, scope_type="trader", scope_key="alice", reason="review")
    kill_switch_engage(user=rita, scope_type="trader", scope_key="rita", reason="other")
    kill_switch_engage(user=rita, scope_type="strategy", scope_key="pov", reason="bug")
    page = client_for(alice).get(reverse("order_new")).content.decode()
    banner = page.split('id="ticket-kills"')[1].split("</div>")[0]
    assert "trader alice: halted by kill switch" in banner and "(review)" in banner
    assert "strategy pov: halted" in banner and "an order on this strategy is refused" in banner
    assert "trader rita" not in banner  # someone else's
    # Reduce-only refuses only what adds to a position (it said every order was refused).
    k = kill_switch_engage(
        user=rita, scope_type="instrument", scope_key=instrument.symbol, reason="news",
        state="REDUCING",
    )  # fmt: skip
    page = client_for(alice).get(reverse("order_new")).content.decode()
    banner = page.split('id="ticket-kills"')[1].split("</div>")[0]
    assert (
        f"instrument HBRK: reduce-only by kill switch {k.pk} (news); only an order that "
        "reduces your position without reversing it is accepted"
    ) in banner


def test_every_estimate_says_the_kill_switches_now_so_the_banner_follows_a_reset(
    alice, rita, ruth, instrument
) -> None:
    """The ticket kept a reset kill switch's warning until a reload (a trial): it asks for
    an estimate every few seconds, filled in or not, and each answer carries the banner."""
    from oversight.risk.services import (
        kill_switch_engage,
        kill_switch_reset_approve,
        kill_switch_reset_request,
    )

    c = client_for(alice)
    blank = {"instrument": instrument.pk, "quantity": "", "start_minute": 0, "end_minute": 60}
    full = {**blank, "quantity": 1000}
    answer = c.get(reverse("order_estimate"), blank)
    assert answer.status_code == 200  # a ticket not filled in yet is not bad input
    said = answer.json()
    assert (said["error"], said["kills"]) == ("enter a quantity for the estimate", [])
    # Where the market is, before any quantity (the clock line stayed empty: a trial).
    assert (said["market"]["day"], said["market"]["at"]) == (1, "09:30:00")
    k = kill_switch_engage(user=rita, scope_type="instrument", scope_key="HBRK", reason="news")
    for q in (blank, full):
        (text,) = c.get(reverse("order_estimate"), q).json()["kills"]
        assert text.startswith(f"instrument HBRK: halted by kill switch {k.pk} (news)")
    assert c.get(reverse("order_estimate"), {**full, "quantity": "x"}).json()["kills"]
    kill_switch_reset_request(user=rita, kill_id=k.pk, reason="news is out")
    kill_switch_reset_approve(user=ruth, kill_id=k.pk)
    assert c.get(reverse("order_estimate"), full).json()["kills"] == []


def test_the_estimate_warns_of_a_limit_that_would_block_the_order(alice, instrument) -> None:
    from oversight.risk.models import RiskLimit

    c = client_for(alice)
    q = {"instrument": instrument.pk, "quantity": 12000, "start_minute": 45, "end_minute": 225}
    assert c.get(reverse("order_estimate"), q).json()["warnings"] == []
    RiskLimit.objects.create(
        scope_type="firm", scope_key="", metric="max_order_qty", value=10_000, version=1
    )
    warnings = c.get(reverse("order_estimate"), q).json()["warnings"]
    assert warnings == [
        "this order would be blocked until a risk manager overrides it: MAX_ORDER_QTY: "
        "12,000 shares > 10,000 (firm)"
    ]
    # More than twice the limit: refused, which no override would change.
    (refused,) = c.get(reverse("order_estimate"), {**q, "quantity": 25000}).json()["warnings"]
    assert refused.startswith("this order would be refused: MAX_ORDER_QTY: 25,000 shares")
    assert refused.endswith("2.50 times the limit, more than an override may release (2 times); "
                            "enter a smaller order, or ask a risk manager for a higher limit")  # fmt: skip
    assert not ParentOrder.objects.exists()  # an estimate, nothing entered


def test_the_estimate_reads_a_pov_orders_participation_as_its_rate(alice, instrument) -> None:
    """As the ticket's check does: a trial's 5% POV estimate said 5.06% and warned 60.8%."""
    from oversight.risk.models import RiskLimit

    RiskLimit.objects.create(
        scope_type="firm", scope_key="", metric="max_participation_pct", value=50, version=1
    )
    c = client_for(alice)
    q = {"instrument": instrument.pk, "quantity": 100_000, "start_minute": 120,
         "end_minute": 180, "strategy": "pov", "param_participation_rate": "0.05"}  # fmt: skip
    pov = c.get(reverse("order_estimate"), q).json()["warnings"]
    assert not [w for w in pov if "MAX_PARTICIPATION" in w], pov
    twap = c.get(reverse("order_estimate"), {**q, "strategy": "twap"}).json()["warnings"]
    assert [w for w in twap if "MAX_PARTICIPATION" in w], twap


def test_several_refusals_are_listed_one_by_one(alice, instrument) -> None:
    """They ran together, joined by a space: "...higher limit DAILY_NOTIONAL: ..." (a trial)."""
    from tests.personas import set_limit

    set_limit("max_order_qty", 1_000)
    set_limit("max_order_notional", 100_000)  # 12,000 shares at about $40: 4.8 times
    page = client_for(alice).post(reverse("order_new"), ticket(instrument)).content.decode()
    assert "The order was not submitted:<ul><li>MAX_ORDER_QTY: 12,000 shares" in page
    assert "</li><li>MAX_ORDER_NOTIONAL: $" in page
    assert not ParentOrder.objects.exists()


def test_the_estimate_shows_the_share_the_participation_limit_checks(alice, instrument) -> None:
    """The ticket said "Expected participation 1.04%" (while the order trades) beside a 1%
    limit that let the order through at 1.00% of the window's volume (a trial): it shows
    both now, and a limit just above the window share lets the order through."""
    from oversight.risk.models import RiskLimit

    c = client_for(alice)
    q = {"instrument": instrument.pk, "quantity": 2_000, "start_minute": 120, "end_minute": 300}
    est = c.get(reverse("order_estimate"), q).json()
    share = est["window_share_pct"]
    assert share == pytest.approx(100 * 2_000 / est["window_volume"], abs=0.01)
    assert est["participation_pct"] >= share  # in lots it runs ahead while it trades
    RiskLimit.objects.create(
        scope_type="firm", scope_key="", metric="max_participation_pct",
        value=round(share + 0.01, 2), version=1,
    )  # fmt: skip
    warned = c.get(reverse("order_estimate"), q).json()["warnings"]
    assert not [w for w in warned if "MAX_PARTICIPATION" in w], warned
    page = c.get(reverse("order_new")).content.decode()
    assert "Share of window volume" in page and 'data-est="window_share_pct"' in page


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"quantity": "１０００"}, "quantity: write it with the digits 0-9"),
        ({"quantity": "1_000"}, "quantity: write it with the digits 0-9"),
        ({"side": "x"}, 'side: must be "buy" or "sell"'),
        ({"strategy": "bogus"}, "strategy: unknown; one of "),
        # Each was costed as instrument 1, or answered "fill in instrument, quantity
        # and window" (a fuzz).
        ({"instrument": "\u0661"}, "instrument: there is no instrument '\u0661'"),
        ({"instrument": " 1 "}, "instrument: there is no instrument ' 1 '"),
        ({"instrument": "1_0"}, "instrument: there is no instrument '1_0'"),
        ({"instrument": "999999"}, "instrument: there is no instrument '999999'"),
    ],
)
def test_the_estimate_reads_its_fields_as_the_ticket_does(alice, instrument, over, error) -> None:
    """A review: each of these was costed as something else, without a word."""
    query = {"instrument": str(instrument.pk), "quantity": "1000", "start_minute": "0",
             "end_minute": "60", "side": "buy", "strategy": "twap", **over}  # fmt: skip
    resp = client_for(alice).get(reverse("order_estimate"), query)
    assert resp.status_code == 400 and resp.json()["error"].startswith(error)


def test_an_instrument_is_named_in_digits_0_to_9(alice, instrument) -> None:
    """ "١" (an Arabic-Indic one) entered an order on instrument 1 (a fuzz)."""
    from execution.models import ParentOrder

    arabic_indic = "".join(chr(0x660 + int(d)) for d in str(instrument.pk))
    for typed in (arabic_indic, f" {instrument.pk} "):
        resp = client_for(alice).post(
            reverse("order_new"), {**ticket(instrument), "instrument": typed}
        )
        assert resp.status_code == 400 and "Select a valid choice" in resp.content.decode()
    assert not ParentOrder.objects.exists()


def test_a_field_sent_twice_is_refused_not_read_as_the_last(alice, instrument) -> None:
    from execution.models import ParentOrder

    data = ticket(instrument)
    body = "&".join(f"{k}={v}" for k, v in data.items()) + "&quantity=2300"
    resp = client_for(alice).post(
        reverse("order_new"), body, content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 400
    assert "Field “quantity” given more than once; send it once" in resp.content.decode()
    assert not ParentOrder.objects.exists()


def test_with_no_default_model_the_ticket_preselects_none(alice, rita, instrument) -> None:
    """Once the firm designated a default and retired it, the ticket preselected whichever
    version was approved last, which two risk managers never chose (a trial)."""
    from execution.model_registry import (
        model_default_confirm,
        model_default_propose,
        model_retire,
    )
    from tests.personas import approved_model, make_user

    ruth = make_user("ruth", "risk_manager")
    v1 = approved_model("policy-v1")
    approved_model("policy-v2")
    d = model_default_propose(user=rita, version_id=v1.pk, reason="steadier")
    model_default_confirm(user=ruth, designation_id=d.pk)
    page = client_for(alice).get(reverse("order_new")).content.decode()
    blob = page.split('id="strategy-schemas" type="application/json">')[1].split("</script>")[0]
    (model,) = [p for p in json.loads(blob)["adaptive"] if p["name"] == "model"]
    assert model["default"] == "policy-v1"
    model_retire(user=rita, version_id=v1.pk, reason="drift")
    page = client_for(alice).get(reverse("order_new")).content.decode()
    blob = page.split('id="strategy-schemas" type="application/json">')[1].split("</script>")[0]
    (model,) = [p for p in json.loads(blob)["adaptive"] if p["name"] == "model"]
    assert model["default"] == "" and model["choices"] == ["policy-v2"]
    resp = client_for(alice).post(reverse("order_new"), ticket(instrument, strategy="adaptive"))
    assert resp.status_code == 400 and not ParentOrder.objects.exists()
    assert "choose an approved model version: policy-v2" in resp.content.decode()
    assert '<option value="" selected>— choose one —</option>' in resp.content.decode()


def test_a_limit_of_only_spaces_is_no_limit(alice, instrument) -> None:
    resp = client_for(alice).post(reverse("order_new"), ticket(instrument, limit_price="   "))
    assert resp.status_code == 302
    assert ParentOrder.objects.get().limit_price is None


def test_a_window_shorter_than_a_minute_is_refused_at_the_ticket_and_the_estimate(
    alice, instrument
) -> None:
    """A millionth of a minute was accepted, and the estimate answered Infinity, which is
    not JSON (a trial)."""
    resp = client_for(alice).post(
        reverse("order_new"), ticket(instrument, start_minute="45", end_minute="45.5")
    )
    assert resp.status_code == 400 and not ParentOrder.objects.exists()
    assert resp.context["form"].errors["end_minute"] == ["the window must last at least 1 minute"]
    for start, end in (("0", "0.0000001"), ("389.9999999", "390")):
        got = client_for(alice).get(
            reverse("order_estimate"),
            {
                "instrument": instrument.pk,
                "quantity": 1000,
                "start_minute": start,
                "end_minute": end,
            },
        )
        assert got.status_code == 400
        assert got.json()["error"] == "the window must last at least 1 minute"


def _estimate_with_limit(c: Any, instrument: Instrument, side: str, offset_bps: float) -> Any:
    """The estimate of a 12,000-share order with a limit `offset_bps` through the market
    on the order's side (negative: away from it)."""
    ref = instrument.reference_price
    sign = 1 if side == "buy" else -1
    limit = (ref * (1 + Decimal(sign * offset_bps) / 10_000)).quantize(instrument.tick_size)
    q = {"instrument": instrument.pk, "quantity": 12000, "start_minute": 45,
         "end_minute": 225, "side": side, "limit_price": str(limit)}  # fmt: skip
    return c.get(reverse("order_estimate"), q)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_the_estimate_says_what_a_limit_may_leave_unfilled(alice, instrument, side) -> None:
    """It is costed without the limit (a review: a limit just through the market was
    costed as if the whole order would fill)."""
    c = client_for(alice)
    q = {"instrument": instrument.pk, "quantity": 12000, "start_minute": 45,
         "end_minute": 225, "side": side}  # fmt: skip
    plain = c.get(reverse("order_estimate"), q).json()
    reach = plain["cost_bps"] + 2 * plain["uncertainty_bps"]
    far = _estimate_with_limit(c, instrument, side, reach + 50).json()
    assert far["warnings"] == [] and far["cost_bps"] == plain["cost_bps"]
    near = _estimate_with_limit(c, instrument, side, reach / 2).json()
    assert len(near["warnings"]) == 1, near["warnings"]
    assert "part of the order may be left unfilled" in near["warnings"][0]
    assert f"{'above' if side == 'buy' else 'below'} the market" in near["warnings"][0]
    fat = _estimate_with_limit(c, instrument, side, 1500).json()
    assert len(fat["warnings"]) == 1 and "it protects nothing" in fat["warnings"][0]
    inside = _estimate_with_limit(c, instrument, side, -plain["spread_cost_bps"] / 2).json()
    assert len(inside["warnings"]) == 1 and "inside the spread" in inside["warnings"][0]
    at = _estimate_with_limit(c, instrument, side, 0).json()
    assert len(at["warnings"]) == 1 and " is at the market (about " in at["warnings"][0]
    away = _estimate_with_limit(c, instrument, side, -20).json()
    assert len(away["warnings"]) == 1, away["warnings"]
    assert "nothing trades until the price comes to it" in away["warnings"][0]
    assert f"{'below' if side == 'buy' else 'above'} the market" in away["warnings"][0]


def test_the_estimate_says_a_limit_the_collar_refuses(alice, instrument) -> None:
    set_limit("price_collar_bps", 50)
    warnings = _estimate_with_limit(client_for(alice), instrument, "buy", -200).json()["warnings"]
    assert any(w.startswith("this order would be refused: ") for w in warnings), warnings


@pytest.mark.parametrize(
    ("limit", "error"),
    [
        ("abc", "limit price must be a price"),
        ("-1", "limit price must be positive"),
        ("NaN", "limit price must be a price"),  # Decimal reads it; a trial got "positive"
        ("Infinity", "limit price must be a price"),
        ("10.001", "limit price must be a multiple of the tick size 0.01"),
        ("８.３０", "limit price write it with the digits 0-9"),
    ],
)
def test_the_estimate_refuses_a_limit_the_ticket_would(alice, instrument, limit, error) -> None:
    q = {"instrument": instrument.pk, "quantity": 1000, "start_minute": 0,
         "end_minute": 60, "limit_price": limit}  # fmt: skip
    resp = client_for(alice).get(reverse("order_estimate"), q)
    assert resp.status_code == 400 and resp.json()["error"] == error


@pytest.mark.parametrize(
    ("field", "typed"),
    [("limit_price", "1e2"), ("limit_price", "40.0-"), ("quantity", "1E3"), ("end_minute", "6e1")],
)
def test_the_ticket_refuses_a_number_it_would_read_as_another(
    alice, instrument, field, typed
) -> None:
    """An exponent ("1e2" entered a $100 limit on a $40 name) or a typo the browser used to
    send as empty (so the order went out with no limit): refused, naming the field."""
    resp = client_for(alice).post(reverse("order_new"), ticket(instrument, **{field: typed}))
    assert resp.status_code == 400 and not ParentOrder.objects.exists()
    assert resp.context["form"].errors[field]
    page = resp.content.decode()
    assert f'name="{field}" value="{typed}"' in page  # kept as typed, to be corrected
    est = {"instrument": instrument.pk, "quantity": "1000", "start_minute": "0",
           "end_minute": "60", field: typed}  # fmt: skip
    got = client_for(alice).get(reverse("order_estimate"), est)
    said = {"limit_price": "limit price", "quantity": "quantity", "end_minute": "end_minute"}
    assert got.status_code == 400 and got.json()["error"].startswith(said[field])
