"""An override grant racing its trader's deactivation, each on its own connection
(PostgreSQL: SQLite's writers take the database one at a time): the grant must not
release an order whose trader can no longer trade (a review found it did)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import execution.services as order_services
import oversight.risk.services as risk_services
from execution.models import Instrument
from oversight.risk.models import Override
from oversight.services import user_deactivate
from tests.audit.conftest import only_pg
from tests.audit.test_desk_move_race import in_thread
from tests.personas import instrument, ruth, set_limit
from tests.stepping import submit

__all__ = ["instrument", "ruth"]
pytestmark = pytest.mark.django_db(transaction=True)


@only_pg
def test_a_grant_racing_its_traders_deactivation_does_not_release_the_order(
    instrument: Instrument, alice: Any, adam: Any, rita: Any, ruth: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(order_services, "dispatch_order", lambda _id: None)
    set_limit("max_order_qty", 10_000)
    order = submit(alice, instrument, start_minute=0, end_minute=380)
    assert order.status == "BLOCKED"
    ov = risk_services.override_request(user=rita, order_id=order.pk, reason="desk head asked")

    # The deactivation has saved the trader as inactive (not yet committed) and is about
    # to lapse the trader's pending overrides when a grant of one comes in.
    inside, go = threading.Event(), threading.Event()
    real = risk_services.overrides_lapse_for_trader

    def hold(*a: Any, **k: Any) -> Any:
        inside.set()
        go.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(risk_services, "overrides_lapse_for_trader", hold)
    out: dict[str, Any] = {}
    leave = in_thread(
        lambda: user_deactivate(actor=adam, user=alice, reason="left the firm"), out, "leave"
    )
    assert inside.wait(10)
    grant = in_thread(
        lambda: risk_services.override_grant(user=ruth, override_id=ov.pk, note="checked"),
        out,
        "grant",
    )
    time.sleep(1.0)  # the grant is under way: it read the trader as still active, unfixed
    go.set()
    leave.join(20)
    grant.join(20)
    assert not isinstance(out.get("leave"), Exception), out
    order.refresh_from_db()
    alice.refresh_from_db()
    ov.refresh_from_db()
    assert not alice.is_active
    # The grant waited for the deactivation, and found its request lapsed.
    assert (order.status, ov.status) == ("BLOCKED", Override.REJECTED), (order.status, out)
    assert "alice is deactivated" in ov.decision_note
