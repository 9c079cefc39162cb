"""A REAL Celery worker subprocess (tests/support/celery_worker.py) delivering from the
test database through the test Redis to the local HTTPS sink."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import Counter

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt
from ingest.models import Connection, ConnectionKind
from portal.secrets import Actor, secret_set
from tests.delivery.conftest import SECRET
from tests.support.sink import Answer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

INGEST_SECRET = "Ingest-Secret-For-Worker-Tests-42!"
BASIC_PASSWORD = "Basic-Password-Canary-77#x"
FAST = {"DELIVERY_IDLE_SECONDS": "0.3", "DELIVERY_SWEEP_SECONDS": "1"}


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def all_succeeded(expected: int):
    return lambda: Delivery.objects.filter(status="succeeded").count() == expected


@pytest.fixture
def kpn_connection(acme) -> Connection:
    conn = Connection.objects.create(tenant=acme, name="kpn", kind=ConnectionKind.KPN_THINGS)
    secret_set(obj=conn, field="secret", value=INGEST_SECRET, actor=Actor(label="t"))
    return conn


def ingest(client, conn: Connection, value: float) -> dict:
    body = json.dumps(
        [{"bn": "urn:dev:DEVEUI:0004A30B001C9999:", "n": "temperature", "u": "Cel", "v": value}],
        separators=(",", ":"),
    ).encode()
    token = hashlib.sha256(body + INGEST_SECRET.encode()).hexdigest()
    answer = client.post(
        f"/ingest/{conn.id}/", data=body, content_type="application/json", HTTP_THINGS_MESSAGE_TOKEN=token
    )
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_a_worker_delivers_what_an_ingest_request_stored(
    client, kpn_connection, make_destination, https_sink, celery_worker
):
    make_destination(https_sink.url("/in?dev=[DEVEUI]"), signature="both")
    celery_worker(extra_env=FAST)

    answer = ingest(client, kpn_connection, 21.5)

    [got] = https_sink.wait_for(1, timeout=30)
    pack = json.loads(got.body)
    assert pack[0]["bn"] == "urn:dev:DEVEUI:0004A30B001C9999:" and pack[0]["n"] == "temperature"
    assert got.query == "dev=0004A30B001C9999"
    assert got.header("Things-Message-Token") == hashlib.sha256(got.body + SECRET.encode()).hexdigest()
    wait_until(all_succeeded(1), what="the delivery to be recorded")
    assert str(Delivery.objects.get().message_id) == answer["message_id"]


def test_a_flushed_broker_loses_nothing_the_sweeper_finds_the_rows(
    make_destination, make_message, https_sink, celery_worker
):
    make_destination(https_sink.url("/in"))
    for _ in range(20):
        make_message()  # each rings the doorbell into Redis …
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # … and the broker forgets every ring

    celery_worker(beat=True, extra_env=FAST)

    https_sink.wait_for(20, timeout=60)
    wait_until(all_succeeded(20), timeout=30, what="all 20 deliveries")


def test_two_workers_never_send_the_same_attempt_twice(make_destination, make_message, https_sink, celery_worker):
    https_sink.default = Answer(200, delay=0.05)
    make_destination(https_sink.url("/in"), signature="standard-webhooks")
    for _ in range(150):
        make_message()

    celery_worker(concurrency=2, extra_env=FAST, name="a")
    celery_worker(concurrency=2, extra_env=FAST, name="b")

    wait_until(all_succeeded(150), timeout=90, what="150 deliveries")
    sent = Counter(r.header("webhook-id") for r in https_sink.requests)
    assert len(sent) == 150 and max(sent.values()) == 1
    assert DeliveryAttempt.objects.count() == 150


def test_tasks_carry_no_secret_and_no_log_line_holds_one(
    make_destination, make_message, https_sink, celery_worker, settings
):
    make_destination(
        https_sink.url("/in"), signature="both", auth_type="basic", auth_username="u", auth_password=BASIC_PASSWORD
    )
    https_sink.script(Answer(500), Answer(200))
    make_message()
    queued = redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange("celery", 0, -1)
    assert queued, "the doorbell rang into the broker"
    for raw in queued:
        args, kwargs, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
        assert (args, kwargs) == ([], {})  # no arguments at all: the rows are the truth
        assert SECRET.encode() not in raw and BASIC_PASSWORD.encode() not in raw

    worker = celery_worker(beat=True, extra_env={**FAST, "LOG_LEVEL": "DEBUG"})
    https_sink.wait_for(1, timeout=30)
    wait_until(lambda: DeliveryAttempt.objects.exists(), what="the failed first attempt")
    Delivery.objects.update(next_attempt_at=timezone.now())  # the retry's wait has passed
    https_sink.wait_for(2, timeout=30)
    wait_until(all_succeeded(1), what="the retry")

    worker_log = worker.log()
    assert "deliveries_pump" in worker_log
    assert SECRET not in worker_log and BASIC_PASSWORD not in worker_log
    assert base64.b64encode(f"u:{BASIC_PASSWORD}".encode()).decode() not in worker_log


def worker_connections() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def test_a_worker_keeps_its_database_connection_across_tasks(make_destination, make_message, https_sink, celery_worker):
    make_destination(https_sink.url("/in"))
    celery_worker(extra_env={"DELIVERY_IDLE_SECONDS": "0.05"})
    make_message()
    wait_until(all_succeeded(1), what="the first delivery")
    time.sleep(0.5)
    before = worker_connections()
    assert before, "the worker holds a connection"

    for n in range(2, 6):
        make_message()  # each one its own pump task
        wait_until(all_succeeded(n), what=f"delivery {n}")
        time.sleep(0.3)

    assert worker_connections() == before
