"""Production order contexts: the shape of the orders the adaptive strategy really worked
(size against ADV, side, window, urgency), read from the decision log, so a retrain can
practise on orders like them in generated markets (docs/MODELS.md, "The learning loop").

A training seed either keeps its generated order or, with probability `share`, takes one
production context (chosen by the seed, so a seed always gives the same day): the
instrument, venues, regimes and outages stay generated, the order becomes the production
one, scaled to the generated instrument's ADV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from execution.features import INDEX, N_FEATURES
from execution.learning.scenarios import MAX_ADV_PCT, generate
from execution.sim.scenario import Scenario, parse_scenario

SESSION_MINUTES = 390


@dataclass(frozen=True, slots=True)
class ProductionContext:
    size_adv: float  # the order's quantity over the instrument's ADV
    side: str  # "buy" or "sell"
    window_minutes: float
    urgency: float

    def as_tuple(self) -> tuple[float, str, float, float]:
        return (self.size_adv, self.side, self.window_minutes, self.urgency)


Contexts = Sequence[tuple[float, str, float, float]]  # picklable: as_tuple() each


def context_for(seed: int, contexts: Contexts, share: float) -> ProductionContext | None:
    if not contexts:
        return None
    rng = np.random.default_rng([seed, 11])
    if rng.random() >= share:
        return None
    return ProductionContext(*contexts[int(rng.integers(len(contexts)))])


def scenario_dict(seed: int, contexts: Contexts = (), share: float = 0.5) -> dict[str, Any]:
    """The generated scenario of a seed, its order replaced by a production context's."""
    d = generate(seed)
    ctx = context_for(seed, contexts, share)
    if ctx is None:
        return d
    adv = d["instrument"]["adv_shares"]
    length = min(max(ctx.window_minutes, 5.0), SESSION_MINUTES)
    rng = np.random.default_rng([seed, 13])
    start = float(rng.integers(0, int(SESSION_MINUTES - length) + 1)) if length < 390 else 0.0
    qty = max(int(round(min(ctx.size_adv, MAX_ADV_PCT) * adv, -2)), 100)
    d["order"] = {
        "side": ctx.side,
        "quantity": qty,
        "start_minute": start,
        "end_minute": start + length,
        "limit_price": None,
    }
    d["description"] += " with a production order context"
    return d


def scenario_for(seed: int, contexts: Contexts = (), share: float = 0.5) -> Scenario:
    return parse_scenario(scenario_dict(seed, contexts, share))


def contexts_from_log(arrays: dict[str, Any], episodes: Sequence[Any]) -> list[ProductionContext]:
    """One context per logged episode: the size from its first decision's observation
    (log10(qty / ADV) / 2 + 1), the side feature, the urgency, and the window as the span
    of its decisions' clock (plus one decision interval)."""
    obs, raw, ts = arrays["observation"], arrays["features_raw"], arrays["ts"]
    urgency, step = arrays["urgency"], arrays["step"]
    first: dict[Any, int] = {}
    span: dict[Any, tuple[float, float]] = {}
    for k, ep in enumerate(episodes):
        if ep not in first or step[k] < step[first[ep]]:
            first[ep] = k
        lo, hi = span.get(ep, (math.inf, -math.inf))
        span[ep] = (min(lo, float(ts[k])), max(hi, float(ts[k])))
    out = []
    for ep, k in first.items():
        size = 10 ** (2.0 * (float(obs[k, N_FEATURES]) - 1.0))
        side = "buy" if raw[k, INDEX["side"]] > 0 else "sell"
        lo, hi = span[ep]
        window = min(max((hi - lo) / 60.0 + 1.0, 5.0), float(SESSION_MINUTES))
        out.append(ProductionContext(size, side, window, float(urgency[k])))
    return out
