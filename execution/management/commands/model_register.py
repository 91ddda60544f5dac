"""manage.py model_register: register a policy file as a CANDIDATE, for a person to judge.

The file must load as a policy of this product's format; its model card is read from the
`.card.json` beside it. The registration is audited under the risk manager named by --by.
Nothing trades on it until one risk manager recommends it and a second approves it
(docs/MODELS.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from execution.model_registry import model_register
from oversight.management.ready import require_migrated

# The service's fields as this command names them (a fuzz: a bad name was refused
# without saying it was --name's).
_OPTION = {"name": "--name", "note": "--note", "file": "FILE", "card": "the model card"}


def _said(e: ValidationError) -> str:
    if not hasattr(e, "error_dict"):
        return "; ".join(e.messages)
    return "; ".join(
        f"{_OPTION.get(field, field)}: {m}" for field, ms in e.message_dict.items() for m in ms
    )


class Command(BaseCommand):
    help = "Register an ONNX policy file as a candidate model version (audited)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="the ONNX policy file")
        parser.add_argument("--by", required=True, help="the registering risk manager's username")
        parser.add_argument("--note", required=True, help="why it is registered")
        parser.add_argument(
            "--name", default="", help="the version's name (default: the file's stem)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        who = get_user_model().objects.filter(username__iexact=options["by"]).first()
        if who is None or not who.is_active:
            raise CommandError(f"--by: there is no active user {options['by'][:40]!r}")
        try:
            mv = model_register(
                path=options["file"], name=options["name"], note=options["note"], user=who
            )
        except ValidationError as e:
            raise CommandError(_said(e)) from None
        self.stdout.write(
            f"registered {mv.name} as a candidate (sha256 {mv.sha256[:12]}…): a risk manager "
            "recommends it and a second approves it before it may trade"
        )
