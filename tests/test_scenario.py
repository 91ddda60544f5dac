"""Tests for execution.sim.scenario: the scenario file format and its validation."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from execution.sim.calibration import KNOB_RANGES, Knobs, calibrate
from execution.sim.scenario import (
    SESSION_MINUTES,
    U_SHAPE_WEIGHTS,
    Regime,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared" / "scenarios"
OWN_DIR = REPO_ROOT / "execution" / "scenarios"
SHARED_NAMES = [
    "largecap-sell-2h",
    "midcap-500k-buy",
    "midcap-venue-outage",
    "midcap-volatility-shock",
    "smallcap-wide-spread",
]


def valid() -> dict[str, Any]:
    return {
        "name": "t",
        "description": "test scenario",
        "seed": 1,
        "instrument": {
            "symbol": "TST",
            "reference_price": 50.0,
            "tick_size": 0.01,
            "adv_shares": 2_000_000,
            "daily_volatility": 0.02,
            "spread_ticks": 2,
        },
        "order": {
            "side": "buy",
            "quantity": 100_000,
            "start_minute": 30,
            "end_minute": 240,
            "limit_price": None,
        },
        "venues": [
            {"name": "A", "kind": "lit", "volume_share": 0.6},
            {"name": "B", "kind": "lit", "volume_share": 0.25},
            {"name": "D", "kind": "dark", "volume_share": 0.15},
        ],
        "volume_profile": "u_shape",
        "regimes": [
            {"start_minute": 0, "volatility_multiplier": 1.0, "liquidity_multiplier": 1.0},
            {"start_minute": 120, "volatility_multiplier": 2.5, "liquidity_multiplier": 0.5},
        ],
        "outages": [{"venue": "A", "start_minute": 200, "end_minute": 215}],
    }


# ---------------------------------------------------------------- shipped files


@pytest.mark.parametrize("stem", SHARED_NAMES)
def test_shared_scenarios_parse(stem: str) -> None:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} is absent")
    path = SHARED_DIR / f"{stem}.json"
    s = load_scenario(path)
    raw = json.loads(path.read_text())
    assert s.name == raw["name"] == stem
    assert s.seed == raw["seed"]
    assert s.instrument.symbol == raw["instrument"]["symbol"]
    assert s.order.quantity == raw["order"]["quantity"]
    assert isinstance(s.order.quantity, int)
    assert [v.name for v in s.venues] == [v["name"] for v in raw["venues"]]
    assert len(s.regimes) == len(raw.get("regimes", []))
    assert len(s.outages) == len(raw.get("outages", []))
    assert s.source == str(path)
    assert len(s.lit_venues) + len(s.dark_venues) == len(s.venues)
    assert s.volume_profile == U_SHAPE_WEIGHTS
    # to_dict reproduces the file exactly (the shared files use the documented shape).
    assert s.to_dict() == raw


def test_shared_specific_values() -> None:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} is absent")
    shock = load_scenario(SHARED_DIR / "midcap-volatility-shock.json")
    assert shock.regime_at(130) == Regime(120.0, 2.5, 0.5)
    outage = load_scenario(SHARED_DIR / "midcap-venue-outage.json")
    assert outage.outages[0].venue == "LIT-A"
    assert (outage.outages[0].start_minute, outage.outages[0].end_minute) == (130.0, 150.0)


def test_own_scenarios_exist_and_parse() -> None:
    paths = sorted(OWN_DIR.glob("*.json"))
    assert {p.stem for p in paths} >= {
        "demo-midcap-buy",
        "demo-largecap-sell",
        "demo-smallcap-regime",
    }
    for path in paths:
        s = load_scenario(path)
        assert s.name == path.stem
        assert s.to_dict() == json.loads(path.read_text())


def test_own_scenarios_match_their_brief() -> None:
    mid = load_scenario(OWN_DIR / "demo-midcap-buy.json")
    assert mid.order.side == "buy" and mid.volume_profile_name == "u_shape"
    assert 0.07 <= mid.order.quantity / mid.instrument.adv_shares <= 0.09
    assert mid.order.end_minute - mid.order.start_minute == 180
    assert len(mid.venues) == 3 and len(mid.dark_venues) == 1

    large = load_scenario(OWN_DIR / "demo-largecap-sell.json")
    assert large.order.side == "sell" and large.instrument.spread_ticks == 1
    assert large.order.end_minute - large.order.start_minute == 90
    assert [o.end_minute - o.start_minute for o in large.outages] == [10]

    small = load_scenario(OWN_DIR / "demo-smallcap-regime.json")
    assert small.volume_profile_name == "flat" and small.instrument.spread_ticks == 4
    assert any(
        small.order.start_minute < r.start_minute < small.order.end_minute for r in small.regimes
    )


# ---------------------------------------------------------------- parsing and round trip


def test_round_trip_via_to_dict() -> None:
    data = valid()
    data["venues"][2]["fee_bps"] = -0.2
    data["venues"][2]["latency_ms"] = 1.5
    data["simulator"] = {"impact": {"eta": 0.1}}
    data["volume_profile"] = [3, 1, 1, 2]
    s = parse_scenario(data)
    again = parse_scenario(json.loads(json.dumps(s.to_dict())))
    assert again.volume_profile == pytest.approx(s.volume_profile)
    assert dataclasses.replace(again, volume_profile=s.volume_profile) == s
    assert again.venues[2].fee_bps == -0.2 and again.venues[2].latency_ms == 1.5
    assert dict(again.simulator) == {"impact": {"eta": 0.1}}


def test_defaults_and_optional_keys() -> None:
    data = valid()
    for key in ("name", "description", "regimes", "outages"):
        del data[key]
    s = parse_scenario(data)
    assert s.name == "scenario" and s.description == ""
    assert s.regimes == () and s.outages == () and dict(s.simulator) == {}
    assert s.venues[0].latency_ms == 3.0 and s.venues[0].fee_bps == 0.0
    assert s.order.limit_price is None
    assert parse_scenario(data, source="/x/my-case.json").name == "my-case"
    del data["order"]["limit_price"]
    assert parse_scenario(data).order.limit_price is None


def test_optional_keys_given_as_null_are_keys_not_given() -> None:
    """FORMAT.md's own example writes the optional limit_price as null; "regimes": null
    was refused, and one such file stopped a whole backtest of many (a review)."""
    data = valid()
    for key in ("name", "description", "regimes", "outages"):
        data[key] = None
    s = parse_scenario(data, source="/x/nulls.json")
    assert (s.name, s.description, s.regimes, s.outages) == ("nulls", "", (), ())


def test_regimes_hold_in_time_order_whatever_order_they_are_listed_in() -> None:
    data = valid()
    data["regimes"] = list(reversed(data["regimes"]))
    assert parse_scenario(data).regimes == parse_scenario(valid()).regimes
    assert [r.start_minute for r in parse_scenario(data).regimes] == sorted(
        r["start_minute"] for r in data["regimes"]
    )


def test_a_simulator_key_that_is_not_an_object_of_knobs_is_another_simulators() -> None:
    """Unknown top-level keys, "a simulator's own calibration knobs under simulator"
    among them, are ignored by code that does not know them (FORMAT.md)."""
    data = valid()
    data["simulator"] = "abides-v2"
    parsed = parse_scenario(data)
    assert dict(parsed.simulator) == {} and parsed.foreign == ("simulator",)
    assert parsed == parse_scenario(valid())


def test_unknown_top_level_and_venue_keys_ignored() -> None:
    data = valid()
    data["comment"] = "anything"
    data["future_feature"] = {"x": [1, 2]}
    data["venues"][0]["operator"] = "Example Exchange"
    data["order"]["limit_prce"] = 49.5  # a typo looks the same as an extension
    parsed = parse_scenario(data)
    assert parsed == parse_scenario(valid())
    # Inside the format's objects, what it does not define is listed, so a command can
    # say it was ignored; top-level keys are the format's to allow, and are not.
    assert parsed.ignored == ("order.limit_prce", "venues[0].operator")
    assert parse_scenario(valid()).ignored == ()


def test_a_key_given_twice_in_one_object_is_refused(tmp_path: Path) -> None:
    """JSON keeps the last of two equal keys silently: a second "order" replaced the first."""
    path = tmp_path / "twice.json"
    text = json.dumps(valid())
    path.write_text(text[:-1] + ', "order": {"side": "sell"}}')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == str(path)
    assert 'the key "order" appears twice in one object' in str(info.value)


def test_simulator_is_copied_and_read_only() -> None:
    data = valid()
    data["simulator"] = {"depth": 5}
    s = parse_scenario(data)
    data["simulator"]["depth"] = 99
    assert s.simulator["depth"] == 5
    with pytest.raises(TypeError):
        s.simulator["depth"] = 1  # type: ignore[index]


def test_integral_float_quantity_accepted() -> None:
    data = valid()
    data["order"]["quantity"] = 5000.0
    q = parse_scenario(data).order.quantity
    assert q == 5000 and isinstance(q, int)


def test_with_order_changes_and_validates() -> None:
    s = parse_scenario(valid())
    t = s.with_order(quantity=5, side="sell")
    assert (t.order.quantity, t.order.side) == (5, "sell")
    assert s.order.quantity == 100_000
    with pytest.raises(ScenarioError, match=r"order\.quantity"):
        s.with_order(quantity=-5)


def test_lit_and_dark_venues() -> None:
    s = parse_scenario(valid())
    assert [v.name for v in s.lit_venues] == ["A", "B"]
    assert [v.name for v in s.dark_venues] == ["D"]


# ---------------------------------------------------------------- rejections


def _set(path: str, value: Any) -> Any:
    """A mutation that sets data[...path...] = value (path like 'order.quantity' or 'venues.2.kind')."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _del(path: str) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


