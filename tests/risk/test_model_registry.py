"""The model registry: registration with hashes and card, four-eyes approval, what the
ticket offers, the exact version an order records, integrity at the worker, and the
kill switch on a model version."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from execution.algos.adaptive import MODEL_DIR
from execution.forms import OrderTicketForm, strategy_schemas
from execution.model_registry import (
    approved_names,
    experts_of,
    file_sha256,
    integrity_problem,
    model_approve,
    model_recommend,
    model_register,
    model_reject,
    model_retire,
    shipped_register,
)
from execution.models import Instrument, ModelVersion, ParentOrder
from oversight.models import AuditRecord
from oversight.risk.models import KillAck
from oversight.risk.services import kill_switch_engage, scope_check
from tests.personas import approved_model, client_for
from tests.stepping import run_to, submit, worker

pytestmark = pytest.mark.django_db(transaction=True)
SHIPPED = MODEL_DIR / "policy-v1.onnx"


def _copy(tmp_path: Path, name: str = "policy-x", variant: int = 0) -> Path:
    """The shipped policy under another name; a variant other than 0 has other bytes (an
    unknown protobuf field appended: the same model, loadable)."""
    dst = tmp_path / f"{name}.onnx"
    shutil.copyfile(SHIPPED, dst)
    if variant:
        dst.write_bytes(dst.read_bytes() + b"\xa0\x06" + bytes([variant]))
    card = json.loads(SHIPPED.with_suffix(".card.json").read_text())
    card["sha256"] = file_sha256(dst)  # a card names the bytes it was written with
    dst.with_suffix(".card.json").write_text(json.dumps(card))
    return dst


def test_a_card_written_for_other_bytes_is_refused(rita: User, tmp_path: Path) -> None:
    """A trial copied v8's card beside an edited file: v8's validation was shown as the
    edited file's, and the file was approved on it."""
    path = _copy(tmp_path, "edited", variant=3)
    shutil.copyfile(SHIPPED.with_suffix(".card.json"), path.with_suffix(".card.json"))
    with pytest.raises(ValidationError, match="the model card is not this file's"):
        model_register(path=path, user=rita, note="test")
    assert not ModelVersion.objects.exists()


def test_a_model_whose_checks_cannot_work_is_refused(rita: User, tmp_path: Path) -> None:
    """A NaN training range never flags anything out of range; NaN weights answer NaN:
    refused at registration (both traded or backtested as something else, in a trial)."""
    onnx = pytest.importorskip("onnx", reason="the training extras (requirements-train.txt)")
    from onnx import numpy_helper

    for what, says in (("range", "training range of"), ("weights", "non-finite value")):
        model = onnx.load(str(SHIPPED))
        if what == "range":
            meta = {p.key: p for p in model.metadata_props}
            tr = json.loads(meta["training_range"].value)
            tr["lo"][0] = float("nan")
            meta["training_range"].value = json.dumps(tr)
        else:
            init = model.graph.initializer[0]
            init.CopyFrom(numpy_helper.from_array(
                np.full_like(numpy_helper.to_array(init), np.nan), init.name
            ))  # fmt: skip
        path = tmp_path / f"bad-{what}.onnx"
        onnx.save(model, str(path))
        with pytest.raises(ValidationError, match=says):
            model_register(path=path, user=rita, note="test")
    assert not ModelVersion.objects.exists()


def test_registering_records_the_hash_card_and_audit(rita: User, tmp_path: Path) -> None:
    path = _copy(tmp_path)
    mv = model_register(path=path, user=rita, note="from a test")
    assert mv.status == ModelVersion.CANDIDATE and mv.name == "policy-x"
    assert mv.sha256 == file_sha256(path) and len(mv.sha256) == 64
    assert mv.size_bytes == path.stat().st_size
    assert mv.card["model"] == "policy-v1.onnx"  # the card beside the file
    assert integrity_problem(mv) == ""
    rec = AuditRecord.objects.get(action="model.register")
    assert rec.after["sha256"] == mv.sha256 and rec.actor_id == rita.pk
    with pytest.raises(ValidationError, match="already registered"):
        model_register(path=path, user=rita, note="test")


def test_a_version_name_is_plain_ascii_unique_whatever_the_case_and_one_file_one_version(
    rita: User, ruth: User, tmp_path: Path
) -> None:
    """A trial registered "pоlicy-v14" (a Cyrillic о), "POLICY-V14" beside "policy-v14",
    and the bytes of a rejected version under a new name, which was then approved."""
    first = model_register(path=_copy(tmp_path, "policy-x"), user=rita, note="test")
    model_reject(user=ruth, version_id=first.pk, note="drifts")
    with pytest.raises(ValidationError) as e:
        model_register(path=_copy(tmp_path, "again"), user=rita, note="a second try")
    assert e.value.message_dict == {
        "file": ["this file is already registered as policy-x (rejected): one file, one version"]
    }
    other = _copy(tmp_path, "other", variant=1)
    for name in ("p\u043elicy-y", "policy y", "x" * 65):
        with pytest.raises(ValidationError) as e:
            model_register(path=other, name=name, user=rita, note="test")
        assert e.value.message_dict == {
            "name": ["ASCII letters, digits, '-', '_' and '.', at most 64 characters"]
        }
    with pytest.raises(ValidationError) as e:
        model_register(path=other, name="POLICY-X", user=rita, note="test")
    assert e.value.message_dict == {
        "name": ["model version 'POLICY-X' is already registered as 'policy-x' (names differ "
                 "in case only)"]
    }  # fmt: skip
    with pytest.raises(ValidationError) as e:
        model_register(path=other, user=rita, note="  ")
    assert e.value.message_dict == {"note": ["say why it is registered"]}
    assert model_register(path=other, user=rita, note="test").name == "other"


def test_a_file_that_is_not_a_policy_is_refused_with_its_reason(rita: User, tmp_path: Path) -> None:
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(ValidationError) as e:
        model_register(path=bad, user=rita, note="test")
    assert "cannot load model" in str(e.value.message_dict["file"])
    with pytest.raises(ValidationError, match="not found"):
        model_register(path=tmp_path / "missing.onnx", user=rita, note="test")
    assert not ModelVersion.objects.exists()


