"""The rules a device's identifiers must meet when saved: the format of each, that no
other device of the tenant has it, and that the device has one at all. The API serializer,
the portal's device form and the admin's call this and word the answer for their readers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from devices.identity import DEVICE_URN, URN_TYPE_FIELDS, canonical_urn, identifier_error, normalise_identifier
from devices.models import IDENTIFIER_FIELDS, Device
from portal.models import Tenant

# The problem of an identifier another device of the tenant already has.
TAKEN = "taken"

# The fields a device is found by: its identifiers and its urn.
IDENTITY_FIELDS = (*IDENTIFIER_FIELDS, "urn")

_LABELS = [str(Device._meta.get_field(name).verbose_name) for name in IDENTIFIER_FIELDS]
_ONE_OF = f"at least one of {', '.join(_LABELS[:-1])} or {_LABELS[-1]}"
# The answer to a device without an identity (see device_has_identity).
NO_IDENTIFIER = f"Give the device {_ONE_OF}."
# The same, where the urn is edited too (the admin).
NO_IDENTITY = f"Give the device {_ONE_OF}, or a URN of another type (such as urn:dev:MAC:…:)."


@dataclass(frozen=True)
class IdentifiersChecked:
    """Each identifier given, normalised; or why not: a format rule ("must be …") or TAKEN."""

    normalised: dict[str, str]
    problems: dict[str, str]


def device_identifiers_check(
    *, tenant: Tenant, values: Mapping[str, str | None], device: Device | None = None
) -> IdentifiersChecked:
    """Check the identifiers (and a canonical urn) in `values`; empty ones are skipped.

    `device` is the one being changed, which may keep its own identifiers.
    """
    normalised: dict[str, str] = {}
    problems: dict[str, str] = {}
    others = Device.objects.filter(tenant=tenant)
    if device is not None and device.pk is not None:
        others = others.exclude(pk=device.pk)
    for name, value in values.items():
        if not value:
            continue
        if name in IDENTIFIER_FIELDS:
            problem = identifier_error(name, value)
            if problem:
                problems[name] = problem
                continue
            value = normalise_identifier(name, value)
        normalised[name] = value
        if others.filter(**{name: value}).exists():
            problems[name] = TAKEN
    return IdentifiersChecked(normalised=normalised, problems=problems)


def device_has_identity(values: Mapping[str, str | None]) -> bool:
    """Whether a device with these fields can be found by a message: it has an identifier, or
    a `urn` of a TYPE no identifier stands for (KPN's MAC, DVNUUID, …).

    A urn:dev:SERIAL:… (or IMEI, ICCID, DEVEUI) urn does not count: messages naming it
    look the device up by that field.
    """
    if any(values.get(name) for name in IDENTIFIER_FIELDS):
        return True
    match = DEVICE_URN.match(values.get("urn") or "")
    return bool(match) and match.group(1).upper() not in URN_TYPE_FIELDS


def device_identity_refused(
    *, values: Mapping[str, str | None], device: Device | None = None, malformed: Collection[str]
) -> bool:
    """Whether a save leaving `device` (None or unsaved: a new one) with these identity fields
    must be refused: it has no identity (device_has_identity) and is new or changes them.

    `values` are all of IDENTITY_FIELDS as they would be saved. `malformed` names the fields
    whose given value was refused for a reason of its own (a form's errors will do): a form
    drops such a value, so it would look like none was given, and "give one" would be
    answered to a user who did. A device stored without an identity (before the rule)
    keeps being editable: refusing a change of its name would not give it one, while a
    change of its identifiers must.
    """
    if any(name in malformed for name in IDENTITY_FIELDS):
        return False
    if device_has_identity(values):
        return False
    if device is None or device.pk is None:
        return True
    return any((values.get(name) or "") != (getattr(device, name) or "") for name in IDENTITY_FIELDS)


# The answer to a urn that is not one (see urn_canonical).
URN_FORMAT = "Must be urn:dev:<TYPE>:<ID>: (ending with the colon)."


def urn_canonical(value: str) -> str | None:
    """A device urn as stored (its TYPE upper-cased, as messages are looked up), or None
    when `value` is not urn:dev:<TYPE>:<ID>: (URN_FORMAT)."""
    match = DEVICE_URN.match(value)
    if not match or match.group(3):
        return None
    return canonical_urn(match.group(1), match.group(2))
