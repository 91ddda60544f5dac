"""A management command run on a database nobody has migrated says what to run, instead of
Django's traceback ("no such table: auth_user", a trial)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["audit_verify"],
        ["login_unlock", "trader", "--reason", "x"],
        [
            "model_register",
            "execution/learning/models/policy-v14.onnx",
            "--by",
            "risk",
            "--note",
            "x",
        ],
        ["seed_demo"],
    ],
)
def test_a_command_on_an_unmigrated_database_says_to_migrate(tmp_path: Path, argv) -> None:
    env = {
        **os.environ,
        "OVERSIGHT_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
        "OVERSIGHT_AUDIT_ANCHORS": "off",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    # A file that is not there is not made by asking (a trial found an empty one left).
    assert last.startswith(f"CommandError: the database {tmp_path / 'new.sqlite3'} does not ")
    assert not (tmp_path / "new.sqlite3").exists()
    assert "run `manage.py migrate`, or `python3 scripts/dev.py run` once, first" in done.stderr


def test_a_command_on_an_empty_database_file_says_to_migrate(tmp_path: Path) -> None:
    (tmp_path / "new.sqlite3").touch()
    env = {
        **os.environ,
        "OVERSIGHT_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
        "OVERSIGHT_AUDIT_ANCHORS": "off",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("CommandError: the database is not set up ("), done.stderr
