from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(**_: Any) -> None:
    from oversight.roles import roles_ensure

    roles_ensure()


class OversightConfig(AppConfig):
    name = "oversight"
    verbose_name = "Oversight"

    def ready(self) -> None:
        # Groups need the permissions, which Django creates after migrating.
        post_migrate.connect(_ensure_roles, sender=self)
