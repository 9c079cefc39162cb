"""The devices/ API resource: identifiers, CUSTOM1-3, write-only auth_key, filters."""

from __future__ import annotations

import pytest

from devices.models import Device
from portal.models import SecretAuditLog

KEY = "Device-Key-0123456789abcdef"


def test_a_device_created_without_a_urn_is_named_by_its_first_identifier(bob, api_as):
    response = api_as(bob).post("/api/v1/devices/", {"serial": "SN-1", "imei": "353785720001234"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["urn"] == "urn:dev:IMEI:353785720001234:"


def test_the_auth_key_is_write_only_and_said_to_be_set(bob, api_as):
    client = api_as(bob)
    created = client.post("/api/v1/devices/", {"serial": "SN-1", "auth_key": KEY}, format="json")
    assert created.status_code == 201
    assert "auth_key" not in created.json() and created.json()["auth_key_set"] is True
    assert KEY not in created.content.decode() + client.get("/api/v1/devices/").content.decode()
    device = Device.objects.get()
    assert device.auth_key.reveal() == KEY
    assert SecretAuditLog.objects.filter(field="auth_key", object_id=str(device.pk)).count() == 1


def test_a_device_without_a_key_says_so(bob, api_as):
    assert api_as(bob).post("/api/v1/devices/", {"serial": "SN-1"}, format="json").json()["auth_key_set"] is False


def test_an_empty_auth_key_clears_it(bob, api_as):
    client = api_as(bob)
    device_id = client.post("/api/v1/devices/", {"serial": "SN-1", "auth_key": KEY}, format="json").json()["id"]
    assert (
        client.patch(f"/api/v1/devices/{device_id}/", {"auth_key": ""}, format="json").json()["auth_key_set"] is False
    )
    assert Device.objects.get().auth_key is None


def test_a_short_auth_key_is_refused(bob, api_as):
    response = api_as(bob).post("/api/v1/devices/", {"serial": "SN-1", "auth_key": "short"}, format="json")
    assert response.status_code == 400 and "auth_key" in response.json()


def test_an_editor_patches_custom_fields(bob, api_as, acme):
    device = Device.objects.create(tenant=acme, serial="SN-1", urn="urn:dev:SERIAL:SN-1:")
    response = api_as(bob).patch(
        f"/api/v1/devices/{device.pk}/", {"custom1": "plant-7", "custom2": "line 3", "custom3": "€ ok"}, format="json"
    )
    assert response.status_code == 200
    device.refresh_from_db()
    assert (device.custom1, device.custom2, device.custom3) == ("plant-7", "line 3", "€ ok")


def test_a_viewer_cannot_patch_custom_fields(vera, api_as, acme):
    device = Device.objects.create(tenant=acme, serial="SN-1")
    assert api_as(vera).patch(f"/api/v1/devices/{device.pk}/", {"custom1": "x"}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"serial": "SN-1", "custom1": "x" * 256}, "custom1"),
        ({"imei": "35378572000123A"}, "imei"),
        ({"iccid": "8931"}, "iccid"),
        ({"dev_eui": "0059AC00001A2B3"}, "dev_eui"),
        ({"serial": "has space"}, "serial"),
        ({"serial": "SN-1", "urn": "urn:dev:IMEI:1:extra"}, "urn"),
        ({"serial": "SN-1", "tags": "not-a-list"}, "tags"),
    ],
)
def test_invalid_fields_are_reported_field_by_field(bob, api_as, fields, field):
    response = api_as(bob).post("/api/v1/devices/", fields, format="json")
    assert response.status_code == 400 and field in response.json()
    assert "non_field_errors" not in response.json()


def test_an_identifier_is_unique_within_a_tenant_only(bob, charlie, api_as, acme, globex):
    Device.objects.create(tenant=acme, serial="SN-1")
    Device.objects.create(tenant=globex, serial="SN-2")
    response = api_as(bob).post("/api/v1/devices/", {"serial": "SN-1"}, format="json")
    assert response.status_code == 400 and "serial" in response.json()
    assert api_as(bob).post("/api/v1/devices/", {"serial": "SN-2"}, format="json").status_code == 201


def test_dev_eui_is_stored_in_upper_case(bob, api_as):
    assert (
        api_as(bob).post("/api/v1/devices/", {"dev_eui": "0059ac00001a2b3c"}, format="json").json()["dev_eui"]
        == "0059AC00001A2B3C"
    )


def test_devices_filter_by_identifiers_and_tag(vera, api_as, acme):
    a = Device.objects.create(tenant=acme, serial="SN-1", imei="353785720001234", tags=["north", "pump"])
    b = Device.objects.create(
        tenant=acme, serial="SN-2", iccid="89314404000123456789", dev_eui="0059AC00001A2B3C", tags=["south"]
    )
    client = api_as(vera)

    def ids(query: str) -> list[int]:
        return [d["id"] for d in client.get(f"/api/v1/devices/?{query}").json()["results"]]

    assert ids("serial=SN-2") == [b.pk]
    assert ids("imei=353785720001234") == [a.pk]
    assert ids("iccid=89314404000123456789") == [b.pk]
    assert ids("dev_eui=0059AC00001A2B3C") == [b.pk]
    assert ids("tag=pump") == [a.pk]
    assert ids("tag=pum") == []


