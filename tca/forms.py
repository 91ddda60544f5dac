"""The TCA page's filters. Each is optional; a value that names nothing is an error the
page shows, never a silently unfiltered answer."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from execution.algos.registry import strategy_class, strategy_names
from execution.models import Instrument, ModelVersion, ParentOrder
from oversight.roles import VIEW_ALL_ORDERS

FILTER_KEYS = ("trader", "instrument", "strategy", "model", "side")


def _takes_a_model(strategy: str) -> bool:
    return any(p.name == "model" for p in strategy_class(strategy).schema())


class TcaFilterForm(forms.Form):
    # Only for those who see every trader's orders (risk managers); a trader sees theirs.
    trader = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "there is no trader “%(value)s” whose orders you see"},
    )
    instrument = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "there is no instrument “%(value)s”"},
    )
    strategy = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "there is no strategy “%(value)s”"},
    )
    model = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "there is no model version “%(value)s” with orders"},
    )
    side = forms.ChoiceField(
        required=False,
        choices=[("", "Both"), ("buy", "Buy"), ("sell", "Sell")],
        error_messages={"invalid_choice": "side is buy or sell, not “%(value)s”"},
    )

    def __init__(self, data: Any = None, *args: Any, user: Any = None, **kwargs: Any) -> None:
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
            for key in FILTER_KEYS:
                # No name is longer than a username (150); a longer one is refused, and
                # its message and the field it comes back in show its start, not all of it.
                value = data.get(key)
                if isinstance(value, str) and len(value) > 150:
                    data[key] = value[:64] + "…"
        super().__init__(data, *args, **kwargs)
        self._username = user.get_username() if user is not None else ""
        if user is not None and user.has_perm(VIEW_ALL_ORDERS):
            names = (
                get_user_model()
                .objects.filter(orders__isnull=False)
                .distinct()
                .order_by("username")
                .values_list("username", flat=True)
            )
            self.fields["trader"].choices = [("", "All")] + [(n, n) for n in names]
        else:
            del self.fields["trader"]
        symbols = Instrument.objects.values_list("symbol", flat=True)
        self.fields["instrument"].choices = [("", "All")] + [(s, s) for s in symbols]
        self.fields["strategy"].choices = [("", "All")] + [(n, n.upper()) for n in strategy_names()]
        versions = set(
            ModelVersion.objects.filter(orders__isnull=False)
            .order_by()
            .values_list("name", flat=True)
            .distinct()
        )
        experts = set(
            ParentOrder.objects.exclude(model_expert="")
            .order_by()
            .values_list("model_expert", flat=True)
            .distinct()
        )
        self.fields["model"].choices = [("", "All")] + [
            (n, n if n in versions else f"{n} (as an expert)") for n in sorted(versions | experts)
        ]
        typed = self.data.get("model") if data is not None else None
        if isinstance(typed, str) and typed.strip():
            # Names are unique whatever the case: "POLICY-V14" is policy-v14.
            known = {v.lower(): v for v, _ in self.fields["model"].choices if v}
            self.data["model"] = known.get(typed.strip().lower(), typed.strip())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        unknown = sorted(k for k in self.data if k not in FILTER_KEYS)
        if unknown:
            # Ignored, it listed everything as if filtered (a trial's ?expert=policy-v13).
            raise forms.ValidationError(
                f"“{unknown[0][:40]}” is not a filter here; the filters are "
                f"{', '.join(k for k in FILTER_KEYS if k in self.fields)}"
            )
        typed = self.data.get("trader") if "trader" not in self.fields else None
        if isinstance(typed, str) and typed.strip() and typed.strip() != self._username:
            # A trader sees their own orders: another's name was dropped unsaid, and the
            # page answered with the trader's own as if filtered (a trial).
            raise forms.ValidationError(
                f"you see only your own orders, not trader “{typed.strip()[:64]}”'s"
            )
        strategy, model = data.get("strategy"), data.get("model")
        if strategy and model and not _takes_a_model(strategy):
            # Always empty, and "no finished orders match" did not say why (a note).
            raise forms.ValidationError(
                f"{strategy.upper()} orders trade without a model: a model version filters "
                "adaptive orders only"
            )
        return data

    def filters(self) -> dict[str, str]:
        return {k: self.cleaned_data[k] for k in FILTER_KEYS if k in self.fields}
