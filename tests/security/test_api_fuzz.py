"""Schemathesis against the portal's own OpenAPI schema (`/api/schema/`), with an API key.

Every operation of the schema is fuzzed in process through the WSGI application (the
full middleware stack, the real PostgreSQL), as an admin of tenant acme that holds one
row of each kind. The run is bounded: the schema's examples and a few generated cases
per operation (MAX_EXAMPLES), no coverage or stateful phase. A connect tripwire is
armed throughout: a generated destination must never make the portal connect anywhere
off this machine (test send, TLS check).
"""

from __future__ import annotations

import hashlib

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from delivery.models import Delivery
from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message
from portal.models import Role
from portal.services import api_key_create
from portal.wsgi import application
from tests.reliability.factories import destination_make
from tests.support.faults import connect_tripwire

MAX_EXAMPLES = 6


@pytest.fixture
def in_process(db):
    """Keep the test's database connection across WSGI calls, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Loaded when the module is collected: serving the schema touches no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
schema.config.phases.coverage.enabled = False
schema.config.phases.stateful.enabled = False


@pytest.fixture
def api_key(acme) -> str:
    connection = Connection.objects.create(tenant=acme, name="fuzz", kind=ConnectionKind.KPN_THINGS)
    device = Device.objects.create(tenant=acme, serial="FZ-1", urn="urn:dev:SERIAL:FZ-1:")
    body = b'[{"bn":"urn:dev:SERIAL:FZ-1:","n":"t","v":1}]'
    message = Message.objects.create(
        tenant=acme,
        connection=connection,
        device=device,
        received_at=timezone.now(),
        status=Message.Status.ACCEPTED,
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        readings_count=1,
    )
    Reading.objects.create(
        tenant=acme, device=device, message=message, name="t", kind="number", value=1, time=timezone.now()
    )
    destination = destination_make(acme, "https://receiver.example/in")
    Delivery.objects.create(tenant=acme, message=message, destination=destination, status=Delivery.Status.FAILED)
    return api_key_create(tenant=acme, role=Role.ADMIN).key


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_api_operation_answers_a_5xx_or_breaks_its_schema(case, api_key, in_process):
    """Pass: for every generated request, no 5xx, and every answer matches the schema's
    response for its status (shape, types, required fields); nothing connects off this machine."""
    with connect_tripwire() as wire:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {api_key}"},
            checks=[not_a_server_error, response_schema_conformance],
        )
    assert wire.blocked == []


@pytest.mark.django_db
def test_a_time_filter_with_an_offset_postgresql_cannot_hold_is_answered_not_a_500(acme, key_client):
    """Pass: ISO 8601 allows offsets up to ±23:59, PostgreSQL only ±15:59: the filter still answers 200."""
    client = key_client(acme, Role.VIEWER)
    answer = client.get(
        "/api/v1/readings/", {"since": "2020-03-11T04:53:17-22:01", "until": "2030-01-01T00:00:00+23:59"}
    )
    assert answer.status_code == 200, answer.content
