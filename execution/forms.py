"""The order ticket: parses what the browser sent; the rules live in services.parent_order_submit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from execution.algos.params import ParamError, ParamSpec, whole_shares, written_plainly_no_exponent
from execution.algos.registry import strategy_class, strategy_names
from execution.model_registry import approved_names, default_version
from execution.models import SIDE_CHOICES, Instrument

PARAM_PREFIX = "param_"
STRATEGY_LABELS = {"twap": "TWAP", "vwap": "VWAP", "pov": "POV", "is": "IS (Almgren–Chriss)"}


def _default_model(approved: list[str]) -> str:
    """The preselected model: the registry's default (a version for every spread); none
    when there is none, so the trader chooses (it was the newest approval, which two risk
    managers never made the default: a trial)."""
    mv = default_version()
    return mv.name if mv is not None and mv.name in approved else ""


def describe(spec: ParamSpec, approved: list[str]) -> dict[str, Any]:
    """A parameter as the ticket shows it. The adaptive strategy's model is a choice among
    the versions approved for trading (every-spread ones first), never free text."""
    d = spec.describe()
    if spec.name == "model":
        d.update(
            type="choice",
            choices=approved,
            default=_default_model(approved),
            help="Policy model version: those approved for trading by two risk managers.",
        )
    return d


def strategy_schemas(approved: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every strategy's parameter schema, as the ticket's JavaScript reads it (`approved`:
    the approved model versions, when the caller has them already)."""
    approved = approved_names() if approved is None else approved
    return {
        name: [describe(p, approved) for p in strategy_class(name).schema()]
        for name in strategy_names()
    }


def strategy_choices() -> list[tuple[str, str]]:
    """The static strategies first, in their usual order (TWAP, the default, at the top),
    then the others (adaptive)."""
    names = sorted(
        strategy_names(),
        key=lambda n: (
            list(STRATEGY_LABELS).index(n) if n in STRATEGY_LABELS else len(STRATEGY_LABELS),
            n,
        ),
    )
    return [(n, STRATEGY_LABELS.get(n, n.upper())) for n in names]


class _InstrumentChoice(forms.ModelChoiceField):
    """The ticket's instruments; one on the restricted list says so before it is chosen."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} (restricted)" if obj.restricted else str(obj)

    def to_python(self, value: Any) -> Any:
        # An instrument's number in 0-9 only: int() read "١" and " 1 " as instrument 1, and
        # an order was entered on it (a fuzz), where a quantity so written is refused.
        if value not in self.empty_values and not plain_id(value):
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": str(value)[:40]},
            )
        return super().to_python(value)


def plain_id(value: Any) -> bool:
    """A row's number as a browser sends it: digits 0-9 only, at most 18 of them."""
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) <= 18


