"""Two risk managers engaging a kill switch over one scope at once, each on its own
connection (PostgreSQL: SQLite's writers take the database one at a time): one switch,
not two that each need a four-eyes reset (a trial's three clicks made three)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core.exceptions import ValidationError

import oversight.risk.services as risk_services
from execution.models import Instrument
from oversight.risk.models import KillSwitch
from tests.audit.conftest import only_pg
from tests.audit.test_desk_move_race import in_thread
from tests.personas import instrument, ruth

__all__ = ["instrument", "ruth"]
pytestmark = pytest.mark.django_db(transaction=True)


@only_pg
def test_two_halts_of_one_scope_at_once_make_one_switch(
    instrument: Instrument, rita: Any, ruth: Any, monkeypatch: Any
) -> None:
    # The first has created its switch (not yet committed) when the second comes in.
    inside, go = threading.Event(), threading.Event()
    real = risk_services._blocked_cancel

    def hold(*a: Any, **k: Any) -> Any:
        if not inside.is_set():
            inside.set()
            go.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(risk_services, "_blocked_cancel", hold)

    def engage(user: Any) -> Any:
        return risk_services.kill_switch_engage(
            user=user, scope_type="instrument", scope_key=instrument.symbol, reason="bad prints"
        )

    out: dict[str, Any] = {}
    first = in_thread(lambda: engage(rita), out, "first")
    assert inside.wait(10)
    second = in_thread(lambda: engage(ruth), out, "second")
    time.sleep(1.0)  # the second is under way: without the scope's lock it found none
    go.set()
    first.join(20)
    second.join(20)
    assert isinstance(out["first"], KillSwitch), out["first"]
    assert isinstance(out["second"], ValidationError), out["second"]
    assert f"kill switch {out['first'].pk} already halted instrument" in str(out["second"])
    active = KillSwitch.objects.filter(
        active=True, scope_type="instrument", scope_key=instrument.symbol
    )
    assert active.count() == 1
