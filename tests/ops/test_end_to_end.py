"""One message from its ingest request to its delivery by a real Celery worker, as operations see it:
the request id on every line of both processes, the counters of both in one scrape, no secret anywhere."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from delivery.models import Delivery, Destination
from ingest.models import Connection, ConnectionKind
from portal.secrets import Actor, secret_set
from tests.ops.conftest import value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

INGEST_CANARY = "Ingest-Canary-Secret-5b1e9d#Never-Logged-0123"
DEST_CANARY = "Destination-Canary-Secret-77c4a2#Never-Logged-9"
REQUEST_ID = "req-e2e-0123456789abcdef"
FAST = {"DELIVERY_IDLE_SECONDS": "0.3", "DELIVERY_SWEEP_SECONDS": "1", "LOG_FORMAT": "json"}


def wait_until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_message_is_followed_from_ingest_to_its_delivery_in_logs_and_metrics(
    client, acme, https_sink, celery_worker, json_lines
):
    connection = Connection.objects.create(tenant=acme, name="kpn", kind=ConnectionKind.KPN_THINGS)
    secret_set(obj=connection, field="secret", value=INGEST_CANARY, actor=Actor(label="ops test"))
    destination = Destination.objects.create(tenant=acme, name="receiver", url=https_sink.url("/in"))
    secret_set(obj=destination, field="secret", value=DEST_CANARY, actor=Actor(label="ops test"))
    worker = celery_worker(extra_env=FAST, name="e2e")

    def scrape() -> str:
        return client.get("/metrics").content.decode()

    before = scrape()
    body = json.dumps(
        [{"bn": "urn:dev:DEVEUI:0004A30B001C7777:", "n": "temperature", "u": "Cel", "v": 19.5}], separators=(",", ":")
    ).encode()
    token = hashlib.sha256(body + INGEST_CANARY.encode()).hexdigest()
    refused = client.post(
        f"/ingest/{connection.id}/", data=body, content_type="application/json", HTTP_THINGS_MESSAGE_TOKEN="0" * 64
    )
    accepted = client.post(
        f"/ingest/{connection.id}/",
        data=body,
        content_type="application/json",
        HTTP_THINGS_MESSAGE_TOKEN=token,
        HTTP_X_REQUEST_ID=REQUEST_ID,
    )
    assert refused.status_code == 401
    assert accepted.status_code == 200, accepted.content
    assert accepted["X-Request-ID"] == REQUEST_ID
    message_id = accepted.json()["message_id"]

    https_sink.wait_for(1, timeout=30)
    wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 1, "the delivery to be recorded")
    delivery = Delivery.objects.get()
    wait_until(lambda: "delivery attempt" in worker.log(), "the worker's attempt line")

    # The web side: the ingest request's lines carry its id and what it worked on.
    web = [line for line in json_lines.lines() if line.get("request_id") == REQUEST_ID]
    access = [line for line in web if line["logger"] == "portal.access"]
    assert len(access) == 1
    assert access[0]["tenant_id"] == str(acme.pk)
    assert access[0]["connection_id"] == str(connection.pk)
    assert access[0]["message_id"] == message_id

    # The worker: its attempt line carries the same request id and the delivery's ids.
    worker_lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    attempts = [line for line in worker_lines if line["logger"] == "delivery.attempts"]
    assert len(attempts) == 1
    assert attempts[0]["request_id"] == REQUEST_ID
    assert attempts[0]["delivery_id"] == str(delivery.pk)
    assert attempts[0]["destination_id"] == str(destination.pk)
    assert attempts[0]["message_id"] == message_id
    assert attempts[0]["tenant_id"] == str(acme.pk)
    assert attempts[0]["outcome"] == "success"

    # No secret, and no token computed from one, in either process's output.
    everything = json_lines.text() + worker.log()
    for canary in (INGEST_CANARY, DEST_CANARY, token, "0" * 64):
        assert canary not in everything

    # One scrape of the web side shows both processes' counters.
    after = scrape()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("portal_ingest_messages_total", kind="kpn-things", status="accepted") == 1
    assert moved("portal_ingest_messages_total", kind="kpn-things", status="unauthorized") == 1
    assert moved("portal_http_requests_total", area="ingest", code="200") == 1
    assert moved("portal_delivery_attempts_total", outcome="success") == 1
    assert moved("portal_delivery_attempt_duration_seconds_count", outcome="success") == 1
    assert moved("portal_deliveries_finished_total", outcome="succeeded") == 1
    assert value(after, "portal_deliveries_pending") == 0