class _Shares(forms.IntegerField):
    """Whole shares, as typed: "12,000" is 12000 (params.whole_shares), as in the amend
    dialog; anything else is the field's own "Enter a whole number"."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            shares = whole_shares(value)
            if shares is not None:
                value = str(shares)
        return super().to_python(value)


class _OptionalDecimal(forms.DecimalField):
    """Blank or only spaces is no value (spaces read as "Enter a number": a trial)."""

    def to_python(self, value: Any) -> Any:
        return super().to_python(value.strip() if isinstance(value, str) else value)


class OrderTicketForm(forms.Form):
    instrument = _InstrumentChoice(queryset=Instrument.objects.all(), empty_label=None)
    side = forms.ChoiceField(choices=SIDE_CHOICES, widget=forms.RadioSelect, initial="buy")
    # Whole shares; the range rules (and their messages) are the service's.
    # Text boxes, not number inputs: a browser sends a number input it cannot read ("40.0-",
    # "--5") as empty, and an order went out with no limit at all (a trial). The server
    # reads what was typed and names what is wrong with it.
    quantity = _Shares(widget=forms.TextInput(attrs={"inputmode": "numeric"}))
    start_minute = forms.FloatField(
        label="Start", initial=0, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    end_minute = forms.FloatField(
        label="End", initial=60, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    limit_price = _OptionalDecimal(
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "none"}),
    )
    strategy = forms.ChoiceField(choices=strategy_choices, initial="twap")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.param_errors: dict[str, list[str]] = {}

    NUMBERS = ("quantity", "start_minute", "end_minute", "limit_price")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        getlist = getattr(self.data, "getlist", None)
        if getlist is not None:
            # A field sent twice was read as its last value (a review's quantity=100 and
            # quantity=2300 entered 2,300 shares): refused, naming it.
            for name in self.fields:
                if len(getlist(name)) > 1 and name not in self.errors:
                    self.add_error(name, "given more than once; send it once")
        for name in self.NUMBERS:
            raw = self.data.get(name)
            # int() and Decimal() read "１０００", "١٠٠٠" and "1_000" as 1000: refused, as
            # the limits page refuses them, rather than read as something maybe not meant.
            if (
                isinstance(raw, str)
                and not written_plainly_no_exponent(raw)
                and name not in self.errors
                and not (name == "quantity" and whole_shares(raw) is not None)
            ):
                self.add_error(name, "write it with the digits 0-9")
        return data

    def selected_strategy(self) -> str:
        name = self.data.get("strategy") if self.is_bound else None
        return name if name in strategy_names() else str(self.fields["strategy"].initial)

    def schema(self) -> list[ParamSpec]:
        return list(strategy_class(self.selected_strategy()).schema())

    def raw_params(self) -> dict[str, str]:
        """The parameters the trader filled in (blank: the default). Names the selected
        strategy does not take are kept, so the service refuses them by name rather than
        trading without what the trader meant to set."""
        out: dict[str, str] = {}
        for key in self.data:
            if not key.startswith(PARAM_PREFIX):
                continue
            value = self.data.get(key, "")
            if isinstance(value, str) and value.strip() != "":
                out[key[len(PARAM_PREFIX) :]] = value.strip()
        return out

    def check_params(self) -> None:
        """Each parameter on its own, so all their messages show at once."""
        raw = self.raw_params()
        for spec in self.schema():
            if spec.name in raw:
                try:
                    spec.coerce(raw[spec.name])
                except ParamError as e:
                    self.param_errors.setdefault(PARAM_PREFIX + spec.name, []).append(e.message)

    def check_parsed(self) -> None:
        """When some field cannot be read, the service is not asked: the rules it would
        apply to the fields that could be are applied here, so every message shows at
        once (a trial was told of a bad quantity, then, on the second submit, of a window
        backwards and a limit off the tick)."""
        from execution.services import clean_limit, quantity_problem, window_problem

        d = self.cleaned_data
        if "quantity" in d and "quantity" not in self.errors:
            problem = quantity_problem(d["quantity"])
            if problem:
                self.add_error("quantity", problem)
        if all(k in d and k not in self.errors for k in ("start_minute", "end_minute")):
            wrong = window_problem(d["start_minute"], d["end_minute"])
            if wrong:
                self.add_error(wrong[0], wrong[1])
        if d.get("limit_price") is not None:
            # Without an instrument, its tick is unknown, but not that a price is positive
            # (a trial's -3 went unsaid beside a missing instrument).
            tick = d["instrument"].tick_size if d.get("instrument") else Decimal("1e-6")
            _, problem = clean_limit(d["limit_price"], tick)
            if problem and "limit_price" not in self.errors:
                self.add_error("limit_price", problem)

    def add_service_errors(self, message_dict: dict[str, list[str]]) -> None:
        shown = {PARAM_PREFIX + spec.name for spec in self.schema()}
        for key, messages in message_dict.items():
            if key.startswith(PARAM_PREFIX) and key not in shown:
                # A parameter the ticket has no field for: say so above the form.
                name = key[len(PARAM_PREFIX) :][:40]
                for m in messages:
                    self.add_error(None, f"parameter {name!r}: {m}")
            elif key.startswith(PARAM_PREFIX):
                known = self.param_errors.setdefault(key, [])
                known.extend(m for m in messages if m not in known)
            elif key in self.fields:
                for m in messages:
                    self.add_error(key, m)
            else:
                for m in messages:
                    self.add_error(None, m)

    def param_fields(self, approved: list[str] | None = None) -> list[dict[str, Any]]:
        """What the template renders for the selected strategy's parameters."""
        fields = []
        approved = approved_names() if approved is None else approved
        for spec in self.schema():
            key = PARAM_PREFIX + spec.name
            described = describe(spec, approved)
            value = self.data.get(key, "") if self.is_bound else ""
            if value == "":
                value = described["default"]
            if spec.type == "bool":
                value = "true" if str(value).lower() in ("true", "1", "yes") else "false"
            fields.append(
                {
                    "spec": described,
                    "key": key,
                    "value": value,
                    "errors": self.param_errors.get(key, []),
                }
            )
        return fields
