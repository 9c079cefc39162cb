"""Structured logs: JSON lines with the request id and context, never a secret."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from portal.logging import context_get, log_context
from portal.tasks import retention_prune

CANARY = "Canary-Secret-7f3a9c1e-DO-NOT-LOG-0123456789#"


@pytest.mark.django_db
def test_a_request_logs_json_lines_with_its_request_id_and_never_the_token_it_sent(client, json_lines):
    response = client.get(
        "/api/v1/api-keys/", HTTP_AUTHORIZATION=f"Bearer {CANARY}", HTTP_X_REQUEST_ID="req-canary-0001"
    )
    assert response.status_code in (401, 403)
    assert response["X-Request-ID"] == "req-canary-0001"

    lines = json_lines.lines()  # each line parses as one JSON object
    access = [line for line in lines if line["logger"] == "portal.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "req-canary-0001"
    assert access[0]["status"] == response.status_code
    assert access[0]["path"] == "/api/v1/api-keys/"
    # Django's own warning about the 4xx carries the id too.
    assert [line["request_id"] for line in lines if line["logger"] == "django.request"] == ["req-canary-0001"]
    assert CANARY not in json_lines.text()
    assert CANARY[:20] not in json_lines.text()


def test_fields_that_look_secret_are_redacted_whatever_the_caller_passes(json_lines):
    logging.getLogger("portal.test").warning(
        "sending",
        extra={
            "secret": CANARY,
            "auth_password": CANARY,
            "headers": {"X-Api-Key": CANARY},
            "body": CANARY.encode(),
            "things_message_token": CANARY,
            "oauth2_client_secret": CANARY,
            "attempt": {"number": 2, "authorization": CANARY},
            "status_code": 500,
        },
    )
    (line,) = json_lines.lines()
    assert CANARY not in json_lines.text()
    assert line["status_code"] == 500
    assert line["attempt"]["number"] == 2
    assert line["secret"] == "[redacted]"


def test_the_bound_context_is_on_every_line_and_unbound_after_the_block(json_lines):
    log = logging.getLogger("portal.test")
    with log_context(request_id="req-ctx-000001", tenant_id=7, delivery_id="d-1"):
        with log_context(destination_id="dest-1"):
            log.info("inner")
        log.info("outer")
    log.info("after")

    inner, outer, after = json_lines.lines()
    assert {k: inner[k] for k in ("request_id", "tenant_id", "delivery_id", "destination_id")} == {
        "request_id": "req-ctx-000001",
        "tenant_id": "7",
        "delivery_id": "d-1",
        "destination_id": "dest-1",
    }
    assert "destination_id" not in outer
    assert outer["delivery_id"] == "d-1"
    assert "request_id" not in after
    assert context_get() == {}


def test_a_request_without_an_id_gets_a_new_one_and_a_malformed_one_is_replaced(client):
    fresh = client.get("/healthz")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    assert client.get("/healthz")["X-Request-ID"] != fresh

    injected = client.get("/healthz", HTTP_X_REQUEST_ID='abc"\n{"level":"CRITICAL"}')["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", injected)


@pytest.mark.slow
def test_a_task_enqueued_while_handling_a_request_logs_with_its_request_id(celery_worker):
    worker = celery_worker(extra_env={"LOG_FORMAT": "json"})

    with log_context(request_id="req-to-task-42"):
        retention_prune.delay()

    deadline = time.monotonic() + 30
    found = []
    while time.monotonic() < deadline and not found:
        found = [
            json.loads(line)
            for line in worker.log().splitlines()
            if line.startswith("{") and "retention pruned" in line
        ]
        time.sleep(0.2)
    assert found, worker.log()
    assert found[0]["request_id"] == "req-to-task-42"
    assert found[0]["logger"] == "portal.retention"
