"""Factories for delivery tests: destinations, messages with readings, and running the engine."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from django.utils import timezone

from delivery.models import Delivery, Destination
from delivery.pump import deliveries_run
from delivery.services import deliveries_create_for_message, destination_headers_set
from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message
from portal.secrets import Actor, secret_set

SECRET = "Dest1nation-Shared-Secret-0123456789!"
ACTOR = Actor(label="tests")


@pytest.fixture
def connection(acme) -> Connection:
    return Connection.objects.create(tenant=acme, name="things", kind=ConnectionKind.KPN_THINGS)


@pytest.fixture
def device(acme) -> Device:
    return Device.objects.create(
        tenant=acme,
        serial="SN-001",
        imei="353000000000001",
        iccid="8931000000000000001",
        dev_eui="0004A30B001C1234",
        urn="urn:dev:DEVEUI:0004A30B001C1234:",
        custom1="site 7/β",
        custom3="c3",
    )


@pytest.fixture
def make_destination(acme):
    def make(url: str, *, secret: str | None = SECRET, headers: dict | None = None, **fields) -> Destination:
        destination = Destination.objects.create(tenant=fields.pop("tenant", acme), name="dest", url=url, **fields)
        if secret:
            secret_set(obj=destination, field="secret", value=secret, actor=ACTOR)
        if headers:
            destination_headers_set(destination=destination, headers=headers)
        return destination

    return make


@pytest.fixture
def make_message(acme, connection, device):
    def make(*, readings=None, dev: Device | None = device, conn: Connection | None = None) -> Message:
        now = timezone.now()
        body = uuid.uuid4().bytes
        message = Message.objects.create(
            tenant=acme,
            connection=conn or connection,
            device=dev,
            received_at=now,
            status=Message.Status.ACCEPTED,
            body=body,
            body_sha256=hashlib.sha256(body).hexdigest(),
        )
        for name, unit, value in readings or [("temperature", "Cel", 21.5), ("humidity", "%RH", 40)]:
            Reading.objects.create(
                tenant=acme,
                device=dev,
                message=message,
                name=name,
                unit=unit,
                kind="number",
                value=value,
                time=now - dt.timedelta(seconds=1),
            )
        deliveries_create_for_message(message=message)
        return message

    return make


def run_engine(**kwargs):
    """Send everything due now (the Celery task's body), in this process."""
    kwargs.setdefault("seconds", 20)
    kwargs.setdefault("idle_seconds", 0.2)
    return deliveries_run(**kwargs)


def make_due(delivery: Delivery) -> None:
    """Time passes: the delivery's next attempt is due now."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
