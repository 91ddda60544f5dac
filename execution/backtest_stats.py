"""Summary statistics for backtest results, pure and small enough to check by hand.

Each function takes per-episode values in episode order. Where a statistic is undefined
(a spread from a single episode) it is None rather than NaN, so it serialises to JSON null
and prints as a dash instead of silently poisoning later arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Two-sided 95% normal quantile: with hundreds of episodes the t quantile is the same to
# two decimals, and the brief fixes the interval as mean ± 1.96·sd/√n.
Z_95 = 1.96


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; an empty sequence is a caller's bug, not a zero."""
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def sample_sd(values: Sequence[float]) -> float | None:
    """Sample standard deviation (n - 1 in the denominator); None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def standard_error(values: Sequence[float]) -> float | None:
    """Standard error of the mean, sd/√n; None for fewer than two values."""
    sd = sample_sd(values)
    return None if sd is None else sd / math.sqrt(len(values))


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Mean of per-episode differences a - b with its 95% normal confidence interval."""

    mean: float
    ci95_low: float | None
    ci95_high: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"mean": self.mean, "ci95_low": self.ci95_low, "ci95_high": self.ci95_high}


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """Compare two strategies run on the same seeds, episode by episode.

    Pairing removes the market's day-to-day noise that both runs share (same seed, same
    background flow), so the interval is far narrower than comparing the two means.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    m = mean(diffs)
    se = standard_error(diffs)
    if se is None:
        return PairedDifference(m, None, None)
    half = Z_95 * se
    return PairedDifference(m, m - half, m + half)


def mean_defined(values: Sequence[float | None]) -> float | None:
    """Mean over the values that are defined; None when none are."""
    defined = [v for v in values if v is not None]
    return mean(defined) if defined else None
