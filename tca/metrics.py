"""Post-trade metrics, pure: shared by the backtest command and the TCA page.

Definitions follow ../shared/scenarios/FORMAT.md: implementation shortfall against the
arrival mid in basis points, positive = cost, with quantity left unfilled at the end of
the window charged at the mid then (Perold's opportunity cost), and fees counted as cost.
"""

from __future__ import annotations


def implementation_shortfall_bps(
    *,
    side: int,
    qty: float,
    filled_qty: float,
    avg_fill_px: float | None,
    arrival_mid: float,
    end_mid: float,
    fees: float = 0.0,
) -> float:
    """Cost of the whole order, filled and unfilled, per unit of arrival value, in bps.

    Prices in any one unit (ticks or currency); fees in that unit times shares.
    """
    if qty <= 0 or arrival_mid <= 0:
        raise ValueError("qty and arrival_mid must be positive")
    executed = (
        side * (avg_fill_px - arrival_mid) * filled_qty if filled_qty and avg_fill_px else 0.0
    )
    unfilled = side * (end_mid - arrival_mid) * (qty - filled_qty)
    return (executed + unfilled + fees) / (qty * arrival_mid) * 1e4


def filled_shortfall_bps(*, side: int, avg_fill_px: float, arrival_mid: float) -> float:
    """The filled shares' shortfall against arrival, in bps (positive = cost): what the
    blotter shows while an order works and the TCA page as "IS filled"."""
    if arrival_mid <= 0:
        raise ValueError("arrival_mid must be positive")
    return side * (avg_fill_px - arrival_mid) / arrival_mid * 1e4


def vwap_slippage_bps(
    *, side: int, avg_fill_px: float | None, market_vwap: float | None
) -> float | None:
    """How much worse than the market's VWAP over the window our fills were, in bps."""
    if not avg_fill_px or not market_vwap:
        return None
    return side * (avg_fill_px - market_vwap) / market_vwap * 1e4