def test_approval_takes_two_risk_managers(
    rita: User, ruth: User, alice: User, tmp_path: Path
) -> None:
    mv = model_register(path=_copy(tmp_path), user=rita, note="test")
    with pytest.raises(ValidationError, match="recommend it first"):
        model_approve(user=ruth, version_id=mv.pk, note="test: checked")
    with pytest.raises(ValidationError, match="only a risk manager"):
        model_recommend(user=alice, version_id=mv.pk, reason="I like it")
    with pytest.raises(ValidationError):
        model_recommend(user=rita, version_id=mv.pk, reason="  ")
    model_recommend(user=rita, version_id=mv.pk, reason="beats TWAP on held-out days")
    assert "policy-x" not in approved_names()  # recommended is not approved
    with pytest.raises(ValidationError, match="four eyes"):
        model_approve(user=rita, version_id=mv.pk, note="test: checked")
    mv = model_approve(user=ruth, version_id=mv.pk, note="card read")
    assert mv.status == ModelVersion.APPROVED and mv.decided_by == ruth
    assert approved_names() == ["policy-x"]
    actions = list(
        AuditRecord.objects.filter(action__startswith="model.").values_list("action", flat=True)
    )
    # The recommender's own try at approving is recorded as refused.
    assert actions == [
        "model.register",
        "model.recommend",
        "model.approve.refused",
        "model.approve",
    ]


def test_the_database_refuses_a_self_approval(rita: User, tmp_path: Path) -> None:
    mv = model_register(path=_copy(tmp_path), user=rita, note="test")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=mv.pk).update(
            status=ModelVersion.APPROVED, recommended_by=rita, decided_by=rita
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=mv.pk).update(status=ModelVersion.APPROVED)


def test_a_file_changed_after_registration_cannot_be_approved(
    rita: User, ruth: User, tmp_path: Path
) -> None:
    path = _copy(tmp_path)
    mv = model_register(path=path, user=rita, note="test")
    model_recommend(user=rita, version_id=mv.pk, reason="ok")
    with path.open("ab") as f:
        f.write(b"\0")
    assert "has changed since it was registered" in integrity_problem(mv)
    with pytest.raises(ValidationError, match="has changed"):
        model_approve(user=ruth, version_id=mv.pk, note="test: checked")


def test_an_approved_version_whose_file_changed_trades_no_new_order(
    rita: User, ruth: User, alice: User, instrument: Instrument, tmp_path: Path
) -> None:
    """A trial's order on it was accepted, fell back at its first decision with a critical
    alert, and filled as TWAP; the list still said Approved."""
    path = _copy(tmp_path)
    mv = model_register(path=path, user=rita, note="test")
    model_recommend(user=rita, version_id=mv.pk, reason="ok")
    model_approve(user=ruth, version_id=mv.pk, note="test: checked")
    assert strategy_schemas()["adaptive"][0]["name"] == "urgency"  # (the model comes later)
    offered = {p["name"]: p for p in strategy_schemas()["adaptive"]}["model"]["choices"]
    assert offered == ["policy-x"]
    with path.open("ab") as f:
        f.write(b"\0")
    offered = {p["name"]: p for p in strategy_schemas()["adaptive"]}["model"]["choices"]
    assert offered == []
    with pytest.raises(ValidationError) as e:
        submit(alice, instrument, strategy="adaptive", params={"model": "policy-x"})
    (why,) = e.value.message_dict["param_model"]
    assert why.startswith("policy-x trades no new order: its model file ") and why.endswith(
        "has changed since it was registered (sha256 "
        + why.split("(sha256 ")[1].split(")")[0]
        + "); a risk manager must look (Models page)"
    )
    assert not ParentOrder.objects.exists()
    page = client_for(rita).get("/risk/models/").content.decode()
    row = page.split(f'<tr id="model-{mv.pk}">')[1].split("</tr>")[0]
    assert 'data-field="problem"' in row and "file not as registered" in row


def test_reject_and_retire(rita: User, ruth: User, tmp_path: Path) -> None:
    a = model_register(path=_copy(tmp_path, "a"), user=rita, note="test")
    b = model_register(path=_copy(tmp_path, "b", variant=1), user=rita, note="test")
    model_reject(user=ruth, version_id=a.pk, note="validation too thin")
    with pytest.raises(ValidationError, match="rejected"):
        model_recommend(user=rita, version_id=a.pk, reason="again")
    model_recommend(user=rita, version_id=b.pk, reason="ok")
    model_approve(user=ruth, version_id=b.pk, note="test: checked")
    assert approved_names() == ["b"]
    with pytest.raises(ValidationError, match="say why"):
        model_retire(user=rita, version_id=b.pk, reason="")
    model_retire(user=rita, version_id=b.pk, reason="superseded")
    assert approved_names() == []
    # A retired version is retired for good, said the same by both steps (approving said
    # "recommend it first", and recommending "retired, not a candidate": a trial).
    for step in (
        lambda: model_recommend(user=rita, version_id=b.pk, reason="back"),
        lambda: model_approve(user=ruth, version_id=b.pk, note="back"),
    ):
        with pytest.raises(ValidationError, match=r"b is retired, for good: .* model_retrain"):
            step()


def test_a_recommender_withdraws_their_recommendation_and_it_is_a_candidate_again(
    rita: User, ruth: User, tmp_path: Path
) -> None:
    """A trial: "Withdraw" rejected the version for good, under nobody's name."""
    from oversight.models import AuditRecord

    mv = model_register(path=_copy(tmp_path, "w"), user=rita, note="test")
    model_recommend(user=rita, version_id=mv.pk, reason="looks good")
    back = model_reject(user=rita, version_id=mv.pk, note="changed my mind")
    mv.refresh_from_db()
    assert back.status == mv.status == "CANDIDATE"
    assert (mv.recommended_by, mv.recommended_at, mv.decided_by) == (None, None, None)
    rec = AuditRecord.objects.filter(action="model.withdraw").latest("seq")
    assert (rec.actor_id, rec.reason) == (rita.pk, "changed my mind")
    model_recommend(user=ruth, version_id=mv.pk, reason="I do think so")  # may be again
    said = client_for(ruth).post(f"/risk/models/{mv.pk}/reject/", {"note": "no"}, follow=True)
    assert "your recommendation of w is withdrawn" in said.content.decode()
    model_recommend(user=ruth, version_id=mv.pk, reason="on second thought")
    said = client_for(rita).post(f"/risk/models/{mv.pk}/reject/", {"note": "no"}, follow=True)
    assert "w rejected" in said.content.decode()  # another's recommendation: rejected
    mv.refresh_from_db()
    assert mv.status == "REJECTED" and mv.decided_by == rita


