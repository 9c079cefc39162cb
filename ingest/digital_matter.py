"""Digital Matter OEM Server JSON (HTTP connector) mapped to readings.

The body is an object with `SerNo`, `IMEI`, `ICCID`, `ProdId`, `FW` and `Records`;
each record has `SeqNo`, `Reason`, `DateUTC` and `Fields`, each field an object with
an `FType`. GPS (0), digital (2) and analogue (6) fields become readings; any other
FType stays in the raw message and is reported as skipped, never fatal.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from devices.identity import DeviceIdentity
from ingest.errors import InvalidPack
from ingest.normalised import Parsed, ParsedReading

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

FTYPE_GPS = 0
FTYPE_DIGITAL = 2
FTYPE_ANALOGUE = 6

# (payload key, reading name, unit)
GPS_READINGS = (
    ("Lat", "latitude", "lat"),
    ("Long", "longitude", "lon"),
    ("Alt", "altitude", "m"),
    ("Spd", "speed", "km/h"),
    ("Head", "heading", "deg"),
    ("PosAcc", "position_accuracy", "m"),
)
DIGITAL_READINGS = (
    ("DIn", "digital_in", ""),
    ("DOut", "digital_out", ""),
    ("DevStat", "device_status", ""),
)

MAX_IDENTIFIER = {"serial": 64, "imei": 32, "iccid": 32}


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidPack(f"{where} must be a number")
    return value


def _date(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidPack(f"{where} must be a date 'YYYY-MM-DD HH:MM:SS' (UTC)")
    try:
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidPack(f"{where} '{value[:40]}' is not a date 'YYYY-MM-DD HH:MM:SS' (UTC)") from None


def _identifier(document: dict, key: str, field_name: str) -> str:
    value = document.get(key)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidPack(f"'{key}' must be a string or an integer")
    text = str(value).strip()
    if "\x00" in text:
        raise InvalidPack(f"'{key}' holds a NUL character")
    if len(text) > MAX_IDENTIFIER[field_name]:
        raise InvalidPack(f"'{key}' is longer than {MAX_IDENTIFIER[field_name]} characters")
    return text


def device_identity(document: Any, *, serial_in_url: str = "") -> DeviceIdentity | None:
    """The device a payload comes from: found by SerNo as serial, then by IMEI; None when it names none."""
    if not isinstance(document, dict):
        return None
    serial = _identifier(document, "SerNo", "serial") or serial_in_url
    imei = _identifier(document, "IMEI", "imei")
    iccid = _identifier(document, "ICCID", "iccid")
    lookup = tuple((name, value) for name, value in (("serial", serial), ("imei", imei)) if value)
    if not lookup:
        return None
    create = tuple((name, value) for name, value in (("serial", serial), ("imei", imei), ("iccid", iccid)) if value)
    return DeviceIdentity(lookup=lookup, create=create)


def _field_readings(field: dict, time: datetime, where: str, parsed: Parsed) -> None:
    ftype = field.get("FType")
    if ftype == FTYPE_GPS:
        if "GpsUTC" in field:
            time = _date(field["GpsUTC"], f"{where} GpsUTC")
        pairs = GPS_READINGS
    elif ftype == FTYPE_DIGITAL:
        pairs = DIGITAL_READINGS
    elif ftype == FTYPE_ANALOGUE:
        channels = field.get("AnalogueData", {})
        if not isinstance(channels, dict):
            raise InvalidPack(f"{where} AnalogueData must be an object of channel numbers")
        for channel, raw in channels.items():
            value = _number(raw, f"{where} AnalogueData {channel}")
            parsed.readings.append(
                ParsedReading(name=f"analogue_{channel}", unit="", kind="number", value=value, sum=None, time=time)
            )
        return
    else:
        parsed.skipped.append(f"{where}: FType {ftype} is not mapped")
        return
    for key, name, unit in pairs:
        if key in field:
            value = _number(field[key], f"{where} {key}")
            parsed.readings.append(ParsedReading(name=name, unit=unit, kind="number", value=value, sum=None, time=time))


def digital_matter_parse(document: Any, *, serial_in_url: str = "") -> Parsed:
    """A decoded Digital Matter payload as readings of one device; raises InvalidPack when malformed."""
    if not isinstance(document, dict):
        raise InvalidPack("a Digital Matter payload must be a JSON object")
    records = document.get("Records")
    if not isinstance(records, list):
        raise InvalidPack("'Records' must be an array")
    if not records:
        raise InvalidPack("'Records' is empty")
    identity = device_identity(document, serial_in_url=serial_in_url)
    if identity is None:
        raise InvalidPack("the payload names no device (no SerNo or IMEI, and no serial in the URL)")
    parsed = Parsed(devices=[identity])
    for index, record in enumerate(records):
        where = f"record {index}"
        if not isinstance(record, dict):
            raise InvalidPack(f"{where} must be an object")
        time = _date(record.get("DateUTC"), f"{where} DateUTC")
        fields = record.get("Fields", [])
        if not isinstance(fields, list):
            raise InvalidPack(f"{where} 'Fields' must be an array")
        for position, field in enumerate(fields):
            field_where = f"{where} field {position}"
            if not isinstance(field, dict) or "FType" not in field:
                raise InvalidPack(f"{field_where} must be an object with an FType")
            _field_readings(field, time, field_where, parsed)
    for reading in parsed.readings:
        reading.device = 0
    return parsed
