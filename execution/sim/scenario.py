"""Scenario files: parsing, validation and small derived quantities.

A scenario describes one parent order and the simulated market it is worked in
(see FORMAT.md in the shared scenarios folder).  Everything here is plain
standard-library Python so the format can be validated without the simulator.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import json
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

SESSION_MINUTES = 390.0

# Share of the day's volume per 30-minute bucket (09:30-10:00 ... 15:30-16:00):
# busy open, midday lull, and the heaviest bucket into the close.
_U_SHAPE_RAW = (2.0, 1.35, 1.1, 0.95, 0.85, 0.8, 0.75, 0.8, 0.85, 0.95, 1.1, 1.35, 2.2)
U_SHAPE_WEIGHTS: tuple[float, ...] = tuple(w / sum(_U_SHAPE_RAW) for w in _U_SHAPE_RAW)

_SIDES = ("buy", "sell")
_KINDS = ("lit", "dark")
_SHARE_TOLERANCE = 1e-6
# Bounds far beyond any real market that keep a simulated day finite in time and memory
# (a value past them is refused with its key, as an impossible one is): prices to a
# million, ticks to a millionth, volumes to ten billion shares a day.
MAX_PRICE = 1e6
MIN_TICK = 1e-6
MIN_ADV, MAX_ADV = 100.0, 1e10
MAX_SPREAD_TICKS = 1000.0
MAX_ORDER_QTY = 1e12
MAX_LATENCY_MS = 60_000.0
MAX_FEE_BPS = 1000.0
MAX_MULTIPLIER = 100.0
_INSTRUMENT_NUMBERS = (
    "reference_price",
    "tick_size",
    "adv_shares",
    "daily_volatility",
    "spread_ticks",
)


class ScenarioError(ValueError):
    """A scenario problem, tied to the key (dotted path) that caused it."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from (key, message), not from str(self): a worker process's error must
        # reach the parent intact (a pool that cannot unpickle one hangs).
        return (type(self), (self.key, self.message))


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    reference_price: float
    tick_size: float
    adv_shares: float
    daily_volatility: float
    spread_ticks: float


@dataclass(frozen=True, slots=True)
class OrderSpec:
    side: str  # "buy" | "sell"
    quantity: int
    start_minute: float
    end_minute: float
    limit_price: float | None


@dataclass(frozen=True, slots=True)
class VenueSpec:
    name: str
    kind: str  # "lit" | "dark"
    volume_share: float
    latency_ms: float = 3.0
    fee_bps: float = 0.0


@dataclass(frozen=True, slots=True)
class Regime:
    start_minute: float
    volatility_multiplier: float
    liquidity_multiplier: float


@dataclass(frozen=True, slots=True)
class Outage:
    venue: str
    start_minute: float
    end_minute: float


