"""Rows for the operations tests, with the ages the tests need."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt, Destination
from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message
from portal.models import Tenant


def connection_make(tenant: Tenant) -> Connection:
    return Connection.objects.create(tenant=tenant, name=f"conn-{uuid.uuid4().hex[:6]}", kind=ConnectionKind.KPN_THINGS)


def destination_make(tenant: Tenant, *, enabled: bool = True) -> Destination:
    return Destination.objects.create(
        tenant=tenant,
        name=f"dest-{uuid.uuid4().hex[:6]}",
        url="https://receiver.example/hook",
        enabled=enabled,
        disabled_reason="" if enabled else "410 Gone",
    )


def message_make(
    tenant: Tenant, *, age: timedelta, connection: Connection | None = None, readings: int = 0, now: datetime
) -> Message:
    body = f'[{{"bn":"urn:dev:IMEI:{uuid.uuid4().int % 10**15}:","n":"t","v":1}}]'.encode()
    message = Message.objects.create(
        tenant=tenant,
        connection=connection or connection_make(tenant),
        received_at=now - age,
        status=Message.Status.ACCEPTED,
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        readings_count=readings,
    )
    if readings:
        device = Device.objects.create(tenant=tenant, serial=f"S{uuid.uuid4().hex[:10]}")
        Reading.objects.bulk_create(
            Reading(tenant=tenant, device=device, message=message, name=f"r{i}", value=i, time=now - age)
            for i in range(readings)
        )
    return message


def delivery_make(
    message: Message,
    destination: Destination,
    *,
    status: str,
    age: timedelta,
    now: datetime,
    attempts_ago: list[timedelta] | None = None,
    next_attempt_in: timedelta | None = None,
) -> Delivery:
    """A delivery created `age` ago; succeeded ones were delivered then too; one attempt per `attempts_ago`."""
    delivery = Delivery.objects.create(
        tenant=message.tenant,
        message=message,
        destination=destination,
        status=status,
        attempts_count=len(attempts_ago or []),
        next_attempt_at=(now + next_attempt_in) if next_attempt_in is not None else None,
        delivered_at=(now - age) if status == Delivery.Status.SUCCEEDED else None,
    )
    # created_at is auto_now_add: set the age afterwards.
    Delivery.objects.filter(pk=delivery.pk).update(created_at=now - age)
    for number, ago in enumerate(attempts_ago or [], start=1):
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=now - ago,
            duration_ms=12,
            status_code=200 if status == Delivery.Status.SUCCEEDED else 500,
            success=status == Delivery.Status.SUCCEEDED,
        )
    delivery.refresh_from_db()
    return delivery


def now() -> datetime:
    return timezone.now()
