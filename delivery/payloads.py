"""The body a destination receives for one message: compact SenML or the pinned JSON.

Both are built once per message and format and signed as those exact bytes.

SenML (RFC 8428): the first record carries `bn` (the device's urn) and `bt` (the first
reading's time, seconds since the epoch); each record has `n`, `u` when set, `t`
relative to `bt` when not zero, its value as `v`/`vs`/`vb`/`vd` by kind, and `s` for a
sum. Resolving the pack gives exactly the message's readings. Times are exact to the
microsecond (the portal stores no finer), so a receiver rounding to microseconds gets
each stored time back.

JSON: `{"message_id", "device": {"id", "serial", "imei", "iccid", "dev_eui",
"custom1", "custom2", "custom3"}, "received_at", "readings": [{"name", "unit",
"value", "sum", "time"}]}` with times in ISO 8601 UTC.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from delivery.snapshot import MessageData, ReadingData

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MICROSECOND = dt.timedelta(microseconds=1)
VALUE_KEYS = {"number": "v", "string": "vs", "boolean": "vb", "data": "vd"}


def _compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _seconds(microseconds: int) -> int | float:
    whole, rest = divmod(microseconds, 1_000_000)
    return whole if rest == 0 else microseconds / 1_000_000


def _value_key(reading: ReadingData) -> str | None:
    if reading.value is None:
        return None
    if reading.kind in VALUE_KEYS:
        return VALUE_KEYS[reading.kind]
    if isinstance(reading.value, bool):
        return "vb"
    return "vs" if isinstance(reading.value, str) else "v"


def senml_body(message: MessageData) -> bytes:
    records: list[dict[str, Any]] = []
    if not message.readings:
        return b"[]"
    base_us = (message.readings[0].time - EPOCH) // ONE_MICROSECOND
    for index, reading in enumerate(message.readings):
        record: dict[str, Any] = {}
        if index == 0:
            if message.device is not None and message.device.urn:
                record["bn"] = message.device.urn
            record["bt"] = _seconds(base_us)
        record["n"] = reading.name
        if reading.unit:
            record["u"] = reading.unit
        offset = (reading.time - EPOCH) // ONE_MICROSECOND - base_us
        if offset:
            record["t"] = _seconds(offset)
        key = _value_key(reading)
        if key is not None:
            record[key] = reading.value
        if reading.sum is not None:
            record["s"] = reading.sum
        records.append(record)
    return _compact(records)


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def json_body(message: MessageData) -> bytes:
    device = message.device
    document = {
        "message_id": str(message.id),
        "device": None
        if device is None
        else {
            "id": device.id,
            "serial": device.serial,
            "imei": device.imei,
            "iccid": device.iccid,
            "dev_eui": device.dev_eui,
            "custom1": device.custom1,
            "custom2": device.custom2,
            "custom3": device.custom3,
        },
        "received_at": iso_utc(message.received_at),
        "readings": [
            {"name": r.name, "unit": r.unit, "value": r.value, "sum": r.sum, "time": iso_utc(r.time)}
            for r in message.readings
        ],
    }
    return _compact(document)


BODY_BUILDERS = {"senml": senml_body, "json": json_body}


def payload_build(*, message: MessageData, payload_format: str) -> bytes:
    return BODY_BUILDERS[payload_format](message)