REJECTIONS = [
    # required keys
    (_del("seed"), "seed", "is required"),
    (_del("instrument"), "instrument", "is required"),
    (_del("order"), "order", "is required"),
    (_del("venues"), "venues", "is required"),
    (_del("volume_profile"), "volume_profile", "is required"),
    (_del("instrument.tick_size"), "instrument.tick_size", "is required"),
    (_del("instrument.symbol"), "instrument.symbol", "is required"),
    (_del("order.side"), "order.side", "is required"),
    (_del("order.quantity"), "order.quantity", "is required"),
    (_del("order.start_minute"), "order.start_minute", "is required"),
    (_del("order.end_minute"), "order.end_minute", "is required"),
    (_del("venues.0.volume_share"), "venues[0].volume_share", "is required"),
    (_del("regimes.1.liquidity_multiplier"), "regimes[1].liquidity_multiplier", "is required"),
    (_del("outages.0.venue"), "outages[0].venue", "is required"),
    # types
    (_set("seed", True), "seed", "integer"),
    (_set("seed", 1.5), "seed", "integer"),
    (_set("seed", "1"), "seed", "integer"),
    (_set("seed", -1), "seed", ">= 0"),
    (_set("name", 3), "name", "string"),
    (_set("description", 5), "description", "string"),
    (_set("instrument", [1]), "instrument", "object"),
    (_set("order", "buy"), "order", "object"),
    (
        _set("instrument.adv_shares", "lots"),
        "instrument.adv_shares",
        'must be a number, got "lots"',
    ),
    (_set("instrument.reference_price", True), "instrument.reference_price", "number"),
    (_set("instrument.reference_price", math.nan), "instrument.reference_price", "finite"),
    (_set("instrument.tick_size", math.inf), "instrument.tick_size", "finite"),
    (_set("instrument.symbol", ""), "instrument.symbol", "non-empty"),
    (_set("venues", {}), "venues", "list"),
    (_set("venues.0", "A"), "venues[0]", "object"),
    (_set("regimes", {}), "regimes", "list"),
    (_set("outages", "A"), "outages", "list"),
    # instrument values
    (_set("instrument.reference_price", 0), "instrument.reference_price", "> 0"),
    (_set("instrument.tick_size", -0.01), "instrument.tick_size", "> 0"),
    (_set("instrument.adv_shares", 0), "instrument.adv_shares", "> 0"),
    (_set("instrument.daily_volatility", 0), "instrument.daily_volatility", "(0, 1)"),
    (_set("instrument.daily_volatility", 1.0), "instrument.daily_volatility", "(0, 1)"),
    (_set("instrument.daily_volatility", 2), "instrument.daily_volatility", "(0, 1)"),
    (_set("instrument.spread_ticks", 0.5), "instrument.spread_ticks", ">= 1"),
    # order values
    (_set("order.quantity", -5), "order.quantity", "positive whole number of shares, got -5"),
    (_set("order.quantity", 0), "order.quantity", "positive whole number"),
    (_set("order.quantity", 10.5), "order.quantity", "positive whole number"),
    (_set("order.quantity", True), "order.quantity", "positive whole number"),
    (_set("order.quantity", "100"), "order.quantity", "positive whole number"),
    (_set("order.quantity", math.inf), "order.quantity", "positive whole number"),
    (_set("order.side", "short"), "order.side", '"buy" or "sell"'),
    (_set("order.side", "BUY"), "order.side", '"buy" or "sell"'),
    (_set("order.start_minute", -1), "order.start_minute", "[0, 390)"),
    (_set("order.start_minute", 390), "order.start_minute", "[0, 390)"),
    (_set("order.end_minute", 391), "order.end_minute", "(0, 390]"),
    (_set("order.end_minute", 30), "order.end_minute", "after start_minute"),
    (_set("order.end_minute", 10), "order.end_minute", "after start_minute"),
    (_set("order.limit_price", 0), "order.limit_price", "> 0"),
    (_set("order.limit_price", -3.0), "order.limit_price", "> 0"),
    (_set("order.limit_price", "50"), "order.limit_price", "number"),
    # venues
    (_set("venues", []), "venues", "at least one venue"),
    (_set("venues.1.name", "A"), "venues[1].name", "duplicate"),
    (_set("venues.1.name", ""), "venues[1].name", "non-empty"),
    (_set("venues.1.name", 7), "venues[1].name", "string"),
    (_set("venues.1.kind", "grey"), "venues[1].kind", '"lit" or "dark"'),
    (_set("venues.1.volume_share", 0), "venues[1].volume_share", "> 0"),
    (_set("venues.1.volume_share", -0.25), "venues[1].volume_share", "> 0"),
    (_set("venues.1.volume_share", 0.3), "venues", "sum to 1"),
    (
        _set("venues", [{"name": n, "kind": "dark", "volume_share": 0.5} for n in "AD"]),
        "venues",
        "at least one venue must be lit",
    ),
    (_set("venues.0.latency_ms", -1), "venues[0].latency_ms", "[0, 60000]"),
    (_set("venues.0.latency_ms", 1e300), "venues[0].latency_ms", "[0, 60000]"),
    (_set("venues.0.fee_bps", 1e300), "venues[0].fee_bps", "at most 1000"),
    (_set("venues.0.latency_ms", "fast"), "venues[0].latency_ms", "number"),
    (_set("venues.0.fee_bps", -100), "venues[0].fee_bps", "> -100"),
    (_set("venues.0.fee_bps", None), "venues[0].fee_bps", "number"),
    # volume profile
    (_set("volume_profile", "spiky"), "volume_profile", "u_shape"),
    (_set("volume_profile", []), "volume_profile", "non-empty"),
    (_set("volume_profile", 3), "volume_profile", "u_shape"),
    (_set("volume_profile", [1, 0, 1]), "volume_profile[1]", "> 0"),
    (_set("volume_profile", [1, -2]), "volume_profile[1]", "> 0"),
    (_set("volume_profile", [1, "x"]), "volume_profile[1]", "number"),
    (_set("volume_profile", [1, math.inf]), "volume_profile[1]", "finite"),
    # regimes
    (
        _set("regimes.1.start_minute", 0),
        "regimes[1].start_minute",
        "regimes[0] starts at minute 0 too",
    ),
    (_set("regimes.1.start_minute", 390), "regimes[1].start_minute", "[0, 390)"),
    (_set("regimes.0.start_minute", -5), "regimes[0].start_minute", "[0, 390)"),
    (_set("regimes.1.volatility_multiplier", 0), "regimes[1].volatility_multiplier", "> 0"),
    (_set("regimes.1.liquidity_multiplier", -1), "regimes[1].liquidity_multiplier", "> 0"),
    (_set("regimes.1.liquidity_multiplier", math.inf), "regimes[1].liquidity_multiplier", "finite"),
    (_set("regimes.0", 5), "regimes[0]", "object"),
    # beyond any market, and beyond what a day can be simulated in (a review's 1e6
    # liquidity multiplier asked for 375 GiB; a price of 1e300 overflowed the IS schedule)
    (_set("regimes.1.liquidity_multiplier", 1e6), "regimes[1].liquidity_multiplier", "at most 100"),
    (_set("regimes.1.volatility_multiplier", 1e3), "regimes[1].volatility_multiplier", "at most"),
    (_set("instrument.reference_price", 1e300), "instrument.reference_price", "[0, 1e+06]"),
    (_set("instrument.adv_shares", 1e-300), "instrument.adv_shares", "[100, 1e+10]"),
    (_set("instrument.adv_shares", 1e20), "instrument.adv_shares", "[100, 1e+10]"),
    (_set("instrument.tick_size", 1e-9), "instrument.tick_size", "[1e-06,"),
    (_set("instrument.spread_ticks", 1e300), "instrument.spread_ticks", "[1, 1000]"),
    (
        lambda d: d["instrument"].update(reference_price=5.0, spread_ticks=600),
        "instrument.spread_ticks",
        "the whole price",
    ),
    (_set("order.quantity", 1e15), "order.quantity", "at most 1e+12"),
    (_set("order.limit_price", 1e9), "order.limit_price", "at most 1e+06"),
    # outages
    (_set("outages.0.venue", "Z"), "outages[0].venue", "known venues: A, B, D"),
    (_set("outages.0.start_minute", -1), "outages[0].start_minute", "[0, 390)"),
    (_set("outages.0.end_minute", 400), "outages[0].end_minute", "(0, 390]"),
    (_set("outages.0.end_minute", 200), "outages[0].end_minute", "after start_minute"),
]