def test_last_seen_is_not_writable(bob, api_as, acme):
    device = Device.objects.create(tenant=acme, serial="SN-1")
    api_as(bob).patch(f"/api/v1/devices/{device.pk}/", {"last_seen_at": "2020-01-01T00:00:00Z"}, format="json")
    device.refresh_from_db()
    assert device.last_seen_at is None


@pytest.mark.parametrize("fields", [{"name": "pump 7", "custom1": "plant-7"}, {"serial": "", "imei": "", "urn": ""}])
def test_a_device_without_any_identifier_is_refused_naming_the_identifiers_to_give(bob, api_as, fields):
    response = api_as(bob).post("/api/v1/devices/", fields, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Give the device at least one of serial, IMEI, ICCID or DevEUI."]}
    assert not Device.objects.exists()


def test_a_device_named_only_by_a_urn_messages_look_it_up_by_is_accepted(bob, api_as):
    client = api_as(bob)

    named = client.post("/api/v1/devices/", {"urn": "urn:dev:mac:0024befffe804ff1:"}, format="json")
    # A SERIAL (IMEI, ICCID, DEVEUI) urn is looked up by that field, which this device would lack.
    unnamed = client.post("/api/v1/devices/", {"urn": "urn:dev:SERIAL:SN-1:"}, format="json")

    assert named.status_code == 201 and named.json()["urn"] == "urn:dev:MAC:0024befffe804ff1:"
    assert unnamed.status_code == 400 and "non_field_errors" in unnamed.json()


def test_a_patch_cannot_blank_the_last_identifier(bob, api_as):
    client = api_as(bob)
    device_id = client.post("/api/v1/devices/", {"serial": "SN-1", "imei": "353785720001234"}, format="json").json()[
        "id"
    ]

    assert client.patch(f"/api/v1/devices/{device_id}/", {"serial": ""}, format="json").status_code == 200
    response = client.patch(f"/api/v1/devices/{device_id}/", {"imei": ""}, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Give the device at least one of serial, IMEI, ICCID or DevEUI."]}
    device = Device.objects.get()
    assert (device.serial, device.imei, device.urn) == ("", "353785720001234", "urn:dev:IMEI:353785720001234:")


def test_a_device_created_by_its_first_message_with_only_a_urn_can_be_patched(bob, api_as, acme):
    device = Device.objects.create(tenant=acme, urn="urn:dev:DVNUUID:6a1b2c3d:")

    response = api_as(bob).patch(f"/api/v1/devices/{device.pk}/", {"custom1": "plant-7"}, format="json")

    assert response.status_code == 200, response.json()
    device.refresh_from_db()
    assert device.custom1 == "plant-7"


@pytest.mark.parametrize("fields", [{"name": "pump 7"}, {"custom1": "plant-7"}, {"serial": "", "custom1": "plant-7"}])
def test_a_device_stored_without_an_identifier_can_be_patched_when_its_identifiers_stay_as_they_are(
    bob, api_as, acme, fields
):
    # Stored before the rule existed: refusing an unrelated change would not give it an identity.
    device = Device.objects.create(tenant=acme)

    response = api_as(bob).patch(f"/api/v1/devices/{device.pk}/", fields, format="json")

    assert response.status_code == 200, response.json()
    device.refresh_from_db()
    assert {name: getattr(device, name) for name in fields} == fields


def test_a_device_stored_without_an_identifier_can_be_put_back_as_it_was_read(bob, api_as, acme):
    device = Device.objects.create(tenant=acme, name="pump 7")
    client = api_as(bob)
    representation = client.get(f"/api/v1/devices/{device.pk}/").json()

    response = client.put(f"/api/v1/devices/{device.pk}/", {**representation, "custom1": "plant-7"}, format="json")

    assert response.status_code == 200, response.json()
    device.refresh_from_db()
    assert device.custom1 == "plant-7"


def test_a_change_to_the_identifiers_of_a_device_stored_without_one_must_give_it_one(bob, api_as, acme):
    device = Device.objects.create(tenant=acme, urn="urn:dev:SERIAL:SN-1:")
    client = api_as(bob)

    # A SERIAL urn is looked up by the serial field, which the device still lacks.
    still_none = client.patch(f"/api/v1/devices/{device.pk}/", {"urn": "urn:dev:SERIAL:SN-2:"}, format="json")
    given = client.patch(f"/api/v1/devices/{device.pk}/", {"serial": "SN-2"}, format="json")

    assert still_none.status_code == 400
    assert still_none.json() == {"non_field_errors": ["Give the device at least one of serial, IMEI, ICCID or DevEUI."]}
    assert given.status_code == 200
    device.refresh_from_db()
    assert (device.serial, device.urn) == ("SN-2", "urn:dev:SERIAL:SN-1:")
