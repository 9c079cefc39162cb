"""SenML JSON packs (RFC 8428) resolved exactly as its section 4 says, then normalised.

`resolve()` is the RFC: base fields apply to their record and every later one until
replaced; name = bn + n and must be a valid SenML name; time = bt + t, and a resolved
time below 2**28 is relative to the moment of receipt; value = v + bv, or vs, vb, vd;
sum = s + bs; unit = u, else bu; bver above the version understood rejects the pack;
an unknown field whose label ends in `_` rejects the pack, other unknown fields are
ignored. `normalise()` turns resolved records into readings of the devices their
`urn:dev:<TYPE>:<ID>:` names identify.

One deliberate tolerance: a record made only of base fields (as the RFC's own
"setting an actuator" example and KPN Things' packs begin) carries base values, not
a measurement, so it yields no reading rather than an error. A record with any
regular field but no value and no sum is an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devices.identity import DEVICE_URN, DeviceIdentity, identity_from_urn
from ingest.errors import InvalidPack
from ingest.normalised import Parsed, ParsedReading

SENML_VERSION = 10
# Resolved times below this are seconds relative to "now" (RFC 8428 section 4.5.3).
RELATIVE_TIME_LIMIT = 2**28

# RFC 8428 section 4.5.1: letters, digits and - : . / _, starting with a letter or digit.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*\Z")
# vd is base64url without padding (RFC 8428 section 4.3, RFC 4648 section 5).
BASE64URL = re.compile(r"[A-Za-z0-9_-]*\Z")

BASE_LABELS = ("bn", "bt", "bu", "bv", "bs", "bver")
VALUE_LABELS = ("v", "vs", "vb", "vd")
REGULAR_LABELS = ("n", "u", "v", "vs", "vb", "vd", "s", "t", "ut")
KNOWN_LABELS = frozenset(BASE_LABELS + REGULAR_LABELS)

# Reading columns' limits; longer text is refused rather than cut.
MAX_READING_NAME = 200
MAX_UNIT = 32
MAX_IDENTIFIER = {"serial": 64, "imei": 32, "iccid": 32, "dev_eui": 32, "urn": 200}

KIND_OF_VALUE = {"v": "number", "vs": "string", "vb": "boolean", "vd": "data"}


def _is_number(value: Any) -> bool:
    # bool is an int in Python but never a JSON number.
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (isinstance(value, int) or math.isfinite(value))
    )


def _is_string(value: Any) -> bool:
    # PostgreSQL text cannot hold NUL, so such a string could never be stored.
    return isinstance(value, str) and "\x00" not in value


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool)


LABEL_CHECKS = {
    "bn": (_is_string, "a string (without NUL)"),
    "bt": (_is_number, "a number"),
    "bu": (_is_string, "a string (without NUL)"),
    "bv": (_is_number, "a number"),
    "bs": (_is_number, "a number"),
    "bver": (_is_number, "a number"),
    "n": (_is_string, "a string (without NUL)"),
    "u": (_is_string, "a string (without NUL)"),
    "v": (_is_number, "a number"),
    "vs": (_is_string, "a string (without NUL)"),
    "vb": (_is_boolean, "true or false"),
    "vd": (_is_string, "a string (without NUL)"),
    "s": (_is_number, "a number"),
    "t": (_is_number, "a number"),
    "ut": (_is_number, "a number"),
}


@dataclass(frozen=True, slots=True)
class ResolvedRecord:
    """A record in RFC 8428's resolved form: no base fields, an absolute time."""

    name: str
    time: float  # seconds since the Unix epoch
    unit: str
    value: float | int | str | bool | None
    value_label: str | None  # "v", "vs", "vb" or "vd"; None for a sum only
    sum: float | int | None
    update_time: float | int | None
    version: int


def _check_labels(record: dict, index: int) -> None:
    for label, value in record.items():
        if label not in KNOWN_LABELS:
            if label.endswith("_"):
                raise InvalidPack(f"record {index}: field '{label}' must be understood (it ends in '_') and is not")
            continue
        check, expected = LABEL_CHECKS[label]
        if not check(value):
            raise InvalidPack(f"record {index}: '{label}' must be {expected}")


def _version(value: Any, index: int) -> int:
    if not (isinstance(value, int) or float(value).is_integer()) or value < 1:
        raise InvalidPack(f"record {index}: 'bver' must be a positive integer")
    if value > SENML_VERSION:
        raise InvalidPack(
            f"record {index}: SenML version {int(value)} is newer than version {SENML_VERSION} understood"
        )
    return int(value)


