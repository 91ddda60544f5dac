from django.contrib.auth import views as auth_views
from django.urls import include, path

from oversight import views

urlpatterns = [
    path("login/", views.OversightLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit_list, name="audit_list"),
    path("audit/verify/", views.audit_verify, name="audit_verify"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
    path("users/", views.user_list, name="user_list"),
    path("users/new/", views.user_new, name="user_new"),
    path("roles/", views.role_grants, name="role_grants"),
    path("roles/<int:pk>/decide/", views.role_grant_decide, name="role_grant_decide"),
    path("users/<int:pk>/role/", views.user_role, name="user_role"),
    path("users/<int:pk>/active/", views.user_active, name="user_active"),
    path("users/<int:pk>/desk/", views.user_desk, name="user_desk"),
    path("users/<int:pk>/password/", views.user_password, name="user_password"),
    path("users/<int:pk>/unlock/", views.user_unlock, name="user_unlock"),
    path("password/", views.password_change, name="password_change"),
    path("session/", views.session_status, name="session_status"),
    path("risk/", include("oversight.risk.urls")),
    path("tca/", include("tca.urls")),
    path("", include("execution.urls")),
]

handler400 = "oversight.error_views.bad_request"
handler403 = "oversight.error_views.forbidden"
handler404 = "oversight.error_views.not_found"
