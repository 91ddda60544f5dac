"""Domain events to JSON and back: what is stored in OrderEvent.payload and broadcast."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from execution.engine.events import DomainEvent


def event_to_json(ev: DomainEvent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(ev):
        v = getattr(ev, f.name)
        out[f.name] = str(v) if isinstance(v, Decimal) else v
    out["kind"] = ev.kind
    # The engine's id ("P12"); "order_id" in what is sent out is the ParentOrder's pk.
    out["engine_order_id"] = out.pop("order_id")
    return out
