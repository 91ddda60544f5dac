"""Turn a scenario into the background market's rates and sizes.

Everything here is derived from the scenario alone, so that a file nobody has seen
still produces a market with the right daily volume, spread and volatility. Each knob
can be overridden from the scenario's optional ``"simulator"`` object (FORMAT.md allows
a simulator's own keys there); unknown knobs are rejected so a typo does not pass silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from execution.sim.scenario import SESSION_MINUTES, Scenario, ScenarioError

SESSION_SECONDS = SESSION_MINUTES * 60.0


@dataclass(frozen=True, slots=True)
class Knobs:
    """Model constants; the defaults are the calibration documented in docs/SIMULATOR.md."""

    # Lit market orders per normal day: about one per 150 shares of lit volume, kept within
    # a band so small caps still trade and large caps stay fast to simulate.
    lit_trades_min: int = 1500
    lit_trades_max: int = 9000
    lit_shares_per_trade: float = 150.0
    limit_orders_per_trade: float = 2.5
    cancels_per_trade: float = 2.0
    dark_print_size_multiple: float = 2.0
    # Mean queue at the best level, in mean market orders of that venue, scaled by the
    # venue's share of lit volume relative to the largest lit venue.
    best_depth_trades: float = 4.0
    depth_growth_per_level: float = 0.35
    # Informed flow: share of market orders whose sign leans to the latent price, and how
    # hard (per tick of latent-minus-mid). The rest follows a persistent meta-order sign.
    informed_share: float = 0.5
    informed_slope_per_tick: float = 1.5
    meta_sign_flip: float = 0.15
    # How far limit orders and cancels lean to the side the latent price favours (0..0.5).
    provider_lean: float = 0.45
    # Quotes re-centre on the latent price once it lies this many ticks beyond the touch;
    # inside that band the flow (not a re-quote) moves the book, so queues carry information.
    requote_extra_ticks: float = 2.0
    requote_steps: int = 2
    # Chance that a limit order arriving while the spread is wider than usual improves it.
    improve_wide_spread: float = 0.9
    # Size of the quote that steps in behind a cleared level, in best-level depths.
    step_in_depth: float = 1.0
    # Impact of our own fills on the latent price, in daily sigmas times sqrt(volume/ADV).
    impact_permanent: float = 0.45
    impact_transient: float = 0.45
    impact_half_life_s: float = 1800.0
    default_latency_ms: float = 3.0

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Knobs:
        """The scenario's knobs over the defaults; a value outside its range (KNOB_RANGES:
        where the model means something and a day stays finite) is refused by key."""
        raw: dict[str, Any] = dict(scenario.simulator)
        known = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                # FORMAT.md: another simulator's knobs may sit here; code that does not
                # know them ignores them (`unknown_knobs` lets a command say so).
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ScenarioError(f"simulator.{key}", f"must be a finite number, got {value!r}")
            lo, hi = KNOB_RANGES[key]
            if not lo <= value <= hi:
                raise ScenarioError(
                    f"simulator.{key}", f"must be in [{lo:g}, {hi:g}], got {value!r}"
                )
            default = known[key].default
            changes[key] = int(value) if isinstance(default, int) else float(value)
        knobs = replace(cls(), **changes)
        if knobs.lit_trades_min > knobs.lit_trades_max:
            raise ScenarioError(
                "simulator.lit_trades_min",
                f"must not exceed lit_trades_max ({knobs.lit_trades_max}), "
                f"got {knobs.lit_trades_min}",
            )
        return knobs

    @classmethod
    def unknown_knobs(cls, simulator: Any) -> list[str]:
        """The keys of a scenario's `simulator` object that are not knobs of this simulator
        (ignored, as FORMAT.md asks; a command says so, since a typo looks the same)."""
        known = {f.name for f in fields(cls)}
        return sorted(str(k) for k in simulator if k not in known) if simulator else []


# Each knob's accepted range. The lower bounds keep the model's divisions and loops
# finite (no trades, zero-size trades or queues, a re-quote band of nothing); the upper
# ones keep a day's background within MAX_BACKGROUND_EVENTS' order of magnitude.
KNOB_RANGES: dict[str, tuple[float, float]] = {
    "lit_trades_min": (1, 200_000),
    "lit_trades_max": (1, 200_000),
    "lit_shares_per_trade": (1, 1e7),
    "limit_orders_per_trade": (0, 50),
    "cancels_per_trade": (0, 50),
    "dark_print_size_multiple": (0.01, 1000),
    "best_depth_trades": (0.01, 1000),
    "depth_growth_per_level": (0, 10),
    "informed_share": (0, 1),
    "informed_slope_per_tick": (0, 100),
    "meta_sign_flip": (0, 1),
    "provider_lean": (0, 0.5),
    "requote_extra_ticks": (0, 1000),
    "requote_steps": (1, 100),
    "improve_wide_spread": (0, 1),
    "step_in_depth": (0, 1000),
    "impact_permanent": (0, 100),
    "impact_transient": (0, 100),
    "impact_half_life_s": (1, 1e7),
    "default_latency_ms": (0, 60_000),
}
# A simulated day is drawn up front (docs/SIMULATOR.md): about 50,000 background events
# for a normal one. Forty times that is still a few seconds and a few hundred MB; a
# regime or knobs asking for more are refused before a worker tries.
MAX_BACKGROUND_EVENTS = 2_000_000


@dataclass(frozen=True, slots=True)
class Calibration:
    """Rates and sizes for one scenario's normal (multiplier 1) day."""

    tick_size: float
    reference_ticks: float
    sigma_ticks_per_day: float
    spread_ticks: float
    adv_shares: float
    lit_trades: float
    lit_trade_size: float
    limit_order_size: float
    dark_prints: float
    dark_print_size: float
    best_depth: tuple[float, ...]  # per venue (lit ones; 0 for dark), at liquidity multiplier 1
    knobs: Knobs

    @property
    def background_events(self) -> float:
        k = self.knobs
        per_trade = 1.0 + k.limit_orders_per_trade + k.cancels_per_trade
        return self.lit_trades * per_trade + self.dark_prints


