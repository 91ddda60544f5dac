"""Numbers as a desk reads them: fixed decimals, thousands separators, a dash for unknown."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def fixed(value: float | int | None, places: int = 2) -> str:
    if value is None:
        return "—"
    places = int(places)
    rounded = round(float(value), places) or 0.0  # -0.0 is falsy: "0.00", never "-0.00"
    return f"{rounded:,.{places}f}"
