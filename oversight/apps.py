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
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from oversight import audit

        # Groups need the permissions, which Django creates after migrating.
        post_migrate.connect(_ensure_roles, sender=self)
        user_logged_in.connect(audit.on_login, dispatch_uid="audit-login")
        user_logged_out.connect(audit.on_logout, dispatch_uid="audit-logout")
        from oversight.risk.notify import session_sockets_close

        user_logged_out.connect(session_sockets_close, dispatch_uid="logout-sockets")
        user_login_failed.connect(audit.on_login_failed, dispatch_uid="audit-login-failed")