@pytest.mark.parametrize(
    ("mutate", "key", "fragment"), REJECTIONS, ids=[f"{k}:{f}" for _, k, f in REJECTIONS]
)
def test_rejections_name_the_key(mutate: Any, key: str, fragment: str) -> None:
    data = valid()
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_rejects_non_object_root() -> None:
    with pytest.raises(ScenarioError):
        parse_scenario([valid()])


def test_valid_base_is_valid() -> None:
    # Guards the rejection table: each case must fail because of its own mutation.
    parse_scenario(valid())
    parse_scenario(copy.deepcopy(valid()))


def test_share_tolerance() -> None:
    data = valid()
    data["venues"][0]["volume_share"] = 0.6 + 5e-7
    parse_scenario(data)


def test_rebate_allowed() -> None:
    data = valid()
    data["venues"][0]["fee_bps"] = -0.25
    assert parse_scenario(data).venues[0].fee_bps == -0.25


# ---------------------------------------------------------------- derived quantities


# Weights near the float range summed to inf, and the profile became zeros (a fuzz).
@pytest.mark.parametrize("profile", ["u_shape", "flat", [1, 2, 3, 4, 5], [1e308] * 10])
def test_volume_fraction_sums_to_one(profile: Any) -> None:
    data = valid()
    data["volume_profile"] = profile
    s = parse_scenario(data)
    assert math.fsum(s.volume_profile) == pytest.approx(1.0)
    assert s.volume_fraction_between(0, SESSION_MINUTES) == pytest.approx(1.0)
    edges = [0.0, 17.0, 30.0, 95.5, 200.0, 333.3, 390.0]
    parts = [s.volume_fraction_between(a, b) for a, b in itertools.pairwise(edges)]
    assert math.fsum(parts) == pytest.approx(1.0)
    assert all(p > 0 for p in parts)
    # Clamped outside the session and zero for empty or reversed windows.
    assert s.volume_fraction_between(-100, 1000) == pytest.approx(1.0)
    assert s.volume_fraction_between(100, 100) == 0.0
    assert s.volume_fraction_between(200, 100) == 0.0


