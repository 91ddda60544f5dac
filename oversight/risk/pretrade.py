"""The parent order's pre-trade check, on the one path that creates orders (the ticket and
any API go through execution.services.parent_order_submit, which calls this).

Two kinds of finding:
- refusals (a kill switch, a reduce-only state the order would not reduce, a restricted
  instrument): the order is not created; nobody can override them;
- breaches of a limit (order size and value, daily notional with working orders counted at
  once, expected participation, a duplicate): the order is created BLOCKED and goes to the
  market only with a risk manager's single-use, time-boxed override.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from execution.engine.policy import DenyReason
from oversight.risk.models import DeskMembership, KillSwitch, Metric, RiskLimit
from oversight.risk.scopes import OrderScopes, covers, tightest

DUPLICATE_WINDOW = timedelta(seconds=60)
OPEN = ["NEW", "WORKING", "PAUSED", "PENDING_CANCEL", "SUSPENDED"]
# A single-use override lets one order past a limit by at most this many times the limit.
# Beyond it the limit is not the question: the order is cut, or the limit raised under
# four eyes (a trial's one grant released an order 80 times the firm's max order value).
OVERRIDE_CEILING = Decimal(2)


@dataclass(frozen=True, slots=True)
class Finding:
    code: DenyReason
    message: str
    # How many times its limit the order is, for a limit with a size (None: a yes-or-no
    # finding, such as a duplicate); infinite against a limit of zero.
    times: Decimal | None = None

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"

    @property
    def beyond_override(self) -> bool:
        return self.times is not None and self.times > OVERRIDE_CEILING


def _times(value: Decimal | int, limit: Decimal) -> Decimal:
    return Decimal(value) / limit if limit > 0 else Decimal("Infinity")


def times_said(times: Decimal) -> str:
    """How many times its limit an order is, to two decimals, and to as many more as it
    takes to read as more than the ceiling it is over: 100,001 shares against 50,000 said
    "2.00 times the limit, more than an override may release (2 times)" (a trial)."""
    places = 2
    while places < 8 and round(times, places) <= OVERRIDE_CEILING < times:
        places += 1
    return f"{times:.{places}f}"


def beyond_override(found: list[Finding]) -> list[Finding]:
    """The breaches no override may release, each saying so."""
    return [
        Finding(
            f.code,
            f"{f.message}: "
            + (
                f"{times_said(f.times)} times the limit"
                if f.times.is_finite()
                else "a limit of zero"
            )  # type: ignore[union-attr,arg-type]
            + f", more than an override may release ({OVERRIDE_CEILING:.0f} times); enter a "
            "smaller order, or ask a risk manager for a higher limit",
            f.times,
        )
        for f in found
        if f.beyond_override
    ]


def desk_of(user_id: int) -> str:
    m = DeskMembership.objects.filter(user_id=user_id).select_related("desk").first()
    return m.desk.name if m is not None else ""


def order_scopes(
    *,
    user: Any,
    instrument: Any,
    strategy: str,
    order_id: Any = "",
    model: str = "",
    expert: str = "",
    desk: str | None = None,
) -> OrderScopes:
    """A new order's scopes (`desk`: the trader's now); an entered order's are read with
    its entry desk (`desk=order.desk`), on which it counts."""
    return OrderScopes(
        trader=user.get_username(),
        desk=desk_of(user.pk) if desk is None else desk,
        strategy=strategy,
        instrument=instrument.symbol,
        order=str(order_id or ""),
        model=model,
        expert=expert,
    )


def entered_order_scopes(order: Any) -> OrderScopes:
    """An entered order's scopes: its trader, instrument, strategy, itself, its model and
    expert, and the desk it was entered on, on which it counts."""
    return order_scopes(
        user=order.owner,
        instrument=order.instrument,
        strategy=order.strategy,
        order_id=order.pk,
        model=order.model_version.name if order.model_version_id else "",
        expert=order.model_expert,
        desk=order.desk,
    )


def position(*, trader_id: int, instrument_id: int) -> int:
    """What the trader holds in the instrument (+ long, - short): their net filled quantity
    over every market day. A position carries over the close; the daily notional does not
    (a trial: at the next day's open a reduce-only switch read a 2,579-share short as flat,
    and refused the buy that would close it)."""
    from execution.models import ParentOrder

    net = 0
    for side, filled in ParentOrder.objects.filter(
        owner_id=trader_id, instrument_id=instrument_id, filled_qty__gt=0
    ).values_list("side", "filled_qty"):
        net += filled if side == "buy" else -filled
    return net


def reduce_only_allows(position: int, earlier: list[int], signed: int) -> bool:
    """Under a reduce-only kill switch, may an order of `signed` shares (+ buy, - sell)
    trade, given the trader's position and the signed unfilled rest of their open orders
    in the instrument that came before it? One of those counts only if it reduces what is
    left without flipping it: one that adds, or would flip the position, is stopped by the
    same switch. The entry check and the market worker both ask this (a review: the entry
    check counted a buy the worker then stopped, let a sell in on its strength, and the
    worker stopped that too; the worker counted no other order, so two sells that each
    fit flipped the position)."""
    after = position
    for o in earlier:
        if after != 0 and (o > 0) != (after > 0) and abs(o) <= abs(after):
            after += o
    return after != 0 and (signed > 0) != (after > 0) and abs(signed) <= abs(after)


def working_orders(*, trader_id: int, instrument_id: int) -> list[int]:
    """The signed unfilled rest (+ buys, - sells) of the trader's open orders in the
    instrument, oldest first."""
    from execution.models import ParentOrder

    return [
        (qty - filled) if side == "buy" else -(qty - filled)
        for side, qty, filled in ParentOrder.objects.filter(
            owner_id=trader_id, instrument_id=instrument_id, status__in=OPEN
        )
        .order_by("pk")
        .values_list("side", "quantity", "filled_qty")
    ]


def _profile(instrument: Any) -> tuple[float, ...]:
    return _profile_of(json.dumps(instrument.scenario, sort_keys=True))


@functools.cache
def _profile_of(scenario_json: str) -> tuple[float, ...]:
    from execution.sim.scenario import parse_scenario

    data = json.loads(scenario_json)
    data.setdefault(  # an instrument's scenario may omit its order; only the profile matters
        "order",
        {"side": "buy", "quantity": 1, "start_minute": 0, "end_minute": 390, "limit_price": None},
    )
    return tuple(parse_scenario(data).volume_profile)


def _restricted_detail(instrument: Any) -> str:
    """What a trader reads: that it is on the list, since when, and whom to ask. Not why: a
    restriction's reason can be the inside information it guards (a deal in progress); it
    stays on the risk managers' page and in the audit trail."""
    from oversight.risk.models import Restriction

    r = Restriction.objects.filter(instrument=instrument, active=True).first()
    since = f" since {r.added_at:%Y-%m-%d %H:%M} UTC" if r is not None else ""
    return (
        f"{instrument.symbol} is on the restricted list{since}: no new orders; a risk "
        "manager can say more"
    )


