"""Devices on arrival: found by identifier (in order), marked seen, created once, urn by default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import devices.services
from devices.identity import DeviceIdentity, identity_from_serial, identity_from_urn
from devices.models import Device
from devices.services import DeviceConflict, device_create, device_for_identifiers, device_seen, device_update

NOW = timezone.now()


def test_a_device_is_found_by_its_identifier_and_marked_seen(acme):
    device = Device.objects.create(tenant=acme, dev_eui="0059AC00001A2B3C")
    found, created = device_for_identifiers(
        tenant_id=acme.pk, identity=identity_from_urn("DEVEUI", "0059ac00001a2b3c"), auto_create=False, seen_at=NOW
    )
    assert (found.pk, created) == (device.pk, False)
    device.refresh_from_db()
    assert device.last_seen_at == NOW


def test_last_seen_never_moves_back(acme):
    device = Device.objects.create(tenant=acme, serial="SN-1", last_seen_at=NOW)
    device_seen(tenant_id=acme.pk, identity=identity_from_serial("SN-1"), seen_at=NOW - timedelta(hours=1))
    device.refresh_from_db()
    assert device.last_seen_at == NOW


def test_lookups_are_tried_in_order(acme):
    by_serial = Device.objects.create(tenant=acme, serial="117554")
    Device.objects.create(tenant=acme, imei="353785720001234")
    identity = DeviceIdentity(lookup=(("serial", "117554"), ("imei", "353785720001234")), create=())
    assert device_seen(tenant_id=acme.pk, identity=identity, seen_at=NOW).pk == by_serial.pk
    reversed_identity = DeviceIdentity(lookup=(("imei", "353785720001234"), ("serial", "117554")), create=())
    assert device_seen(tenant_id=acme.pk, identity=reversed_identity, seen_at=NOW).pk != by_serial.pk


def test_only_the_tenants_own_devices_are_found(acme, globex):
    Device.objects.create(tenant=globex, serial="SN-1")
    assert device_seen(tenant_id=acme.pk, identity=identity_from_serial("SN-1"), seen_at=NOW) is None


def test_an_unknown_device_is_created_with_its_identifiers_and_urn(acme):
    device, created = device_for_identifiers(
        tenant_id=acme.pk, identity=identity_from_urn("imei", "351234567890123"), auto_create=True, seen_at=NOW
    )
    assert created and (device.imei, device.urn, device.last_seen_at) == (
        "351234567890123",
        "urn:dev:IMEI:351234567890123:",
        NOW,
    )


def test_an_unknown_device_is_not_created_when_the_connection_says_so(acme):
    assert device_for_identifiers(
        tenant_id=acme.pk, identity=identity_from_serial("SN-1"), auto_create=False, seen_at=NOW
    ) == (None, False)
    assert Device.objects.count() == 0


def test_a_device_created_meanwhile_by_another_message_is_found_not_duplicated(acme, monkeypatch):
    # Given: the lookup misses a device another request creates just before our insert.
    real = devices.services.device_seen
    calls = []

    def racing(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            Device.objects.create(tenant=acme, serial="SN-1")  # the other request wins
            return None
        return real(**kwargs)

    monkeypatch.setattr(devices.services, "device_seen", racing)
    device, created = device_for_identifiers(
        tenant_id=acme.pk, identity=identity_from_serial("SN-1"), auto_create=True, seen_at=NOW
    )
    assert not created and Device.objects.get().pk == device.pk


def test_a_new_device_clashing_with_another_devices_identifier_is_a_conflict(acme):
    Device.objects.create(tenant=acme, iccid="89314404000123456789")
    identity = DeviceIdentity(
        lookup=(("serial", "117554"),), create=(("serial", "117554"), ("iccid", "89314404000123456789"))
    )
    with pytest.raises(DeviceConflict, match="share an identifier"):
        device_for_identifiers(tenant_id=acme.pk, identity=identity, auto_create=True, seen_at=NOW)


@pytest.mark.parametrize(
    ("fields", "urn"),
    [
        ({"serial": "S", "imei": "351234567890123", "dev_eui": "0059ac00001a2b3c"}, "urn:dev:DEVEUI:0059AC00001A2B3C:"),
        ({"serial": "S", "imei": "351234567890123"}, "urn:dev:IMEI:351234567890123:"),
        ({"serial": "S", "iccid": "89314404000123456789"}, "urn:dev:SERIAL:S:"),
        ({"iccid": "89314404000123456789"}, "urn:dev:ICCID:89314404000123456789:"),
    ],
)
def test_a_device_without_urn_is_named_by_the_first_of_dev_eui_imei_serial_iccid(acme, fields, urn):
    assert device_create(tenant=acme, **fields).urn == urn


def test_updating_custom_fields_keeps_everything_else(acme):
    device = device_create(tenant=acme, serial="S", custom2="keep")
    device_update(device=device, custom1="plant-7", custom3="x")
    device.refresh_from_db()
    assert (device.custom1, device.custom2, device.custom3, device.urn) == ("plant-7", "keep", "x", "urn:dev:SERIAL:S:")
