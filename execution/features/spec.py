"""The feature table: the one place that defines each feature's order, unit and range.

Values come out of `FeatureState` in their documented units (raw). `normalise` clips each
to its range and scales it into [-1, 1] (into [0, 1] for a range that starts at 0), and
flags values far outside the range a policy was trained on: the adaptive strategy falls
back to a baseline when any is flagged. docs/FEATURES.md has the table with reasons.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
Vector64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    unit: str
    lo: float  # the documented range: normalise clips to it
    hi: float
    description: str
    # Heavy-tailed (sizes, spreads, rates): compressed with sign(x)·log1p(|x|) before
    # scaling, so typical values do not crowd near 0.
    log: bool = False

    @property
    def bound(self) -> float:
        return max(abs(self.lo), abs(self.hi))


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("side", "", -1.0, 1.0, "+1 buy order, -1 sell order."),
    FeatureSpec(
        "time_remaining_frac",
        "fraction",
        0.0,
        1.0,
        "(end - now) / (end - start) of the order's window.",
    ),
    FeatureSpec(
        "inventory_remaining_frac", "fraction", 0.0, 1.0, "(qty - filled) / qty of the order."
    ),
    FeatureSpec(
        "schedule_deviation",
        "fraction",
        -1.0,
        1.0,
        "filled / qty minus the target schedule's fraction (linear in time unless the "
        "strategy gives its own); positive = ahead of schedule.",
    ),
    FeatureSpec(
        "participation",
        "fraction",
        0.0,
        1.0,
        "Our filled shares / the whole market's volume since the order started (ours included).",
    ),
    FeatureSpec(
        "spread_ticks",
        "ticks",
        -5.0,
        20.0,
        "National best offer - best bid; negative while the national market is crossed "
        "(venues follow the price independently and are not arbitraged at once).",
        log=True,
    ),
    FeatureSpec(
        "spread_vs_typical",
        "ratio",
        -4.0,
        8.0,
        "spread_ticks / the instrument's typical spread.",
        log=True,
    ),
    FeatureSpec(
        "microprice_offset_ticks",
        "ticks",
        -10.0,
        10.0,
        "Microprice - mid; microprice = (ask·bid_qty + bid·ask_qty) / (bid_qty + ask_qty) "
        "at the national best, queues summed over lit venues.",
        log=True,
    ),
    FeatureSpec(
        "microprice_offset_spreads",
        "spreads",
        -0.5,
        0.5,
        "(Microprice - mid) / |spread| (a spread under one tick counts as one).",
    ),
    FeatureSpec(
        "imbalance_l1",
        "",
        -1.0,
        1.0,
        "(bid_qty - ask_qty) / (bid_qty + ask_qty) at the national best; 0 when both are empty.",
    ),
    FeatureSpec(
        "imbalance_l5",
        "",
        -1.0,
        1.0,
        "The same over the best five price levels of each side, summed over lit venues.",
    ),
    FeatureSpec(
        "bid_queue_shares",
        "shares",
        0.0,
        1e6,
        "Size at the national best bid, summed over lit venues.",
        log=True,
    ),
    FeatureSpec(
        "ask_queue_shares",
        "shares",
        0.0,
        1e6,
        "Size at the national best offer, summed over lit venues.",
        log=True,
    ),
    FeatureSpec(
        "bid_queue_rel",
        "log2(1 + ratio)",
        0.0,
        6.0,
        "log2(1 + bid queue / typical queue): 0 empty, 1 typical, 2 three times typical; "
        "typical: exponentially weighted mean of both best queues, half-life 30 min of the "
        "order's time, from its first decision.",
    ),
    FeatureSpec("ask_queue_rel", "log2(1 + ratio)", 0.0, 6.0, "The same for the offer."),
    FeatureSpec(
        "vol_30s",
        "bps/√s",
        0.0,
        20.0,
        "Realised volatility of mid log returns between decision steps over the last 30 s "
        "(at least the latest step): sqrt(Σ r² / max(Σ Δt, 1 s)), r in bps; before any "
        "return, the instrument's daily volatility in the same unit.",
        log=True,
    ),
    FeatureSpec("vol_2m", "bps/√s", 0.0, 20.0, "The same over the last 2 minutes.", log=True),
    FeatureSpec(
        "vol_2m_vs_daily",
        "ratio",
        0.0,
        10.0,
        "vol_2m / the instrument's daily volatility in the same unit.",
        log=True,
    ),
    FeatureSpec(
        "trade_flow_1m",
        "fraction",
        -1.0,
        1.0,
        "(buyer- - seller-initiated lit volume) / (their sum) over the last minute of steps.",
    ),
    FeatureSpec("trade_flow_5m", "fraction", -1.0, 1.0, "The same over the last 5 minutes."),
    FeatureSpec(
        "dark_fill_rate",
        "1/min",
        0.0,
        10.0,
        "Our dark fills / our dark resting exposure (share-minutes, at least one second per "
        "filled share) over the last 10 minutes of steps; 0 with no dark exposure.",
        log=True,
    ),
)

NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
INDEX: Mapping[str, int] = {n: i for i, n in enumerate(NAMES)}
N_FEATURES = len(FEATURES)

_LO = np.array([f.lo for f in FEATURES], dtype=np.float64)
_HI = np.array([f.hi for f in FEATURES], dtype=np.float64)
_BOUND = np.array([f.bound for f in FEATURES], dtype=np.float64)
_LOG = np.array([f.log for f in FEATURES], dtype=bool)
_LOG_BOUND = np.log1p(_BOUND)
_SAFE_BOUND = np.where(_BOUND > 0, _BOUND, 1.0)


@dataclass(frozen=True, slots=True)
class TrainingRange:
    """Per-feature raw range a policy was trained on (saved next to the policy)."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    @classmethod
    def documented(cls) -> TrainingRange:
        return cls(tuple(f.lo for f in FEATURES), tuple(f.hi for f in FEATURES))

    @classmethod
    def fit(cls, vectors: npt.ArrayLike, quantile: float = 0.0) -> TrainingRange:
        """The observed range of raw training vectors (rows), optionally trimmed."""
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != N_FEATURES or x.shape[0] == 0:
            raise ValueError(f"expected a non-empty (n, {N_FEATURES}) array, got {x.shape}")
        lo = np.quantile(x, quantile, axis=0) if quantile > 0 else x.min(axis=0)
        hi = np.quantile(x, 1.0 - quantile, axis=0) if quantile > 0 else x.max(axis=0)
        return cls(tuple(float(v) for v in lo), tuple(float(v) for v in hi))

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(NAMES), "lo": list(self.lo), "hi": list(self.hi)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingRange:
        if list(d["names"]) != list(NAMES):
            raise ValueError("the training range was saved for a different feature set")
        lo, hi = tuple(float(v) for v in d["lo"]), tuple(float(v) for v in d["hi"])
        # A range the out-of-range check cannot use is refused, not trusted: NaN compares
        # false, so a NaN bound never flags anything (a trial's edited model traded on).
        if len(lo) != N_FEATURES or len(hi) != N_FEATURES:
            raise ValueError(
                f"the training range has {len(lo)} lows and {len(hi)} highs, "
                f"not {N_FEATURES} of each"
            )
        for name, a, b in zip(NAMES, lo, hi, strict=True):
            if not (math.isfinite(a) and math.isfinite(b)):
                raise ValueError(f"the training range of {name} is not finite: [{a}, {b}]")
            if a > b:
                raise ValueError(f"the training range of {name} is upside down: [{a}, {b}]")
        return cls(lo, hi)


