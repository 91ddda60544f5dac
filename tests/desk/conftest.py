"""The shared personas (tests/personas.py) for the desk tests."""

from tests.personas import adam, alice, bob, instrument, make_user, rita

__all__ = ["adam", "alice", "bob", "instrument", "make_user", "rita"]
