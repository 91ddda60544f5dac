"""Seed the demo: one instrument per repo scenario and one demo user per role (idempotent).

    manage.py seed_demo

Instruments come from ``execution/scenarios/*.json`` (the repo's own; a fresh clone has no
``../shared/``), keyed by the scenario's ``instrument.symbol``; re-running updates them in
place. Users: ``trader`` (group trader), ``risk`` (group risk_manager), ``admin`` (group
admin, staff). Their password is ``OVERSIGHT_DEMO_PASSWORD`` when set; otherwise, only in
debug mode, the documented demo password ``DEMO_PASSWORD``; outside debug mode without the
variable the command refuses, so a production database never gets a known password.
"""

from __future__ import annotations

import os
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from execution.algos.adaptive import DEFAULT_MODEL
from execution.model_registry import (
    model_approve,
    model_default_confirm,
    model_default_propose,
    model_recommend,
    shipped_register,
)
from execution.models import PRICE, Instrument, ModelVersion
from execution.sim.calibration import Knobs, calibrate
from execution.sim.scenario import ScenarioError, ignored_keys, parse_scenario, read_scenario_json
from oversight.audit import audit_record
from oversight.login_throttle import locks_cleared
from oversight.management.ready import require_migrated
from oversight.models import PasswordChangeDue
from oversight.risk.models import Desk, DeskMembership, RiskLimit
from oversight.roles import ADMIN, RISK_MANAGER, TRADER, roles_ensure

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"
DEMO_PASSWORD = "oversight-demo"
PASSWORD_ENV = "OVERSIGHT_DEMO_PASSWORD"

# username, role (group), is_staff
DEMO_USERS: tuple[tuple[str, str, bool], ...] = (
    ("trader", TRADER, False),
    ("risk", RISK_MANAGER, False),
    ("risk2", RISK_MANAGER, False),  # four eyes needs a second risk manager
    ("admin", ADMIN, True),
)
DEMO_DESK = "EQ-1"  # the demo trader's desk
# The firm's starting limits (a fresh database has none). Later changes go through
# requests under four eyes; these are written once, by the system, and audited.
DEMO_FIRM_LIMITS: dict[str, str] = {
    "max_order_qty": "2000000",
    "max_order_notional": "50000000",
    "daily_notional": "250000000",
    "max_participation_pct": "50",
    "max_child_qty": "50000",
    "max_child_notional": "2000000",
    "price_collar_bps": "500",
    "max_msgs_per_s": "50",
}


def demo_password() -> str:
    """The demo users' password, or CommandError when none may be used."""
    password = os.environ.get(PASSWORD_ENV, "")
    if password:
        return password
    if settings.DEBUG:
        return DEMO_PASSWORD
    raise CommandError(
        f"set {PASSWORD_ENV} to seed the demo users outside debug mode "
        f"(the built-in demo password is only used with OVERSIGHT_DEBUG=1)"
    )


SYMBOL_LENGTH = Instrument._meta.get_field("symbol").max_length or 16


def instrument_fields(path: Path) -> tuple[str, dict[str, Any]]:
    """(symbol, field values) of the Instrument a scenario file describes."""
    try:
        data = read_scenario_json(path)
        if not isinstance(data, dict):
            raise ScenarioError("scenario", "must be an object")
        # The worker replaces the scenario's order; validate the market part the same way.
        market = parse_scenario(
            {
                **data,
                "order": {
                    "side": "buy",
                    "quantity": 1,
                    "start_minute": 0,
                    "end_minute": 390,
                    "limit_price": None,
                },
            }
        )
        calibrate(market)  # the simulator's knobs and day size too, before a worker meets them
        inst = market.instrument
        fields = {
            "name": str(data["instrument"].get("name") or data.get("name") or inst.symbol)[:128],
            "scenario": data,
            "tick_size": _stored_price(inst.tick_size, "instrument.tick_size"),
            "reference_price": _stored_price(inst.reference_price, "instrument.reference_price"),
            "adv_shares": round(inst.adv_shares),
        }
        if len(inst.symbol) > SYMBOL_LENGTH:
            raise ScenarioError(
                "instrument.symbol",
                f"must be at most {SYMBOL_LENGTH} characters, got {len(inst.symbol)}",
            )
    except ScenarioError as e:
        raise CommandError(f"{path.name}: not a usable scenario: {e}") from e
    return inst.symbol, fields


def _stored_price(value: float, key: str) -> Decimal:
    """The price as the database keeps it (6 decimal places), or ScenarioError if that
    would change it (a tick of 1e-7 would be stored as 0)."""
    exact = Decimal(repr(value))
    if exact != exact.quantize(
        Decimal(1).scaleb(-PRICE["decimal_places"]), rounding=ROUND_HALF_EVEN
    ):
        raise ScenarioError(
            key, f"has more than {PRICE['decimal_places']} decimal places, got {value!r}"
        )
    return exact


