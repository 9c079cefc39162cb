"""What a parser makes of a body: the devices it names and the readings it holds.

Every kind's parser (SenML, Digital Matter JSON) produces a `Parsed`; the ingest service
turns it into Device and Reading rows. Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devices.identity import DeviceIdentity


@dataclass(slots=True)
class ParsedReading:
    """One normalised reading; `device` indexes `Parsed.devices` (None: the message's default device)."""

    name: str
    unit: str
    kind: str
    value: Any
    sum: float | None
    time: datetime
    device: int | None = None


@dataclass(slots=True)
class Parsed:
    devices: list[DeviceIdentity] = field(default_factory=list)
    readings: list[ParsedReading] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
