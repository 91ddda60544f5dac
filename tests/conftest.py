"""Shared fixtures: the repo's own scenarios, and the shared ones where they exist."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from execution.sim.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parent.parent
REPO_SCENARIOS = REPO / "execution" / "scenarios"
SHARED_SCENARIOS = REPO.parent / "shared" / "scenarios"


def repo_scenario(name: str) -> Scenario:
    return load_scenario(REPO_SCENARIOS / f"{name}.json")


def shared_scenario_paths() -> list[Path]:
    return sorted(SHARED_SCENARIOS.glob("*.json")) if SHARED_SCENARIOS.is_dir() else []


@pytest.fixture
def midcap() -> Scenario:
    return repo_scenario("demo-midcap-buy")


def require_shared() -> None:
    if not SHARED_SCENARIOS.is_dir():
        pytest.skip("../shared/scenarios is not here (a user's fresh clone); CI has it")


@pytest.fixture(autouse=True)
def _fresh_channel_layers() -> Iterator[None]:
    """Each test gets its own channel-layer instance. Tests run their sockets in event loops
    of their own (async_to_sync); a Redis layer cached from an earlier test holds locks
    bound to that test's loop, and a later test's consumer then fails on them."""
    yield
    layers = sys.modules.get("channels.layers")
    if layers is not None:
        layers.channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Django's cache (per process: the refused-access records' minute) starts empty for
    each test: a key left by another test, for a user id the database reuses, would hold
    back a record this one expects."""
    yield
    django_cache = sys.modules.get("django.core.cache")
    if django_cache is not None:
        with contextlib.suppress(Exception):  # a test that never configured Django
            django_cache.cache.clear()
