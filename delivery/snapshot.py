"""Plain, frozen copies of what one request is built from.

The engine builds and sends requests away from the ORM (in another thread, on an
event loop), so it works from these snapshots, loaded in bulk for a claimed batch.
Secrets in them are revealed values: their fields are left out of `repr`, and a
snapshot never leaves the worker process (tasks carry ids only).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DeviceData:
    id: int
    serial: str = ""
    imei: str = ""
    iccid: str = ""
    dev_eui: str = ""
    custom1: str = ""
    custom2: str = ""
    custom3: str = ""
    urn: str = ""

    @classmethod
    def from_device(cls, device) -> DeviceData:
        return cls(
            id=device.pk,
            serial=device.serial,
            imei=device.imei,
            iccid=device.iccid,
            dev_eui=device.dev_eui,
            custom1=device.custom1,
            custom2=device.custom2,
            custom3=device.custom3,
            urn=device.urn,
        )


@dataclass(frozen=True)
class ReadingData:
    name: str
    unit: str
    kind: str
    value: Any
    sum: float | None
    time: dt.datetime

    @classmethod
    def from_reading(cls, reading) -> ReadingData:
        return cls(
            name=reading.name,
            unit=reading.unit,
            kind=reading.kind,
            value=reading.value,
            sum=reading.sum,
            time=reading.time,
        )


@dataclass(frozen=True)
class MessageData:
    id: uuid.UUID
    received_at: dt.datetime
    device: DeviceData | None
    readings: tuple[ReadingData, ...]
    # The id of the ingest request that brought it, for the delivery log lines.
    request_id: str = ""


@dataclass(frozen=True)
class DestinationData:
    """A destination as the engine needs it; `problem` set means it cannot be sent to."""

    id: uuid.UUID
    tenant_id: int
    url: str
    method: str
    headers: tuple[tuple[str, str], ...]
    signature: str
    payload_format: str
    expected_response_code: int | None
    auth_type: str
    auth_username: str
    timeout_seconds: int
    max_attempts: int
    oauth2_token_url: str = ""
    oauth2_client_id: str = ""
    oauth2_scope: str = ""
    failing_since: dt.datetime | None = None
    # Revealed secrets: the current one first, then the previous one while in its grace period.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    auth_password: str = field(default="", repr=False)
    oauth2_client_secret: str = field(default="", repr=False)
    problem: str = ""
