"""How the risk and model screens answer a POST: a form post is redirected back with a
message (success, or the service's refusal in its own words); a request that asks for
JSON (the blotter's and console's scripts) gets {"ok": ..., "message"|"error"}. A request
that cannot be understood is a 400, an unknown object a 404, each with a message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme


class Bad(Exception):
    """A request the endpoint cannot act on: answered with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# Views that answer nothing but JSON: their refusals (a NUL character, a wrong method, a
# lost session, a 403) are JSON whatever the request's Accept (a review: the estimate
# answered a NUL character with the HTML error page).
JSON_ONLY_VIEWS = frozenset({"order_estimate", "session_status"})


def wants_json(request: HttpRequest) -> bool:
    if "application/json" in request.headers.get("Accept", ""):
        return True
    match = getattr(request, "resolver_match", None)
    if match is None:  # before the view is found (middleware, error handlers)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
    return match.url_name in JSON_ONLY_VIEWS


def back_url(request: HttpRequest, default: str) -> str:
    nxt = request.POST.get("next", "") or request.GET.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(
        nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return nxt
    return default


def messages_of(e: ValidationError) -> list[str]:
    if hasattr(e, "error_dict"):
        return [
            m if key == "__all__" else f"{key.replace('_', ' ')}: {m}"
            for key, msgs in e.message_dict.items()
            for m in msgs
        ]
    return list(e.messages)


def fail(request: HttpRequest, status: int, message: str, back: str) -> HttpResponse:
    from oversight.access_audit import denied_because

    denied_because(request, message)
    if wants_json(request):
        return JsonResponse({"ok": False, "error": message}, status=status)
    return render(
        request,
        "risk/error.html",
        {"message": message, "back": back, "status": status},
        status=status,
    )


KEPT = "kept-form:"  # the session key, per page, of a refused form's typed values


def kept_form(request: HttpRequest, page: str) -> dict[str, str]:
    """What was typed in `page`'s form when it was last refused (once), else {}."""
    kept = request.session.pop(KEPT + page, None)
    return kept if isinstance(kept, dict) else {}


def act(
    request: HttpRequest,
    default_back: str,
    action: Callable[[], str],
    keep: tuple[str, ...] = (),
) -> HttpResponse:
    """Run one service call; answer with its message, or say why it did not happen. A
    refused form's fields named in `keep` are handed back to its page, filled in as they
    were typed (a trial's limit request lost its scope, value and reason to one typo)."""
    back = back_url(request, default_back)
    try:
        text = action()
    except (Bad, ValidationError) as e:
        if keep and not wants_json(request):
            request.session[KEPT + urlsplit(back).path] = {
                k: request.POST.get(k, "")[:5000] for k in keep
            }
        if isinstance(e, Bad):
            return fail(request, e.status, str(e), back)
        lines = messages_of(e)
        if wants_json(request):
            return JsonResponse({"ok": False, "error": " ".join(lines)}, status=400)
        for line in lines:
            messages.error(request, line)
        return redirect(back)
    except PermissionDenied as e:
        return fail(request, 403, str(e) or "your role does not allow this", back)
    except ObjectDoesNotExist as e:
        return fail(request, 404, str(e) or "that no longer exists", back)
    if wants_json(request):
        return JsonResponse({"ok": True, "message": text})
    messages.success(request, text)
    return redirect(back)


def field(request: HttpRequest, name: str, label: str = "") -> str:
    if name not in request.POST:
        raise Bad(400, f"the form has no {label or name.replace('_', ' ')} field")
    return request.POST[name]


def export_refused(
    request: HttpRequest, form: Any, page: Callable[[], HttpResponse]
) -> HttpResponse:
    """An export's bad filter: the page with the form's messages for a browser, one line per
    problem in plain text for a script (a trial's CSV client read 88 lines of HTML)."""
    if "text/html" in request.headers.get("Accept", ""):
        return page()
    lines = [
        f"{field}: {message}" if field != "__all__" else message
        for field, messages_ in form.errors.items()
        for message in messages_
    ]
    return HttpResponse(
        "\n".join(lines) + "\n", status=400, content_type="text/plain; charset=utf-8"
    )
