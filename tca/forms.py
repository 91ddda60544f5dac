"""The TCA page's filters. Each is optional; a value that names nothing is an error the
page shows, never a silently unfiltered answer."""

from __future__ import annotations

from typing import Any

from django import forms

from execution.algos.registry import strategy_names
from execution.models import Instrument

FILTER_KEYS = ("instrument", "strategy", "side")


class TcaFilterForm(forms.Form):
    instrument = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "there is no instrument “%(value)s”"},
    )
    strategy = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "there is no strategy “%(value)s”"},
    )
    side = forms.ChoiceField(
        required=False,
        choices=[("", "Both"), ("buy", "Buy"), ("sell", "Sell")],
        error_messages={"invalid_choice": "side is buy or sell, not “%(value)s”"},
    )

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if data is not None:
            # The page shows "POV" and "HBRK": a link typed either way means the same.
            data = data.copy()
            for key, fold in (
                ("instrument", str.upper),
                ("strategy", str.lower),
                ("side", str.lower),
            ):
                if isinstance(data.get(key), str):
                    data[key] = fold(data[key].strip())
        super().__init__(data, *args, **kwargs)
        symbols = Instrument.objects.values_list("symbol", flat=True)
        self.fields["instrument"].choices = [("", "All")] + [(s, s) for s in symbols]
        self.fields["strategy"].choices = [("", "All")] + [(n, n.upper()) for n in strategy_names()]

    def filters(self) -> dict[str, str]:
        return {k: self.cleaned_data[k] for k in FILTER_KEYS}
