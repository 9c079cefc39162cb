"""Rows for the fault tests, made in bulk: a destination, and N messages each with its deliveries.

Messages are made the way ingest leaves them (accepted, with readings and a device),
and one pending Delivery per message and destination, due now. Nothing rings the
doorbell: each test says how the workers hear of the work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections import Counter

from django.utils import timezone

from delivery.models import Delivery, Destination
from delivery.services import destination_headers_set
from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message
from portal.models import Tenant
from portal.secrets import Actor, secret_set
from tests.support.sink import Recorded

DESTINATION_SECRET = "Reliability-Destination-Secret-42!x"
ACTOR = Actor(label="reliability tests")


def destination_make(tenant: Tenant, url: str, *, headers: dict | None = None, **fields) -> Destination:
    fields.setdefault("signature", Destination.Signature.BOTH)
    destination = Destination.objects.create(tenant=tenant, name=fields.pop("name", "fault sink"), url=url, **fields)
    secret_set(obj=destination, field="secret", value=DESTINATION_SECRET, actor=ACTOR)
    if headers:
        destination_headers_set(destination=destination, headers=headers)
    return destination


def messages_make(tenant: Tenant, count: int, *, destinations: list[Destination]) -> list[Message]:
    """`count` accepted messages of one device, two readings each, and their pending deliveries."""
    connection = Connection.objects.create(tenant=tenant, name="fault input", kind=ConnectionKind.KPN_THINGS)
    device = Device.objects.create(
        tenant=tenant, serial=f"F-{uuid.uuid4().hex[:8]}", urn=f"urn:dev:SERIAL:F-{uuid.uuid4().hex[:8]}:"
    )
    now = timezone.now()
    messages = []
    for index in range(count):
        body = json.dumps([{"bn": device.urn, "n": "seq", "v": index}], separators=(",", ":")).encode()
        messages.append(
            Message(
                tenant=tenant,
                connection=connection,
                device=device,
                received_at=now,
                status=Message.Status.ACCEPTED,
                body=body,
                body_sha256=hashlib.sha256(body).hexdigest(),
                readings_count=2,
            )
        )
    Message.objects.bulk_create(messages, batch_size=1000)
    Reading.objects.bulk_create(
        [
            Reading(
                tenant=tenant,
                device=device,
                message=m,
                name=name,
                unit="",
                kind="number",
                value=value,
                time=now - dt.timedelta(seconds=1),
            )
            for i, m in enumerate(messages)
            for name, value in (("seq", i), ("battery", 3.6))
        ],
        batch_size=2000,
    )
    Delivery.objects.bulk_create(
        [
            Delivery(tenant=tenant, message=m, destination=d, next_attempt_at=now)
            for m in messages
            for d in destinations
        ],
        batch_size=2000,
    )
    return messages


def expected_webhook_ids(destination: Destination) -> set[str]:
    return {d.webhook_id for d in Delivery.objects.filter(destination=destination)}


def ledger(requests: list[Recorded]) -> Counter:
    """How many requests the sink received per webhook-id."""
    return Counter(r.header("webhook-id") for r in requests)