def test_flat_and_custom_fractions() -> None:
    data = valid()
    data["volume_profile"] = "flat"
    assert parse_scenario(data).volume_fraction_between(0, 39) == pytest.approx(0.1)
    data["volume_profile"] = [1, 3]
    s = parse_scenario(data)
    assert s.volume_profile == pytest.approx((0.25, 0.75))
    assert s.volume_fraction_between(0, 195) == pytest.approx(0.25)
    assert s.volume_fraction_between(97.5, 292.5) == pytest.approx(0.125 + 0.375)
    data["volume_profile"] = [1e308, 1.5e308, 1.5e308]
    assert parse_scenario(data).volume_profile == pytest.approx((0.25, 0.375, 0.375))


def test_u_shape_profile() -> None:
    assert len(U_SHAPE_WEIGHTS) == 13
    assert math.fsum(U_SHAPE_WEIGHTS) == pytest.approx(1.0)
    middle = U_SHAPE_WEIGHTS[1:-1]
    assert U_SHAPE_WEIGHTS[0] > max(middle) and U_SHAPE_WEIGHTS[-1] > max(middle)
    assert U_SHAPE_WEIGHTS[-1] == max(U_SHAPE_WEIGHTS)
    s = parse_scenario(valid())
    first = s.volume_fraction_between(0, 30)
    last = s.volume_fraction_between(360, 390)
    buckets = [s.volume_fraction_between(30 * i, 30 * (i + 1)) for i in range(13)]
    assert first == pytest.approx(U_SHAPE_WEIGHTS[0])
    assert last == max(buckets) and first == max(buckets[:-1])
    assert min(buckets) == buckets[6]  # the lull around midday


