"""Scale-out settings: Django's psycopg pool, pgbouncer mode and queues per concern, in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import celery_worker as worker_support

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from django.db import connection
from portal.celery import app
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    one = cursor.fetchone()[0]
route = lambda name: app.amqp.router.route({}, name)["queue"].name
print(json.dumps({
    "pool": connection.settings_dict["OPTIONS"].get("pool"),
    "pooled": connection.pool is not None,
    "conn_max_age": connection.settings_dict["CONN_MAX_AGE"],
    "server_side_cursors_off": connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS", False),
    "one": one,
    "delivery_queue": route("delivery.tasks.deliveries_pump"),
    "prune_queue": route("portal.tasks.retention_prune"),
}))
"""


def probe(tmp_path: Path, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": worker_support.test_database_url(),
            "PORTAL_VAR_DIR": str(tmp_path),
            "LOG_LEVEL": "WARNING",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_by_default_one_persistent_connection_and_one_queue(tmp_path):
    found = probe(tmp_path)
    assert found["pooled"] is False
    assert found["conn_max_age"] == 60
    assert found["one"] == 1
    assert found["delivery_queue"] == found["prune_queue"] == "celery"


@pytest.mark.django_db
def test_database_pool_uses_djangos_psycopg_pool(tmp_path):
    found = probe(tmp_path, DATABASE_POOL="true", DATABASE_POOL_MAX_SIZE="4")
    assert found["pooled"] is True
    assert found["pool"]["max_size"] == 4
    assert found["conn_max_age"] == 0
    assert found["one"] == 1


@pytest.mark.django_db
def test_pgbouncer_mode_turns_server_side_cursors_off(tmp_path):
    assert probe(tmp_path, DATABASE_PGBOUNCER="true")["server_side_cursors_off"] is True


@pytest.mark.django_db
def test_task_queues_route_each_concern_to_its_queue(tmp_path):
    found = probe(tmp_path, TASK_QUEUES="delivery.tasks.*=deliveries, portal.tasks.*=housekeeping")
    assert found["delivery_queue"] == "deliveries"
    assert found["prune_queue"] == "housekeeping"


def test_a_malformed_task_queues_entry_stops_the_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "TASK_QUEUES": "delivery.tasks.*", "PORTAL_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "TASK_QUEUES" in result.stderr
