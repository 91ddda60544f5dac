"""A login whose password an admin reset may do nothing but choose its own (and log out):
the admin who typed the reset password must not go on knowing a working one (a trial)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from oversight.input_guard import refusal
from oversight.models import PasswordChangeDue
from oversight.risk.answers import wants_json

SAY = "an admin set your password: choose your own before anything else"


def password_due(user: object) -> bool:
    """The login must choose its own password first (pages and sockets alike)."""
    pk = getattr(user, "pk", None)
    return pk is not None and PasswordChangeDue.objects.filter(user_id=pk).exists()


class PasswordChangeDueMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and request.path not in (reverse("password_change"), reverse("logout"))
            and not request.path.startswith("/" + settings.STATIC_URL.lstrip("/"))  # its styles
            and password_due(user)
        ):
            if wants_json(request):
                return refusal(request, 403, f"{SAY} (the Password page); nothing was done")
            return redirect("password_change")  # which says why
        return self.get_response(request)