def test_the_ticket_offers_approved_versions_and_the_order_records_the_exact_one(
    alice: User, instrument: Instrument, rita: User, ruth: User, tmp_path: Path
) -> None:
    shipped_register()
    with pytest.raises(ValidationError) as e:
        submit(alice, instrument, strategy="adaptive")
    assert "no model version is approved" in str(e.value.message_dict["param_model"])
    mv = approved_model("policy-v1")
    schema = {p["name"]: p for p in strategy_schemas()["adaptive"]}
    assert schema["model"]["type"] == "choice" and schema["model"]["choices"] == ["policy-v1"]
    form = OrderTicketForm({"strategy": "adaptive"})
    model_field = next(f for f in form.param_fields() if f["key"] == "param_model")
    assert model_field["value"] == "policy-v1"
    with pytest.raises(ValidationError) as e:
        submit(alice, instrument, strategy="adaptive", params={"model": "/etc/passwd"})
    assert "choose an approved model version: policy-v1" in str(e.value.message_dict["param_model"])
    order = submit(alice, instrument, strategy="adaptive")  # the default: newest approved
    assert order.model_version_id == mv.pk and order.params["model"] == "policy-v1"
    rec = AuditRecord.objects.get(action="order.submit", object_id=str(order.pk))
    assert rec.after["model_version"] == {"name": "policy-v1", "sha256": mv.sha256}
    # Retired: the ticket no longer offers it; the order keeps its version.
    model_retire(user=rita, version_id=mv.pk, reason="test")
    with pytest.raises(ValidationError):
        submit(alice, instrument, strategy="adaptive", params={"model": "policy-v1"})
    order.refresh_from_db()
    assert order.model_version_id == mv.pk


def test_the_worker_trades_the_registered_file_and_falls_back_if_it_changed(
    alice: User, instrument: Instrument, rita: User, ruth: User, tmp_path: Path
) -> None:
    path = _copy(tmp_path, "policy-t")
    mv = model_register(path=path, user=rita, note="test")
    model_recommend(user=rita, version_id=mv.pk, reason="ok")
    model_approve(user=ruth, version_id=mv.pk, note="test: checked")
    good = submit(alice, instrument, strategy="adaptive", quantity=5_000)
    w = worker(instrument)
    run_to(w, 60)
    strategy = w.engine.orders[good.engine_id].strategy
    assert strategy.model_file == str(path) and strategy.expected_sha256 == mv.sha256
    run_to(w, 300)
    good.refresh_from_db()
    assert good.fallback_strategy == "" and good.filled_qty > 0
    # Someone swaps the bytes on disk after an order was accepted: at its first decision
    # it falls back to TWAP and says why, rather than trading an unapproved model.
    # (An unknown protobuf field appended: still a loadable model, different bytes.)
    bad = submit(alice, instrument, strategy="adaptive", quantity=6_000)
    assert bad.status == "NEW", bad.status_reason
    path.write_bytes(path.read_bytes() + b"\xa0\x06\x01")
    with pytest.raises(ValidationError, match="the files of policy-t are not as registered"):
        submit(alice, instrument, strategy="adaptive", quantity=6_000)  # a new one: refused
    with pytest.raises(ValidationError, match="policy-t trades no new order"):
        submit(alice, instrument, strategy="adaptive", params={"model": "policy-t"})
    run_to(w, 600)
    bad.refresh_from_db()
    assert bad.fallback_strategy == "twap"
    assert "ModelUnavailable" in bad.status_reason
    assert "is not the registered version" in bad.status_reason


def test_a_kill_switch_on_a_model_version_stops_its_orders_only(
    alice: User, instrument: Instrument, rita: User, ruth: User
) -> None:
    approved_model("policy-v1")
    with pytest.raises(ValidationError, match="there is no model"):
        scope_check("model", "policy-zz", kill=True)
    ada = submit(alice, instrument, strategy="adaptive", quantity=5_000)
    twap = submit(alice, instrument, quantity=5_000)
    w = worker(instrument)
    run_to(w, 120)
    k = kill_switch_engage(user=rita, scope_type="model", scope_key="policy-v1", reason="drift")
    run_to(w, 180)
    ada.refresh_from_db()
    twap.refresh_from_db()
    assert ada.status == "CANCELED" and twap.status not in ("CANCELED", "REJECTED")
    assert KillAck.objects.filter(kill=k).exists()
    # A new order on that version is refused while the kill stands.
    with pytest.raises(ValidationError, match="TRADING_HALTED"):
        submit(alice, instrument, strategy="adaptive", quantity=5_000)
    assert ParentOrder.objects.filter(strategy="twap").count() == 1


def test_the_pages_list_versions_and_refuse_actions_to_traders(
    alice: User, rita: User, ruth: User, adam: User
) -> None:
    mv = shipped_register()[0]
    page = client_for(alice).get("/risk/models/")
    assert page.status_code == 200 and mv.name in page.content.decode()
    assert client_for(alice).get(f"/risk/models/{mv.pk}/").status_code == 200
    assert client_for(adam).get("/risk/models/").status_code == 403
    r = client_for(alice).post(f"/risk/models/{mv.pk}/recommend/", {"reason": "x"})
    assert r.status_code == 403
    r = client_for(rita).post(f"/risk/models/{mv.pk}/recommend/", {"reason": "evaluated"})
    assert r.status_code == 302
    r = client_for(rita).post(
        f"/risk/models/{mv.pk}/approve/", {"note": ""}, HTTP_ACCEPT="application/json"
    )
    assert r.status_code == 400 and "four eyes" in r.json()["error"]
    # An approval says why, as every step does (a trial's went through with no note).
    r = client_for(ruth).post(
        f"/risk/models/{mv.pk}/approve/", {"note": " "}, HTTP_ACCEPT="application/json"
    )
    assert r.status_code == 400
    assert "say why it may trade: the approval is recorded with it" in r.json()["error"]
    # And the recommender's withdrawal asks why it is withdrawn, not why it is rejected.
    r = client_for(rita).post(
        f"/risk/models/{mv.pk}/reject/", {"note": ""}, HTTP_ACCEPT="application/json"
    )
    assert r.status_code == 400
    assert "say why you withdraw your recommendation" in r.json()["error"]
    detail = client_for(rita).get(f"/risk/models/{mv.pk}/").content.decode()
    assert "You recommended this version" in detail
    r = client_for(ruth).post(f"/risk/models/{mv.pk}/approve/", {"note": "ok"})
    assert r.status_code == 302
    mv.refresh_from_db()
    assert mv.status == ModelVersion.APPROVED
    r = client_for(ruth).post(f"/risk/models/{mv.pk}/retire/", {}, HTTP_ACCEPT="application/json")
    assert r.status_code == 400 and "no reason field" in r.json()["error"]
    assert client_for(ruth).get("/risk/models/999/").status_code == 404


