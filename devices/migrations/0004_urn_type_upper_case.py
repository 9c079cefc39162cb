"""Device urns typed in the admin before it stored them as the API does.

Until then the admin kept `urn:dev:mac:…:` as typed, and messages, which look devices up
with the urn's TYPE upper-cased, never found such a device and made a second one. Each
of these urns now gets its TYPE upper-cased, unless another device of the tenant holds
that urn already (made by those very messages): those pairs are left as they are for an
admin to merge, and named in migrate's output.
"""

import re

from django.db import migrations

# devices.identity.DEVICE_URN as of this migration: urn:dev:<TYPE>:<ID>: and nothing after.
_DEVICE_URN = re.compile(r"urn:dev:([A-Za-z0-9]+):([^:]+)(?::(.*))?\Z", re.IGNORECASE | re.DOTALL)


def urns_upper_cased(apps, schema_editor) -> list[str]:
    """Upper-case the TYPE of every device urn that has a lower-case one; the urns left (held twice) are returned."""
    Device = apps.get_model("devices", "Device")
    left = []
    for device in Device.objects.filter(urn__istartswith="urn:dev:").only("id", "tenant_id", "urn").iterator():
        match = _DEVICE_URN.match(device.urn)
        if not match or match.group(3):
            continue
        canonical = f"urn:dev:{match.group(1).upper()}:{match.group(2)}:"
        if canonical == device.urn:
            continue
        holder = Device.objects.filter(tenant_id=device.tenant_id, urn=canonical).values_list("id", flat=True).first()
        if holder is not None:
            left.append(device.urn)
            # migrate's output is where the operator who upgrades reads it.
            print(
                f"\n  device {device.id}: urn {device.urn} left as it is; device {holder} of the same tenant"
                f" holds {canonical} (merge the two in the admin)"
            )
            continue
        Device.objects.filter(pk=device.pk).update(urn=canonical)
    return left


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0003_no_index_of_its_own_for_the_reading_device"),
    ]

    operations = [
        migrations.RunPython(urns_upper_cased, migrations.RunPython.noop, elidable=True),
    ]
