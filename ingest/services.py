"""Ingest writes: a verified request stored durably and normalised; an invalid message re-processed.

`message_ingest` stores the raw body, finds or creates the device, stores the readings,
updates `last_seen_at` and creates the deliveries in ONE transaction, so a caller that
answers only after it returns never answers 2xx for something not committed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from delivery.services import deliveries_create_for_message
from devices.identity import DeviceIdentity, identity_from_serial
from devices.models import Device
from devices.services import DeviceConflict, device_for_identifiers, devices_mark_seen
from ingest.errors import InvalidPack, NotJson
from ingest.kinds import Inbound, kind_for
from ingest.models import Connection, Message, claim_keys
from ingest.normalised import Parsed
from ingest.sql import first_query_checks_connection
from ingest.storage import (
    ReadingRow,
    Stored,
    claims_release_orphaned,
    first_claimant,
    message_store,
    readings_insert,
)
from portal.models import Tenant
from portal.secrets import Actor, secret_generate, secret_set, whsec_form

CLAIM_TRIES = 3


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of a request: the message (the first one, for a duplicate) and its readings."""

    message_id: uuid.UUID
    status: str
    readings: int
    error: str = ""
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class NewConnection:
    """A connection just made: its generated secret and whsec key exist only here, to be shown once."""

    connection: Connection
    generated_secret: str | None
    whsec: str | None


def connection_create(*, tenant: Tenant, actor: Actor, secret: str | None = None, **fields) -> NewConnection:
    """A new connection; one whose kind verifies with a shared secret gets one generated when none is given."""
    with transaction.atomic():
        connection = Connection.objects.create(tenant=tenant, **fields)
        kind = kind_for(connection)
        generated = None
        if not secret and kind.needs_secret(connection):
            secret = generated = secret_generate()
        if secret:
            secret_set(obj=connection, field="secret", value=secret, actor=actor)
    whsec = whsec_form(secret) if secret and kind.accepts_whsec else None
    # Read back, so the secret fields hold what is stored (sealed, or None), never the plain value.
    connection = Connection.objects.get(pk=connection.pk)
    return NewConnection(connection=connection, generated_secret=generated, whsec=whsec)


class NotReprocessable(Exception):
    """Only an `invalid` message can be re-processed."""


def _storable(text: str) -> str:
    """Text PostgreSQL can store: a reason may quote a sender's NUL character."""
    return text.replace("\x00", "\\u0000")


def _identities_of(*, parsed: Parsed, serial_in_url: str) -> tuple[list[DeviceIdentity], int]:
    """(the identities of the devices a message's readings belong to, index of the default one).

    Readings that name no device belong to the device of the URL's serial, else to the
    first device the message names. InvalidPack when there is no device at all.
    """
    identities = list(parsed.devices)
    default = 0
    if any(reading.device is None for reading in parsed.readings):
        if serial_in_url:
            by_url = identity_from_serial(serial_in_url)
            named = [index for index, identity in enumerate(identities) if identity.lookup == by_url.lookup]
            if named:
                default = named[0]
            else:
                identities.append(by_url)
                default = len(identities) - 1
        elif not identities:
            raise InvalidPack(
                "the message names no device: no name starts with urn:dev:<TYPE>:<ID>: and the URL has no serial"
            )
    return identities, default


def _devices_of(
    *, connection: Connection, parsed: Parsed, serial_in_url: str, known: Device | None, seen_at: datetime
) -> tuple[list[Device], int, list[Device]]:
    """(devices by identity index, index of the default device, devices still to be marked seen).

    Devices found or created here are marked seen at `seen_at` on the way; only the one
    verification already found (a Digital Matter device key) is left to mark.
    InvalidPack when a device cannot be found or made.
    """
    identities, default = _identities_of(parsed=parsed, serial_in_url=serial_in_url)
    devices, to_mark = [], []
    for identity in identities:
        if known is not None and len(identities) == 1:
            device = known
            to_mark.append(known)
        else:
            try:
                device, _created = device_for_identifiers(
                    tenant_id=connection.tenant_id,
                    identity=identity,
                    auto_create=connection.auto_create_devices,
                    seen_at=seen_at,
                )
            except DeviceConflict as exc:
                raise InvalidPack(str(exc)) from None
        if device is None:
            raise InvalidPack(f"unknown device ({identity.describe()}) and this connection does not create devices")
        devices.append(device)
    return devices, default, to_mark


