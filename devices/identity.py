"""How messages name devices: identifiers to find one by, and the URN form devices are named by in SenML."""

from __future__ import annotations

import re
from dataclasses import dataclass

# urn:dev:<TYPE>:<ID>: — TYPE is case-insensitive; what follows the ID's colon is the reading's name.
DEVICE_URN = re.compile(r"urn:dev:([A-Za-z0-9]+):([^:]+)(?::(.*))?\Z", re.IGNORECASE | re.DOTALL)

# SenML URN types that match the device field of the same name; any other type matches `urn`.
URN_TYPE_FIELDS = {"DEVEUI": "dev_eui", "IMEI": "imei", "ICCID": "iccid", "SERIAL": "serial"}
# The identifier a device's default URN is made from, first present wins.
URN_SOURCE_FIELDS = (("dev_eui", "DEVEUI"), ("imei", "IMEI"), ("serial", "SERIAL"), ("iccid", "ICCID"))


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """How a message names its device.

    `lookup` are (field, value) pairs tried in order to find an existing device;
    `create` are the fields a new device gets when none is found.
    """

    lookup: tuple[tuple[str, str], ...]
    create: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in self.lookup)


def canonical_urn(urn_type: str, device_id: str) -> str:
    """The device URN as stored: TYPE in upper case (it is case-insensitive), the ID as sent."""
    return f"urn:dev:{urn_type.upper()}:{device_id}:"


def normalise_identifier(name: str, value: str) -> str:
    # DevEUIs are hex; senders differ in case, so one form is stored and looked up.
    return value.upper() if name == "dev_eui" else value


def default_urn(fields: dict) -> str:
    """`urn:dev:<TYPE>:<ID>:` from the first of dev_eui, imei, serial, iccid that is set; '' when none is."""
    for name, urn_type in URN_SOURCE_FIELDS:
        if fields.get(name):
            return canonical_urn(urn_type, fields[name])
    return ""


def identity_from_urn(urn_type: str, device_id: str) -> DeviceIdentity:
    """The identity a `urn:dev:<TYPE>:<ID>:` names: a device field for known TYPEs, else the urn."""
    field_name = URN_TYPE_FIELDS.get(urn_type.upper())
    if field_name is None:
        urn = canonical_urn(urn_type, device_id)
        return DeviceIdentity(lookup=(("urn", urn),), create=(("urn", urn),))
    value = normalise_identifier(field_name, device_id)
    return DeviceIdentity(
        lookup=((field_name, value),), create=((field_name, value), ("urn", canonical_urn(urn_type, value)))
    )


def identity_from_serial(serial: str) -> DeviceIdentity:
    return DeviceIdentity(lookup=(("serial", serial),), create=(("serial", serial),))


_IDENTIFIER_RULES = {
    "serial": (re.compile(r"[^\s/]{1,64}\Z"), "1 to 64 characters without spaces or '/'"),
    "imei": (re.compile(r"[0-9]{14,16}\Z"), "14 to 16 digits"),
    "iccid": (re.compile(r"[0-9]{18,21}[0-9Ff]?\Z"), "18 to 22 digits (the last may be F)"),
    "dev_eui": (re.compile(r"[0-9A-Fa-f]{16}\Z"), "16 hexadecimal digits"),
}


def identifier_error(name: str, value: str) -> str | None:
    """Why `value` is not a valid identifier of that name, or None when it is."""
    pattern, rule = _IDENTIFIER_RULES[name]
    return None if pattern.match(value) else f"must be {rule}"