def test_a_gated_version_shows_its_experts_and_which_one_trades_an_order(
    alice: User, instrument: Instrument, rita: User
) -> None:
    from execution.model_registry import expert_for, instrument_spread_bps

    if not (MODEL_DIR / "policy-v9.onnx").is_file():
        pytest.skip("no shipped gated model")
    mv = approved_model("policy-v9")
    page = client_for(rita).get(f"/risk/models/{mv.pk}/").content.decode()
    assert 'id="experts"' in page
    # Each expert with how the registry holds it: v8 registered by then (not approved),
    # v4 not registered here at all.
    v8 = (
        ModelVersion.objects.get(name="policy-v8")
        if ModelVersion.objects.filter(name="policy-v8").exists()
        else None
    )
    if v8 is None:
        assert 'instrument spread under 5 bps: <span class="mono">policy-v8</span>' in page
    assert "instrument spread 5 bps or more: " in page and ">policy-v4<" in page
    bps = instrument_spread_bps(instrument)
    assert bps is not None and bps > 0
    expected = "policy-v8" if bps < 5 else "policy-v4"
    order = submit(alice, instrument, strategy="adaptive", params={"model": "policy-v9"})
    assert expert_for(mv, instrument)["model"] == expected  # type: ignore[index]
    # The page's answer is the strategy's own: the order's engine picks the same expert.
    from execution.engine.engine import ExecutionEngine
    from execution.sim.episode import ORDER_ID, order_spec
    from execution.sim.market import Market
    from execution.sim.scenario import parse_scenario

    sc = parse_scenario(instrument.scenario)
    engine = ExecutionEngine(Market(sc, 1))
    engine.add_order(order_spec(sc, ORDER_ID, "adaptive", {"model": "policy-v9"}, 0.5))
    strategy = engine.orders[ORDER_ID].strategy
    strategy._load()  # type: ignore[attr-defined]
    assert strategy.expert == expected  # type: ignore[attr-defined]
    # The pages read the gate from the registered file, not the card: a card edited by
    # hand (or broken) changes nothing they say, and they still render.
    mv.card = {"config": {"experts": [{"model": "made-up", "below_bps": 10**400}]}}
    mv.save(update_fields=["card"])
    page = client_for(rita).get(f"/risk/models/{mv.pk}/")
    assert page.status_code == 200 and "made-up</span>" not in page.content.decode()
    assert expert_for(mv, instrument)["model"] == expected  # type: ignore[index]
    detail = client_for(alice).get(f"/orders/{order.pk}/").content.decode()
    assert 'id="model-expert"' in detail and f">{expected}</span>" in detail
    # Recorded when it was entered (the order and the audit trail), so the page still says
    # which expert once the version's file no longer answers (a trial: the line went).
    assert order.model_expert == expected
    submitted = AuditRecord.objects.get(action="order.submit", object_id=str(order.pk)).after
    assert submitted["model_version"]["expert"] == expected
    ModelVersion.objects.filter(pk=mv.pk).update(sha256="0" * 64)
    detail = client_for(alice).get(f"/orders/{order.pk}/").content.decode()
    line = detail.split('id="model-expert"')[1].split("</span></dd>")[0]
    assert f">{expected}</span>, as recorded when it was entered" in line
    ModelVersion.objects.filter(pk=mv.pk).update(sha256=file_sha256(MODEL_DIR / "policy-v9.onnx"))
    # A single policy has no experts, and its order page says nothing of one.
    v1 = approved_model("policy-v1")
    assert expert_for(v1, instrument) is None
    plain = submit(
        alice, instrument, strategy="adaptive", params={"model": "policy-v1"}, quantity=21_000
    )
    assert 'id="model-expert"' not in client_for(alice).get(f"/orders/{plain.pk}/").content.decode()


def test_an_expert_for_one_band_of_spreads_trades_only_there_and_is_never_the_default(
    alice: User, instrument: Instrument
) -> None:
    """policy-v8 was trained on instruments quoting under 5 bps of spread. Approved on its
    own, it is offered, but the default stays a version for every spread, and an order on
    an instrument outside its band is refused by name."""
    from execution.model_registry import band_problem, instrument_spread_bps, spread_band_of

    if not (MODEL_DIR / "policy-v8.onnx").is_file():
        pytest.skip("no shipped expert")
    general = approved_model("policy-v1")
    expert = approved_model("policy-v8")  # the newer approval
    assert spread_band_of(expert) == (0.0, 5.0) and spread_band_of(general) is None
    assert approved_names() == ["policy-v1", "policy-v8"]  # every-spread versions first
    order = submit(alice, instrument, strategy="adaptive")
    assert order.params["model"] == "policy-v1"
    bps = instrument_spread_bps(instrument)
    assert bps is not None
    wide = Instrument.objects.create(
        symbol="WIDE",
        name="wide",
        tick_size=instrument.tick_size,
        reference_price=instrument.reference_price,
        adv_shares=instrument.adv_shares,
        scenario={
            **instrument.scenario,
            "instrument": {**instrument.scenario["instrument"], "spread_ticks": 50},
        },
    )
    assert instrument_spread_bps(wide) >= 5  # type: ignore[operator]
    assert band_problem(expert, wide).startswith(
        "policy-v8 was trained only for instruments quoting a spread of under 5 bps; WIDE quotes"
    )
    with pytest.raises(ValidationError) as e:
        submit(alice, wide, strategy="adaptive", params={"model": "policy-v8"})
    assert "trained only for instruments quoting a spread of under 5 bps" in str(
        e.value.message_dict["param_model"]
    )
    assert not ParentOrder.objects.filter(instrument=wide).exists()
    # What cannot be told is refused, not let through: an unknown spread, an unreadable band.
    nowhere = Instrument.objects.create(
        symbol="NOSPRD", name="x", tick_size=instrument.tick_size,
        reference_price=instrument.reference_price, adv_shares=instrument.adv_shares,
        scenario={"instrument": {}},
    )  # fmt: skip
    assert "spread is unknown" in band_problem(expert, nowhere)
    assert band_problem(general, nowhere) == ""
    expert.card = {**expert.card, "config": {**expert.card["config"], "spread_band": "0-5"}}
    expert.save(update_fields=["card"])
    assert "cannot be read" in band_problem(expert, instrument)
    # Only experts approved: no default at all; the trader names one.
    general.status = ModelVersion.RETIRED
    general.save(update_fields=["status"])
    from execution.model_registry import default_version

    assert default_version() is None
    with pytest.raises(ValidationError) as e:
        submit(alice, instrument, strategy="adaptive", quantity=22_000)
    assert "choose an approved model version: policy-v8" in str(e.value.message_dict["param_model"])
    expert.card = {**expert.card, "config": {**expert.card["config"], "spread_band": [0.0, 5.0]}}
    expert.save(update_fields=["card"])
    if bps < 5:  # inside its band it trades
        ok = submit(
            alice, instrument, strategy="adaptive", params={"model": "policy-v8"}, quantity=21_000
        )
        assert ok.params["model"] == "policy-v8"


