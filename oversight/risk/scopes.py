"""Which scopes an order falls in, and the tightest limit across them.

Plain functions over plain values, shared by the pre-trade check (web process) and the
market workers, so both read a limit or a kill switch the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class OrderScopes:
    trader: str  # username
    desk: str  # "" when the trader has none
    strategy: str
    instrument: str  # symbol
    order: str = ""  # the parent order's id, once it has one
    model: str = ""  # an adaptive order's model version
    # The expert of a gated version that trades it: a switch or limit on a model covers
    # the orders it trades as an expert too (a trial's switch on policy-v13 stopped none).
    expert: str = ""

    def scope_keys(self) -> set[tuple[str, str]]:
        out = {
            ("firm", ""),
            ("trader", self.trader),
            ("strategy", self.strategy),
            ("instrument", self.instrument),
        }
        if self.desk:
            out.add(("desk", self.desk))
        if self.order:
            out.add(("order", self.order))
        if self.model:
            out.add(("model", self.model))
        if self.expert:
            out.add(("model", self.expert))
        return out


def tightest(
    limits: Iterable[tuple[str, str, str, Decimal | None]], scopes: OrderScopes
) -> dict[str, tuple[Decimal, str]]:
    """metric -> (value, "scope key") of the tightest limit that applies to the order.

    `limits` are (scope_type, scope_key, metric, value) rows; a None value is no limit.
    """
    keys = scopes.scope_keys()
    out: dict[str, tuple[Decimal, str]] = {}
    for scope_type, scope_key, metric, value in limits:
        if value is None or (scope_type, scope_key) not in keys:
            continue
        where = f"{scope_type} {scope_key}".strip()
        if metric not in out or value < out[metric][0]:
            out[metric] = (value, where)
    return out


def covers(scope_type: str, scope_key: str, scopes: OrderScopes) -> bool:
    return (scope_type, scope_key) in scopes.scope_keys()
