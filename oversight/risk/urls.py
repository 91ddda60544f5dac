"""The risk screens and their POST endpoints, under /risk/."""

from django.urls import path

from oversight.risk import model_views, restricted_views, views

urlpatterns = [
    path("", views.console, name="risk_console"),
    path("limits/", views.limits, name="risk_limits"),
    path("limits/request/", views.limit_request, name="risk_limit_request"),
    path("limits/<int:pk>/approve/", views.limit_approve, name="risk_limit_approve"),
    path("limits/<int:pk>/reject/", views.limit_reject, name="risk_limit_reject"),
    path("overrides/", views.overrides, name="risk_overrides"),
    path("overrides/request/", views.override_request, name="risk_override_request"),
    path("overrides/<int:pk>/grant/", views.override_grant, name="risk_override_grant"),
    path("overrides/<int:pk>/reject/", views.override_reject, name="risk_override_reject"),
    path("kill/", views.kill_engage, name="risk_kill"),
    path("kill/preview/", views.kill_preview, name="risk_kill_preview"),
    path("kill/<int:pk>/reset-request/", views.kill_reset_request, name="risk_kill_reset_request"),
    path("kill/<int:pk>/reset-approve/", views.kill_reset_approve, name="risk_kill_reset_approve"),
    path("kill/<int:pk>/reset-decline/", views.kill_reset_decline, name="risk_kill_reset_decline"),
    path("exceptions/<int:pk>/ack/", views.exception_ack, name="risk_exception_ack"),
    path("exceptions/<int:pk>/assign/", views.exception_assign, name="risk_exception_assign"),
    path("exceptions/<int:pk>/comment/", views.exception_comment, name="risk_exception_comment"),
    path("models/", model_views.model_list, name="model_list"),
    path("models/<int:pk>/", model_views.model_detail, name="model_detail"),
    path("models/<int:pk>/recommend/", model_views.model_recommend, name="model_recommend"),
    path("models/<int:pk>/approve/", model_views.model_approve, name="model_approve"),
    path("models/<int:pk>/reject/", model_views.model_reject, name="model_reject"),
    path("models/<int:pk>/retire/", model_views.model_retire, name="model_retire"),
    path(
        "models/<int:pk>/default/",
        model_views.model_default_propose,
        name="model_default_propose",
    ),
    path(
        "models/defaults/<int:pk>/confirm/",
        model_views.model_default_confirm,
        name="model_default_confirm",
    ),
    path(
        "models/defaults/<int:pk>/withdraw/",
        model_views.model_default_withdraw,
        name="model_default_withdraw",
    ),
    path("restricted/", restricted_views.restricted_list, name="risk_restricted"),
    path("restricted/add/", restricted_views.restrict, name="risk_restrict"),
    path(
        "restricted/<int:pk>/lift-request/",
        restricted_views.lift_request,
        name="risk_restriction_lift_request",
    ),
    path(
        "restricted/<int:pk>/lift-approve/",
        restricted_views.lift_approve,
        name="risk_restriction_lift_approve",
    ),
    path(
        "restricted/<int:pk>/lift-decline/",
        restricted_views.lift_decline,
        name="risk_restriction_lift_decline",
    ),
    path("exceptions/<int:pk>/resolve/", views.exception_resolve, name="risk_exception_resolve"),
    path(
        "exceptions/resolve-ended/",
        views.exceptions_resolve_ended,
        name="risk_exceptions_resolve_ended",
    ),
]