def test_model_actions_on_a_version_that_does_not_exist_are_a_404_with_a_message(
    rita: User, ruth: User
) -> None:
    for action, data in (("approve", {"note": ""}), ("reject", {"note": "x"})):
        r = client_for(ruth).post(f"/risk/models/9999/{action}/", data)
        assert r.status_code == 404
        page = r.content.decode()
        assert "There is no model version 9999." in page and 'href="/risk/models/"' in page
        r = client_for(ruth).post(
            f"/risk/models/9999/{action}/", data, HTTP_ACCEPT="application/json"
        )
        assert r.status_code == 404 and r.json()["error"] == "there is no model version 9999"


def test_approving_an_approved_version_says_so_and_the_card_shows_as_json(ruth: User) -> None:
    mv = approved_model("policy-v1")
    r = client_for(ruth).post(
        f"/risk/models/{mv.pk}/approve/", {"note": ""}, HTTP_ACCEPT="application/json"
    )
    assert r.status_code == 400 and r.json()["error"] == "policy-v1 is already approved"
    page = client_for(ruth).get(f"/risk/models/{mv.pk}/").content.decode()
    card = page.split("<h2>Model card</h2>")[1].split("</pre>")[0]
    assert "&quot;sha256&quot;: &quot;" in card and "{&#x27;" not in card
    evaluation = page.split("<h2>Evaluation</h2>")[1].split("</dl>")[0]
    assert "{&#x27;" not in evaluation and "&quot;mean&quot;" in evaluation


def test_the_default_version_is_designated_by_two_risk_managers(
    rita: User, ruth: User, alice: User, instrument: Instrument
) -> None:
    """Until two risk managers designate one, the newest approved every-spread version is
    the ticket's default; a designation takes one to propose and another to confirm, holds
    against newer approvals, and ends when its version retires."""
    from execution.model_registry import (
        default_version,
        model_default_confirm,
        model_default_propose,
        model_default_withdraw,
    )
    from execution.models import ModelDefault

    v1 = approved_model("policy-v1")
    v2 = approved_model("policy-v2")  # the newer approval: the default by the fallback rule
    assert default_version() == v2
    with pytest.raises(ValidationError, match="only a risk manager"):
        model_default_propose(user=alice, version_id=v1.pk, reason="mine")
    with pytest.raises(ValidationError):
        model_default_propose(user=rita, version_id=v1.pk, reason=" ")
    d = model_default_propose(user=rita, version_id=v1.pk, reason="steadier on wide names")
    assert default_version() == v2  # proposed is not yet decided
    with pytest.raises(ValidationError, match="four eyes"):
        model_default_confirm(user=rita, designation_id=d.pk)
    model_default_confirm(user=ruth, designation_id=d.pk)
    assert default_version() == v1
    assert submit(alice, instrument, strategy="adaptive").params["model"] == "policy-v1"
    assert [r.action for r in AuditRecord.objects.filter(action__startswith="model.default")] == [
        "model.default_propose",
        "model.default_confirm.refused",  # the proposer's own try
        "model.default_confirm",
    ]
    with pytest.raises(ValidationError, match="already the default"):
        model_default_propose(user=ruth, version_id=v1.pk, reason="again")
    # A newer proposal replaces one pending; withdrawn, it changes nothing.
    p1 = model_default_propose(user=ruth, version_id=v2.pk, reason="first thought")
    p2 = model_default_propose(user=rita, version_id=v2.pk, reason="second thought")
    p1.refresh_from_db()
    assert p1.status == ModelDefault.WITHDRAWN and p2.status == ModelDefault.PENDING
    model_default_withdraw(user=ruth, designation_id=p2.pk, reason="not now")
    with pytest.raises(ValidationError, match="withdrawn, not pending"):
        model_default_confirm(user=ruth, designation_id=p2.pk)
    assert default_version() == v1
    # Only an approved version that trades every spread may be proposed.
    if (MODEL_DIR / "policy-v8.onnx").is_file():
        expert = approved_model("policy-v8")
        with pytest.raises(ValidationError, match="one band of spreads only"):
            model_default_propose(user=rita, version_id=expert.pk, reason="tight names")
    cand = model_register(path=MODEL_DIR / "policy-v4.onnx", note="test")
    with pytest.raises(ValidationError, match="only an approved version"):
        model_default_propose(user=rita, version_id=cand.pk, reason="soon")
    # Retiring the default ends its designation, audited; once the firm has designated a
    # default, none takes its place without four eyes: the trader names the model.
    model_retire(user=rita, version_id=v1.pk, reason="superseded")
    d.refresh_from_db()
    assert d.status == ModelDefault.ENDED and d.end_reason == "policy-v1 retired"
    assert AuditRecord.objects.filter(action="model.default_end").count() == 1
    assert default_version() is None
    with pytest.raises(ValidationError) as e:
        submit(alice, instrument, strategy="adaptive", quantity=23_000)
    assert "choose an approved model version" in str(e.value.message_dict["param_model"])