def plain_number(v: Decimal) -> str:
    """50, 12.5, 250,000: a limit as it was typed, not as the database keeps it (50.0000)."""
    return f"{Decimal(v).normalize():,f}"


def refusals(
    *, user: Any, instrument: Any, side: str, quantity: int, scopes: OrderScopes
) -> list[Finding]:
    out: list[Finding] = []
    if instrument.restricted:
        out.append(Finding(DenyReason.RESTRICTED_INSTRUMENT, _restricted_detail(instrument)))
    for k in KillSwitch.objects.filter(active=True).order_by("pk"):
        if not covers(k.scope_type, k.scope_key, scopes):
            continue
        where = f"{k.scope_type} {k.scope_key}".strip()
        if k.state == KillSwitch.HALTED:
            out.append(
                Finding(
                    DenyReason.TRADING_HALTED,
                    f"trading is halted for {where} by kill switch {k.pk}: {k.reason}",
                )
            )
        else:
            pos = position(trader_id=user.pk, instrument_id=instrument.pk)
            # With what is already working: two sells that each reduce a long can flip it.
            earlier = working_orders(trader_id=user.pk, instrument_id=instrument.pk)
            signed = quantity if side == "buy" else -quantity
            if not reduce_only_allows(pos, earlier, signed):
                after = pos + sum(earlier)
                working = f", {after - pos:+,} more working" if after != pos else ""
                out.append(
                    Finding(
                        DenyReason.REDUCE_ONLY,
                        f"{where} may only reduce its position (kill switch {k.pk}); "
                        f"you hold {pos:+,} {instrument.symbol}{working}",
                    )
                )
    return out


