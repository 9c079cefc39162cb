"""A REAL `celery -A portal worker` subprocess against the test database and test Redis.

`CeleryWorker.start(...)` runs the worker (optionally with embedded beat, `-B`) with the
environment of the test process, pointed at the database pytest-django created and at
the broker of `CELERY_BROKER_URL`, and the destination settings the test set through
the `settings` fixture (private addresses, ports, CA bundle). It waits until the
worker says it is ready. `stop()` shuts it down warmly, `kill()` with SIGKILL (the
whole process group it started, and nothing else).

Tests that use it need rows the worker can see: `@pytest.mark.django_db(transaction=True)`.
The `celery_worker` fixture (tests/support/fixtures.py) stops every worker it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """The DATABASE_URL of the database this test process uses (the test database)."""
    d = connection.settings_dict
    if d["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("a worker subprocess needs PostgreSQL")
    auth = quote(d["USER"] or "postgres", safe="")
    if d.get("PASSWORD"):
        auth += ":" + quote(d["PASSWORD"], safe="")
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


def broker_flush() -> None:
    """Empty the test broker's Redis database (this suite's own db number only)."""
    import redis

    from delivery import doorbell

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    # The flag this process saw a moment ago is gone with the rest: the next ring must ask Redis.
    doorbell._flag_seen_at = -1.0


def worker_env(var_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "DESTINATION_ALLOW_PRIVATE": "true" if settings.DESTINATION_ALLOW_PRIVATE else "false",
            "DESTINATION_ALLOWED_PORTS": ",".join(str(p) for p in settings.DESTINATION_ALLOWED_PORTS),
            "DESTINATION_CA_BUNDLE": settings.DESTINATION_CA_BUNDLE or "",
            "PORTAL_VAR_DIR": str(var_dir),
            "LOG_FORMAT": "text",
            "EMAIL_URL": "consolemail://",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


class CeleryWorker:
    """One worker subprocess; its combined output goes to `log_path`."""

    def __init__(self, *, var_dir: Path, name: str = "w1") -> None:
        self.var_dir = var_dir
        self.name = name
        self.log_path = var_dir / f"celery-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(
        self,
        *,
        beat: bool = False,
        concurrency: int = 1,
        extra_env: dict[str, str] | None = None,
        ready_timeout: float = 60.0,
    ) -> CeleryWorker:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--hostname={self.name}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            args += ["-B", f"--schedule={self.var_dir / f'beat-{self.name}'}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=worker_env(self.var_dir, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if " ready." in self.log():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery worker not ready in {ready_timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of its process group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            self._signal_group(signal.SIGKILL)
            return
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash would."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
