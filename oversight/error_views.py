"""Answers for a refused or missing page, for browsers and for scripts alike.

Django's own 403 page is empty when a view refuses by role (`permission_required` raises
PermissionDenied without a message); these say what happened, and answer JSON to a
request that asks for it (the blotter's and console's scripts)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from oversight.access_audit import denied_because, record_denied
from oversight.risk.answers import wants_json

NOT_ALLOWED = "your role does not allow this: ask an admin if it should"


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = ((str(exception) if exception is not None else "") or _not_allowed(request)).rstrip(
        "."
    )
    denied_because(request, message)
    message += _no_role_yet(request)
    if wants_json(request):
        return JsonResponse({"ok": False, "error": message}, status=403)
    return render(request, "oversight/error.html", {"status": 403, "message": message}, status=403)


def _not_allowed(request: HttpRequest) -> str:
    """An admin was told to "ask an admin" (a trial): they are told what their role is for."""
    from oversight.roles import ADMIN, role_of

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and role_of(user) == ADMIN:
        return (
            "your role (admin) does not allow this: admins manage users and review the audit "
            "trail; trading and risk are for traders and risk managers"
        )
    return NOT_ALLOWED


def _no_role_yet(request: HttpRequest) -> str:
    """For a login with no role: why, and what happens next (a trial's new login met a
    bare 403 whose "back to the start" led to the same 403)."""
    from oversight.models import RoleGrant
    from oversight.roles import ROLE_LABELS, role_of

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or role_of(user):
        return ""
    waiting = RoleGrant.objects.filter(user=user, status=RoleGrant.PENDING).first()
    if waiting is not None:
        return (
            f". You have no role yet: {ROLE_LABELS.get(waiting.role, waiting.role)}, asked "
            f"for by {waiting.requested_by.get_username()}, waits for another admin or a "
            "risk manager to confirm it"
        )
    return ". You have no role: ask an admin for one"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = str(exception) if exception is not None else ""
    # Django's resolver puts a dict of its own in the exception when no URL matches.
    message = detail if detail and not detail.startswith("{") else "there is no such page"
    message = message.rstrip(".")  # the page adds its own full stop
    if wants_json(request):
        return JsonResponse({"ok": False, "error": message}, status=404)
    return render(request, "oversight/error.html", {"status": 404, "message": message}, status=404)


_BAD_REQUESTS = {
    "TooManyFieldsSent": "the request has too many fields (a form here has at most {fields:,}); "
    "nothing was done",
    "TooManyFilesSent": "the request has too many files; nothing was done",
    "RequestDataTooBig": "the request is too large (a form here sends at most {size}); "
    "nothing was done",
    "DisallowedHost": "the request's host is not this site",
}


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's bare "Bad Request (400)" for a request it refused before any view (too many
    fields, too large a body, a header it does not trust): the reason, as JSON if asked."""
    # Said in the product's words: Django's own (the host it distrusts, the setting to
    # raise) are for the operator's log, not for whoever sent the request.
    message = _BAD_REQUESTS.get(type(exception).__name__, "the request could not be read").format(
        fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS or 0,
        size=f"{(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) / 2**20:g} MB",
    )
    if wants_json(request):
        return JsonResponse({"ok": False, "error": message}, status=400)
    return render(request, "oversight/error.html", {"status": 400, "message": message}, status=400)


CSRF_REFUSED = (
    "this page is out of date: you logged in or out since it was loaded (in this tab or "
    "another), so its form is no longer accepted; reload the page and try again. "
    "Nothing was done"
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's bare "CSRF verification failed" for a form or script older than the
    session: said as what it is, and what to do (a trial's Pause said "the server did not
    answer; try again", which never works). Django's reason goes to its own log only."""
    denied_because(request, f"CSRF: {reason}" if reason else "CSRF", csrf=True)
    if request.method in ("PUT", "PATCH", "DELETE"):
        # No address here takes these: a PUT was told its page was out of date (a trial),
        # where a GET of the same address is told which method it takes.
        said = f"no address here takes {request.method}; forms and controls take POST"
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # Recorded as any refused token is: the access middleware records 403s only.
            record_denied(request, f"CSRF: {reason}" if reason else "CSRF")
        if wants_json(request):
            return JsonResponse({"ok": False, "error": said}, status=405)
        return render(request, "oversight/error.html", {"status": 405, "message": said}, status=405)
    if wants_json(request):
        return JsonResponse({"ok": False, "error": CSRF_REFUSED}, status=403)
    return render(
        request, "oversight/error.html", {"status": 403, "message": CSRF_REFUSED}, status=403
    )