def _daily_used(scope_type: str, scope_key: str, today: Q | None = None) -> Decimal:
    """Notional traded and working today in a scope, each order on its instrument's market
    day: fills at their price, and every open order's unfilled rest where the instrument
    trades now (working counts the moment it is sent). `today`: trading_today(), read once
    by a caller with several scopes; read here when not given."""
    from execution.models import ParentOrder
    from execution.selectors import trading_today

    if today is None:
        today = trading_today()

    # Every order's fills, whatever its status (one rejected on a late resume had traded);
    # only open orders' unfilled rest.
    qs = ParentOrder.objects.filter(today).exclude(status__in=["REJECTED", "BLOCKED"], filled_qty=0)
    qs = {
        "firm": lambda q: q,
        "desk": lambda q: q.filter(desk=scope_key),  # the desk it was entered on
        "trader": lambda q: q.filter(owner__username=scope_key),
        "strategy": lambda q: q.filter(strategy=scope_key),
        "instrument": lambda q: q.filter(instrument__symbol=scope_key),
    }[scope_type](qs)
    used = Decimal(0)
    orders = list(qs.only("quantity", "filled_qty", "avg_price", "status", "instrument_id"))
    # Open orders' rest where the instrument trades now, as the risk console values it.
    prices = market_prices({o.instrument_id for o in orders if o.status in OPEN})
    for o in orders:
        used += (o.avg_price or 0) * o.filled_qty
        if o.status in OPEN:
            used += prices[o.instrument_id] * (o.quantity - o.filled_qty)
    return used


def participation_cap(strategy: str, params: dict[str, Any] | None) -> float | None:
    """The share of the market's volume an order's strategy never trades above, where it
    has one: a POV order's rate, unless told to complete (it then sweeps at the end). None:
    the order may trade as fast as its window asks."""
    from execution.algos.params import ParamError, validate_params
    from execution.algos.registry import strategy_class

    if strategy != "pov" or params is None:
        return None
    try:
        p = validate_params(strategy_class(strategy).schema(), params)
    except (ParamError, KeyError, ValueError):
        return None  # refused elsewhere, by name; here the plain reading stands
    return None if p.get("complete") else float(p["participation_rate"])


def _participation_finding(
    lim: dict[Any, Any],
    instrument: Any,
    quantity: int,
    start_minute: float,
    end_minute: float,
    scopes: OrderScopes,
    params: dict[str, Any] | None,
) -> Finding | None:
    from execution.algos.pretrade import window_volume_fraction

    if Metric.MAX_PARTICIPATION_PCT not in lim:
        return None
    v, where = lim[Metric.MAX_PARTICIPATION_PCT]
    frac = window_volume_fraction(_profile(instrument), start_minute, end_minute)
    expected = instrument.adv_shares * frac
    pct = Decimal(100) * quantity / Decimal(max(expected, 1.0))
    what = "of the window's expected volume"
    cap = participation_cap(scopes.strategy, params)
    # From the rate as written: 0.14 * 100 is 14.000000000000002 in floats, over a 14%
    # limit (a review).
    rate_pct = Decimal(str(cap)) * 100 if cap is not None else None
    if rate_pct is not None and rate_pct < pct:
        # A POV order trades its rate of the volume, filling less of a large order, not
        # the whole order in its window (a trial: a 5% POV was blocked at 60.8% while its
        # estimate said 5.06%).
        pct, what = rate_pct, "of the market's volume (its POV rate)"
    if pct <= v:
        return None
    return Finding(
        DenyReason.MAX_PARTICIPATION,
        # Two decimals: "1.0% > 1%" was a trial's 1.04% (and the ticket said 1.04%).
        f"{pct:.2f}% {what} > {plain_number(v)}% ({where})",
        _times(pct, v),
    )


def participation_breach(
    *,
    instrument: Any,
    quantity: int,
    start_minute: float,
    end_minute: float,
    scopes: OrderScopes,
    params: dict[str, Any] | None,
) -> Finding | None:
    """The parent participation limit alone, for an amend that changes how an order reads
    against it (a POV order's rate, or told to complete)."""
    keys = scopes.scope_keys()
    rows = list(
        RiskLimit.objects.filter(
            Q(*[Q(scope_type=t, scope_key=k) for t, k in keys], _connector=Q.OR)
        ).values_list("scope_type", "scope_key", "metric", "value")
    )
    return _participation_finding(
        tightest(rows, scopes), instrument, quantity, start_minute, end_minute, scopes, params
    )


