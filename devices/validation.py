"""The rules a device's identifiers must meet when saved: the format of each, and that no
other device of the tenant has it. The API serializer and the portal's device form call
this and word the answer for their readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devices.identity import identifier_error, normalise_identifier
from devices.models import IDENTIFIER_FIELDS, Device
from portal.models import Tenant

# The problem of an identifier another device of the tenant already has.
TAKEN = "taken"


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