def _reading_rows(*, parsed: Parsed, device_ids: list[int | None], default: int) -> list[ReadingRow]:
    return [
        ReadingRow(
            device_id=device_ids[default if reading.device is None else reading.device],
            name=reading.name,
            unit=reading.unit,
            kind=reading.kind,
            value=reading.value,
            sum=reading.sum,
            time=reading.time,
        )
        for reading in parsed.readings
    ]


def _normalise(
    *, message: Message, connection: Connection, parsed: Parsed, known: Device | None
) -> tuple[list[Device], int, list[Device]]:
    devices, default, to_mark = _devices_of(
        connection=connection,
        parsed=parsed,
        serial_in_url=message.serial_in_url,
        known=known,
        seen_at=message.received_at,
    )
    message.device = devices[default] if devices else None
    message.skipped = [_storable(entry) for entry in parsed.skipped]
    message.readings_count = len(parsed.readings)
    return devices, default, to_mark


def message_ingest(
    *,
    connection: Connection,
    body: bytes,
    headers: Mapping[str, str],
    content_type: str = "",
    serial_in_url: str = "",
    source_ip: str | None = None,
    request_id: str = "",
    received_at: datetime | None = None,
    connection_version: str | None = None,
) -> IngestResult:
    """Verify, store and normalise one request to a connection.

    With `connection_version` (from `connection_for_ingest`) nothing is stored unless the
    connection's row is still that version: ConnectionChanged, to be started again.

    Raises NotAuthentic (nothing stored) or NotJson (nothing stored). A body that is
    authentic JSON but not a valid pack is stored `invalid` with the reason. A
    duplicate returns the first message's result with `duplicate=True`, storing nothing.
    Database errors propagate: the caller must not answer 2xx then.
    """
    received_at = received_at or timezone.now()
    kind = kind_for(connection)
    inbound = Inbound(
        body=body, headers=headers, received_at=received_at, content_type=content_type, serial_in_url=serial_in_url
    )
    verified = kind.verify(connection=connection, inbound=inbound)
    inbound.document  # noqa: B018 — raises NotJson before anything is stored
    error = ""
    try:
        parsed = kind.parse(connection=connection, inbound=inbound)
    except InvalidPack as exc:
        parsed, error = None, str(exc)
    body_sha256 = hashlib.sha256(body).hexdigest()
    message = Message(
        tenant_id=connection.tenant_id,
        connection=connection,
        received_at=received_at,
        body=body,
        body_sha256=body_sha256,
        content_type=content_type[:200],
        webhook_id=verified.webhook_id,
        serial_in_url=serial_in_url,
        source_ip=source_ip,
        request_id=request_id,
    )
    keys = claim_keys(connection.pk, body_sha256, verified.webhook_id)
    # Rarely more than once: only when the message a claim names was deleted meanwhile.
    for _ in range(CLAIM_TRIES):
        try:
            return _message_store_claimed(
                message=message,
                connection=connection,
                parsed=parsed,
                error=error,
                known=verified.device,
                keys=keys,
                connection_version=connection_version,
            )
        except _Duplicate:
            first = first_claimant(keys, received_at=received_at)
            if first is not None:
                return IngestResult(
                    message_id=first.pk,
                    status=first.status,
                    readings=first.readings_count,
                    error=first.error,
                    duplicate=True,
                )
            claims_release_orphaned(keys)
    raise DatabaseError(f"the duplicate claims of a message stayed taken after {CLAIM_TRIES} tries")


class _Duplicate(Exception):
    """Another message holds a claim: roll everything of this one back."""


