"""Values on the order pages as the ticket and the blotter's script write them: a strategy
parameter of 30.0 reads "30" everywhere, a flag "yes" or "no", a price to its last digit."""

from __future__ import annotations

import functools
import math
from decimal import Decimal
from typing import Any

from django import template

from execution.algos.params import label_of

register = template.Library()
CENT = Decimal("0.01")


@register.filter
def param_value(value: Any) -> str:
    if isinstance(value, bool):  # before numbers: True is an int too
        return "yes" if value else "no"
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))  # what JSON.parse gives the amend dialog: 30, not 30.0
        return format(Decimal(repr(value)), "f")  # 0.000001, as the ticket shows it, not 1e-06
    if value is None:
        return "—"
    return str(value)


@register.filter
def price(value: Decimal | None, none: str = "none") -> str:
    """A price to its last digit (a 40.1234 limit is not 40.12), and at least to the cent."""
    if value is None:
        return none
    d = value.normalize()
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        d = d.quantize(CENT)
    return format(d, "f")


@register.filter
def param_label(name: str) -> str:
    """A strategy parameter's label for people ("max_take_ticks" -> "Take at most past the
    touch")."""
    return label_of(str(name))


@register.filter
def param_changes(changes: Any) -> str:
    """An amend's changes as people read them: "Urgency 0.5; Take at most past the touch 4"
    (a limit price by its name too); anything else as it is."""
    if not isinstance(changes, dict) or not changes:
        return "" if not changes else str(changes)
    parts = []
    # In the names' order: PostgreSQL's jsonb keeps its own key order, not the request's.
    for name, value in sorted(changes.items()):
        if name == "limit_price" and value in ("", None):
            parts.append("Limit removed")  # not "Limit price —" (a trial)
            continue
        shown = (
            f"{value:,}" if name == "quantity" and isinstance(value, int) else param_value(value)
        )
        parts.append(f"{label_of(str(name))} {shown}")  # a quantity as the blotter writes it
    return "; ".join(parts)


@register.filter
def param_unit(name: str) -> str:
    """A strategy parameter's unit, as the ticket shows it beside its field ("s", "ticks");
    '' for a share, a flag or a name."""
    return _units().get(name, "")


@functools.cache
def _units() -> dict[str, str]:
    """Every strategy parameter's unit by name (the same name has the same unit in every
    strategy), read once from the schemas."""
    from execution.algos.registry import strategy_class, strategy_names

    return {
        spec.name: spec.unit
        for strategy in strategy_names()
        for spec in strategy_class(strategy).schema()
    }


@register.filter(name="session_clock")
def session_clock_filter(ts: float | None) -> str:
    """Simulated seconds after the open as the market's clock, to the second (10:29:05)."""
    from execution.session_clock import session_clock

    return session_clock(ts, ms=False)
