"""The model registry: which versions of the adaptive policy exist, and which may trade.

Services and selectors over `ModelVersion` (docs/MODELS.md). A version is registered as a
candidate (by a person, the retrain command or the demo seed) with its file's hash, card
and evaluation. It trades only once approved under four eyes: one risk manager
recommends it, a second approves it. Retiring or rejecting is the safe direction and takes
one. The file is re-hashed at every step and by the worker before it trades, so a file
changed on disk after approval never trades as the approved version.

Which approved version the ticket offers first is a decision of its own, under the same
four eyes (`ModelDefault`): one risk manager proposes, a second confirms. Until two have,
the default is the newest approved version that trades every spread.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from execution.algos.adaptive import (
    MODEL_DIR,
    SMALL_ORDER_LOTS,
    AdaptiveFallback,
    OnnxPolicy,
    load_policy,
    policy_checked,
    shipped_models,
    too_small_for_the_model,
)
from execution.algos.base import quoted_spread_bps
from execution.learning.bands import UNREADABLE_BAND, card_spread_band
from execution.models import ModelDefault, ModelVersion
from oversight.audit import audit_record, four_eyes_refusals_audited
from oversight.reasons import reason_given
from oversight.roles import APPROVE_MODEL, FourEyesRefused, first_eyes_problem

VERSION_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read again only when its size or modification time changes
    (as loaded models are cached): the ticket's estimate checks the approved files at each
    keystroke, and the models list every file on each view."""
    st = path.stat()
    return _sha256_of(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def model_path(mv: ModelVersion) -> Path:
    """The version's file: relative paths are under the shipped models folder."""
    p = Path(mv.file)
    return p if p.is_absolute() else MODEL_DIR / p


def _stored_file(path: Path) -> str:
    """Shipped files are stored relative to the models folder, so a checkout can move."""
    try:
        return str(path.resolve().relative_to(MODEL_DIR.resolve()))
    except ValueError:
        return str(path.resolve())


def integrity_problem(mv: ModelVersion) -> str:
    """ "" when the file on disk is the registered one, else what is wrong."""
    path = model_path(mv)
    try:
        digest = file_sha256(path)
    except OSError as e:
        return f"model file {path} cannot be read: {e.strerror}"
    if digest != mv.sha256:
        return (
            f"model file {path} has changed since it was registered "
            f"(sha256 {digest[:12]}…, registered {mv.sha256[:12]}…)"
        )
    if mv.predictor_file:
        ppath = Path(mv.predictor_file)
        ppath = ppath if ppath.is_absolute() else MODEL_DIR / ppath
        try:
            pdigest = file_sha256(ppath)
        except OSError as e:
            return f"predictor file {ppath} cannot be read: {e.strerror}"
        if pdigest != mv.predictor_sha256:
            return f"predictor file {ppath} has changed since it was registered"
    return ""


def version_json(mv: ModelVersion) -> dict[str, Any]:
    def who(u: Any) -> str | None:
        return u.get_username() if u is not None else None

    return {
        "id": mv.pk,
        "name": mv.name,
        "status": mv.status,
        "file": mv.file,
        "sha256": mv.sha256,
        "predictor_file": mv.predictor_file,
        "predictor_sha256": mv.predictor_sha256,
        "registered_by": who(mv.registered_by),
        "recommended_by": who(mv.recommended_by),
        "decided_by": who(mv.decided_by),
        "retired_by": who(mv.retired_by),
    }


# -- selectors ----------------------------------------------------------------------------


def _gate_of(mv: ModelVersion) -> Any:
    """The gate in the version's registered file (None: a single policy, or a file that is
    missing, changed or unreadable; the page says so elsewhere)."""
    try:
        return load_policy(str(model_path(mv)), mv.sha256).gate
    except AdaptiveFallback:
        return None


def experts_of(mv: ModelVersion) -> list[dict[str, Any]]:
    """A gated version's experts, read from its registered file's metadata (what the
    strategy obeys, not the card), each with the band of the instrument's quoted spread it
    trades: `from_bps` to `below_bps` (None: no upper bound). Empty for a single policy."""
    return _expert_rows(_gate_of(mv))


def _expert_rows(gate: Any) -> list[dict[str, Any]]:
    """`model`: the expert as the registry knows it, by its bytes: a gate built from a
    file path (as the gate tool takes a retrained candidate) names the path, and a kill
    switch or limit on the registered version missed the orders it traded (a trial).
    `file`: the name the gate's metadata gives it."""
    if gate is None:
        return []
    # One version per file's bytes: registering the same bytes twice is refused.
    known = dict(
        ModelVersion.objects.filter(sha256__in=[e.sha256 for e in gate.experts]).values_list(
            "sha256", "name"
        )
    )
    rows, lo = [], 0.0
    for e in gate.experts:
        hi = None if e.below_bps == math.inf else e.below_bps
        rows.append(
            {
                "model": known.get(e.sha256, e.name),
                "file": e.name,
                "sha256": e.sha256,
                "from_bps": lo,
                "below_bps": hi,
            }
        )
        lo = hi if hi is not None else lo
    return rows


def instrument_spread_bps(instrument: Any) -> float | None:
    """The instrument's quoted spread in bps as the strategy's gate computes it
    (`adaptive.spread_bps` of the order context the worker builds from the scenario)."""
    try:
        inst = instrument.scenario["instrument"]
        bps = quoted_spread_bps(
            float(inst["spread_ticks"]), float(inst["tick_size"]), float(inst["reference_price"])
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return bps if math.isfinite(bps) and bps >= 0 else None


def expert_for(mv: ModelVersion, instrument: Any) -> dict[str, Any] | None:
    """Which expert of a gated version trades orders on `instrument` (and the spread);
    None for a single policy or an instrument whose spread is unknown."""
    gate = _gate_of(mv)
    bps = instrument_spread_bps(instrument)
    if gate is None or bps is None:
        return None
    chosen = gate.expert(bps)
    row = next(e for e in _expert_rows(gate) if e["file"] == chosen.name)
    return {**row, "spread_bps": bps}


def ticket_version(typed: str) -> tuple[ModelVersion | None, str]:
    """The version an adaptive order typed with `model` = `typed` would trade (blank: the
    designated default), or None and why not. Never a file path from a browser: only a
    version two risk managers approved."""
    version = default_version() if not typed else _approved_named(typed)
    if version is not None:
        # Approved bytes only: a file changed since would fall back at the first decision,
        # with a critical alert (a trial's order did, and filled as TWAP).
        problem = integrity_problem(version)
        if not problem:
            return version, ""
        return None, (
            f"{version.name} trades no new order: its {problem}; a risk manager must look "
            "(Models page)"
        )
    approved = approved_names()
    if approved:
        return None, f"choose an approved model version: {', '.join(approved)}"
    unfit = ModelVersion.objects.filter(status=ModelVersion.APPROVED).values_list("name", flat=True)
    if unfit:
        return None, (
            f"no approved model version can trade: the files of {', '.join(unfit)} are not "
            "as registered; a risk manager must look (Models page)"
        )
    return None, (
        "no model version is approved for trading yet: a risk manager recommends one and a "
        "second approves it (Models page)"
    )


def _approved_named(typed: str) -> ModelVersion | None:
    """The approved version of that name; or, whatever the case, the one name there is (
    "POLICY-V14" is policy-v14, as TCA reads it). Two that differ only in case (older
    data) must be typed exactly."""
    approved = ModelVersion.objects.filter(status=ModelVersion.APPROVED)
    exact = approved.filter(name=typed).first()
    if exact is not None:
        return exact
    folded = list(approved.filter(name__iexact=typed)[:2])
    return folded[0] if len(folded) == 1 else None


def ticket_model_words(
    version: ModelVersion,
    instrument: Any,
    quantity: int,
    lot: int,
    expert: dict[str, Any] | None,
) -> str:
    """What the ticket says will trade the order: the version, the expert of a gated one
    for this instrument's spread (expert_for), and an order too small for the model."""
    words = version.name
    if expert is not None:
        band = band_words(expert["from_bps"], expert["below_bps"])
        words += (
            f", traded by its expert {expert['model']} (for a spread of {band}; "
            f"{instrument.symbol} quotes {expert['spread_bps']:.2f} bps)"
        )
    if too_small_for_the_model(quantity, lot):
        words += (
            f"; under {SMALL_ORDER_LOTS} lots of {lot:,} shares the order is worked along "
            "its curve without the model"
        )
    return words


def band_words(lo: float, hi: float | None) -> str:
    """A band of quoted spread, [lo, hi) bps, as people read it: "under 5 bps", "5 bps or
    more", "1.78 bps or more and under 9.59" ("0 to 5 bps" read as if 5 were in it: a
    trial, for HBRK at 5.00 bps)."""
    if hi is None or hi == math.inf:
        return f"{lo:g} bps or more"
    return f"under {hi:g} bps" if lo <= 0 else f"{lo:g} bps or more and under {hi:g}"


def spread_band_of(mv: ModelVersion) -> tuple[float, float] | None:
    """The band of quoted spread a single expert was trained on, from its card
    (`card_spread_band`); None for a version trained on every spread, or gated."""
    return card_spread_band(mv.card)


def band_problem(mv: ModelVersion, instrument: Any) -> str:
    """Why `mv` must not trade `instrument` (an expert outside the band of spreads it was
    trained on, or one whose band or instrument's spread cannot be told), or ""."""
    band = spread_band_of(mv)
    if band is None:
        return ""
    if band == UNREADABLE_BAND:
        return f"{mv.name}'s card names a band of spreads that cannot be read: choose another"
    bps = instrument_spread_bps(instrument)
    if bps is None:
        return (
            f"{mv.name} was trained for one band of spreads and {instrument.symbol}'s "
            "spread is unknown: choose a version for every spread"
        )
    if band[0] <= bps < band[1]:
        return ""
    return (
        f"{mv.name} was trained only for instruments quoting a spread of "
        f"{band_words(*band)}; {instrument.symbol} quotes {bps:.2f} bps: choose a version "
        "for every spread"
    )


def approved_versions() -> list[ModelVersion]:
    """What the ticket offers: versions that trade every spread first, then the single-band
    experts; newest approval first within each."""
    versions = [
        mv
        for mv in ModelVersion.objects.filter(status=ModelVersion.APPROVED).order_by(
            "-decided_at", "-id"
        )
        if not integrity_problem(mv)  # its file is the one approved
    ]
    return sorted(versions, key=lambda mv: spread_band_of(mv) is not None)  # stable


def approved_names() -> list[str]:
    return [mv.name for mv in approved_versions()]


def designated_default() -> ModelDefault | None:
    """The designation two risk managers confirmed, while its version may trade."""
    active = ModelDefault.objects.filter(status=ModelDefault.ACTIVE).select_related("version")
    d = active.first()
    if d is None or d.version.status != ModelVersion.APPROVED:
        return None
    return d


def default_version() -> ModelVersion | None:
    """The version two risk managers designated. Before any designation (a new install),
    the newest approved version that trades every spread. Once the firm has designated
    one, the default never moves without four eyes: if its version is retired, there is
    none until two risk managers designate another, and a trader names the model. An
    expert for one band is never anyone's default."""
    return _default_and_designation()[0]


def _default_and_designation() -> tuple[ModelVersion | None, ModelDefault | None]:
    d = designated_default()
    if d is not None and spread_band_of(d.version) is None:
        return d.version, d
    if ModelDefault.objects.filter(confirmed_by__isnull=False).exists():
        return None, d
    return next((mv for mv in approved_versions() if spread_band_of(mv) is None), None), d


def default_note() -> str:
    """What new adaptive orders get by default now, for a decision's message."""
    return describe_default(*_default_and_designation())


def default_state() -> dict[str, Any]:
    """The default, how it became so and what to say of it: for the models pages."""
    mv, d = _default_and_designation()
    return {"default": mv, "designation": d, "default_note": describe_default(mv, d)}


def describe_default(mv: ModelVersion | None, designation: ModelDefault | None) -> str:
    if mv is None:
        return "new adaptive orders have no default model: the trader names one"
    how = "designated" if designation is not None else "the newest approved"
    return f"new adaptive orders default to {mv.name} ({how})"


def gated_users_of(
    mv: ModelVersion, gates: list[tuple[str, list[dict[str, Any]]]] | None = None
) -> list[str]:
    """The approved or pending gated versions with `mv` among their experts, by name or by
    its bytes. `gates`: live_gates(), when the caller asks for many versions at once."""
    return sorted(
        name
        for name, experts in (live_gates() if gates is None else gates)
        if name != mv.name
        and any(e["model"] == mv.name or e["sha256"] == mv.sha256 for e in experts)
    )


def live_gates() -> list[tuple[str, list[dict[str, Any]]]]:
    """Each approved or pending gated version's name and experts (one query)."""
    live = ModelVersion.objects.filter(status__in=(ModelVersion.APPROVED, ModelVersion.PENDING))
    return [(g.name, experts) for g in live if (experts := experts_of(g))]


def refused_experts(mv: ModelVersion) -> list[str]:
    """The experts of a gated version that are registered as rejected or retired, by name
    or by their bytes under another name (a rejected file came back as an expert so)."""
    experts = experts_of(mv)
    names = [e["model"] for e in experts]
    hashes = [e["sha256"] for e in experts]
    refused = ModelVersion.objects.filter(
        Q(name__in=names) | Q(sha256__in=hashes),
        status__in=(ModelVersion.REJECTED, ModelVersion.RETIRED),
    )
    return sorted(f"{v.name} ({v.status.lower()})" for v in refused)


def _refuse_refused_experts(mv: ModelVersion) -> None:
    refused = refused_experts(mv)
    if refused:
        # Approved, it would trade them under its own name (the other order of a trial's
        # steps: an expert rejected first, its gate approved after).
        raise ValidationError(
            f"{mv.name} trades {', '.join(refused)} as experts, which risk managers "
            "refused: register a gate without them"
        )


def pending_default() -> ModelDefault | None:
    return (
        ModelDefault.objects.filter(status=ModelDefault.PENDING)
        .select_related("version", "requested_by")
        .first()
    )


# -- services -----------------------------------------------------------------------------


RETIRED_FOR_GOOD = (
    "{name} is retired, for good: a retired version is offered to no order again; to trade "
    "its policy, retrain it (`manage.py model_retrain`) and approve the new candidate"
)


def _status_words(mv: ModelVersion) -> str:
    """ "a candidate", "pending approval", "approved"…: a status as a sentence says it."""
    return {
        ModelVersion.CANDIDATE: "a candidate",
        ModelVersion.PENDING: "pending approval",
    }.get(mv.status, mv.status.lower())


def _require_approver(user: Any, what: str) -> None:
    if not (user.is_authenticated and user.has_perm(APPROVE_MODEL)):
        raise ValidationError(f"only a risk manager may {what}")


def _locked(version_id: int) -> ModelVersion:
    try:
        return ModelVersion.objects.select_for_update(no_key=True).get(pk=version_id)
    except ModelVersion.DoesNotExist:
        # Not a validation problem but a missing object: the screens answer 404 with this.
        raise ModelVersion.DoesNotExist(f"there is no model version {version_id}") from None


def _predictor_of(policy: OnnxPolicy, path: Path) -> tuple[str, str]:
    """The predictor a policy names in its metadata (file, sha256), or ("", "")."""
    name = policy.metadata.get("predictor", "")
    if not name:
        return "", ""
    ppath = Path(name) if name.endswith(".onnx") else MODEL_DIR / f"{name}.onnx"
    if not ppath.is_absolute():
        ppath = path.parent / ppath
    try:
        digest = file_sha256(ppath)
    except OSError as e:
        raise ValidationError(
            f"{path.name} names predictor {name!r}, whose file {ppath} cannot be read: {e.strerror}"
        ) from None
    expected = policy.metadata.get("predictor_sha256", "")
    if expected and expected != digest:
        raise ValidationError(
            f"{path.name} was trained with predictor {name!r} of sha256 {expected[:12]}…, "
            f"but {ppath} has {digest[:12]}…"
        )
    return _stored_file(ppath), digest


def model_register(
    *,
    path: Path | str,
    name: str = "",
    card: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    note: str = "",
    user: Any = None,
) -> ModelVersion:
    """Register an ONNX policy file as a candidate. The file must load as a policy of the
    product's format; its card is read from the `.card.json` beside it unless given."""
    path = Path(path)
    name = (name or path.stem).strip()
    note = reason_given(note, "say why it is registered", field="note")
    # ASCII only: a Cyrillic "о" made a "pоlicy-v14" that the ticket listed above the real
    # one (a trial).
    if not VERSION_NAME.fullmatch(name):
        raise ValidationError(
            {"name": "ASCII letters, digits, '-', '_' and '.', at most 64 characters"}
        )
    if user is not None:
        _require_approver(user, "register a model version")
    if not path.is_file():
        # A folder is not "not found" (a fuzz): the backtest says the same.
        if path.is_dir():
            what = "is a folder, not a file"
        elif path.exists():
            what = "is not a regular file"  # a named pipe or a device: never opened
        else:
            what = "not found"
        raise ValidationError({"file": f"model file {path} {what}"})
    try:
        policy = policy_checked(OnnxPolicy(path))
    except AdaptiveFallback as e:
        raise ValidationError({"file": str(e)}) from None
    if card is None:
        card_path = path.with_suffix(".card.json")
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            card = {}
        except (OSError, ValueError) as e:
            raise ValidationError({"card": f"{card_path}: not a JSON model card ({e})"}) from None
    if not isinstance(card, dict):
        raise ValidationError({"card": "a model card is a JSON object"})
    predictor_file, predictor_sha = _predictor_of(policy, path)
    digest = file_sha256(path)
    if card and card.get("sha256") != digest:
        # A card describes the bytes it was written with: another file's validation shown
        # as this one's is what a risk manager would approve on (a trial copied v8's card
        # beside an edited file, and it was approved).
        said = str(card.get("sha256") or "no file hash")
        raise ValidationError(
            {
                "card": f"the model card is not this file's: it names {said[:12]}…, the file "
                f"is {digest[:12]}…; a card is written with the file it describes"
            }
        )
    with transaction.atomic():
        taken = ModelVersion.objects.filter(name__iexact=name).first()
        if taken is not None:
            same = "" if taken.name == name else f" as {taken.name!r} (names differ in case only)"
            raise ValidationError({"name": f"model version {name!r} is already registered{same}"})
        # One file, one version: the bytes of a rejected or retired version came back
        # under a new name and were approved, with nothing said (a trial).
        twin = ModelVersion.objects.filter(sha256=digest).first()
        if twin is not None:
            raise ValidationError(
                {
                    "file": f"this file is already registered as {twin.name} "
                    f"({twin.get_status_display().lower()}): one file, one version"
                }
            )
        try:
            with transaction.atomic():
                mv = ModelVersion.objects.create(
                    name=name,
                    file=_stored_file(path),
                    sha256=digest,
                    size_bytes=path.stat().st_size,
                    predictor_file=predictor_file,
                    predictor_sha256=predictor_sha,
                    card=card,
                    metrics=metrics or {},
                    note=note,
                    registered_by=user,
                )
        except IntegrityError:  # the same name or bytes, registered at the same moment
            raise ValidationError(
                {"file": f"{name} or this file was registered at the same time: look again"}
            ) from None
        audit_record(
            actor=user, action="model.register", obj=mv, after=version_json(mv), reason=note
        )
    return mv


def shipped_register() -> list[ModelVersion]:
    """Register every model file shipped with the product that is not registered yet."""
    out = []
    for name in shipped_models():  # policies only: a predictor is registered with its policy
        path = MODEL_DIR / f"{name}.onnx"
        # (Its bytes registered under another name already: that version is this one.)
        registered = ModelVersion.objects.filter(name=name).exists() or (
            path.is_file() and ModelVersion.objects.filter(sha256=file_sha256(path)).exists()
        )
        if not registered:
            out.append(
                model_register(path=MODEL_DIR / f"{name}.onnx", note="shipped with the product")
            )
    return out


def _save_audited(mv: ModelVersion, user: Any, action: str, before: Any, reason: str) -> None:
    mv.save()
    audit_record(
        actor=user, action=action, obj=mv, before=before, after=version_json(mv), reason=reason
    )


def _check_file(mv: ModelVersion) -> None:
    problem = integrity_problem(mv)
    if problem:
        raise ValidationError(problem)


def _check_evidence(mv: ModelVersion) -> None:
    """A version is recommended on its evaluation: a file registered with a card that
    holds none, and no evaluation by the registry, was recommended and approved with
    nothing to judge it by (a trial)."""
    card = mv.card if isinstance(mv.card, dict) else {}
    if not card.get("validation") and not mv.metrics:
        raise ValidationError(
            f"{mv.name} has no evaluation: its model card holds no validation and the "
            "registry none of its own; evaluate it first (a card with its validation, or "
            "`manage.py model_retrain`, docs/MODELS.md)"
        )


def model_recommend(*, user: Any, version_id: int, reason: str) -> ModelVersion:
    """The first of two people: a risk manager recommends a candidate for approval."""
    _require_approver(user, "recommend a model version")
    if not (reason or "").strip():
        raise ValidationError({"reason": "say why it should trade (its evaluation, its card)"})
    with transaction.atomic():
        mv = _locked(version_id)
        # A recommendation that lapsed (its author's role changed after) may be made
        # again: the approval says "ask for it again", and nothing else could (a review).
        lapsed = mv.status == ModelVersion.PENDING and bool(
            first_eyes_problem(mv.recommended_by, APPROVE_MODEL, "it", mv.recommended_at)
        )
        if mv.status == ModelVersion.RETIRED:
            raise ValidationError(RETIRED_FOR_GOOD.format(name=mv.name))
        if mv.status != ModelVersion.CANDIDATE and not lapsed:
            raise ValidationError(f"{mv.name} is {_status_words(mv)}, not a candidate")
        _refuse_refused_experts(mv)  # said now, not only when the second person approves
        _check_file(mv)
        _check_evidence(mv)
        before = version_json(mv)
        mv.status = ModelVersion.PENDING
        mv.recommended_by, mv.recommended_at = user, timezone.now()
        mv.recommend_reason = reason_given(reason)
        _save_audited(mv, user, "model.recommend", before, reason)
    return mv


@four_eyes_refusals_audited("model.approve", "execution.ModelVersion", "version_id")
def model_approve(*, user: Any, version_id: int, note: str = "") -> ModelVersion:
    """The second person: another risk manager approves; the version may then trade."""
    _require_approver(user, "approve a model version")
    with transaction.atomic():
        mv = _locked(version_id)
        if mv.status == ModelVersion.APPROVED:
            raise ValidationError(f"{mv.name} is already approved")
        if mv.status == ModelVersion.RETIRED:
            # Not "recommend it first", which then says "retired, not a candidate" (a trial).
            raise ValidationError(RETIRED_FOR_GOOD.format(name=mv.name))
        if mv.status != ModelVersion.PENDING:
            raise ValidationError(
                f"{mv.name} is {_status_words(mv)}: a risk manager must recommend it first"
            )
        if mv.recommended_by_id == user.pk:
            raise FourEyesRefused(
                "four eyes: a second risk manager must approve the version you recommended"
            )
        lapsed = first_eyes_problem(
            mv.recommended_by, APPROVE_MODEL, f"{mv.name}'s approval", mv.recommended_at
        )
        if lapsed:
            raise FourEyesRefused(lapsed)
        if not (note or "").strip():
            # Every step of a version's life is recorded with its reason (docs/MODELS.md);
            # an approval went through with none (a trial). After the refusals above, which
            # say more (a review).
            raise ValidationError(
                {"note": "say why it may trade: the approval is recorded with it"}
            )
        _refuse_refused_experts(mv)
        _check_file(mv)
        before = version_json(mv)
        mv.status = ModelVersion.APPROVED
        mv.decided_by, mv.decided_at = user, timezone.now()
        mv.decision_note = reason_given(note, field="note")
        _save_audited(mv, user, "model.approve", before, note)
    return mv


def model_reject(*, user: Any, version_id: int, note: str) -> ModelVersion:
    _require_approver(user, "reject a model version")
    with transaction.atomic():
        mv = _locked(version_id)
        if mv.status not in (ModelVersion.CANDIDATE, ModelVersion.PENDING):
            raise ValidationError(
                f"{mv.name} is {_status_words(mv)}; only candidates and pending versions are rejected"
            )
        withdrawal = mv.status == ModelVersion.PENDING and mv.recommended_by_id == user.pk
        if not (note or "").strip():
            # The recommender's Withdraw asked why it was "rejected" (a trial).
            why = (
                "say why you withdraw your recommendation"
                if withdrawal
                else "say why it is rejected"
            )
            raise ValidationError({"note": why})
        if withdrawal:
            # The recommender withdraws their own recommendation: a candidate again, not
            # rejected for good under nobody's name (a trial: "Withdraw" rejected it, and
            # its file could not be registered again). It changes nothing a gate trades.
            before = version_json(mv)
            mv.status = ModelVersion.CANDIDATE
            mv.recommended_by, mv.recommended_at, mv.recommend_reason = None, None, ""
            _save_audited(mv, user, "model.withdraw", before, reason_given(note, field="note"))
            return mv
        inside = gated_users_of(mv)
        if inside:
            # Its weights are in those files too: rejected alone, it would go on trading
            # as their expert, under their name (a trial's rejected v8 traded 446 decisions).
            raise ValidationError(
                f"{mv.name} trades inside {', '.join(inside)} (an expert of a gated "
                "version): reject or retire those first, or halt them now with a kill switch"
            )
        before = version_json(mv)
        mv.status = ModelVersion.REJECTED
        mv.decided_by = user
        mv.decided_at = timezone.now()
        mv.decision_note = reason_given(note, field="note")
        _save_audited(mv, user, "model.reject", before, note)
    return mv


def designation_json(d: ModelDefault) -> dict[str, Any]:
    return {
        "version": d.version.name,
        "status": d.status,
        "requested_by": d.requested_by.get_username(),
        "reason": d.reason,
        "confirmed_by": d.confirmed_by.get_username() if d.confirmed_by else None,
        "end_reason": d.end_reason,
    }


def _designation_locked(designation_id: int) -> ModelDefault:
    try:
        return (
            ModelDefault.objects.select_for_update(no_key=True)
            .select_related("version")
            .get(pk=designation_id)
        )
    except ModelDefault.DoesNotExist:
        raise ModelDefault.DoesNotExist(
            f"there is no default designation {designation_id}"
        ) from None


def _end(d: ModelDefault, status: str, why: str) -> None:
    d.status, d.ended_at, d.end_reason = status, timezone.now(), why[:500]
    d.save()


def model_default_propose(*, user: Any, version_id: int, reason: str) -> ModelDefault:
    """The first of two people: make an approved, every-spread version the ticket's default.
    A newer proposal replaces one still pending."""
    _require_approver(user, "propose the default model version")
    if not (reason or "").strip():
        raise ValidationError({"reason": "say why it should be the default"})
    with transaction.atomic():
        mv = _locked(version_id)
        if mv.status != ModelVersion.APPROVED:
            raise ValidationError(
                f"{mv.name} is {_status_words(mv)}: only an approved version may be the default"
            )
        if spread_band_of(mv) is not None:
            raise ValidationError(
                f"{mv.name} trades one band of spreads only: the default must trade every "
                "instrument (a trader names an expert on the ticket)"
            )
        _check_file(mv)
        current = designated_default()
        if current is not None and current.version_id == mv.pk:
            raise ValidationError(f"{mv.name} is already the default")
        replaced = ModelDefault.objects.select_for_update(no_key=True).filter(
            status=ModelDefault.PENDING
        )
        for old in replaced:
            _end(old, ModelDefault.WITHDRAWN, f"replaced by a proposal of {mv.name}")
        d = ModelDefault.objects.create(version=mv, requested_by=user, reason=reason_given(reason))
        audit_record(
            actor=user, action="model.default_propose", obj=mv, after=designation_json(d),
            reason=reason,
        )  # fmt: skip
    return d


@four_eyes_refusals_audited("model.default_confirm", "execution.ModelDefault", "designation_id")
def model_default_confirm(*, user: Any, designation_id: int) -> ModelDefault:
    """The second person: the proposed version becomes the default for new orders."""
    _require_approver(user, "confirm the default model version")
    with transaction.atomic():
        d = _designation_locked(designation_id)
        if d.status != ModelDefault.PENDING:
            raise ValidationError(f"this proposal is {d.status.lower()}, not pending")
        if d.requested_by_id == user.pk:
            raise FourEyesRefused(
                "four eyes: a second risk manager must confirm the default you proposed"
            )
        lapsed = first_eyes_problem(
            d.requested_by, APPROVE_MODEL, f"{d.version.name} as default", d.requested_at
        )
        if lapsed:
            raise FourEyesRefused(lapsed)
        mv = ModelVersion.objects.select_for_update(no_key=True).get(pk=d.version_id)
        if mv.status != ModelVersion.APPROVED:
            raise ValidationError(f"{mv.name} is {_status_words(mv)} now: propose another")
        _check_file(mv)
        for old in ModelDefault.objects.select_for_update(no_key=True).filter(
            status=ModelDefault.ACTIVE
        ):
            _end(old, ModelDefault.ENDED, f"replaced by {mv.name}")
        before = designation_json(d)
        d.status, d.confirmed_by, d.confirmed_at = ModelDefault.ACTIVE, user, timezone.now()
        d.save()
        audit_record(
            actor=user, action="model.default_confirm", obj=mv, before=before,
            after=designation_json(d),
        )  # fmt: skip
    return d


def model_default_withdraw(*, user: Any, designation_id: int, reason: str) -> ModelDefault:
    """A pending proposal withdrawn (the safe direction: one risk manager, either)."""
    _require_approver(user, "withdraw a default proposal")
    reason = reason_given(reason, "say why it is withdrawn")
    with transaction.atomic():
        d = _designation_locked(designation_id)
        if d.status != ModelDefault.PENDING:
            raise ValidationError(f"this proposal is {d.status.lower()}, not pending")
        before = designation_json(d)
        _end(d, ModelDefault.WITHDRAWN, reason.strip())
        audit_record(
            actor=user, action="model.default_withdraw", obj=d.version, before=before,
            after=designation_json(d), reason=reason,
        )  # fmt: skip
    return d


def model_retire(*, user: Any, version_id: int, reason: str) -> ModelVersion:
    """Offered to no new order from now on (the safe direction: one person). Orders already
    working on it keep it; a kill switch on the model scope stops them."""
    _require_approver(user, "retire a model version")
    if not (reason or "").strip():
        raise ValidationError({"reason": "say why it is retired"})
    with transaction.atomic():
        mv = _locked(version_id)
        if mv.status != ModelVersion.APPROVED:
            raise ValidationError(
                f"{mv.name} is {_status_words(mv)}; only approved versions retire"
            )
        inside = gated_users_of(mv)
        if inside:
            # Retired alone it would go on trading as their expert, under their name.
            raise ValidationError(
                f"{mv.name} trades inside {', '.join(inside)} (an expert of a gated "
                "version): retire those first, or halt them now with a kill switch"
            )
        before = version_json(mv)
        mv.status = ModelVersion.RETIRED
        mv.retired_by, mv.retired_at = user, timezone.now()
        mv.retire_reason = reason_given(reason)
        _save_audited(mv, user, "model.retire", before, reason)
        # A retired version is nobody's default, and a proposal of it cannot be confirmed.
        for d in ModelDefault.objects.select_for_update(no_key=True).filter(
            version=mv, status__in=(ModelDefault.ACTIVE, ModelDefault.PENDING)
        ):
            before_d = designation_json(d)
            _end(d, ModelDefault.ENDED, f"{mv.name} retired")
            audit_record(
                actor=user, action="model.default_end", obj=mv, before=before_d,
                after=designation_json(d), reason=f"{mv.name} retired",
            )  # fmt: skip
    return mv
