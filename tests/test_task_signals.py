"""How a market task meets SIGTERM and SIGINT (execution/tasks.py): it ends its loop after
the step, and hands the signal on to a handler of Celery's own, not billiard's."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from execution.tasks import _stopped_in_order_on_sigterm


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize(
    ("module", "handed_on"), [("celery.apps.worker", True), ("billiard.common", False)]
)
def test_the_signal_stops_the_loop_and_goes_on_to_celerys_handler_only(
    sig: signal.Signals, module: str, handed_on: bool
) -> None:
    """Under `--pool solo` the task runs in Celery's process: its shutdown handler must
    still run once the market is released, or the worker goes on taking tasks (a
    review). In a pool process the handler is billiard's SystemExit, which must not."""
    calls: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        calls.append(signum)

    handler.__module__ = module
    worker = SimpleNamespace(stop_requested=False)
    before = signal.signal(sig, handler)
    try:
        with _stopped_in_order_on_sigterm(worker):  # type: ignore[arg-type]
            os.kill(os.getpid(), sig)
            assert worker.stop_requested and calls == []  # the loop ends; nothing else yet
        assert calls == ([sig] if handed_on else [])
        assert signal.getsignal(sig) is handler
    finally:
        signal.signal(sig, before)
