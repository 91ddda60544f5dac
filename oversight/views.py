"""The admin and compliance screens: the audit trail (review, verify, export) and users.
Thin: reads through selectors, writes through services and audit_record."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from oversight.audit import audit_record, request_id_of
from oversight.audit_chain import utc_iso
from oversight.audit_check import audit_check
from oversight.forms import (
    AuditFilterForm,
    PasswordChangeForm,
    PasswordResetForm,
    ThrottledLoginForm,
    UserActiveForm,
    UserCreateForm,
    UserRoleForm,
)
from oversight.login_throttle import (
    device_cookie_renewed,
    device_cookie_set,
    locked_rows,
    login_succeeded,
)
from oversight.models import AuditRecord, PasswordChangeDue, RoleGrant
from oversight.password_due import password_due
from oversight.risk.answers import KEPT, export_refused, kept_form
from oversight.risk.notify import session_sockets_close
from oversight.risk.pretrade import desk_of
from oversight.roles import (
    MANAGE_RISK,
    MANAGE_USERS,
    ROLE_LABELS,
    TRADE,
    TRADER,
    VIEW_ALL_ORDERS,
    VIEW_AUDIT,
    role_of,
)
from oversight.selectors import (
    audit_filter_choices,
    audit_head_seq,
    audit_last_verification,
    audit_records,
    orders_open_of,
    users_with_roles,
)
from oversight.services import (
    may_confirm_roles,
    risk_managers_active,
    role_grant_confirm,
    role_grant_decline,
    role_grants_expire,
    user_create,
    user_deactivate,
    user_desk_set,
    user_login_unlock,
    user_password_change,
    user_password_reset,
    user_reactivate,
    user_role_set,
)

AUDIT_PAGE_ROWS = 100
FILTER_KEYS = ("user", "action", "object_type", "object_id", "since", "until")
CSV_COLUMNS = (
    "seq",
    "id",
    "at_utc",
    "actor_id",
    "actor_username",
    "actor_role",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "request_id",
    "chain_version",
    "client_addr",
    "prev_hash",
    "hash",
)
# Free-text cells a spreadsheet could read as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class OversightLoginView(LoginView):
    """After login, each role lands on its own first screen (admins cannot see orders)."""

    template_name = "login.html"
    authentication_form = ThrottledLoginForm

    def form_valid(self, form: Any) -> HttpResponse:
        # Another user logging in on this browser ends the session that was here (Django
        # flushes it) without a logout: its websockets, which the logout would close,
        # went on streaming the first user's orders to the second (a review).
        before = self.request.user
        if before.is_authenticated and before.pk != form.get_user().pk:
            session_sockets_close(None, self.request, before)
        response = super().form_valid(form)
        attempt = form.attempt
        if attempt is not None:
            login_succeeded(attempt)
            # From now on this browser's tries at the name are counted apart from strangers'.
            device_cookie_set(self.request, response, form.get_user(), attempt.device)
        return response

    def get_default_redirect_url(self) -> str:
        user = self.request.user
        if user.has_perm(TRADE) or user.has_perm(VIEW_ALL_ORDERS):
            return reverse("blotter")
        if user.has_perm(MANAGE_USERS):
            return reverse("user_list")
        if user.has_perm(VIEW_AUDIT):
            return reverse("audit_list")
        return super().get_default_redirect_url()


# -- the audit trail ------------------------------------------------------------------------


def _filter_query(data: QueryDict) -> str:
    """The filter part of a query string, re-encoded: nothing else is carried along."""
    return urlencode({k: data[k] for k in FILTER_KEYS if data.get(k)})


def _json_text(value: Any) -> str:
    return "" if value is None else json.dumps(_rounded(value), sort_keys=True, ensure_ascii=False)


def _json_exact(value: Any) -> str:
    """As recorded, every digit: for the export."""
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _rounded(value: Any) -> Any:
    """Floats to six decimals, as the page shows them (59.61666666666667 read as noise: a
    trial); the record itself, and its export, keep every digit."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _changes(before: Any, after: Any) -> list[str]:
    """A one-line summary: the keys that changed, or what was recorded."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        out = []
        for k in keys:
            if k in before and k in after and before[k] == after[k]:
                continue
            was, now = _shown(before, k), _shown(after, k)
            if was == now:  # equal to six decimals: every digit, or it reads "0.1 → 0.1"
                was, now = _shown(before, k, exact=True), _shown(after, k, exact=True)
            out.append(f"{k}: {was} → {now}")
        return out
    if before is None and isinstance(after, dict):
        return [f"{k}={_json_text(v) or 'null'}" for k, v in sorted(after.items())]
    if before is None and after is None:
        return []
    return [f"{_json_text(before) or '—'} → {_json_text(after) or '—'}"]


def _shown(values: dict[str, Any], key: str, *, exact: bool = False) -> str:
    text = _json_exact if exact else _json_text
    return (text(values[key]) or "null") if key in values else "—"


def _audit_row(r: AuditRecord) -> dict[str, Any]:
    return {
        "r": r,
        "at_ms": utc_iso(r.at)[:-4].replace("T", " "),
        "at_iso": utc_iso(r.at),
        "who": r.actor_username or r.actor_role or "—",
        "changes": _changes(r.before, r.after),
        "before": _json_text(r.before),
        "after": _json_text(r.after),
    }


def _page_number(asked: str) -> int:
    """The page asked for, as get_page takes it: 1 for what is not a number written in
    0-9 ("²" is a digit to str.isdigit, not to int: a 500), or before the first; past the
    last for a number too long to read (int refuses 4,300 digits: a 500)."""
    text = asked.strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        return 1
    if text.startswith("-"):
        return 1  # before the first
    digits = digits.lstrip("0") or "0"  # page=0000000000005 is page 5 (a review)
    return 10**12 if len(digits) > 12 else max(1, int(digits))


def _audit_page(request: HttpRequest, form: AuditFilterForm, *, status: int = 200) -> HttpResponse:
    page = None
    asked = request.GET.get("page", "")
    if form.is_valid():
        records = audit_records(filters=form.filters())
        page = Paginator(records, AUDIT_PAGE_ROWS).get_page(_page_number(asked))
        if asked and str(page.number) != asked.strip().lstrip("0"):
            # get_page shows the last (or first) page for one that is not there: say so,
            # rather than let page 99999 pass for the trail's end.
            messages.info(
                request,
                f"there is no page {asked[:20]!r}; showing page {page.number} of "
                f"{page.paginator.num_pages}",
            )
    return render(
        request,
        "oversight/audit.html",
        {
            "form": form,
            "valid": page is not None,
            "page": page,
            "rows": [_audit_row(r) for r in page] if page is not None else [],
            "query": _filter_query(request.GET),
            "choices": audit_filter_choices(),
            "last_verification": audit_last_verification(),
        },
        status=status,
    )


@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    # A filter that does not parse is the person's to fix: say so, list nothing (never
    # an unfiltered list that looks like the answer).
    return _audit_page(request, form, status=200 if form.is_valid() else 400)


@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    """Recompute the whole chain; the result is shown, and recorded with who asked."""
    check = audit_check(actor=request.user, request_id=request_id_of(request))
    report, filed = check.report, check.filed
    if check.filed_problem or check.guard_problem:
        messages.error(request, f"Chain verification failed: {check.problem}.")
    elif report.ok:
        messages.success(
            request,
            f"Chain verified: {report.count} records, numbered 1 to {report.count} with no gap, "
            "each linked to the one before and each matching its hash. Head (record "
            f"{report.count}): {report.head}. "
            + (
                f"Filed outside the database in {filed}: the next verification checks the "
                "trail still holds it, which is what sees a trail cut short or rewritten by "
                "someone able to drop the database's triggers; keep a copy where they cannot "
                "write."
                if filed
                else "File it outside the database: later, "
                f"`manage.py audit_verify --expect {report.count}:<hash>` checks that record "
                f"{report.count} still has it, the only check that sees a rewrite by someone "
                "able to drop the database's triggers."
            ),
        )
    else:
        messages.error(request, f"Chain verification failed. {report.summary()}")
    query = _filter_query(QueryDict(request.POST.get("query", "")))
    # Back to the filtered list, if its filter reads: a bad one answered "Chain verified"
    # on a 400 page that listed nothing (a trial).
    if query and not AuditFilterForm(QueryDict(query)).is_valid():
        query = ""
    return redirect(reverse("audit_list") + (f"?{query}" if query else ""))


class _Echo:
    """csv.writer's file: hands each row back instead of buffering the whole export."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def _csv_lines(records: Iterable[AuditRecord]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for r in records:
        yield writer.writerow(
            [
                r.seq,
                r.pk,
                utc_iso(r.at),
                r.actor_id if r.actor_id is not None else "",
                _cell(r.actor_username),
                _cell(r.actor_role),
                _cell(r.action),
                _cell(r.object_type),
                _cell(r.object_id),
                _cell(_json_exact(r.before)),
                _cell(_json_exact(r.after)),
                _cell(r.reason),
                _cell(r.request_id),
                r.chain_version if r.chain_version is not None else "",
                _cell(r.client_addr or ""),
                r.prev_hash,
                r.hash,
            ]
        )


