"""Refusals that name the problem for input no view should see, and for a wrong method.

A NUL character cannot be stored in a PostgreSQL text column: a value carrying one was a
500 (a review found it on nine forms that read raw fields). Django's forms refuse it; this
refuses it for every view, before any of them runs, naming the field. So with a field sent
twice, which a view would read as its last value. A request with a
method the view does not take gets Django's 405 with an empty body; this says which
methods it takes. A script whose session has ended was sent the login page, which it
could not read ("the server did not answer"): it is told so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render, resolve_url

from oversight.error_views import bad_request, not_found
from oversight.risk.answers import wants_json


def refusal(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """A refusal as the asker reads it: JSON for a script, the error page for a person."""
    if wants_json(request):
        return JsonResponse({"ok": False, "error": message}, status=status)
    context = {"status": status, "message": message}
    return render(request, "oversight/error.html", context, status=status)


def _repeated_field(request: HttpRequest) -> str | None:
    """No form or filter here takes a field more than once: one sent twice was read as its
    last value, silently (a trial: a participation rate of 0.05 and 0.3 traded at 0.3, and
    action=cancel&action=pause paused the order)."""
    for where in (request.GET, request.POST):
        for key, values in where.lists():
            if len(values) > 1:
                return key[:64]
    return None


def _field_matching(request: HttpRequest, pattern: re.Pattern[str]) -> tuple[str, str] | None:
    """The first field (query or body, decoded) whose name or value matches `pattern`: its
    name, and the character found."""
    for where in (request.GET, request.POST):
        for key, values in where.lists():
            for text in (key, *values):
                m = pattern.search(text)
                if m is not None:
                    return key, m.group()
    return None


class InputGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            refused = self._input_refused(request)
        except SuspiciousOperation as e:
            # Too many fields, too large a body: read here first, so answered here, in the
            # product's words. Raised on to Django, in debug mode (`run`'s) it drew its
            # technical page: a traceback and the settings (a trial).
            return bad_request(request, e)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if (
            response.status_code == 302
            and wants_json(request)
            and request.path != resolve_url("logout")  # a logout is done, not refused
            and not request.user.is_authenticated
            and urlsplit(response.get("Location", "")).path == resolve_url(settings.LOGIN_URL)
        ):
            return refusal(
                request,
                401,
                "you are logged out (here or in another tab, or the session expired): "
                "log in again; nothing was done",
            )
        if response.status_code == 405 and not response.content:
            allowed = response.get("Allow", "")
            said = refusal(
                request, 405, f"this address does not take {request.method}; it takes {allowed}"
            )
            said["Allow"] = allowed
            return said
        if response.status_code == 404 and _debug_page(response):
            # An address that names nothing (`/users/abc/active/`): in debug mode Django
            # lists every URL pattern instead of saying so.
            return not_found(request)
        return response

    @staticmethod
    def _input_refused(request: HttpRequest) -> HttpResponse | None:
        # "Nothing was changed" only where something could have been: a search changes
        # nothing anyway (a trial read it on the audit filters).
        search = request.method in ("GET", "HEAD")
        unchanged = "" if search else "; nothing was changed"
        for pattern, said in _CHARACTER_CHECKS:
            found = _field_matching(request, pattern)
            if found is not None:
                return refusal(request, 400, said(*found) + unchanged)
        field = _repeated_field(request)
        if field is not None:
            unchanged = "" if search else " (nothing was changed)"
            return refusal(
                request, 400, f"field “{field}” given more than once; send it once{unchanged}"
            )
        return None


# C0 controls but tab, line feed and carriage return; DEL and the C1 controls; and the
# bidirectional overrides and isolates, which make a stored reason read otherwise on a
# page than it is (a trial put U+202E and a bell in a cancel's reason, and both went into
# the audit trail and its CSV as sent).
_CONTROL = re.compile("[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]")


def _label(key: str) -> str:
    """A field's name as people read it ("new value", not "New_value": a trial)."""
    return key[:64].replace("_", " ")


def _nul_said(key: str, _found: str) -> str:
    return _label(key).replace("\x00", "\\x00") + ": contains a NUL character (\\x00)"


def _not_utf8_said(key: str, _found: str) -> str:
    return f"{_label(key)}: is not UTF-8 text (or has the replacement character U+FFFD)"


def _control_said(key: str, found: str) -> str:
    return f"{_label(_CONTROL.sub('', key))}: contains a control character (U+{ord(found):04X})"


# Each: what a field must not hold, and how that is said. In order: a NUL cannot be stored
# in a PostgreSQL text column; U+FFFD is what Django decodes a field that was not UTF-8
# text into (a lone surrogate, a cut sequence), and the form took "���" as a reason (a
# trial) - read on the decoded fields, so a query string, a form body and a multipart body
# alike (a review: multipart went through), and one sent on purpose is refused too.
_CHARACTER_CHECKS: tuple[tuple[re.Pattern[str], Callable[[str, str], str]], ...] = (
    (re.compile("\\x00"), _nul_said),
    (re.compile("\\ufffd"), _not_utf8_said),
    (_CONTROL, _control_said),
)


def _debug_page(response: HttpResponse) -> bool:
    """Django's technical page of debug mode, not one of ours."""
    return (
        settings.DEBUG
        and not getattr(response, "streaming", False)
        and b"<code>DEBUG = True</code>" in response.content
    )