def test_an_expert_inside_a_gated_version_cannot_be_retired_alone(rita: User) -> None:
    """Retired on its own it would go on trading as the gated version's expert."""
    if not (MODEL_DIR / "policy-v9.onnx").is_file():
        pytest.skip("no shipped gated version")
    gated, expert = approved_model("policy-v9"), approved_model("policy-v4")
    with pytest.raises(ValidationError, match="policy-v4 trades inside policy-v9"):
        model_retire(user=rita, version_id=expert.pk, reason="old")
    # A kill switch on the expert says what it stops.
    preview = client_for(rita).get(
        "/risk/kill/preview/", {"scope_type": "model", "scope_key": "policy-v4"}
    )
    assert "policy-v4 also trades as an expert inside policy-v9: this switch covers the " \
        "orders it trades there too, not policy-v9's others" \
        in preview.json()["text"]  # fmt: skip
    model_retire(user=rita, version_id=gated.pk, reason="replaced")
    assert model_retire(user=rita, version_id=expert.pk, reason="old").status == "RETIRED"


def test_an_expert_inside_an_approved_gated_version_cannot_be_rejected_alone(
    rita: User,
) -> None:
    """A trial rejected policy-v8, a candidate of its own, while the approved policy-v9
    carried it as an expert: v8 went on trading every tight order, 446 decisions."""
    if not (MODEL_DIR / "policy-v9.onnx").is_file():
        pytest.skip("no shipped gated version")
    gated = approved_model("policy-v9")
    expert = model_register(path=MODEL_DIR / "policy-v8.onnx", note="its own entry")
    with pytest.raises(ValidationError, match="policy-v8 trades inside policy-v9"):
        model_reject(user=rita, version_id=expert.pk, note="not convinced")
    expert.refresh_from_db()
    assert expert.status == ModelVersion.CANDIDATE
    # The list says it trades under the gate's approval (a trial read "Candidate · expert
    # in policy-v9" as an unapproved model trading live).
    listed = client_for(rita).get("/risk/models/").content.decode()
    row = listed.split(f'<tr id="model-{expert.pk}">')[1].split("</tr>")[0]
    assert "approved as the expert of policy-v9: trades inside it" in row
    assert "awaiting approval" not in row
    model_retire(user=rita, version_id=gated.pk, reason="replaced")
    assert model_reject(user=rita, version_id=expert.pk, note="not convinced").status == (
        ModelVersion.REJECTED
    )


def test_a_gated_version_carrying_a_rejected_expert_cannot_be_approved(
    rita: User, ruth: User
) -> None:
    """The same incident in the other order (a review): the expert rejected first, its
    gate recommended and approved after."""
    if not (MODEL_DIR / "policy-v9.onnx").is_file():
        pytest.skip("no shipped gated version")
    expert = model_register(path=MODEL_DIR / "policy-v8.onnx", note="its own entry")
    model_reject(user=rita, version_id=expert.pk, note="not convinced")
    gated = model_register(path=MODEL_DIR / "policy-v9.onnx", note="the gate")
    # Refused when it is recommended (a trial: only the approval said so), and approved.
    with pytest.raises(ValidationError, match=r"policy-v9 trades policy-v8 \(rejected\) as"):
        model_recommend(user=rita, version_id=gated.pk, reason="good figures")
    gated.refresh_from_db()
    assert gated.status == ModelVersion.CANDIDATE
    ModelVersion.objects.filter(pk=gated.pk).update(
        status=ModelVersion.PENDING, recommended_by=rita
    )
    with pytest.raises(ValidationError, match=r"policy-v9 trades policy-v8 \(rejected\) as"):
        model_approve(user=ruth, version_id=gated.pk, note="ok")
    gated.refresh_from_db()
    assert gated.status == ModelVersion.PENDING
    listed = client_for(rita).get("/risk/models/").content.decode()
    row = listed.split(f'<tr id="model-{expert.pk}">')[1].split("</tr>")[0]
    assert 'data-field="inside"' in row and "expert in policy-v9 (awaiting approval)" in row
    page = client_for(rita).get(f"/risk/models/{gated.pk}/").content.decode()
    shown = page.split('id="experts"')[1].split("</ul>")[0]
    assert f'href="/risk/models/{expert.pk}/">policy-v8</a>' in shown
    assert 'data-field="expert-status">Rejected</span>' in shown
    assert 'data-field="expert-status">not registered</span>' in shown  # policy-v4


def test_a_rejected_file_is_refused_as_a_gates_expert_under_another_name(
    rita: User, ruth: User, tmp_path: Path
) -> None:
    """policy-v8's bytes registered as "tight-spread" and rejected; policy-v14, whose tight
    expert those bytes are, named policy-v8 inside, went through (a review)."""
    if not (MODEL_DIR / "policy-v14.onnx").is_file():
        pytest.skip("no shipped gated version")
    copy = tmp_path / "tight-spread.onnx"
    shutil.copyfile(MODEL_DIR / "policy-v8.onnx", copy)
    twin = model_register(path=copy, user=rita, note="the same bytes")
    model_reject(user=ruth, version_id=twin.pk, note="not convinced")
    gated = model_register(path=MODEL_DIR / "policy-v14.onnx", note="the gate")
    with pytest.raises(ValidationError, match=r"policy-v14 trades tight-spread \(rejected\)"):
        model_recommend(user=rita, version_id=gated.pk, reason="good figures")


def test_the_database_refuses_a_self_confirmed_default(rita: User) -> None:
    from execution.models import ModelDefault

    mv = approved_model("policy-v1")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelDefault.objects.create(
            version=mv, requested_by=rita, reason="x", confirmed_by=rita, status="ACTIVE"
        )


