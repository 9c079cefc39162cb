"""Fixtures of the portal's page tests: logged-in browsers-in-a-test-client and some data.

`page_as(user)` gives a django.test.Client logged in as that user. `acme_data` makes one
of every object of tenant acme, so every page has something to show.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt, Destination, DestinationHeader
from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message
from portal.models import ApiKey, Membership, Tenant
from portal.secrets import Actor, secret_set
from portal.services import api_key_create

STRONG_SECRET = "Str0ng-Secret:for.tests/only+1234567"


@pytest.fixture
def page_as():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@dataclass
class TenantData:
    tenant: Tenant
    connection: Connection
    device: Device
    message: Message
    reading: Reading
    destination: Destination
    delivery: Delivery
    attempt: DeliveryAttempt
    api_key: ApiKey
    membership: Membership


def make_tenant_data(tenant: Tenant, member) -> TenantData:
    connection = Connection.objects.create(tenant=tenant, name=f"{tenant.slug} KPN", kind=ConnectionKind.KPN_THINGS)
    secret_set(obj=connection, field="secret", value=STRONG_SECRET, actor=Actor())
    device = Device.objects.create(
        tenant=tenant, serial=f"{tenant.slug.upper()}-0001", urn=f"urn:dev:SERIAL:{tenant.slug.upper()}-0001:"
    )
    body = b'[{"bn":"urn:dev:SERIAL:X:","n":"temperature","u":"Cel","v":21.5}]'
    now = timezone.now()
    message = Message.objects.create(
        tenant=tenant,
        connection=connection,
        device=device,
        received_at=now - timedelta(minutes=5),
        status=Message.Status.ACCEPTED,
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        readings_count=1,
    )
    reading = Reading.objects.create(
        tenant=tenant,
        device=device,
        message=message,
        name="temperature",
        unit="Cel",
        kind="number",
        value=21.5,
        time=now,
    )
    destination = Destination.objects.create(
        tenant=tenant, name=f"{tenant.slug} receiver", url="https://example.com/in"
    )
    secret_set(obj=destination, field="secret", value=STRONG_SECRET, actor=Actor())
    DestinationHeader.objects.create(destination=destination, name="X-Customer", value="[CUSTOM1]")
    delivery = Delivery.objects.create(
        tenant=tenant,
        message=message,
        destination=destination,
        status=Delivery.Status.FAILED,
        attempts_count=1,
        last_status_code=500,
        last_error="HTTP 500",
    )
    attempt = DeliveryAttempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=now - timedelta(minutes=4),
        duration_ms=12,
        status_code=500,
        error_class="HttpStatus",
        error="answered 500",
        response_body="boom",
    )
    api_key = api_key_create(tenant=tenant, label=f"{tenant.slug} ci").api_key
    membership = Membership.objects.get(tenant=tenant, user=member)
    return TenantData(tenant, connection, device, message, reading, destination, delivery, attempt, api_key, membership)


@pytest.fixture
def acme_data(acme, alice, bob, vera) -> TenantData:
    return make_tenant_data(acme, alice)


@pytest.fixture
def globex_data(globex, charlie) -> TenantData:
    return make_tenant_data(globex, charlie)