def check_day_size(scenario: Scenario, cal: Calibration) -> None:
    """Refuse a scenario whose day would draw more than MAX_BACKGROUND_EVENTS background
    events (each regime's liquidity for the share of the day's volume it spans), naming
    the regime that adds the most, or the simulator's knobs."""
    spans: list[tuple[float, str, float, float]] = []
    starts = [r.start_minute for r in scenario.regimes] + [SESSION_MINUTES]
    if not scenario.regimes or starts[0] > 0:
        spans.append((1.0, "", 0.0, starts[0]))
    for i, r in enumerate(scenario.regimes):
        spans.append(
            (r.liquidity_multiplier, f"regimes[{i}].liquidity_multiplier", starts[i], starts[i + 1])
        )
    weighted = [(m * scenario.volume_fraction_between(a, b), m, key) for m, key, a, b in spans]
    events = cal.background_events * sum(w for w, _, _ in weighted)
    if events > MAX_BACKGROUND_EVENTS:
        _, multiplier, key = max(weighted, key=lambda item: item[0] if item[1] > 1 else -1.0)
        raise ScenarioError(
            key if multiplier > 1 else "simulator",
            f"the simulated day would draw about {events:,.0f} background events; at most "
            f"{MAX_BACKGROUND_EVENTS:,} (lower the liquidity multiplier or the simulator's "
            f"lit_trades_max, limit_orders_per_trade, cancels_per_trade)",
        )


def calibrate(scenario: Scenario, knobs: Knobs | None = None) -> Calibration:
    k = knobs or Knobs.from_scenario(scenario)
    inst = scenario.instrument
    lit_share = sum(v.volume_share for v in scenario.lit_venues)
    dark_share = 1.0 - lit_share
    lit_volume = inst.adv_shares * lit_share
    lit_trades = min(max(lit_volume / k.lit_shares_per_trade, k.lit_trades_min), k.lit_trades_max)
    lit_trade_size = lit_volume / lit_trades
    dark_print_size = lit_trade_size * k.dark_print_size_multiple
    dark_prints = inst.adv_shares * dark_share / dark_print_size if dark_share > 1e-9 else 0.0
    max_lit = max(v.volume_share for v in scenario.lit_venues)
    best_depth = tuple(
        k.best_depth_trades * lit_trade_size * (v.volume_share / max_lit)
        if v.kind == "lit"
        else 0.0
        for v in scenario.venues
    )
    cal = Calibration(
        tick_size=inst.tick_size,
        reference_ticks=inst.reference_price / inst.tick_size,
        sigma_ticks_per_day=inst.daily_volatility * inst.reference_price / inst.tick_size,
        spread_ticks=inst.spread_ticks,
        adv_shares=inst.adv_shares,
        lit_trades=lit_trades,
        lit_trade_size=lit_trade_size,
        limit_order_size=lit_trade_size * 0.8,
        dark_prints=dark_prints,
        dark_print_size=dark_print_size,
        best_depth=best_depth,
        knobs=k,
    )
    check_day_size(scenario, cal)
    return cal
