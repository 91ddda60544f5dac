"""TWAP, VWAP, POV and IS: four schedules over one way of working an order."""

from __future__ import annotations

import math

from execution.algos.almgren_chriss import schedule_fraction as ac_fraction
from execution.algos.base import (
    SESSION_SECONDS,
    DecisionView,
    Strategy,
    profile_fraction,
    register,
    time_elapsed,
    volume_elapsed,
    window_volume,
)
from execution.algos.params import ParamSpec


@register
class TWAP(Strategy):
    name = "twap"
    label = "TWAP"

    def schedule_fraction(self, t: float) -> float:
        return time_elapsed(self.ctx, t)


@register
class VWAP(Strategy):
    """Follows the instrument's expected intraday volume curve across the order's window."""

    name = "vwap"
    label = "VWAP"

    def setup(self) -> None:
        self._window = window_volume(self.ctx)

    def schedule_fraction(self, t: float) -> float:
        return volume_elapsed(self.ctx, t, self._window)


@register
class POV(Strategy):
    """Targets a share of the volume the market actually trades, as it is observed."""

    name = "pov"
    label = "POV"
    extra_params = (
        ParamSpec(
            "participation_rate",
            "float",
            0.1,
            "Target share of market volume (ours included).",
            "",
            0.005,
            0.5,
        ),
    )

    # POV follows the market's volume, not a clock: by default it does not rush the end.
    default_overrides = {"complete": False}
    keeps_schedule = False

    def schedule_fraction(self, t: float) -> float:
        c = self.ctx
        expected = c.adv_shares * profile_fraction(c.volume_profile, c.start_s, min(t, c.end_s))
        rate = float(self.params["participation_rate"])
        return min(rate * expected / c.qty, 1.0)

    def planned_fraction(self, t: float) -> float:
        # After a re-plan, its share of the volume expected from then on, on top of what
        # was done: not of the volume traded while it stood still.
        r = self.replanned
        if r is None:
            return self.schedule_fraction(t)
        c = self.ctx
        since = profile_fraction(c.volume_profile, r.at_s, min(t, c.end_s)) if t > r.at_s else 0.0
        rate = float(self.params["participation_rate"])
        return min((r.done + rate * c.adv_shares * since) / c.qty, 1.0)

    def targets(self, view: DecisionView) -> tuple[float, float]:
        rate = self.params["participation_rate"]
        c = self.ctx
        r = self.replanned
        if r is not None:  # the market's volume counts from the re-plan, on top of the done
            seen = max(view.others_volume - r.others_volume, 0.0)
            now_target = min(r.done + rate / (1.0 - rate) * seen, c.qty)
            nxt = min(view.now + self.decision_interval_s, c.end_s)
            ahead = rate * c.adv_shares * profile_fraction(c.volume_profile, view.now, nxt)
            return now_target, min(now_target + ahead, c.qty)
        now_target = min(rate / (1.0 - rate) * view.others_volume, c.qty)
        nxt = min(view.now + self.decision_interval_s, c.end_s)
        ahead = rate * c.adv_shares * profile_fraction(c.volume_profile, view.now, nxt)
        return now_target, min(now_target + ahead, c.qty)


@register
class IS(Strategy):
    """Implementation shortfall: the Almgren–Chriss optimal trajectory for risk aversion λ.

    σ is the instrument's daily volatility in dollars per share; the temporary-impact
    coefficient η is set so that the linear model's cost of trading this order evenly over
    its window matches the square-root law's (Y = 0.5), so λ trades off the same cost the
    order will actually pay against the variance of its remaining position.
    """

    name = "is"
    label = "Implementation shortfall"
    extra_params = (
        ParamSpec(
            "risk_aversion",
            "float",
            1e-6,
            "Almgren–Chriss λ: aversion to the variance of cost. Higher trades earlier.",
            "1/$",
            0.0,
            1e-2,
        ),
    )

    def setup(self) -> None:
        c = self.ctx
        days = (c.end_s - c.start_s) / SESSION_SECONDS
        sigma = c.daily_volatility * c.reference_price  # $/share/sqrt(day)
        cost_per_share = 0.5 * sigma * math.sqrt(c.qty / c.adv_shares)
        eta = cost_per_share / (c.qty / days)  # $/share per (share/day)
        lam = self.params["risk_aversion"]
        self.kappa_T = math.sqrt(lam * sigma**2 / eta) * days if lam > 0 else 0.0

    def schedule_fraction(self, t: float) -> float:
        return ac_fraction(time_elapsed(self.ctx, t), kappa_T=self.kappa_T)
