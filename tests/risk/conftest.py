"""Fixtures for the risk tests: the shared personas, a second risk manager, and helpers."""

from __future__ import annotations

from tests.personas import adam, alice, bob, instrument, make_user, rita, ruth, set_limit

__all__ = ["adam", "alice", "bob", "instrument", "make_user", "rita", "ruth", "set_limit"]