def test_regime_at() -> None:
    data = valid()
    data["regimes"] = [
        {"start_minute": 60, "volatility_multiplier": 2.0, "liquidity_multiplier": 0.5},
        {"start_minute": 180, "volatility_multiplier": 1.2, "liquidity_multiplier": 0.9},
    ]
    s = parse_scenario(data)
    assert s.regime_at(0) == Regime(0.0, 1.0, 1.0)
    assert s.regime_at(59.99) == Regime(0.0, 1.0, 1.0)
    assert s.regime_at(60) == Regime(60.0, 2.0, 0.5)
    assert s.regime_at(179) == Regime(60.0, 2.0, 0.5)
    assert s.regime_at(180) == Regime(180.0, 1.2, 0.9)
    assert s.regime_at(390) == Regime(180.0, 1.2, 0.9)
    del data["regimes"]
    assert parse_scenario(data).regime_at(200) == Regime(0.0, 1.0, 1.0)


# ---------------------------------------------------------------- load_scenario


def test_load_scenario_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ScenarioError) as info:
        load_scenario(missing)
    assert info.value.key == str(missing) and "not found" in str(info.value)

    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "seed": 1,\n  "order": {,}\n}\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert info.value.key == str(bad)
    assert "invalid JSON at line 3, column" in str(info.value)

    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(ScenarioError) as info:
        load_scenario(folder)
    assert info.value.key == str(folder) and "is a folder" in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    # open() on a FIFO with no writer blocks forever: the loader must refuse it by kind.
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_scenario(fifo)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # release the reader
        pytest.fail("load_scenario waited on a named pipe")
    assert len(outcome) == 1 and isinstance(outcome[0], ScenarioError)
    assert "is not a regular file (a named pipe)" in str(outcome[0])