def resolve(pack: Any, *, now: float) -> list[ResolvedRecord]:
    """RFC 8428 section 4.6: the pack's records in resolved form; `now` is the receipt time (epoch s)."""
    if not isinstance(pack, list):
        raise InvalidPack("a SenML pack must be a JSON array of records")
    if not pack:
        raise InvalidPack("the SenML pack is an empty array")
    base_name, base_time, base_unit = "", 0, ""
    base_value: float | int | None = None
    base_sum: float | int | None = None
    version = SENML_VERSION
    resolved: list[ResolvedRecord] = []
    for index, record in enumerate(pack):
        if not isinstance(record, dict):
            raise InvalidPack(f"record {index} must be a JSON object")
        _check_labels(record, index)
        # Base fields take effect in their own record and stay until replaced.
        if "bver" in record:
            version = _version(record["bver"], index)
        base_name = record.get("bn", base_name)
        base_time = record.get("bt", base_time)
        base_unit = record.get("bu", base_unit)
        base_value = record.get("bv", base_value)
        base_sum = record.get("bs", base_sum)
        if not any(label in record for label in REGULAR_LABELS):
            continue  # only base fields: it carries base values, not a measurement
        value_labels = [label for label in VALUE_LABELS if label in record]
        if len(value_labels) > 1:
            raise InvalidPack(f"record {index}: has more than one value ({', '.join(value_labels)})")
        if not value_labels and "s" not in record:
            raise InvalidPack(f"record {index}: has neither a value (v, vs, vb, vd) nor a sum (s)")
        name = base_name + record.get("n", "")
        if not NAME.match(name):
            shown = name if len(name) <= 80 else name[:80] + "…"
            raise InvalidPack(
                f"record {index}: name '{shown}' is not a valid SenML name (letters, digits and - : . / _, "
                "starting with a letter or digit)"
            )
        time = base_time + record.get("t", 0)
        if time < RELATIVE_TIME_LIMIT:
            time = now + time
        value_label = value_labels[0] if value_labels else None
        value = record.get(value_label) if value_label else None
        if value_label == "v" and base_value is not None:
            value = base_value + value
        elif value_label == "vd" and not (BASE64URL.match(value) and len(value) % 4 != 1):
            raise InvalidPack(f"record {index}: 'vd' must be base64url without padding")
        total = record.get("s")
        if total is not None and base_sum is not None:
            total = base_sum + total
        resolved.append(
            ResolvedRecord(
                name=name,
                time=time,
                unit=record.get("u", base_unit),
                value=value,
                value_label=value_label,
                sum=total,
                update_time=record.get("ut"),
                version=version,
            )
        )
    if not resolved:
        raise InvalidPack("the SenML pack has no record with a value or a sum")
    return resolved


def _timestamp(seconds: float, index: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidPack(f"record {index}: time {seconds} is out of range") from None


def normalise(records: list[ResolvedRecord]) -> Parsed:
    """Readings of the resolved records, with the devices their `urn:dev:<TYPE>:<ID>:` names identify."""
    parsed = Parsed()
    device_index: dict[DeviceIdentity, int] = {}
    for index, record in enumerate(records):
        device = None
        reading_name = record.name
        match = DEVICE_URN.match(record.name)
        if match:
            identity = identity_from_urn(match.group(1), match.group(2))
            for field_name, value in identity.create:
                if len(value) > MAX_IDENTIFIER[field_name]:
                    raise InvalidPack(
                        f"record {index}: device {field_name} is longer than {MAX_IDENTIFIER[field_name]}"
                    )
            device = device_index.get(identity)
            if device is None:
                device = device_index[identity] = len(parsed.devices)
                parsed.devices.append(identity)
            reading_name = match.group(3) or ""
        if len(reading_name) > MAX_READING_NAME:
            raise InvalidPack(f"record {index}: name is longer than {MAX_READING_NAME} characters")
        if len(record.unit) > MAX_UNIT:
            raise InvalidPack(f"record {index}: unit is longer than {MAX_UNIT} characters")
        parsed.readings.append(
            ParsedReading(
                name=reading_name,
                unit=record.unit,
                # A sum alone is still a number.
                kind=KIND_OF_VALUE[record.value_label] if record.value_label else "number",
                value=record.value,
                sum=record.sum,
                time=_timestamp(record.time, index),
                device=device,
            )
        )
    return parsed


def senml_parse(pack: Any, *, received_at: datetime) -> Parsed:
    """A decoded SenML JSON pack as readings; raises InvalidPack with the first reason it is not valid."""
    return normalise(resolve(pack, now=received_at.timestamp()))