@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
@require_GET
def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered records as CSV, in chain order, every column including the hashes."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return export_refused(request, form, lambda: _audit_page(request, form, status=400))
    filters = form.filters()
    # Bounded by the head now, so the export's own record is not in it.
    records = audit_records(filters=filters).filter(seq__lte=audit_head_seq()).order_by("seq")
    audit_record(
        actor=request.user,
        action="audit.export",
        after={"filters": filters.as_query(), "records": records.count()},
        request_id=request_id_of(request),
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    resp = StreamingHttpResponse(
        _csv_lines(records.iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8"
    )
    resp["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return resp


# -- users --------------------------------------------------------------------------------


def _users_page(request: HttpRequest, form: UserCreateForm, *, status: int = 200) -> HttpResponse:
    from oversight.risk.models import Desk, DeskMembership

    desks = dict(DeskMembership.objects.values_list("user_id", "desk__name"))
    locks: dict[str, list[str]] = {}
    for name, until, held, device in locked_rows().values_list(
        "username", "locked_until", "held", "device"
    ):
        when = "until unlocked" if held else f"until {until:%H:%M:%S} UTC"
        where = "on a browser of theirs" if device else "for browsers they have not used"
        locks.setdefault(name, []).append(f"{when} {where}")
    # A refused desk change comes back as typed, on its row (a trial's was lost).
    kept = kept_form(request, reverse("user_list"))
    kept_for = str(kept.get("user", ""))
    pending = {g.user_id: g for g in RoleGrant.objects.filter(status=RoleGrant.PENDING)}
    rows = [
        {
            "u": row.user,
            "role": row.role,
            "role_label": ROLE_LABELS.get(row.role, ""),
            "pending": ROLE_LABELS.get(pending[row.user.pk].role, "")
            if row.user.pk in pending
            else "",
            "is_me": row.user.pk == request.user.pk,
            "desk": kept.get("desk", "")
            if kept_for == str(row.user.pk)
            else desks.get(row.user.pk, ""),
            "desk_reason": kept.get("reason", "") if kept_for == str(row.user.pk) else "",
            # A trader on no desk escapes every desk limit and desk kill switch (a trial).
            "no_desk": TRADER in (row.role, getattr(pending.get(row.user.pk), "role", ""))
            and not desks.get(row.user.pk),
            "locked": "; ".join(locks.get(row.user.get_username(), [])),
            # As user_login_unlock allows: not one's own, a superuser's only by one.
            "can_unlock": row.user.get_username() in locks
            and row.user.pk != request.user.pk
            and (not row.user.is_superuser or request.user.is_superuser),
        }
        for row in users_with_roles()
    ]
    return render(
        request,
        "oversight/users.html",
        {
            "rows": rows,
            "form": form,
            "role_choices": form.fields["role"].choices,
            "desk_names": list(Desk.objects.values_list("name", flat=True)),
            # Four eyes needs two: said where the admin who could change it reads.
            "risk_managers": risk_managers_active(),
        },
        status=status,
    )


@login_required
@permission_required(MANAGE_USERS, raise_exception=True)
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    return _users_page(request, UserCreateForm())


@login_required
@permission_required(MANAGE_USERS, raise_exception=True)
@require_POST
def user_new(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            user = user_create(
                actor=request.user,
                username=d["username"],
                password=d["password"],
                role=d["role"],
                reason=d["reason"],
                request_id=request_id_of(request),
            )
        except ValidationError as e:
            for field, msgs in e.message_dict.items():
                for m in msgs:
                    form.add_error(field if field in form.fields else None, m)
        else:
            messages.success(
                request,
                f"Created {user.get_username()}; the role of {ROLE_LABELS[d['role']]} waits "
                "for another admin or a risk manager to confirm it (Roles)",
            )
            return redirect("user_list")
    return _users_page(request, form, status=400)


def _refused(request: HttpRequest, e: ValidationError, user: Any = None) -> None:
    """A service's refusal, field by field; on the users page, whose row it was (a trial
    could not tell which of many users "reason: say why" was about)."""
    name = user.get_username() if user is not None else ""

    def say(m: str) -> None:
        messages.error(request, f"{name}: {m}" if name and not m.startswith(name) else m)

    if hasattr(e, "error_dict"):  # a field's message says which field
        for field, msgs in e.message_dict.items():
            for m in msgs:
                say(m if field == "__all__" else f"{field}: {m}")
        return
    for m in e.messages:
        say(m)


def _form_refused(request: HttpRequest, user: Any, form: Any) -> None:
    """What was wrong, field by field (not a guess at which field it was)."""
    for field, msgs in form.errors.items():
        for m in msgs:
            messages.error(request, f"{user.get_username()}: {field}: {m}")


@login_required
@permission_required(MANAGE_USERS, raise_exception=True)
@require_POST
def user_role(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=pk)
    form = UserRoleForm(request.POST)
    if not form.is_valid():
        _form_refused(request, user, form)
        return redirect("user_list")
    had_role = bool(role_of(user))
    try:
        user_role_set(
            actor=request.user,
            user=user,
            role=form.cleaned_data["role"],
            reason=form.cleaned_data["reason"],
            request_id=request_id_of(request),
        )
    except ValidationError as e:
        _refused(request, e, user)
    else:
        label = ROLE_LABELS[form.cleaned_data["role"]]
        # (One with no role has none to lose: a trial read "taken away" of nothing.)
        lost = f"{user.get_username()}'s role is taken away now; " if had_role else ""
        messages.success(
            request,
            f"{lost}{label} waits for another admin or a risk manager to confirm it "
            f"for {user.get_username()} (Roles)",
        )
        if not user.has_perm(TRADE):
            # Only an order's trader controls it: one who no longer trades cannot pause
            # or cancel what they started (a trial), and the orders go on working.
            _still_working(request, user, "cannot control them now")
    return redirect("user_list")


@login_required
@require_GET
def role_grants(request: HttpRequest) -> HttpResponse:
    """Roles asked for by an admin, for a second person (another admin or a risk manager)
    to confirm or decline; and the last decided."""
    if not may_confirm_roles(request.user):
        raise PermissionDenied("admins and risk managers only")
    role_grants_expire()  # what waits here still can be confirmed
    grants = RoleGrant.objects.select_related("user", "requested_by", "decided_by")
    pending = list(grants.filter(status=RoleGrant.PENDING).order_by("requested_at"))
    decided = list(grants.exclude(status=RoleGrant.PENDING)[:50])
    due = set(
        PasswordChangeDue.objects.filter(user_id__in=[g.user_id for g in pending]).values_list(
            "user_id", flat=True
        )
    )
    from oversight.risk.models import DeskMembership

    # The desk a trader's orders will count on: one on no desk is outside every desk's
    # limits and kill switches, which the one confirming should know (a trial confirmed
    # a new trader on none, whose order then passed the desk's tighter limit).
    desks = dict(
        DeskMembership.objects.filter(user_id__in=[g.user_id for g in pending]).values_list(
            "user_id", "desk__name"
        )
    )
    for g in pending:
        g.password_due = g.user_id in due  # type: ignore[attr-defined]
        g.desk = desks.get(g.user_id, "")  # type: ignore[attr-defined]
    for g in (*pending, *decided):
        g.role_label = ROLE_LABELS.get(g.role, g.role)  # type: ignore[attr-defined]
        # A withdrawal is a decline by nobody: said as what it was (a trial read "declined").
        g.shown_status = (  # type: ignore[attr-defined]
            "withdrawn"
            if g.status == RoleGrant.DECLINED and g.decided_by_id is None
            else g.status.lower()
        )
    return render(request, "oversight/role_grants.html", {"pending": pending, "decided": decided})


@login_required
@require_POST
def role_grant_decide(request: HttpRequest, pk: int) -> HttpResponse:
    if not may_confirm_roles(request.user):
        raise PermissionDenied("admins and risk managers only")
    grant = get_object_or_404(RoleGrant.objects.select_related("user"), pk=pk)
    decision = request.POST.get("decision", "")
    note = request.POST.get("note", "")
    try:
        if decision == "confirm":
            role_grant_confirm(
                user=request.user, grant_id=pk, note=note, request_id=request_id_of(request)
            )
            done = f"{grant.user.get_username()} is now {_a(ROLE_LABELS[grant.role])}"
        elif decision == "decline":
            g = role_grant_decline(
                user=request.user, grant_id=pk, note=note, request_id=request_id_of(request)
            )
            verb = "withdrawn" if g.decided_by_id is None else "declined"
            done = f"The role grant for {grant.user.get_username()} is {verb}"
        else:
            raise ValidationError("decision: confirm or decline")
    except ValidationError as e:
        _refused(request, e, grant.user)
    else:
        messages.success(request, done)
    return redirect("role_grants")


def _a(label: str) -> str:
    return f"{'an' if label[0] in 'aeiou' else 'a'} {label}"


def _still_working(request: HttpRequest, user: Any, why: str) -> None:
    from oversight.risk.pretrade import OPEN

    # Blocked ones too: a kill switch on the trader cancels them as well (a trial).
    shown = [*OPEN, "BLOCKED"]  # the order they are said in
    counts = dict(orders_open_of(user).values_list("status").annotate(n=Count("pk")).order_by())
    total = sum(counts.values())
    if total:
        # Said as they are: "4 still working" read 1 working and 3 suspended (a trial).
        words = {"NEW": "waiting", "PENDING_CANCEL": "cancelling"}
        parts = ", ".join(
            f"{n} {words.get(s, s.lower())}"
            for s, n in sorted(counts.items(), key=lambda i: shown.index(i[0]))
        )
        messages.warning(
            request,
            f"{user.get_username()} has {total} open order{'s' if total != 1 else ''} ({parts}) "
            f"and {why}: a risk manager can stop them with a kill switch on trader "
            f"{user.get_username()}",
        )


@login_required
@permission_required(MANAGE_USERS, raise_exception=True)
@require_POST
def user_active(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=pk)
    form = UserActiveForm(request.POST)
    if not form.is_valid():
        _form_refused(request, user, form)
        return redirect("user_list")
    active = bool(form.cleaned_data["active"])
    change = user_reactivate if active else user_deactivate
    try:
        change(
            actor=request.user,
            user=user,
            reason=form.cleaned_data["reason"],
            request_id=request_id_of(request),
        )
    except ValidationError as e:
        _refused(request, e, user)
    else:
        verb = "reactivated" if active else "deactivated"
        messages.success(request, f"{user.get_username()} {verb}{_on_hold(user) if active else ''}")
        if not active:
            # Deactivating a login stops the person, not the algorithms they started.
            _still_working(request, user, "no login to control them")
    return redirect("user_list")


@login_required
@permission_required(MANAGE_USERS, raise_exception=True)
@require_POST
def user_desk(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=pk)
    desk = request.POST.get("desk", "")  # too long is refused by name, not cut
    try:
        user = user_desk_set(
            actor=request.user,
            user=user,
            desk=desk,
            reason=request.POST.get("reason", ""),
            request_id=request_id_of(request),
        )
    except ValidationError as e:
        _refused(request, e, user)
        request.session[KEPT + reverse("user_list")] = {
            "user": str(pk),
            "desk": desk[:200],
            "reason": request.POST.get("reason", "")[:5000],
        }
    else:
        where = f"on desk {desk_of(user.pk)}" if desk.strip() else "on no desk"
        messages.success(request, f"{user.get_username()} is now {where}")
    return redirect("user_list")


@login_required
@permission_required(MANAGE_USERS, raise_exception=True)
@require_POST
def user_password(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin resets another user's password. The password is never kept for the form
    to come back with, only said to be refused."""
    user = get_object_or_404(get_user_model(), pk=pk)
    form = PasswordResetForm(request.POST)
    if not form.is_valid():
        _form_refused(request, user, form)
        return redirect("user_list")
    try:
        user_password_reset(
            actor=request.user,
            user=user,
            password=form.cleaned_data["password"],
            reason=form.cleaned_data["reason"],
            request_id=request_id_of(request),
        )
    except ValidationError as e:
        _refused(request, e, user)
    else:
        messages.success(
            request,
            f"{user.get_username()}'s password is reset: their sessions have ended; give "
            f"them the new password by a channel of your firm's{_on_hold(user)}",
        )
    return redirect("user_list")


def _on_hold(user: Any) -> str:
    """What a password reset or a reactivation did to the login's role, for the message."""
    grant = RoleGrant.objects.filter(user=user, status=RoleGrant.PENDING).first()
    if grant is None:
        return ""
    return (
        f". Their role ({ROLE_LABELS.get(grant.role, grant.role)}) is on hold until a second "
        f"person confirms it (role grant {grant.pk}, on the Roles page)"
    )


@login_required
@permission_required(MANAGE_USERS, raise_exception=True)
@require_POST
def user_unlock(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin ends the lock that failed logins put on a user's name."""
    user = get_object_or_404(get_user_model(), pk=pk)
    try:
        user_login_unlock(
            actor=request.user,
            user=user,
            reason=request.POST.get("reason", ""),
            request_id=request_id_of(request),
        )
    except ValidationError as e:
        _refused(request, e, user)
    else:
        messages.success(request, f"{user.get_username()} can log in again")
    return redirect("user_list")


PASSWORD_TRIES = "password-change-tries"
PASSWORD_TRIES_MAX = 5


@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    """Every user's own password: the current one, and the new one twice."""
    form = PasswordChangeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            try:
                user = user_password_change(
                    user=request.user,
                    old_password=d["old_password"],
                    new_password=d["new_password"],
                    request_id=request_id_of(request),
                )
            except ValidationError as e:
                if "old_password" in e.message_dict:
                    # Guessing from an open session ends it after a few tries.
                    tries = request.session.get(PASSWORD_TRIES, 0) + 1
                    request.session[PASSWORD_TRIES] = tries
                    if tries >= PASSWORD_TRIES_MAX:
                        logout(request)
                        messages.error(
                            request,
                            f"{tries} wrong current passwords: you are logged out; log in again",
                        )
                        return redirect("login")
                for field, msgs in e.message_dict.items():
                    for m in msgs:
                        form.add_error(field if field in form.fields else None, m)
            else:
                request.session.pop(PASSWORD_TRIES, None)
                update_session_auth_hash(request, user)  # this session goes on
                messages.success(
                    request, "Your password is changed; your other sessions have ended"
                )
                response = redirect("password_change")
                device_cookie_renewed(request, response, user)
                return response
        return render(
            request,
            "oversight/password.html",
            {"form": form, "due": password_due(request.user)},
            status=400,
        )
    return render(
        request, "oversight/password.html", {"form": form, "due": password_due(request.user)}
    )


@require_GET
def session_status(request: HttpRequest) -> JsonResponse:
    """Whether this browser's session still holds, for a live page whose socket was
    refused (a refusal reaches the page as a bare close, like a server that is down).
    Light on purpose: the pages asked for themselves, and rendered them, at every retry.
    A session whose password change is due is answered 403 by its middleware."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "logged out"}, status=401)
    # `need`: what the asking page is for; a role that no longer allows it ends it too.
    need = request.GET.get("need", "")
    allowed = {
        "watch": lambda u: u.has_perm(TRADE) or u.has_perm(VIEW_ALL_ORDERS),
        "risk": lambda u: u.has_perm(MANAGE_RISK),
    }
    if need and need not in allowed:
        return JsonResponse({"error": f"need: one of {', '.join(allowed)}"}, status=400)
    if need and not allowed[need](request.user):
        return JsonResponse({"error": "your role no longer allows this page"}, status=403)
    return JsonResponse({"user": request.user.get_username()})
