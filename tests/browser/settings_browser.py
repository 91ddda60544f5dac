"""Settings for the Daphne process a browser test starts: the test settings, plus the
test's private Celery queue, so the orders its page submits reach only the test's worker
(and never a task another run left on a shared broker)."""

import os

from oversight.settings_test import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ["OVERSIGHT_BROWSER_QUEUE"]
