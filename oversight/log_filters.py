"""Logging filters for the server's log."""

from __future__ import annotations

import logging


class QuietForbidden(logging.Filter):
    """A refusal by role (403) is the app working, not a fault: one line, no traceback.
    Every other record, 500s above all, keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