def test_the_models_page_shows_the_default_and_a_second_risk_manager_confirms_it(
    rita: User, ruth: User, alice: User
) -> None:
    from django.urls import reverse

    v1 = approved_model("policy-v1")
    approved_model("policy-v2")
    page = client_for(rita).get(reverse("model_list")).content.decode()
    assert "not designated by two risk managers" in page
    resp = client_for(rita).post(
        reverse("model_default_propose", args=[v1.pk]), {"reason": "steadier"}, follow=True
    )
    assert "policy-v1 proposed as the default" in resp.content.decode()
    from execution.models import ModelDefault

    d = ModelDefault.objects.get()
    mine = client_for(rita).get(reverse("model_list")).content.decode()
    assert 'id="own-default"' in mine  # her own proposal: the confirm button is disabled
    # A trader sees the default but cannot act on it.
    assert client_for(alice).post(reverse("model_default_confirm", args=[d.pk])).status_code == 403
    done = client_for(ruth).post(reverse("model_default_confirm", args=[d.pk]), follow=True)
    text = done.content.decode()
    assert "policy-v1 is the default for new adaptive orders" in text
    assert "proposed by rita, confirmed by ruth" in text
    missing = client_for(ruth).post(reverse("model_default_confirm", args=[9999]))
    assert missing.status_code == 404
    no_reason = client_for(ruth).post(reverse("model_default_propose", args=[v1.pk]), {})
    assert no_reason.status_code == 400


def test_a_version_worked_around_the_volume_curve_is_marked_against_twap(rita: User) -> None:
    """Its edge over TWAP includes what VWAP's schedule saves: marked, not read as the
    policy's own (v9's card is on the volume curve, v1's on the clock)."""
    from django.urls import reverse

    v1, v9 = approved_model("policy-v1"), approved_model("policy-v9")
    page = client_for(rita).get(reverse("model_list")).content.decode()
    row = {mv.name: page.split(f'id="model-{mv.pk}"')[1].split("</tr>")[0] for mv in (v1, v9)}
    assert 'href="#volume-curve-note"' in row["policy-v9"]
    assert 'href="#volume-curve-note"' not in row["policy-v1"]
    assert 'id="volume-curve-note"' in page
    # And what urgency its days had: above 0 trades ahead of TWAP, part of the figure (a
    # trial: v14's −8.15 was −2.41 at urgency 0, the ticket's default).
    note = page.split('id="volume-curve-note">')[1].split("</p>")[0]
    assert "urgency drawn as in training (0 on half, up to 1 on the rest)" in note
    # And over how many days each figure is: a retrain's 5 in-band days stood beside
    # the shipped cards' 100 as one measure (a trial).
    days = v9.card["validation"]["scenarios"]
    assert f'<span class="muted small" data-field="days">{days} days</span>' in row["policy-v9"]


def test_the_register_command_registers_a_candidate_under_a_risk_manager(
    rita: User, alice: User, tmp_path: Path
) -> None:
    """docs/MODELS.md named `model_register`; the command did not exist (a trial)."""
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    path = _copy(tmp_path, "policy-cmd")
    out = StringIO()
    call_command("model_register", str(path), "--by", "rita", "--note", "from the lab", stdout=out)
    mv = ModelVersion.objects.get(name="policy-cmd")
    assert mv.status == ModelVersion.CANDIDATE and mv.registered_by == rita
    assert "registered policy-cmd as a candidate" in out.getvalue()
    assert AuditRecord.objects.filter(action="model.register", actor=rita).exists()
    fifo = tmp_path / "pipe.onnx"  # a named pipe would block a reader: refused by kind
    os.mkfifo(fifo)
    for argv, says in (
        ([str(path), "--by", "alice", "--note", "x", "--name", "other"], "only a risk manager"),
        ([str(path), "--by", "nobody", "--note", "x"], "there is no active user 'nobody'"),
        ([str(path), "--by", "rita", "--note", "x"], "already registered"),
        (
            [str(tmp_path / "none.onnx"), "--by", "rita", "--note", "x"],
            "FILE: model file .* not found",
        ),
        ([str(tmp_path), "--by", "rita", "--note", "x"], "is a folder, not a file"),
        ([str(fifo), "--by", "rita", "--note", "x"], "pipe.onnx is not a regular file"),
        ([str(path), "--by", "rita", "--note", "x", "--name", "../x"], "--name: ASCII letters"),
    ):
        with pytest.raises(CommandError, match=says):
            call_command("model_register", *argv, stdout=StringIO())


def test_a_models_page_links_only_the_orders_its_reader_may_open(
    alice: User, bob: User, rita: User, instrument: Instrument
) -> None:
    """A review: another trader's order numbers were listed, linked, to a trader."""
    from django.urls import reverse

    mv = approved_model("policy-v1")
    order = submit(alice, instrument, strategy="adaptive", params={"model": "policy-v1"})
    assert order.model_version == mv
    link = f'href="{reverse("order_detail", args=[order.pk])}"'
    page = {
        u.username: client_for(u).get(reverse("model_detail", args=[mv.pk]))
        for u in (alice, bob, rita)
    }
    assert all(p.status_code == 200 for p in page.values())
    assert link in page["alice"].content.decode() and link in page["rita"].content.decode()
    assert link not in page["bob"].content.decode()


