"""Bands of generated days: by the instrument's quoted spread (bps) and by the order's
expected participation (its share of the window's expected volume). Both are known
before an order starts, so an expert can be trained on, and judged on, the days of its
band only (docs/ADAPTIVE.md). A band is [lo, hi); (0, 0) is no band; hi 0 is no upper
bound."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from execution.learning.scenarios import (
    TRAIN_SEEDS,
    VALIDATION_SEEDS,
    expected_participation,
    quoted_spread,
    train_seeds,
)

Band = tuple[float, float]
NO_BAND: Band = (0.0, 0.0)
# A model card's band that is there but cannot be read: it trades nothing rather than all.
UNREADABLE_BAND: Band = (math.inf, math.inf)


def card_spread_band(card: Any) -> Band | None:
    """The band of quoted spread, [lo, hi) bps, that a single expert was trained on (its
    model card's `config.spread_band`; hi inf for no upper bound); None for a model of
    every spread or a gated one; UNREADABLE_BAND for one that is there but unreadable."""
    config = card.get("config") if isinstance(card, dict) else None
    if not isinstance(config, dict) or config.get("spread_band") is None:
        return None
    band = config["spread_band"]
    try:
        lo, hi = float(band[0]), float(band[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return UNREADABLE_BAND
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi < 0:
        return UNREADABLE_BAND
    if (lo, hi) == NO_BAND:
        return None  # the trainer's "no band"
    return lo, hi if hi > 0 else math.inf


class Kind:
    """What a band is of: its option's unit and the largest value it may name."""

    def __init__(self, unit: str, example: str, ceiling: float) -> None:
        self.unit, self.example, self.ceiling = unit, example, ceiling


SPREAD = Kind("bps", "0,5", float("inf"))
PARTICIPATION = Kind("shares of the window's expected volume", "0.15,0", 1.0)


def parse_band(text: str, option: str, kind: Kind) -> Band:
    """ "LO,HI" -> (lo, hi); "" -> NO_BAND. ValueError naming the option and the problem."""
    if not text:
        return NO_BAND
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(
            f"{option}: expected LO,HI in {kind.unit} (for example {kind.example}), got {text!r}"
        ) from None
    if not (0 <= lo < kind.ceiling and 0 <= hi <= kind.ceiling) or (hi > 0 and hi <= lo):
        raise ValueError(f"{option}: {text!r} is not a band of {kind.unit}")
    if (lo, hi) == NO_BAND:
        raise ValueError(f"{option}: {text!r} is not a band of {kind.unit} (leave it out)")
    return (lo, hi)


def band_words(band: Band, unit: str = "") -> str:
    """A band as people read it: 0 bounds nothing ("[5.0, 0.0] bps" read as an empty band:
    a trial). "5 bps and over", "under 5 bps", "3 to 5 bps", "any"."""
    lo, hi = band
    u = f" {unit}" if unit else ""
    if hi <= 0 or math.isinf(hi):
        return "any" if lo <= 0 else f"{lo:g}{u} and over"
    return f"under {hi:g}{u}" if lo <= 0 else f"{lo:g} to {hi:g}{u}"


def _within(value: float, band: Band) -> bool:
    lo, hi = band
    return lo <= value and (hi <= 0 or value < hi)


def in_band(seed: int, band: Band, participation: Band = NO_BAND) -> bool:
    """Whether the day's instrument's spread (bps) lies in `band` and its order's expected
    participation in `participation`."""
    if band != NO_BAND and not _within(quoted_spread(seed)[1], band):
        return False
    return participation == NO_BAND or _within(expected_participation(seed), participation)


def _first_in_band(
    seeds_from: Callable[[int], list[int]],
    limit: int,
    n: int,
    band: Band,
    participation: Band,
    what: str,
) -> list[int]:
    out: list[int] = []
    at = 0
    while len(out) < n:
        if at >= limit:
            raise ValueError(
                f"only {len(out)} {what} have a spread of {band_words(band, 'bps')} "
                f"and a participation of {band_words(participation)}"
            )
        for s in seeds_from(at):
            if in_band(s, band, participation):
                out.append(s)
                if len(out) == n:
                    break
        at += 64
    return out


def band_seeds(start: int, n: int, band: Band, participation: Band = NO_BAND) -> list[int]:
    """The first `n` training days from `start` on that lie in both bands (with no bands,
    `train_seeds(start, n)`)."""
    # A band no generated day lies in is refused in seconds, not after scanning all million
    # training days (four minutes, as the test suite's slowest test once did).
    check_bands(band, participation)
    return _first_in_band(
        lambda at: train_seeds(start + at, 64),
        len(TRAIN_SEEDS),
        n,
        band,
        participation,
        "training days",
    )


def validation_band_seeds(offset: int, n: int, band: Band, participation: Band) -> list[int]:
    """The first `n` held-out validation days from `offset` on that lie in both bands."""
    stop = VALIDATION_SEEDS.stop

    def block(at: int) -> list[int]:
        first = VALIDATION_SEEDS.start + offset + at
        return list(range(first, min(first + 64, stop)))

    return _first_in_band(
        block, len(VALIDATION_SEEDS) - offset, n, band, participation, "validation days"
    )


@functools.cache  # band_seeds asks at every training iteration; the answer never changes
def check_bands(band: Band, participation: Band) -> None:
    """ValueError unless enough generated days lie in both bands to train on."""
    if band == NO_BAND and participation == NO_BAND:
        return
    try:
        # The generator's spreads run from about 0.2 to 200 bps, participations to 0.4; a
        # band that holds fewer than 10 of its first 20,000 days is too narrow to train on
        # (and scanning all million to say so would take an hour).
        _first_in_band(
            lambda at: train_seeds(at, 64), 20_000, 10, band, participation, "training days"
        )
    except ValueError:
        raise ValueError(
            f"too few generated days lie in spread {band} bps and participation {participation}"
        ) from None