def test_load_scenario_uses_file_stem_and_validates(tmp_path: Path) -> None:
    data = valid()
    del data["name"]
    path = tmp_path / "from-disk.json"
    path.write_text(json.dumps(data))
    s = load_scenario(path)
    assert s.name == "from-disk" and s.source == str(path)

    data["order"]["quantity"] = -5
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError, match=r"order\.quantity: .*got -5"):
        load_scenario(path)


def test_a_tick_as_large_as_the_price_is_impossible() -> None:
    data = valid()
    data["instrument"]["tick_size"] = data["instrument"]["reference_price"]
    with pytest.raises(ScenarioError, match=r"instrument.tick_size: must be smaller than"):
        parse_scenario(data)


def test_a_file_nested_too_deeply_or_too_large_is_refused_by_name(tmp_path) -> None:
    from execution.sim import scenario as module

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(ScenarioError, match=r"deep\.json: invalid JSON: nested too deeply"):
        module.load_scenario(deep)
    big = tmp_path / "big.json"
    big.write_text(" " * 100)
    old, module.MAX_SCENARIO_BYTES = module.MAX_SCENARIO_BYTES, 10
    try:
        with pytest.raises(ScenarioError, match=r"big\.json: scenario file is larger than"):
            module.load_scenario(big)
    finally:
        module.MAX_SCENARIO_BYTES = old


