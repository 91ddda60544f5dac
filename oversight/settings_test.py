"""Test settings: debug on, and a Redis even on a fresh machine (the embedded one).

The test database must be visible to the Celery worker processes the integration tests
start, so SQLite's test database is a file (per test process, so concurrent runs do not
clobber each other; Django deletes it after the run), never the in-memory default. A
worker subprocess sets OVERSIGHT_TEST_DATABASE_NAME to the test database's actual name
(pytest-django's test_* name, with any xdist suffix) to connect to it directly.
"""

import os

os.environ.setdefault("OVERSIGHT_DEBUG", "1")
if not os.environ.get("REDIS_URL"):
    from oversight.embedded_redis import start

    # Exported, so Celery worker processes the tests start find the same server.
    os.environ["REDIS_URL"], _proc = start()

from oversight.settings import *  # noqa: F403
from oversight.settings import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test logins
# Each test's trail starts afresh: a head filed by one would not be in the next's. The
# tests of filed heads give each its own file.
AUDIT_ANCHORS = None

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
if os.environ.get("OVERSIGHT_TEST_DATABASE_NAME"):
    # A worker process started by a test: use the test run's database as it is.
    DATABASES["default"]["NAME"] = os.environ["OVERSIGHT_TEST_DATABASE_NAME"]

# Test processes (xdist workers, parallel CI jobs) may share one Redis: each gets its own
# channel-layer namespace, so one run's broadcasts never reach another run's blotters.
# (Not exported: xdist workers inherit the controller's environment.) A process a test
# starts can be told to join the test's namespace with OVERSIGHT_TEST_CHANNEL_PREFIX.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = os.environ.get(  # noqa: F405
    "OVERSIGHT_TEST_CHANNEL_PREFIX", f"test{os.getpid()}"
)