def _limits(scopes: OrderScopes) -> dict[str, tuple[Decimal, str]]:
    """The tightest limit of each metric over the order's scopes, with where it is set."""
    keys = scopes.scope_keys()
    rows = list(
        RiskLimit.objects.filter(
            Q(*[Q(scope_type=t, scope_key=k) for t, k in keys], _connector=Q.OR)
        ).values_list("scope_type", "scope_key", "metric", "value")
    )
    return tightest(rows, scopes)


def _order_notional(instrument: Any, quantity: int, limit_price: Decimal | None) -> Decimal:
    # Valued as what is open is valued (_daily_used): at the limit, else the market now.
    px = limit_price if limit_price is not None else market_price(instrument)
    return px * quantity


def _notional_finding(lim: dict[str, tuple[Decimal, str]], notional: Decimal) -> Finding | None:
    if Metric.MAX_ORDER_NOTIONAL in lim and notional > lim[Metric.MAX_ORDER_NOTIONAL][0]:
        v, where = lim[Metric.MAX_ORDER_NOTIONAL]
        return Finding(
            DenyReason.MAX_ORDER_NOTIONAL,
            f"${notional:,.0f} > ${v:,.0f} ({where})",
            _times(notional, v),
        )
    return None


def order_notional_breach(
    *, instrument: Any, quantity: int, limit_price: Decimal | None, scopes: OrderScopes
) -> Finding | None:
    """The max order notional alone, as the entry check reads it: an amend of the limit
    (or the quantity) is held to it (a review: entered low, amended past it)."""
    return _notional_finding(_limits(scopes), _order_notional(instrument, quantity, limit_price))


def breaches(
    *,
    user: Any,
    instrument: Any,
    side: str,
    quantity: int,
    limit_price: Decimal | None,
    start_minute: float,
    end_minute: float,
    scopes: OrderScopes,
    order_id: int | None = None,
    lock: bool = True,
    params: dict[str, Any] | None = None,
) -> list[Finding]:
    """Limit breaches of a new parent order (or of `order_id`, blocked, checked again when
    an override is granted). Call inside the transaction that creates or releases it: the
    daily-notional limit rows are locked, so two orders cannot both fit the last room.
    `lock=False` only reads (the ticket's estimate, which decides nothing)."""
    from execution.models import ParentOrder

    keys = scopes.scope_keys()
    lim = _limits(scopes)
    notional = _order_notional(instrument, quantity, limit_price)
    out: list[Finding] = []
    if Metric.MAX_ORDER_QTY in lim and quantity > lim[Metric.MAX_ORDER_QTY][0]:
        v, where = lim[Metric.MAX_ORDER_QTY]
        out.append(
            Finding(
                DenyReason.MAX_ORDER_QTY,
                f"{quantity:,} shares > {v:,.0f} ({where})",
                _times(quantity, v),
            )
        )
    found_notional = _notional_finding(lim, notional)
    if found_notional is not None:
        out.append(found_notional)
    found = _participation_finding(
        lim, instrument, quantity, start_minute, end_minute, scopes, params
    )
    if found is not None:
        out.append(found)
    limits = RiskLimit.objects.select_for_update(no_key=True) if lock else RiskLimit.objects.all()
    daily = limits.filter(metric=Metric.DAILY_NOTIONAL, value__isnull=False).order_by("pk")
    today: Q | None = None
    for row in daily:
        if (row.scope_type, row.scope_key) not in keys:
            continue
        if today is None:
            from execution.selectors import trading_today

            today = trading_today()
        used = _daily_used(row.scope_type, row.scope_key, today)
        if used + notional > row.value:
            where = f"{row.scope_type} {row.scope_key}".strip()
            out.append(
                Finding(
                    DenyReason.DAILY_NOTIONAL,
                    f"${used:,.0f} used + ${notional:,.0f} > ${row.value:,.0f} today ({where})",
                    _times(used + notional, row.value),
                )
            )
    dup = ParentOrder.objects.filter(
        owner_id=user.pk,
        instrument=instrument,
        side=side,
        quantity=quantity,
        created_at__gte=timezone.now() - DUPLICATE_WINDOW,
    ).exclude(
        # One the trader cancelled is replaced, not repeated: cancel and enter again is how
        # an order is changed beyond an amend (a trial's was blocked as a duplicate).
        status__in=("REJECTED", "CANCELED")
    )
    if order_id is not None:
        # An entered order checked again is a duplicate only of one entered before it: a
        # double click's first order carried DUPLICATE_ORDER into its override request,
        # for the copies entered after it (a trial).
        dup = dup.filter(pk__lt=order_id)
    if dup.exists():
        out.append(
            Finding(
                DenyReason.DUPLICATE_ORDER,
                f"order {dup.first().pk} for the same {side} {quantity:,} {instrument.symbol} "  # type: ignore[union-attr]
                f"was entered less than {DUPLICATE_WINDOW.seconds} s ago",
            )
        )
    # The trader's own order on the other side, still open: the two could trade with each
    # other in the market (a wash trade, MAR Annex I; the simulator does not prevent
    # self-matching either). Blocked, so a second person looks before it goes.
    other = (
        ParentOrder.objects.filter(
            owner_id=user.pk,
            instrument=instrument,
            status__in=OPEN,
            filled_qty__lt=F("quantity"),
            # Only orders whose windows overlap can meet: a morning buy and an afternoon
            # sell entered together are a round trip, not a wash (a review).
            start_minute__lt=end_minute,
            end_minute__gt=start_minute,
        )
        .exclude(side=side)
        .order_by("pk")
    )
    if order_id is not None:
        other = other.exclude(pk=order_id)
    first = other.first()
    if first is not None:
        more = other.count() - 1
        also = f" (and {more} more)" if more else ""
        out.append(
            Finding(
                DenyReason.OPPOSITE_SIDE_WORKING,
                # Its size, then what is left of it: "to sell 59,479" read as the order's
                # size when it was 60,000 (a trial).
                f"your order {first.pk} to {first.side} {first.quantity:,} "
                f"{instrument.symbol} is still open with {first.quantity - first.filled_qty:,} "
                f"left{also}: this {side} could trade against it",
            )
        )
    return out