_NO_REGIME = Regime(0.0, 1.0, 1.0)
_VENUE_DEFAULTS = VenueSpec("", "lit", 1.0)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    seed: int
    instrument: Instrument
    order: OrderSpec
    venues: tuple[VenueSpec, ...]
    volume_profile_name: str  # "u_shape", "flat" or "custom"
    volume_profile: tuple[float, ...]  # equal buckets across the session, sums to 1
    regimes: tuple[Regime, ...]
    outages: tuple[Outage, ...]
    simulator: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Top-level keys of the format this simulator reads but found in another's form, and
    # ignored: "simulator" when it is not an object of knobs.
    foreign: tuple[str, ...] = field(default=(), compare=False)
    source: str | None = None
    # Keys inside the format's objects that it does not define (a misspelt "limit_prce"
    # looks the same as an extension): ignored, and listed so a command can say so.
    ignored: tuple[str, ...] = field(default=(), compare=False)

    def with_order(self, **changes: Any) -> Scenario:
        """A copy with some order fields changed, validated like a parsed order."""
        order = dataclasses.replace(self.order, **changes)
        return dataclasses.replace(self, order=_parse_order(_order_dict(order)))

    @property
    def lit_venues(self) -> tuple[VenueSpec, ...]:
        return tuple(v for v in self.venues if v.kind == "lit")

    @property
    def dark_venues(self) -> tuple[VenueSpec, ...]:
        return tuple(v for v in self.venues if v.kind == "dark")

    def regime_at(self, minute: float) -> Regime:
        starts = [r.start_minute for r in self.regimes]
        i = bisect.bisect_right(starts, minute) - 1
        return self.regimes[i] if i >= 0 else _NO_REGIME

    def volume_fraction_between(self, a_minute: float, b_minute: float) -> float:
        """Expected share of the day's volume traded in [a, b] (clamped to the session)."""
        a = min(max(a_minute, 0.0), SESSION_MINUTES)
        b = min(max(b_minute, 0.0), SESSION_MINUTES)
        if b <= a:
            return 0.0
        return self._cumulative_volume(b) - self._cumulative_volume(a)

    def _cumulative_volume(self, minute: float) -> float:
        # The profile is piecewise constant, so the cumulative share is piecewise linear.
        width = SESSION_MINUTES / len(self.volume_profile)
        full = min(int(minute // width), len(self.volume_profile))
        total = sum(self.volume_profile[:full])
        if full < len(self.volume_profile):
            total += self.volume_profile[full] * (minute - full * width) / width
        return total

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict in FORMAT.md's shape; parse_scenario(to_dict()) rebuilds it."""
        venues = []
        for v in self.venues:
            venue: dict[str, Any] = {"name": v.name, "kind": v.kind, "volume_share": v.volume_share}
            # The extensions are written only when set, to keep files in the documented shape.
            if v.latency_ms != _VENUE_DEFAULTS.latency_ms:
                venue["latency_ms"] = v.latency_ms
            if v.fee_bps != _VENUE_DEFAULTS.fee_bps:
                venue["fee_bps"] = v.fee_bps
            venues.append(venue)
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "instrument": dataclasses.asdict(self.instrument),
            "order": _order_dict(self.order),
            "venues": venues,
            "volume_profile": (
                list(self.volume_profile)
                if self.volume_profile_name == "custom"
                else self.volume_profile_name
            ),
        }
        if self.regimes:
            out["regimes"] = [dataclasses.asdict(r) for r in self.regimes]
        if self.outages:
            out["outages"] = [dataclasses.asdict(o) for o in self.outages]
        if self.simulator:
            out["simulator"] = copy.deepcopy(dict(self.simulator))
        return out


# ---------------------------------------------------------------- parsing helpers


def _show(value: Any) -> str:
    """The offending value as it would appear in the JSON file."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _obj(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(key, f"must be an object, got {_show(value)}")
    return value


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(key, f"must be a list, got {_show(value)}")
    return value


def _required(obj: dict[str, Any], name: str, prefix: str) -> Any:
    if name not in obj:
        raise ScenarioError(prefix + name, "is required")
    return obj[name]


def _number(value: Any, key: str) -> float:
    # bool is an int subclass in Python, but `true` is never a meaningful quantity.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(key, f"must be a number, got {_show(value)}")
    if not math.isfinite(value):
        raise ScenarioError(key, f"must be a finite number, got {value}")
    return float(value)


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(key, f"must be a string, got {_show(value)}")
    return value


def _nonempty_string(value: Any, key: str) -> str:
    text = _string(value, key)
    if not text.strip():
        raise ScenarioError(key, "must be a non-empty string")
    return text


def _positive(value: Any, key: str) -> float:
    number = _number(value, key)
    if number <= 0:
        raise ScenarioError(key, f"must be > 0, got {_show(value)}")
    return number


def _minute_window(obj: dict[str, Any], prefix: str) -> tuple[float, float]:
    start = _number(_required(obj, "start_minute", prefix), prefix + "start_minute")
    end = _number(_required(obj, "end_minute", prefix), prefix + "end_minute")
    if not 0 <= start < SESSION_MINUTES:
        raise ScenarioError(prefix + "start_minute", f"must be in [0, 390), got {_show(start)}")
    if not 0 < end <= SESSION_MINUTES:
        raise ScenarioError(prefix + "end_minute", f"must be in (0, 390], got {_show(end)}")
    if end <= start:
        raise ScenarioError(
            prefix + "end_minute", f"must be after start_minute ({start:g}), got {end:g}"
        )
    return start, end


def _parse_instrument(data: Any) -> Instrument:
    obj = _obj(data, "instrument")
    p = "instrument."

    def num(name: str) -> float:
        return _number(_required(obj, name, p), p + name)

    symbol = _nonempty_string(_required(obj, "symbol", p), p + "symbol")
    values = {name: num(name) for name in _INSTRUMENT_NUMBERS}
    for name in ("reference_price", "tick_size", "adv_shares"):
        if values[name] <= 0:
            raise ScenarioError(p + name, f"must be > 0, got {values[name]:g}")
    if not 0 < values["daily_volatility"] < 1:
        raise ScenarioError(
            p + "daily_volatility",
            f"must be a fraction in (0, 1) such as 0.02, got {values['daily_volatility']:g}",
        )
    if values["spread_ticks"] < 1:
        raise ScenarioError(p + "spread_ticks", f"must be >= 1, got {values['spread_ticks']:g}")
    if values["tick_size"] >= values["reference_price"]:
        # The price would be less than one tick: no book can be quoted around it.
        raise ScenarioError(
            p + "tick_size",
            f"must be smaller than the reference price {values['reference_price']:g}, "
            f"got {values['tick_size']:g}",
        )
    for name, lo, hi in (
        ("reference_price", 0.0, MAX_PRICE),
        ("tick_size", MIN_TICK, MAX_PRICE),
        ("adv_shares", MIN_ADV, MAX_ADV),
        ("spread_ticks", 1.0, MAX_SPREAD_TICKS),
    ):
        if not lo <= values[name] <= hi:
            raise ScenarioError(p + name, f"must be in [{lo:g}, {hi:g}], got {values[name]:g}")
    if values["spread_ticks"] * values["tick_size"] >= values["reference_price"]:
        raise ScenarioError(
            p + "spread_ticks",
            f"a spread of {values['spread_ticks']:g} ticks is the whole price or more "
            f"({values['reference_price']:g})",
        )
    return Instrument(symbol=symbol, **values)


def _order_dict(order: OrderSpec) -> dict[str, Any]:
    return dataclasses.asdict(order)


def _parse_order(data: Any) -> OrderSpec:
    obj = _obj(data, "order")
    p = "order."
    side = _required(obj, "side", p)
    if side not in _SIDES:
        raise ScenarioError(p + "side", f'must be "buy" or "sell", got {_show(side)}')
    raw_qty = _required(obj, "quantity", p)
    qty_ok = (
        not isinstance(raw_qty, bool)
        and isinstance(raw_qty, (int, float))
        and math.isfinite(raw_qty)
        and raw_qty == int(raw_qty)
        and raw_qty > 0
    )
    if not qty_ok:
        raise ScenarioError(
            p + "quantity", f"must be a positive whole number of shares, got {_show(raw_qty)}"
        )
    if raw_qty > MAX_ORDER_QTY:
        raise ScenarioError(p + "quantity", f"must be at most {MAX_ORDER_QTY:g}, got {raw_qty:g}")
    start, end = _minute_window(obj, p)
    limit = obj.get("limit_price")
    limit_price = None if limit is None else _positive(limit, p + "limit_price")
    if limit_price is not None and limit_price > MAX_PRICE:
        raise ScenarioError(p + "limit_price", f"must be at most {MAX_PRICE:g}, got {limit:g}")
    return OrderSpec(side, int(raw_qty), start, end, limit_price)


def _parse_venues(data: Any) -> tuple[VenueSpec, ...]:
    items = _list(data, "venues")
    if not items:
        raise ScenarioError("venues", "must list at least one venue")
    venues: list[VenueSpec] = []
    for i, item in enumerate(items):
        p = f"venues[{i}]."
        obj = _obj(item, f"venues[{i}]")
        name = _nonempty_string(_required(obj, "name", p), p + "name")
        if any(v.name == name for v in venues):
            raise ScenarioError(p + "name", f"duplicate venue name {_show(name)}")
        kind = _required(obj, "kind", p)
        if kind not in _KINDS:
            raise ScenarioError(p + "kind", f'must be "lit" or "dark", got {_show(kind)}')
        share = _positive(_required(obj, "volume_share", p), p + "volume_share")
        latency = _VENUE_DEFAULTS.latency_ms
        if "latency_ms" in obj:
            latency = _number(obj["latency_ms"], p + "latency_ms")
            if not 0 <= latency <= MAX_LATENCY_MS:
                raise ScenarioError(
                    p + "latency_ms", f"must be in [0, {MAX_LATENCY_MS:g}], got {latency:g}"
                )
        fee = _VENUE_DEFAULTS.fee_bps
        if "fee_bps" in obj:
            # Negative fees are maker rebates; -100 bps or less would pay out the whole notional.
            fee = _number(obj["fee_bps"], p + "fee_bps")
            if not -100 < fee <= MAX_FEE_BPS:
                raise ScenarioError(
                    p + "fee_bps", f"must be > -100 and at most {MAX_FEE_BPS:g}, got {fee:g}"
                )
        venues.append(VenueSpec(name, kind, share, latency, fee))
    total = sum(v.volume_share for v in venues)
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise ScenarioError("venues", f"volume_share values must sum to 1, got {total:.6g}")
    if not any(v.kind == "lit" for v in venues):
        raise ScenarioError(
            "venues", "at least one venue must be lit (dark venues cross at the lit mid)"
        )
    return tuple(venues)


def _parse_profile(data: Any) -> tuple[str, tuple[float, ...]]:
    if data == "u_shape":
        return "u_shape", U_SHAPE_WEIGHTS
    if data == "flat":
        return "flat", (1.0,)
    if not isinstance(data, list) or not data:
        raise ScenarioError(
            "volume_profile",
            f'must be "u_shape", "flat" or a non-empty list of positive weights, got {_show(data)}',
        )
    weights = [_positive(w, f"volume_profile[{i}]") for i, w in enumerate(data)]
    # Relative weights: scaled by the largest first, so that weights near the float range
    # do not sum to inf (ten of 1e308 became a profile of zeros, a market with almost no
    # volume and nonsense results: a fuzz).
    # (Only then: an ordinary profile keeps its bits, and every backtest its numbers.)
    total = sum(weights)
    if not math.isfinite(total):
        top = max(weights)
        weights = [w / top for w in weights]
        total = sum(weights)
    return "custom", tuple(w / total for w in weights)


def _multiplier(obj: dict[str, Any], name: str, p: str) -> float:
    value = _positive(_required(obj, name, p), p + name)
    if value > MAX_MULTIPLIER:
        raise ScenarioError(p + name, f"must be at most {MAX_MULTIPLIER:g}, got {value:g}")
    return value


def _parse_regimes(data: Any) -> tuple[Regime, ...]:
    regimes: list[Regime] = []
    for i, item in enumerate(_list(data, "regimes")):
        p = f"regimes[{i}]."
        obj = _obj(item, f"regimes[{i}]")
        start = _number(_required(obj, "start_minute", p), p + "start_minute")
        if not 0 <= start < SESSION_MINUTES:
            raise ScenarioError(p + "start_minute", f"must be in [0, 390), got {start:g}")
        same = next((j for j, r in enumerate(regimes) if r.start_minute == start), None)
        if same is not None:
            raise ScenarioError(
                p + "start_minute",
                f"regimes[{same}] starts at minute {start:g} too: one regime from a minute on",
            )
        vol = _multiplier(obj, "volatility_multiplier", p)
        liq = _multiplier(obj, "liquidity_multiplier", p)
        regimes.append(Regime(start, vol, liq))
    # In time order whatever order the file lists them in: each holds "until the next
    # regime" (FORMAT.md), the next in time (a review's file listed minute 300 first).
    return tuple(sorted(regimes, key=lambda r: r.start_minute))


def _parse_outages(data: Any, venues: tuple[VenueSpec, ...]) -> tuple[Outage, ...]:
    names = [v.name for v in venues]
    outages: list[Outage] = []
    for i, item in enumerate(_list(data, "outages")):
        p = f"outages[{i}]."
        obj = _obj(item, f"outages[{i}]")
        venue = _string(_required(obj, "venue", p), p + "venue")
        if venue not in names:
            raise ScenarioError(
                p + "venue", f"unknown venue {_show(venue)}; known venues: {', '.join(names)}"
            )
        start, end = _minute_window(obj, p)
        outages.append(Outage(venue, start, end))
    return tuple(outages)


# Keys each object of the format defines (FORMAT.md; an instrument's "name", a venue's
# latency and fees are this product's extensions). Others are ignored, and said to be.
_KNOWN_KEYS = {
    "instrument": {
        "symbol",
        "name",
        "reference_price",
        "tick_size",
        "adv_shares",
        "daily_volatility",
        "spread_ticks",
    },
    "order": {"side", "quantity", "start_minute", "end_minute", "limit_price"},
    "venues": {"name", "kind", "volume_share", "latency_ms", "fee_bps"},
    "regimes": {"start_minute", "volatility_multiplier", "liquidity_multiplier"},
    "outages": {"venue", "start_minute", "end_minute"},
}


def ignored_keys(root: dict[str, Any]) -> tuple[str, ...]:
    """Keys inside the format's objects that it does not define, as paths
    ("order.limit_prce", "venues[0].fee_bp"); top-level keys are the format's to allow."""
    out: list[str] = []
    for part, known in _KNOWN_KEYS.items():
        value = root.get(part)
        items = value if isinstance(value, list) else [value]
        for i, obj in enumerate(items):
            if not isinstance(obj, dict):
                continue
            where = f"{part}[{i}]" if isinstance(value, list) else part
            out.extend(f"{where}.{key}" for key in obj if key not in known)
    return tuple(out)


# ---------------------------------------------------------------- public entry points


def _no_number_past_float(data: Any, path: str) -> None:
    """ScenarioError naming the first integer too large for a float (1 and 400 zeros):
    every check compares numbers as floats, and such an integer raised OverflowError from
    whichever check met it first (a trial found a dozen keys that did)."""
    if isinstance(data, bool):
        return
    if isinstance(data, int):
        try:
            float(data)
        except OverflowError:
            raise ScenarioError(path or "scenario", "a number too large to be one") from None
    elif isinstance(data, dict):
        for k, v in data.items():
            _no_number_past_float(v, f"{path}.{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _no_number_past_float(v, f"{path}[{i}]")


def parse_scenario(data: Any, *, source: str | None = None) -> Scenario:
    """Validate a decoded JSON scenario; raises ScenarioError naming the bad key."""
    root = _obj(data, "scenario")
    _no_number_past_float(root, "")
    default_name = Path(source).stem if source else "scenario"
    name = _nonempty_string(_or(root.get("name"), default_name), "name")
    # An optional key given as null is a key not given (FORMAT.md's own example writes the
    # optional limit_price so; "regimes": null was refused, and stopped a whole run).
    description = _string(_or(root.get("description"), ""), "description")
    seed = _required(root, "seed", "")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError("seed", f"must be an integer, got {_show(seed)}")
    if seed < 0:
        # numpy's generators reject negative seeds; fail here with the key named instead.
        raise ScenarioError("seed", f"must be >= 0, got {seed}")
    instrument = _parse_instrument(_required(root, "instrument", ""))
    order = _parse_order(_required(root, "order", ""))
    venues = _parse_venues(_required(root, "venues", ""))
    profile_name, profile = _parse_profile(_required(root, "volume_profile", ""))
    regimes = _parse_regimes(_or(root.get("regimes"), []))
    outages = _parse_outages(_or(root.get("outages"), []), venues)
    # "simulator" is a top-level key the format leaves to each simulator: one that is not
    # an object of knobs is another simulator's ("abides-v2"), ignored as unknown keys are.
    raw_simulator = root.get("simulator")
    simulator = raw_simulator if isinstance(raw_simulator, dict) else {}
    foreign = () if raw_simulator is None or isinstance(raw_simulator, dict) else ("simulator",)
    return Scenario(
        name=name,
        description=description,
        seed=seed,
        instrument=instrument,
        order=order,
        venues=venues,
        volume_profile_name=profile_name,
        volume_profile=profile,
        regimes=regimes,
        outages=outages,
        # Copied so later edits to the caller's dict cannot change a frozen scenario.
        simulator=MappingProxyType(copy.deepcopy(simulator)),
        source=source,
        ignored=ignored_keys(root),
        foreign=foreign,
    )


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


# Far above any real scenario (a 50 MB file with a long volume profile still loads).
MAX_SCENARIO_BYTES = 256 * 2**20


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            # json keeps the last silently: a second "order" would replace the first.
            raise ValueError(f"the key {_show(key)} appears twice in one object")
        seen[key] = value
    return seen


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario JSON file; file and JSON problems are keyed by the path."""
    where = os.fspath(path)
    return parse_scenario(read_scenario_json(where), source=where)


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def read_scenario_json(path: str | os.PathLike[str]) -> Any:
    """A scenario file's JSON, decoded; a file or JSON problem (a key given twice in one
    object included) raises ScenarioError keyed by the path."""
    where = os.fspath(path)
    try:
        # A FIFO or a device would block open() or read() forever: refuse it by its kind,
        # as opened (without waiting: O_NONBLOCK), so a path swapped between a look and
        # the open cannot slip one in (a review).
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            os.close(fd)
            if stat.S_ISDIR(kind):
                raise ScenarioError(where, "is a folder, not a scenario file")
            raise ScenarioError(where, f"is not a regular file (a {_file_kind(kind)})")
        with open(fd, "rb") as f:
            # Bounded: a runaway file must not be read forever.
            raw = f.read(MAX_SCENARIO_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(where, "scenario file not found") from None
    except OSError as exc:
        raise ScenarioError(where, f"cannot read scenario file: {exc.strerror or exc}") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            where, f"scenario file is larger than {MAX_SCENARIO_BYTES // 2**20} MiB"
        )
    try:
        # A byte order mark, as some editors write, is ignored (RFC 8259 allows it).
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(where, f"cannot read scenario file: {exc}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_repeated_keys)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            where, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise ScenarioError(where, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ScenarioError(where, f"invalid JSON: {exc}") from None
    return data
