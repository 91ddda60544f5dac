"""The simulated session's clock as people read it: seconds after the open as 09:30:00."""

from __future__ import annotations

SESSION_OPEN_S = 9 * 3600 + 30 * 60


def session_clock(ts: float | None, *, ms: bool = True) -> str:
    """Simulated seconds after the open as the session's wall clock (09:30:00.000 = 0)."""
    if ts is None:
        return ""
    total_ms = round((SESSION_OPEN_S + ts) * 1000)
    s, milli = divmod(total_ms, 1000)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{sec:02d}.{milli:03d}" if ms else f"{h:02d}:{m:02d}:{sec:02d}"
