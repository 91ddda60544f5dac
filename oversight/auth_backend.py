"""Django's model backend, which also notes when a refused login had the right password for
a deactivated account: someone who has left is trying to get back in, which a risk manager
or an admin should read as that, not as one more mistyped password (Django cleanses the
password before its failure signal, so the signal alone cannot tell)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

DEACTIVATED_RIGHT_PASSWORD = "oversight_deactivated_right_password"


class AuditedModelBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and request is not None and username and password:
            model = get_user_model()
            found = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
            # Checked only for a deactivated login: an active one's failure was a wrong
            # password, already checked once.
            if found is not None and not found.is_active and found.check_password(password):
                setattr(request, DEACTIVATED_RIGHT_PASSWORD, True)
        return user