class Command(BaseCommand):
    help = "Create the demo instruments (execution/scenarios/*.json) and one demo user per role."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--scenarios", type=Path, default=SCENARIOS_DIR, help="folder of scenario JSON files"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        password = demo_password()
        folder = Path(options["scenarios"])
        if not folder.is_dir():
            raise CommandError(f"--scenarios {folder}: no such folder")
        paths = sorted(folder.glob("*.json"))
        if not paths:
            raise CommandError(f"no scenario files in {options['scenarios']}")
        specs = [instrument_fields(p) for p in paths]
        first: dict[str, str] = {}
        for p, (symbol, fields) in zip(paths, specs, strict=True):
            # One instrument whatever the case (scopes and the restricted list read
            # "sqnt" as SQNT): two files, or a file and a stored symbol, are refused.
            if symbol.casefold() in first:
                raise CommandError(
                    f"{p.name}: instrument {symbol} is also described by "
                    f"{first[symbol.casefold()]}; one file per instrument"
                )
            first[symbol.casefold()] = p.name
            other = Instrument.objects.filter(symbol__iexact=symbol).exclude(symbol=symbol).first()
            if other is not None:
                raise CommandError(
                    f"{p.name}: instrument {symbol} differs only in case from the stored "
                    f"{other.symbol}; use its symbol"
                )
            for key in Knobs.unknown_knobs(fields["scenario"].get("simulator")):
                self.stdout.write(
                    f"note: {p.name}: simulator.{key} is not a knob of this simulator; ignored"
                )
            for key in ignored_keys(fields["scenario"]):
                self.stdout.write(
                    f"note: {p.name}: {key} is not a key of the scenario format; ignored"
                )
        User = get_user_model()
        with transaction.atomic():
            roles_ensure()
            for symbol, fields in specs:
                _, created = Instrument.objects.update_or_create(symbol=symbol, defaults=fields)
                self.stdout.write(f"instrument {symbol}: {'created' if created else 'up to date'}")
            for username, role, staff in DEMO_USERS:
                user, created = User.objects.get_or_create(username=username)
                changed = created
                if user.is_staff != staff or not user.is_active:
                    user.is_staff, user.is_active = staff, True
                    changed = True
                if not user.check_password(password):
                    user.set_password(password)
                    changed = True
                if changed:
                    user.save()
                # The logins printed below work as printed: the demo password is published,
                # so no choice of one's own is due after it, and no lock from failed tries
                # stands in the way.
                PasswordChangeDue.objects.filter(user=user).delete()
                cleared = locks_cleared(username)
                if any(w["locked_until"] for w in cleared):
                    audit_record(
                        actor=None,
                        action="user.login_unlock",
                        obj=user,
                        before={"login_locks": cleared},
                        after={"login_locks": []},
                        reason="seed_demo: the demo logins work as printed",
                    )
                user.groups.set([Group.objects.get(name=role)])
            desk, _ = Desk.objects.get_or_create(name=DEMO_DESK)
            DeskMembership.objects.get_or_create(
                user=User.objects.get(username="trader"), defaults={"desk": desk}
            )
            for metric, value in DEMO_FIRM_LIMITS.items():
                limit, created = RiskLimit.objects.get_or_create(
                    scope_type="firm",
                    scope_key="",
                    metric=metric,
                    defaults={"value": Decimal(value), "version": 1, "updated_at": timezone.now()},
                )
                if created:
                    audit_record(actor=None, action="limit.seed", obj=limit, after={"value": value})
            self._seed_models(User)
        shown = password if not os.environ.get(PASSWORD_ENV) else f"(from {PASSWORD_ENV})"
        self.stdout.write("Demo logins:")
        for username, role, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<7} / {shown:<16} {role}")

    def _seed_models(self, User: Any) -> None:
        """Register the shipped policy files as candidates; in the demo, the two demo risk
        managers approve the default one under four eyes and designate it the ticket's
        default (audited as them), so a trader can pick the adaptive strategy at once. The
        other versions wait for a person."""
        for mv in shipped_register():
            self.stdout.write(f"model {mv.name}: registered as a candidate ({mv.sha256[:12]})")
        if ModelVersion.objects.filter(status=ModelVersion.APPROVED).exists():
            return
        mv = ModelVersion.objects.filter(name=DEFAULT_MODEL, status=ModelVersion.CANDIDATE).first()
        if mv is None:
            return
        model_recommend(
            user=User.objects.get(username="risk"),
            version_id=mv.pk,
            reason="demo seed: the shipped default policy (see its model card)",
        )
        model_approve(user=User.objects.get(username="risk2"), version_id=mv.pk, note="demo seed")
        d = model_default_propose(
            user=User.objects.get(username="risk"),
            version_id=mv.pk,
            reason="demo seed: the shipped default policy",
        )
        model_default_confirm(user=User.objects.get(username="risk2"), designation_id=d.pk)
        self.stdout.write(
            f"model {mv.name}: approved for the demo by risk and risk2, and the ticket's default"
        )
