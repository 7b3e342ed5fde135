"""Settings: the shipped cron defaults mean what they say; bad settings stop the CLI in one line."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procrastinate
import procrastinate.testing
import pytest
from croniter import croniter
from pydantic import ValidationError

from meritum_api.domains.notifications.outbox import SEND_EMAIL
from meritum_api.settings import Settings
from meritum_api.tasks import register_all

#: Each cron setting and the interval its default promises.
CRON_DEFAULTS = {
    "stalled_check_cron": timedelta(seconds=5),
    "cleanup_cron": timedelta(minutes=5),
    "session_purge_cron": timedelta(minutes=15),
    "expiring_check_cron": timedelta(minutes=15),
    "subscription_schedule_cron": timedelta(minutes=1),
}


@pytest.mark.parametrize(("field", "interval"), CRON_DEFAULTS.items())
def test_cron_defaults_fire_at_their_documented_interval(field: str, interval: timedelta) -> None:
    expression = getattr(Settings(), field)
    # Read as procrastinate reads it (croniter, seconds as the sixth field),
    # from an instant in no particular minute, over more than an hour.
    start = datetime(2026, 12, 1, 10, 1, 7, tzinfo=UTC)
    schedule = croniter(expression, start)
    fires = [schedule.get_next(datetime) for _ in range(int(timedelta(hours=2) / interval))]
    gaps = {later - earlier for earlier, later in itertools.pairwise(fires)}
    assert gaps == {interval}
    assert fires[0] - start <= interval


def test_every_cron_setting_is_covered() -> None:
    crons = {name for name in Settings.model_fields if name.endswith("_cron")}
    assert crons == set(CRON_DEFAULTS)


@pytest.mark.parametrize("bad", ["*/5 * * *", "every minute", "* * * * * * * *", "61 * * * *"])
def test_malformed_cron_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="cron expression"):
        Settings(stalled_check_cron=bad)


BAD_ENVIRONMENTS = {
    "empty database url": ({"DATABASE_URL": ""}, "DATABASE_URL is set but empty"),
    "malformed database url": ({"DATABASE_URL": "not a url"}, "DATABASE_URL must look like"),
    "unsupported scheme": (
        {"DATABASE_URL": "mysql://admin:hunter2secret@db.example/x"},
        "DATABASE_URL has the unsupported scheme 'mysql'",
    ),
    "unreachable database": (
        {"DATABASE_URL": "postgresql://admin:hunter2secret@127.0.0.1:1/x"},
        "cannot use the database (DATABASE_URL)",
    ),
    "production without keys": (
        {"MERITUM_ENVIRONMENT": "production"},
        "no master keys are configured: set MERITUM_MASTER_KEYS",
    ),
    "unknown environment": ({"MERITUM_ENVIRONMENT": "staging"}, "MERITUM_ENVIRONMENT"),
    "port out of range": ({"MERITUM_PORT": "70000"}, "MERITUM_PORT"),
    "port not a number": ({"MERITUM_PORT": "eighty"}, "MERITUM_PORT"),
    "smtp url of another scheme": (
        {"MERITUM_SMTP_URL": "http://admin:hunter2secret@mail.example"},
        "MERITUM_SMTP_URL must look like smtp://host:port",
    ),
    "smtp url with a bad port": (
        {"MERITUM_SMTP_URL": "smtp://admin:hunter2secret@mail.example:99999"},
        "MERITUM_SMTP_URL has an invalid port",
    ),
    "relative public url": ({"MERITUM_PUBLIC_URL": "reports.example"}, "MERITUM_PUBLIC_URL"),
}


@pytest.mark.parametrize(("env", "expected"), BAD_ENVIRONMENTS.values(), ids=BAD_ENVIRONMENTS)
def test_bad_settings_give_one_clear_line_and_a_non_zero_exit(
    env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MERITUM_")}
    clean.pop("DATABASE_URL", None)
    clean.update({"MERITUM_DATA_DIR": str(tmp_path), **env})
    # `worker` stands for every command: they all read settings, keys and the database first.
    command = "worker" if env.get("DATABASE_URL") or "ENVIRONMENT" in str(env) else "migrate"
    done = subprocess.run(
        [sys.executable, "-m", "meritum_api.cli", command],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("meritum: ")
    assert expected in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "hunter2secret" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("setting", "task"), [("generation_retries", "reports:generate"), ("email_retries", SEND_EMAIL)]
)
def test_zero_retries_means_one_attempt_not_unlimited(setting: str, task: str) -> None:
    # procrastinate reads a strategy's max_attempts=0 as "no limit".
    def strategy(retries: int) -> object:
        app = procrastinate.App(connector=procrastinate.testing.InMemoryConnector())
        register_all(app, Settings.model_validate({setting: retries}))
        return app.tasks[task].retry_strategy

    assert strategy(0) is None
    two = strategy(2)
    assert isinstance(two, procrastinate.RetryStrategy)
    assert two.max_attempts == 2