def market_prices(instrument_ids: Any) -> dict[int, Decimal]:
    """market_price of each instrument, by id, in one query (the risk console asks every
    second, and the estimate at each keystroke)."""
    from django.db.models import OuterRef, Subquery

    from execution.models import Instrument, MarketSession
    from execution.selectors import day_over

    last = MarketSession.objects.filter(instrument=OuterRef("pk")).order_by("-pk")
    rows = Instrument.objects.filter(pk__in=instrument_ids).annotate(
        last_mid=Subquery(last.values("mid_px")[:1]),
        last_ts=Subquery(last.values("sim_ts")[:1]),
        last_status=Subquery(last.values("status")[:1]),
    )
    out = {}
    for i in rows:
        # Today's mid, as its market last wrote it; after the close the next day opens
        # at the reference price (market_day_next), and so before any session.
        today = i.last_status == MarketSession.RUNNING or (
            i.last_ts is not None and not day_over(i.last_ts)
        )
        mid = i.last_mid if today else None
        out[i.pk] = mid if mid is not None and mid > 0 else Decimal(str(i.reference_price))
    return out


def market_price(instrument: Any) -> Decimal:
    """Where the instrument trades now, as far as the web process knows: the mid its
    market session last wrote on the current day, else the reference price, where a new
    day opens. The worker runs ahead between writes, so this can be a step behind: an
    estimate, and a refusal says "about"."""
    return market_prices([instrument.pk])[instrument.pk]


def limit_away_problem(
    *, side: str, limit_price: Decimal | None, market: Decimal, scopes: OrderScopes
) -> str:
    """'' or why every child priced at this limit would be refused by the price collar: a
    buy limit below the market (a sell's above) by more than the collar. The order could
    only wait, its children denied one after another (a "1.00" typed for "100"); a limit
    through the market is no such problem (children are priced at the market, within it)."""
    if limit_price is None or market <= 0:
        return ""
    rows = RiskLimit.objects.filter(metric=Metric.PRICE_COLLAR_BPS).values_list(
        "scope_type", "scope_key", "metric", "value"
    )
    collar = tightest(rows, scopes).get(Metric.PRICE_COLLAR_BPS)
    if collar is None:
        return ""
    bps, where = collar
    away = (market - limit_price if side == "buy" else limit_price - market) / market * 10_000
    if away <= bps:
        return ""
    direction = "below" if side == "buy" else "above"
    places = max(2, -int(limit_price.as_tuple().exponent))  # as prices are written
    return (
        f"{limit_price:,.{places}f} is {away:,.0f} bps {direction} the market (about "
        f"{market:,.{places}f}): the price collar ({plain_number(bps)} bps, {where}) would "
        "refuse every child priced at it"
    )
