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
        """ModelBackend.authenticate, step for step: one password hash whatever the name
        (an unknown one, an active one, a deactivated one), so the time taken does not
        tell which names are deactivated accounts (a review: checking again after the
        parent's refusal hashed twice for them)."""
        model = get_user_model()
        if username is None:
            username = kwargs.get(model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = model._default_manager.get_by_natural_key(username)
        except model.DoesNotExist:
            model().set_password(password)  # as Django: the same work as a real check
            return None
        if not user.check_password(password):
            return None
        if self.user_can_authenticate(user):
            return user
        if request is not None:
            setattr(request, DEACTIVATED_RIGHT_PASSWORD, True)
        return None