def _message_store_claimed(
    *,
    message: Message,
    connection: Connection,
    parsed: Parsed | None,
    error: str,
    known: Device | None,
    keys: list,
    connection_version: str | None,
) -> IngestResult:
    """Normalise and store the message in one transaction; _Duplicate (nothing stored) when a claim is taken."""
    if parsed is not None and known is None:
        stored = _message_store_one_device(
            message=message, parsed=parsed, keys=keys, connection_version=connection_version
        )
        if stored is not None:
            if not stored.claimed:
                raise _Duplicate
            return IngestResult(message_id=message.pk, status=message.status, readings=message.readings_count, error="")
    with transaction.atomic():
        devices, default, to_mark = [], 0, []
        if parsed is not None:
            try:
                devices, default, to_mark = _normalise(
                    message=message, connection=connection, parsed=parsed, known=known
                )
            except InvalidPack as exc:
                error = str(exc)
        message.status = Message.Status.INVALID if error else Message.Status.ACCEPTED
        message.error = error = _storable(error)
        if error:
            message.readings_count = 0
        readings = [] if error else _reading_rows(parsed=parsed, device_ids=[d.pk for d in devices], default=default)
        stored = message_store(
            message=message, readings=readings, claim_keys=keys, connection_version=connection_version
        )
        if not stored.claimed:
            raise _Duplicate
        if not error:
            devices_mark_seen(devices=to_mark, seen_at=message.received_at)
    return IngestResult(message_id=message.pk, status=message.status, readings=message.readings_count, error=error)


def _message_store_one_device(
    *, message: Message, parsed: Parsed, keys: list, connection_version: str | None
) -> Stored | None:
    """The common case in one statement: all the readings belong to one device that exists.

    Outside any transaction that statement is its own, committed when this returns; inside
    the caller's it runs in a savepoint. None when it is not that case (nothing was
    written): the caller takes the general way, which also creates devices and stores the
    reason a message is invalid.
    """
    if db_connection.vendor != "postgresql":
        return None
    try:
        identities, _default = _identities_of(parsed=parsed, serial_in_url=message.serial_in_url)
    except InvalidPack:
        return None
    if len(identities) != 1:
        return None
    message.status = Message.Status.ACCEPTED
    message.error = ""
    message.skipped = [_storable(entry) for entry in parsed.skipped]
    message.readings_count = len(parsed.readings)
    readings = _reading_rows(parsed=parsed, device_ids=[None], default=0)

    def store() -> Stored | None:
        return message_store(
            message=message,
            readings=readings,
            claim_keys=keys,
            device_lookup=identities[0],
            connection_version=connection_version,
        )

    if db_connection.in_atomic_block:
        with transaction.atomic():
            return store()
    # Perhaps the request's first query (its connection kept from an earlier one): run again
    # on a new database connection if the server closed this one. A message that was stored
    # all the same is then a duplicate of itself, answered as such.
    return first_query_checks_connection(store)


def message_reprocess(*, message: Message) -> Message:
    """Normalise an `invalid` message again (after its cause was fixed); it becomes `accepted` or stays `invalid`.

    Relative SenML times resolve against the original receipt time. The request was
    verified when it arrived, so it is not verified again.
    """
    with transaction.atomic():
        message = Message.objects.select_for_update().select_related("connection").get(pk=message.pk)
        if message.status != Message.Status.INVALID:
            raise NotReprocessable(f"message {message.pk} is {message.status}; only an invalid message is re-processed")
        connection = message.connection
        inbound = Inbound(
            body=bytes(message.body),
            headers={},
            received_at=message.received_at,
            content_type=message.content_type,
            serial_in_url=message.serial_in_url,
        )
        try:
            parsed = kind_for(connection).parse(connection=connection, inbound=inbound)
            devices, default, to_mark = _normalise(message=message, connection=connection, parsed=parsed, known=None)
        except (InvalidPack, NotJson) as exc:
            message.error = _storable(str(exc))
            message.save(update_fields=["error"])
            return message
        message.status = Message.Status.ACCEPTED
        message.error = ""
        message.save(update_fields=["status", "error", "device", "skipped", "readings_count"])
        readings_insert(
            message=message,
            readings=_reading_rows(parsed=parsed, device_ids=[d.pk for d in devices], default=default),
        )
        devices_mark_seen(devices=to_mark, seen_at=message.received_at)
        deliveries_create_for_message(message=message)
    return message