@pytest.mark.parametrize(
    ("where", "key"),
    [
        (("order", "quantity"), "order.quantity"),
        (("instrument", "adv_shares"), "instrument.adv_shares"),
        (("order", "start_minute"), "order.start_minute"),
        (("venues", 0, "volume_share"), "venues[0].volume_share"),
    ],
)
def test_an_integer_too_large_for_a_float_is_refused_by_key(where, key) -> None:
    # 1 and 400 zeros reads as a Python int, which no float holds: OverflowError came out
    # of whichever check met it first (a trial).
    data = valid()
    target = data
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = 10**400
    with pytest.raises(ScenarioError, match=re.escape(key) + ": a number too large"):
        parse_scenario(data)


# ---------------------------------------------------------------- the simulator's knobs


@pytest.mark.parametrize(
    ("knobs", "key", "fragment"),
    [
        # Each of these passed before and then divided by zero, hung or asked for
        # hundreds of GiB (a review): refused by key instead.
        ({"lit_trades_max": 0}, "simulator.lit_trades_max", "[1, 200000]"),
        ({"lit_shares_per_trade": 0}, "simulator.lit_shares_per_trade", "[1, 1e+07]"),
        ({"dark_print_size_multiple": 0}, "simulator.dark_print_size_multiple", "[0.01, 1000]"),
        ({"best_depth_trades": 1e-8}, "simulator.best_depth_trades", "[0.01, 1000]"),
        ({"limit_orders_per_trade": 1e12}, "simulator.limit_orders_per_trade", "[0, 50]"),
        ({"lit_trades_min": 1e9}, "simulator.lit_trades_min", "[1, 200000]"),
        ({"lit_trades_min": 5000, "lit_trades_max": 4000}, "simulator.lit_trades_min", "4000"),
        ({"informed_share": 1.5}, "simulator.informed_share", "[0, 1]"),
        # Each knob within its range, together too many events for one day.
        (
            {"lit_trades_min": 200_000, "lit_trades_max": 200_000, "cancels_per_trade": 50},
            "simulator",
            "background events",
        ),
    ],
)
def test_knobs_out_of_range_are_refused_by_key(
    knobs: dict[str, Any], key: str, fragment: str
) -> None:
    data = valid()
    data["simulator"] = knobs
    with pytest.raises(ScenarioError) as info:
        calibrate(parse_scenario(data))
    assert info.value.key == key
    assert fragment in str(info.value)


def test_a_regime_that_makes_the_day_too_big_is_named() -> None:
    data = valid()
    data["simulator"] = {"lit_trades_min": 60_000, "lit_trades_max": 60_000}
    calibrate(parse_scenario(data))  # about 330,000 events at multiplier 1: fine
    data["regimes"][1]["liquidity_multiplier"] = 10.0
    with pytest.raises(ScenarioError) as info:
        calibrate(parse_scenario(data))
    assert info.value.key == "regimes[1].liquidity_multiplier"
    assert "background events" in str(info.value)


def test_every_knob_has_a_range_that_holds_its_default() -> None:
    for f in dataclasses.fields(Knobs):
        lo, hi = KNOB_RANGES[f.name]
        assert lo <= f.default <= hi, f.name  # type: ignore[operator]


def test_a_short_busy_regime_counts_for_the_volume_it_spans() -> None:
    """A review: 50 times the liquidity for the last 5 minutes was refused as if it lasted
    all day."""
    data = valid()
    data["regimes"] = [
        {"start_minute": 0, "volatility_multiplier": 1.0, "liquidity_multiplier": 1.0},
        {"start_minute": 385, "volatility_multiplier": 1.0, "liquidity_multiplier": 50.0},
    ]
    calibrate(parse_scenario(data))