@dataclass(frozen=True, slots=True)
class Normalised:
    values: Vector  # each in [-1, 1]
    out_of_range: npt.NDArray[np.bool_]  # far outside the training range, or not finite

    @property
    def any_out_of_range(self) -> bool:
        return bool(self.out_of_range.any())

    @property
    def names_out_of_range(self) -> tuple[str, ...]:
        return tuple(NAMES[i] for i in np.flatnonzero(self.out_of_range))


_DOCUMENTED = TrainingRange.documented()


@functools.lru_cache(maxsize=64)
def _flag_bounds(training: TrainingRange, margin: float) -> tuple[Vector64, Vector64]:
    """Below `low` or above `high`: flagged. Computed once per model, not per decision."""
    lo = np.asarray(training.lo, dtype=np.float64)
    hi = np.asarray(training.hi, dtype=np.float64)
    slack = margin * (hi - lo)
    low, high = lo - slack, hi + slack
    low.flags.writeable = high.flags.writeable = False
    return low, high


def normalise(
    raw: npt.ArrayLike, training: TrainingRange | None = None, margin: float = 0.5
) -> Normalised:
    """Clip each raw feature to its documented range and scale it into [-1, 1].

    Linear features are divided by the larger magnitude of their range ends; `log` ones
    become sign(x)·log1p(|x|) / log1p(bound). A value is flagged when it lies more than
    `margin` times the width of the training range (default: the documented range)
    outside that range, or is not finite; a flagged value is still clipped (a NaN
    becomes 0), so the vector is always safe to feed, if not to trust.
    """
    x = np.asarray(raw, dtype=np.float64)
    if x.shape != (N_FEATURES,):
        raise ValueError(f"expected {N_FEATURES} features, got shape {x.shape}")
    low, high = _flag_bounds(training or _DOCUMENTED, float(margin))
    finite = np.isfinite(x)
    flagged = ~finite | (x < low) | (x > high)
    # Every decision passes here: plain ufuncs, no np.clip/np.where wrappers (the same
    # values, element by element, as clip and where; a NaN has become 0 first).
    c = np.minimum(np.maximum(np.where(finite, x, 0.0), _LO), _HI)
    scaled = np.where(_LOG, np.sign(c) * np.log1p(np.abs(c)) / _LOG_BOUND, c / _SAFE_BOUND)
    return Normalised(scaled.astype(np.float32), flagged)


def describe(values: Sequence[float]) -> dict[str, float]:
    """Name → value, for logs and the order page."""
    if len(values) != N_FEATURES:
        raise ValueError(f"expected {N_FEATURES} values, got {len(values)}")
    return {n: float(v) for n, v in zip(NAMES, values, strict=True)}
