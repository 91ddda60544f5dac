"""Strategy parameter schemas: one declaration drives validation, the CLI and the web form."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def written_plainly(text: str) -> bool:
    """Digits 0-9 only, no '_': Python's int(), float() and Decimal() also read Arabic-Indic
    and full-width digits and "1_000", which a person may not have meant as that number,
    and which nothing else the product shows reads back."""
    return text.isascii() and "_" not in text


_SHARES = re.compile(r"[0-9]{1,30}|[0-9]{1,3}(?:,[0-9]{3}){1,4}")


def whole_shares(text: str) -> int | None:
    """A number of shares as a trader types it: digits 0-9, or grouped in thousands with
    commas ("12,000"); None for anything else ("12,00", "1,2,3", "1.5", "١٠٠"). The ticket
    refused "12,000" where the amend dialog took "8,000", and took "8,0,00" too (a trial)."""
    text = text.strip()
    return int(text.replace(",", "")) if _SHARES.fullmatch(text) else None


def written_plainly_no_exponent(text: str) -> bool:
    """written_plainly, and no exponent: an order's size, window or price typed "1e2" was
    read as 100, a fat finger's $100 limit on a $40 name (a trial). A strategy parameter
    may have one (a risk aversion of 1e-6 per dollar is written so)."""
    return written_plainly(text) and not any(c in "eE" for c in text)


class ParamError(ValueError):
    """Bad strategy parameter; `key` names it so a form can show the message beside it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from (key, message), not from str(self): a worker process's error must
        # reach the parent intact (a pool that cannot unpickle one hangs).
        return (type(self), (self.key, self.message))


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    type: str  # "float", "int", "bool", "choice" or "str"
    default: Any
    help: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    amendable: bool = True  # may change while the order works

    def coerce(self, value: Any) -> Any:
        """The value as this parameter's type, or ParamError saying what is wrong."""
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ParamError(self.name, f"must be true or false, got {value!r}")
        if self.type == "str":
            if not isinstance(value, str) or not value.strip() or len(value) > 500:
                raise ParamError(self.name, f"must be a non-empty text, got {value!r}")
            return value.strip()
        if self.type == "choice":
            if value not in self.choices:
                raise ParamError(
                    self.name, f"must be one of {', '.join(self.choices)}, got {value!r}"
                )
            return value
        if isinstance(value, bool):
            raise ParamError(self.name, f"must be a number, got {value!r}")
        if isinstance(value, str) and not written_plainly(value):
            raise ParamError(self.name, f"must be written with the digits 0-9, got {value!r}")
        if self.type == "int" and isinstance(value, str) and not written_plainly_no_exponent(value):
            # A count (shares, slices) has no use for one, as an order's size has none: "1e3"
            # was taken as 1,000 where the quantity beside it refused it (a trial).
            raise ParamError(
                self.name, f"must be a whole number written with the digits 0-9, got {value!r}"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParamError(self.name, f"must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ParamError(self.name, f"must be finite, got {value!r}")
        if self.type == "int":
            if number != int(number):
                raise ParamError(self.name, f"must be a whole number, got {value!r}")
            number = int(number)
        if self.minimum is not None and number < self.minimum:
            raise ParamError(
                self.name,
                f"must be at least {self.minimum:g}{_unit(self.unit, self.minimum)}, got {value!r}",
            )
        if self.maximum is not None and number > self.maximum:
            raise ParamError(
                self.name,
                f"must be at most {self.maximum:g}{_unit(self.unit, self.maximum)}, got {value!r}",
            )
        return number

    @property
    def label(self) -> str:
        return label_of(self.name)

    def describe(self) -> dict[str, Any]:
        """JSON-able form of the spec, for the web form and the docs."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "default": self.default,
            "unit": self.unit,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices),
            "help": self.help,
            "amendable": self.amendable,
        }


# What a trader reads beside each field. The parameter's name stays what the API, the
# audit trail and the scenario files use; the label is for people.
LABELS = {
    "decision_interval_s": "Decision interval",
    "catch_up_slices": "Catch up when behind by",
    "max_take_ticks": "Take at most past the touch",
    "min_child_qty": "Minimum child size",
    "dark_fraction": "Dark share of resting",
    "improve_wide_spread": "Improve a wide spread",
    "complete": "Finish in the last slice",
    "participation_rate": "Participation rate",
    "risk_aversion": "Risk aversion",
    "urgency": "Urgency",
    "schedule": "Schedule",
    "model": "Model version",
    "range_margin": "Out-of-range margin",
    "limit_price": "Limit price",  # not a strategy's, but amended beside them
}


def label_of(name: str) -> str:
    """A parameter's label ("max_take_ticks" -> "Take at most past the touch"); a name
    without one reads as words."""
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def _unit(unit: str, number: float | None = None) -> str:
    # "at least 0 1/$" reads as a number: a unit that starts with a digit goes in brackets.
    if not unit:
        return ""
    if number == 1 and len(unit) > 1 and unit.endswith("s") and unit.isalpha():
        unit = unit[:-1]  # "at least 1 share", not "1 shares" (a trial)
    return f" ({unit})" if unit[0].isdigit() else f" {unit}"


def validate_params(schema: Sequence[ParamSpec], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value coerced; unknown names are an error, not ignored."""
    by_name = {p.name: p for p in schema}
    unknown = sorted(set(raw) - set(by_name))
    if unknown:
        raise ParamError(
            unknown[0], f"unknown parameter; this strategy takes {', '.join(sorted(by_name))}"
        )
    return {p.name: p.coerce(raw[p.name]) if p.name in raw else p.default for p in schema}