def test_a_kill_switch_on_an_expert_stops_the_orders_it_trades_inside_a_gate(
    alice: User, instrument: Instrument, rita: User
) -> None:
    """A trial's switch on policy-v13 stopped none of the orders it traded inside v14."""
    if not (MODEL_DIR / "policy-v14.onnx").is_file():
        pytest.skip("no shipped gated version")
    approved_model("policy-v14")
    traded = submit(alice, instrument, strategy="adaptive", params={"model": "policy-v14"})
    assert traded.model_expert == "policy-v13"  # HBRK quotes 5 bps: the wide expert's
    w = worker(instrument)
    run_to(w, 120)
    preview = (
        client_for(rita)
        .get("/risk/kill/preview/", {"scope_type": "model", "scope_key": "policy-v13"})
        .json()
    )
    assert preview["orders"] == 1
    # Known only inside its gate, it is still said to trade there (reduce-only too), and
    # typed in any case (a review).
    reducing = (
        client_for(rita)
        .get(
            "/risk/kill/preview/",
            {"scope_type": "model", "scope_key": "policy-v13", "state": "REDUCING"},
        )
        .json()
    )
    assert "policy-v13 also trades as an expert inside policy-v14" in reducing["text"]
    assert scope_check("model", "POLICY-V13", kill=True) == "policy-v13"
    from oversight.risk.selectors import scope_keys, trader_alerts

    assert "policy-v13" in scope_keys()["model"]  # suggested on the kill form (a trial)
    k = kill_switch_engage(user=rita, scope_type="model", scope_key="policy-v13", reason="drift")
    run_to(w, 240)
    traded.refresh_from_db()
    assert traded.status == "CANCELED" and "kill switch" in traded.status_reason
    # The trader is told, as for any kill over their orders (their banner said nothing).
    assert [a["id"] for a in trader_alerts(alice)["kills"]] == [k.pk]
    # The expert's own page counts the orders it traded inside the gate (it said 0).
    v13 = model_register(path=MODEL_DIR / "policy-v13.onnx", note="its own entry")
    page = client_for(rita).get(f"/risk/models/{v13.pk}/").content.decode()
    assert f'href="/orders/{traded.pk}/"' in page
    with pytest.raises(ValidationError) as e:
        submit(alice, instrument, strategy="adaptive", quantity=21_000)
    assert "trading is halted for model policy-v13" in str(e.value)
    # Its gate retired, an open order it trades keeps it on the kill form (a review).
    ParentOrder.objects.filter(pk=traded.pk).update(status="PAUSED")  # (as if still open)
    model_retire(user=rita, version_id=ModelVersion.objects.get(name="policy-v14").pk, reason="x")
    assert "policy-v13" in scope_keys()["model"]
    # And its preview names the retired gate its open order trades in (a trial's named
    # only the approved ones).
    again = (
        client_for(rita)
        .get("/risk/kill/preview/", {"scope_type": "model", "scope_key": "policy-v13"})
        .json()
    )
    assert "also trades as an expert inside policy-v14" in again["text"]
    w.release()


def test_the_models_list_takes_a_fixed_number_of_queries(
    rita: User, django_assert_max_num_queries: Any
) -> None:
    """Each row asked the database for the gated versions again (a review: 10 queries for
    one version, 18 for nine)."""
    from execution.model_registry import shipped_register

    approved_model("policy-v1")
    with CaptureQueriesContext(connection) as one:
        client_for(rita).get("/risk/models/")
    shipped_register()  # every shipped version, gated ones among them
    with django_assert_max_num_queries(len(one.captured_queries) + 1):
        client_for(rita).get("/risk/models/")


def test_a_name_typed_exactly_wins_over_a_case_twin_in_older_data(rita: User, ruth: User) -> None:
    from execution.model_registry import ticket_version

    v1 = approved_model("policy-v1")
    ModelVersion.objects.create(
        name="POLICY-V1", file=v1.file, sha256="f" * 64, size_bytes=v1.size_bytes,
        card={}, status=ModelVersion.APPROVED, recommended_by=rita, decided_by=ruth,
    )  # fmt: skip  # registration refuses this now; older data may hold it
    assert ticket_version("policy-v1")[0] == v1
    assert ticket_version("Policy-V1")[0] is None  # two differ only in case: type it exactly


def test_an_expert_registered_under_another_name_than_its_gate_gives_is_known_by_its_bytes(
    alice: User, instrument: Instrument, rita: User, tmp_path: Path
) -> None:
    """A trial gated a retrained candidate by its file's path (the gate tool takes paths)
    and registered it by name: orders recorded the path as their expert, the gate's page
    called the expert "not registered", and a kill switch on the registered version
    stopped none of the orders it traded."""
    if not (MODEL_DIR / "policy-v14.onnx").is_file():
        pytest.skip("no shipped gated version")
    copy = tmp_path / "retrained.onnx"
    shutil.copyfile(MODEL_DIR / "policy-v13.onnx", copy)  # the bytes the gate names v13
    shutil.copyfile(MODEL_DIR / "policy-v13.card.json", copy.with_suffix(".card.json"))
    mine = model_register(path=copy, note="the candidate, by its own name")
    gated = approved_model("policy-v14")
    assert [e["model"] for e in experts_of(gated)] == ["policy-v8", mine.name]
    page = client_for(rita).get(f"/risk/models/{gated.pk}/").content.decode()
    assert f'href="/risk/models/{mine.pk}/"' in page
    traded = submit(alice, instrument, strategy="adaptive", params={"model": "policy-v14"})
    assert traded.model_expert == mine.name
    w = worker(instrument)
    run_to(w, 120)
    kill_switch_engage(user=rita, scope_type="model", scope_key=mine.name, reason="drift")
    run_to(w, 240)
    traded.refresh_from_db()
    assert traded.status == "CANCELED" and "kill switch" in traded.status_reason
    w.release()


def test_the_database_keeps_one_version_per_file(rita: User, tmp_path: Path) -> None:
    """The registry's own check reads, then writes: two registrations at once could both
    pass it, and a gate's expert, known by its bytes, would name either (a review)."""
    mv = model_register(path=_copy(tmp_path), note="first")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(
            name="policy-twin", file=mv.file, sha256=mv.sha256, size_bytes=mv.size_bytes
        )


def test_a_version_with_no_evaluation_cannot_be_recommended(rita: User, tmp_path: Path) -> None:
    """Registered with an empty card, it was recommended and approved with nothing to
    judge it by (a trial)."""
    path = _copy(tmp_path, "bare", variant=3)
    path.with_suffix(".card.json").write_text("{}")
    mv = model_register(path=path, note="no card")
    with pytest.raises(ValidationError, match="bare has no evaluation"):
        model_recommend(user=rita, version_id=mv.pk, reason="looks fine")
    mv.refresh_from_db()
    assert mv.status == ModelVersion.CANDIDATE


def test_approving_a_gated_version_says_which_experts_it_trades_through(
    rita: User, ruth: User
) -> None:
    """A trial read "policy-v9 approved" and found its expert, still a candidate, trading
    the next order: the approval says what it lets trade."""
    from execution.model_registry import experts_of

    if not (MODEL_DIR / "policy-v9.onnx").is_file():
        pytest.skip("no shipped gated model")
    shipped_register()
    mv = ModelVersion.objects.get(name="policy-v9")
    experts = [e["model"] for e in experts_of(mv)]
    assert len(experts) == 2
    client_for(rita).post(f"/risk/models/{mv.pk}/recommend/", {"reason": "evaluated"})
    said = client_for(ruth).post(f"/risk/models/{mv.pk}/approve/", {"note": "ok"}, follow=True)
    assert f"it trades through its experts {', '.join(experts)}" in said.content.decode()
