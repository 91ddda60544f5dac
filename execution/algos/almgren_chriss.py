"""Discrete Almgren & Chriss (2000), "Optimal execution of portfolio transactions".

A holder of ``X`` shares liquidates them over ``N`` intervals of length ``tau = T / N``.
Prices follow an arithmetic random walk with linear permanent impact ``g(v) = gamma v``
and linear temporary impact ``h(v) = eps sign(v) + eta v``, where ``v = n_k / tau`` is the
trading rate in interval ``k``. Minimising ``E[cost] + lam Var[cost]`` gives holdings
``x_k = X sinh(kappa (T - t_k)) / sinh(kappa T)``; ``lam = 0`` gives the straight line (TWAP).

Units: prices in dollars per share, ``sigma`` in $/share/sqrt(time unit), ``T`` in the same
time unit, ``lam`` in 1/$. A negative ``X`` (a short to cover) works too: every formula is
written in signed trades.

Pure: plain Python and ``math`` only, deterministic, no wall clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ACParams",
    "cost_variance",
    "expected_cost",
    "holdings",
    "kappa",
    "schedule_fraction",
    "simulate_linear_impact",
    "trade_list",
]

# Below this kappa*T the sinh ratio is the straight line to within double precision.
_LINEAR_KAPPA_T = 1e-12


@dataclass(frozen=True)
class ACParams:
    """Inputs to the model; field names follow the paper."""

    X: float  # shares to sell at t = 0 (negative: shares to buy)
    T: float  # horizon, in time units
    N: int  # number of trading intervals
    sigma: float  # volatility, $/share/sqrt(time unit)
    eps: float  # fixed cost per share traded: half spread plus fees, $/share
    eta: float  # temporary impact, $/share per (share/time unit)
    gamma: float  # permanent impact, $/share per share
    lam: float  # risk aversion, 1/$

    def __post_init__(self) -> None:
        if self.N < 1:
            raise ValueError(f"N must be at least 1, got {self.N}")
        if not self.T > 0:
            raise ValueError(f"T must be positive, got {self.T}")
        if self.sigma < 0 or self.eps < 0 or self.gamma < 0 or self.lam < 0:
            raise ValueError("sigma, eps, gamma and lam must be non-negative")
        if not self.eta_tilde > 0:
            # The paper assumes eta > gamma tau / 2; otherwise the problem is not convex.
            raise ValueError(
                f"eta - gamma*tau/2 must be positive, got {self.eta_tilde} "
                f"(eta={self.eta}, gamma={self.gamma}, tau={self.tau})"
            )

    @property
    def tau(self) -> float:
        return self.T / self.N

    @property
    def eta_tilde(self) -> float:
        return self.eta - 0.5 * self.gamma * self.tau


def kappa(p: ACParams) -> float:
    """Urgency kappa, in 1/time unit: solves (2/tau^2)(cosh(kappa tau) - 1) = kappa_tilde^2."""
    kappa_tilde_sq = p.lam * p.sigma**2 / p.eta_tilde
    if kappa_tilde_sq == 0.0:
        return 0.0
    # acosh(1 + y) written as log1p(y + sqrt(y (y + 2))) keeps precision for tiny y.
    y = 0.5 * kappa_tilde_sq * p.tau**2
    return math.log1p(y + math.sqrt(y * (y + 2.0))) / p.tau


def _sinh_ratio(a: float, b: float) -> float:
    """sinh(a) / sinh(b) for 0 <= a <= b, without overflow for large b; a / b as b -> 0."""
    if b < _LINEAR_KAPPA_T:
        return a / b if b > 0 else 1.0
    # sinh(a)/sinh(b) = e^(a-b) (1 - e^(-2a)) / (1 - e^(-2b))
    return math.exp(a - b) * math.expm1(-2.0 * a) / math.expm1(-2.0 * b)


def holdings(p: ACParams) -> list[float]:
    """Optimal holdings x_0 = X, ..., x_N = 0 at times t_k = k tau."""
    k_t = kappa(p) * p.T
    xs = [p.X]
    for k in range(1, p.N):
        remaining = 1.0 - k / p.N  # (T - t_k) / T
        if k_t < _LINEAR_KAPPA_T:
            xs.append(p.X * remaining)
        else:
            xs.append(p.X * _sinh_ratio(k_t * remaining, k_t))
    xs.append(0.0)
    return xs


def _checked(p: ACParams, xs: Sequence[float] | None) -> Sequence[float]:
    if xs is None:
        return holdings(p)
    if len(xs) != p.N + 1:
        raise ValueError(f"expected {p.N + 1} holdings, got {len(xs)}")
    tol = 1e-9 * max(1.0, abs(p.X))
    if abs(xs[0] - p.X) > tol or abs(xs[-1]) > tol:
        # The closed-form cost below relies on starting at X and ending flat.
        raise ValueError(f"holdings must run from X={p.X} to 0, got {xs[0]} -> {xs[-1]}")
    return xs


def trade_list(p: ACParams, holdings: Sequence[float] | None = None) -> list[float]:
    """Shares sold in each interval: n_k = x_{k-1} - x_k, k = 1..N."""
    xs = _checked(p, holdings)
    return [xs[k - 1] - xs[k] for k in range(1, len(xs))]


def expected_cost(p: ACParams, holdings: Sequence[float] | None = None) -> float:
    """Expected implementation shortfall in $ of a schedule (the optimal one by default).

    E = gamma X^2 / 2 + eps sum|n_k| + (eta_tilde / tau) sum n_k^2.
    """
    ns = trade_list(p, holdings)
    return (
        0.5 * p.gamma * p.X**2
        + p.eps * math.fsum(abs(n) for n in ns)
        + p.eta_tilde / p.tau * math.fsum(n * n for n in ns)
    )


def cost_variance(p: ACParams, holdings: Sequence[float] | None = None) -> float:
    """Variance of the shortfall in $^2: sigma^2 tau sum_{k=1..N} x_k^2."""
    xs = _checked(p, holdings)
    return p.sigma**2 * p.tau * math.fsum(x * x for x in xs[1:])


def schedule_fraction(elapsed_fraction: float, *, kappa_T: float) -> float:
    """Continuous-time fraction of the order executed after ``elapsed_fraction`` of the horizon.

    1 - sinh(kappa_T (1 - f)) / sinh(kappa_T); the straight line f when kappa_T is ~0.
    Stable for large kappa_T (no overflow) and clamped to [0, 1].
    """
    f = min(1.0, max(0.0, elapsed_fraction))
    k_t = abs(kappa_T)
    if k_t < _LINEAR_KAPPA_T:
        return f
    executed = 1.0 - _sinh_ratio(k_t * (1.0 - f), k_t)
    return min(1.0, max(0.0, executed))


def simulate_linear_impact(p: ACParams, holdings: Sequence[float], *, price0: float) -> float:
    """Implementation shortfall in $ of ``holdings`` in the noise-free AC market (xi = 0).

    Interval k trades n_k at S~_k = S_{k-1} - h(n_k / tau); afterwards the price moves
    permanently to S_k = S_{k-1} - tau g(n_k / tau). Returns X price0 - sum n_k S~_k,
    which equals ``expected_cost`` by construction of the model.
    """
    xs = _checked(p, holdings)
    price = price0
    proceeds: list[float] = []
    for k in range(1, len(xs)):
        n = xs[k - 1] - xs[k]
        rate = n / p.tau
        temporary = p.eps * math.copysign(1.0, n) + p.eta * rate if n != 0 else 0.0
        proceeds.append(n * (price - temporary))
        price -= p.tau * p.gamma * rate
    return p.X * price0 - math.fsum(proceeds)
