"""The system under test, started by the bench itself: database, broker, sink, web, workers.

Everything runs on loopback. The bench uses its own PostgreSQL database (dropped and
made anew each run) and its own Redis database number; it never touches others.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.processes import ProcessSet
from bench.tls import BenchTls

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BENCH_DB_NAME = "portal_bench"
BENCH_REDIS_DB = 5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_database_url() -> str:
    """BENCH_DATABASE_URL, else DATABASE_URL's server with the database `portal_bench`."""
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return explicit
    url = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/portal")
    if not url.scheme.startswith("postgres"):
        raise SystemExit("make bench needs PostgreSQL (DATABASE_URL or BENCH_DATABASE_URL)")
    return urlunsplit(url._replace(path="/" + BENCH_DB_NAME))


def bench_redis_url() -> str:
    """BENCH_REDIS_URL, else REDIS_URL's server with database number 5."""
    explicit = os.environ.get("BENCH_REDIS_URL")
    if explicit:
        return explicit
    url = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit(url._replace(path=f"/{BENCH_REDIS_DB}"))


def database_recreate(url: str) -> None:
    """Drop and create the bench database; refuses any database not named *_bench."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    if not name.endswith("_bench"):
        raise SystemExit(f"refusing to drop database {name!r}: the bench only recreates databases named *_bench")
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def redis_flush_own(url: str) -> None:
    """FLUSHDB on the bench's own Redis database number, never another."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        if client.connection_pool.connection_kwargs.get("db", 0) == 0:
            raise SystemExit("refusing to flush Redis database 0; set BENCH_REDIS_URL to a database of the bench's own")
        client.flushdb()
    finally:
        client.close()


@dataclass
class Stack:
    tmp: Path
    tls: BenchTls
    procs: ProcessSet
    database_url: str = field(default_factory=bench_database_url)
    redis_url: str = field(default_factory=bench_redis_url)
    web_port: int = field(default_factory=free_port)
    sink_port: int = field(default_factory=free_port)
    control_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        var_dir = self.tmp / "var"
        var_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the default under the bench's own var dir
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "CELERY_BROKER_URL": self.redis_url,
                "PORTAL_VAR_DIR": str(var_dir),
                "SECRET_KEY": secrets.token_urlsafe(50),
                "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "DEBUG": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "PORTAL_BASE_URL": self.web_url,
                "DESTINATION_ALLOW_PRIVATE": "true",
                "DESTINATION_ALLOWED_PORTS": str(self.sink_port),
                "DESTINATION_CA_BUNDLE": str(self.tls.ca_pem),
                "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
            }
        )

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sink_url(self) -> str:
        return f"https://127.0.0.1:{self.sink_port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def django_setup(self) -> None:
        """Django in this process, on the bench's database (for the query counts and fixtures)."""
        import django
        from django.apps import apps

        if apps.ready:
            return
        for name in (
            "DATABASE_URL",
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "PORTAL_VAR_DIR",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEYS",
            "DEBUG",
            "ALLOWED_HOSTS",
            "PORTAL_BASE_URL",
            "DESTINATION_ALLOW_PRIVATE",
            "DESTINATION_ALLOWED_PORTS",
            "DESTINATION_CA_BUNDLE",
        ):
            os.environ[name] = self.env[name]
        os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        django.setup()
        logging.disable(logging.INFO)  # the portal's per-request lines would drown the bench's output

    def postgres_pids(self) -> list[int]:
        """PostgreSQL server processes serving the bench database (not this query's own)."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return [pid for (pid,) in rows]

    # -- one-off commands -------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def prepare_storage(self) -> None:
        database_recreate(self.database_url)
        redis_flush_own(self.redis_url)
        self.manage("migrate", "--no-input", "-v0")

    # -- long-running processes -------------------------------------------------------

    def start_sink(self) -> None:
        self.procs.start(
            "sink",
            [
                PY,
                "-m",
                "bench.sink",
                "--port",
                str(self.sink_port),
                "--control-port",
                str(self.control_port),
                "--cert",
                str(self.tls.cert_pem),
                "--key",
                str(self.tls.key_pem),
            ],
            env=self.env,
            cwd=ROOT,
        )
        self._wait_http(self.control_url + "/stats", "sink")

    def start_web(self) -> None:
        """gunicorn with the production config (deploy/gunicorn.conf.py), plus the bare baseline view."""
        env = dict(self.env, DJANGO_SETTINGS_MODULE="bench.settings")
        self.procs.start(
            "web", [PY, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")], env=env, cwd=ROOT
        )
        self._wait_http(self.web_url + "/healthz", "web")

    def start_workers(self) -> None:
        """The Celery worker(s) and beat, as production runs them (see worker_commands)."""
        for name, argv in worker_commands().items():
            self.procs.start(name, argv, env=self.env, cwd=ROOT)

    def stop_workers(self) -> None:
        for name in worker_commands():
            self.procs.stop(name)

    def _wait_http(self, url: str, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            child = self.procs.children[name]
            if not child.alive():
                raise RuntimeError(f"{name} exited at start:\n{child.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"{name} did not answer {url} within {timeout:.0f} s:\n{self.procs.children[name].log_tail()}"
        )


def worker_commands() -> dict[str, list[str]]:
    """The delivery worker and beat as production runs them (deploy/systemd), default pool size.

    BENCH_WORKER_ARGS replaces the worker's arguments (after `celery -A portal`), to try
    another pool size without editing the bench.
    """
    celery = [PY, "-m", "celery", "-A", "portal"]
    worker_args = os.environ.get("BENCH_WORKER_ARGS", "worker --loglevel=INFO --hostname=bench@%h").split()
    return {
        "worker": [*celery, *worker_args],
        "beat": [*celery, "beat", "--loglevel=INFO"],
    }
