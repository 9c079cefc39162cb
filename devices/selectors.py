"""Device reads."""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db.models import Q

from devices.identity import DeviceIdentity
from devices.models import Device


def device_find(*, tenant_id: int, identity: DeviceIdentity) -> Device | None:
    """The tenant's device an identity names, trying its lookups in order, in one query."""
    condition = reduce(or_, (Q(**{name: value}) for name, value in identity.lookup))
    candidates = list(Device.objects.filter(condition, tenant_id=tenant_id)[: len(identity.lookup)])
    for name, value in identity.lookup:
        for device in candidates:
            if getattr(device, name) == value:
                return device
    return None
