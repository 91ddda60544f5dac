"""Strategies by name: the backtest command, the engine and the web app look them up here."""

from __future__ import annotations

from execution.algos import adaptive as _adaptive  # noqa: F401  (registers the learned one)
from execution.algos import strategies as _strategies  # noqa: F401  (registers the four)
from execution.algos.base import REGISTRY, Strategy
from execution.algos.params import ParamError


def strategy_class(name: str) -> type[Strategy]:
    try:
        return REGISTRY.strategies[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY.strategies))
        raise ParamError("strategy", f"unknown strategy {name!r}; known: {known}") from None


def strategy_names() -> list[str]:
    return list(REGISTRY.strategies)
