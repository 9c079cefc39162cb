"""Metrics and logs of real server processes: gunicorn with several workers, a Celery worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from portal import metrics
from portal.tasks import retention_prune
from tests.ops.conftest import value
from tests.ops.factories import message_make, now
from tests.support import celery_worker as worker_support

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def gunicorn(tmp_path):
    """A real gunicorn with deploy/gunicorn.conf.py and two worker processes on a loopback port."""
    port = _free_port()
    log_path = tmp_path / "gunicorn.log"
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": worker_support.test_database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "2",
            "LOG_FORMAT": "json",
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
        }
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
            cwd=tmp_path,  # the config's chdir must find the project by itself
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    class Server:
        base = f"http://127.0.0.1:{port}"

        @staticmethod
        def log() -> str:
            return log_path.read_text(errors="replace")

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, Server.log()
        try:
            if _get(Server.base + "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail(f"gunicorn did not answer:\n{Server.log()}")
    yield Server
    os.killpg(process.pid, 15)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(5)


def test_all_gunicorn_workers_count_into_one_scrape(gunicorn):
    before = value(
        _get(gunicorn.base + "/metrics")[2].decode(), "portal_http_requests_total", area="healthz", code="200"
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(lambda _: _get(gunicorn.base + "/healthz")[0], range(30)))
    assert codes == [200] * 30

    status, headers, body = _get(gunicorn.base + "/metrics")

    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert value(text, "portal_http_requests_total", area="healthz", code="200") - before == 30
    assert value(text, "portal_metrics_database_up") == 1
    # The workers wrote under the web service's own directory.
    assert list((metrics.root() / f"web-{socket.gethostname()}").glob("counter_*.db"))


def test_gunicorn_logs_json_lines_with_the_request_id(gunicorn):
    status, headers, _ = _get(gunicorn.base + "/api/v1/api-keys/", {"X-Request-ID": "req-gunicorn-000777"})
    assert status in (401, 403)
    assert headers["X-Request-ID"] == "req-gunicorn-000777"

    deadline = time.monotonic() + 10
    while "req-gunicorn-000777" not in gunicorn.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in gunicorn.log().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line of every process is one JSON object
    access = [p for p in parsed if p.get("logger") == "portal.access" and p.get("request_id") == "req-gunicorn-000777"]
    assert len(access) == 1
    assert access[0]["status"] == status
    assert any(p["logger"] == "gunicorn.error" and "Booting worker" in p["message"] for p in parsed)


def test_counters_of_celery_worker_processes_are_served_at_metrics(celery_worker, acme, client):
    message_make(acme, age=timedelta(days=31), readings=3, now=now())
    before = value(client.get("/metrics").content.decode(), "portal_retention_pruned_rows_total", kind="readings")
    celery_worker(name="metrics")

    retention_prune.delay()

    deadline = time.monotonic() + 30
    moved = 0.0
    while time.monotonic() < deadline and moved < 3:
        text = client.get("/metrics").content.decode()
        moved = value(text, "portal_retention_pruned_rows_total", kind="readings") - before
        time.sleep(0.2)
    assert moved == 3
    # Counted by a pool process of the worker, under the worker's own directory.
    worker_dirs = [d for d in metrics.root().glob("celery-metrics*") if list(d.glob("counter_*.db"))]
    assert worker_dirs
