"""The Django admin of devices (an identity required, CUSTOM1-3 editable in the list, key write-only) and readings."""

from __future__ import annotations

import pytest

from devices.models import Device, Reading
from ingest.services import message_ingest
from portal.secrets import Actor, secret_set
from tests.ingest.conftest import kpn_headers, senml
from tests.ingest.test_isolation import make_connection

KEY = "Device-Key-0123456789abcdef"


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_custom_fields_are_edited_in_the_device_list(staff_client, acme):
    device = Device.objects.create(tenant=acme, serial="SN-1")
    form = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": device.pk,
        "form-0-custom1": "plant-7",
        "form-0-custom2": "line 3",
        "form-0-custom3": "",
        "_save": "Save",
    }
    response = staff_client.post("/admin/devices/device/", form)
    assert response.status_code == 302
    device.refresh_from_db()
    assert (device.custom1, device.custom2) == ("plant-7", "line 3")


def test_devices_are_found_by_any_identifier_or_custom_field(staff_client, acme):
    Device.objects.create(tenant=acme, serial="SN-1", custom2="find-me")
    Device.objects.create(tenant=acme, serial="SN-2")
    page = staff_client.get("/admin/devices/device/?q=find-me").content.decode()
    assert "SN-1" in page and "SN-2" not in page


def test_the_device_key_is_never_shown_and_is_set_write_only(staff_client, acme):
    device = Device.objects.create(tenant=acme, serial="SN-1")
    secret_set(obj=device, field="auth_key", value=KEY, actor=Actor(label="t"))
    device.refresh_from_db()
    page = staff_client.get(f"/admin/devices/device/{device.pk}/change/").content.decode()
    assert KEY not in page and device.auth_key.token not in page
    form = {"tenant": acme.pk, "serial": "SN-1", "tags": "[]", "new_auth_key": "Another-Key-0123456789abc"}
    assert staff_client.post(f"/admin/devices/device/{device.pk}/change/", form).status_code == 302
    device.refresh_from_db()
    assert device.auth_key.reveal() == "Another-Key-0123456789abc"


def test_a_device_added_in_the_admin_gets_its_urn(staff_client, acme):
    form = {"tenant": acme.pk, "dev_eui": "0059ac00001a2b3c", "tags": "[]"}
    response = staff_client.post("/admin/devices/device/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Device.objects.get().urn == "urn:dev:DEVEUI:0059AC00001A2B3C:"


def test_an_invalid_identifier_is_refused_in_the_admin(staff_client, acme):
    response = staff_client.post("/admin/devices/device/add/", {"tenant": acme.pk, "imei": "12", "tags": "[]"})
    assert response.status_code == 200 and "14 to 16 digits" in response.content.decode()
    assert NO_IDENTITY not in response.content.decode()
    assert Device.objects.count() == 0


def test_readings_are_read_only(staff_client, acme):
    body = senml({"n": "temperature", "v": 21.5})
    message_ingest(connection=make_connection(acme), body=body, headers=kpn_headers(body))
    reading = Reading.objects.get()
    assert staff_client.get("/admin/devices/reading/").status_code == 200
    page = staff_client.get(f"/admin/devices/reading/{reading.pk}/change/").content.decode()
    assert "temperature" in page and 'name="_save"' not in page
    assert staff_client.get("/admin/devices/reading/add/").status_code == 403


NO_IDENTITY = "Give the device at least one of serial, IMEI, ICCID or DevEUI, or a URN of another type"


def test_a_device_without_any_identifier_is_refused_in_the_admin(staff_client, acme):
    form = {"tenant": acme.pk, "name": "pump 7", "custom1": "plant-7", "tags": "[]"}

    response = staff_client.post("/admin/devices/device/add/", form)

    assert response.status_code == 200 and NO_IDENTITY in response.content.decode()
    assert not Device.objects.exists()


@pytest.mark.parametrize(
    ("urn", "saved"),
    [
        ("urn:dev:MAC:0024befffe804ff1:", True),
        # Messages naming urn:dev:SERIAL:SN-1: look up the serial field, which this device would lack.
        ("urn:dev:SERIAL:SN-1:", False),
    ],
)
def test_a_device_named_only_by_a_urn_is_saved_in_the_admin_when_messages_look_it_up_by_that_urn(
    staff_client, acme, urn, saved
):
    response = staff_client.post("/admin/devices/device/add/", {"tenant": acme.pk, "urn": urn, "tags": "[]"})

    assert (response.status_code == 302) is saved
    assert Device.objects.filter(urn=urn).exists() is saved


def test_a_urn_typed_in_lower_case_is_stored_as_messages_name_it_and_their_device_is_found(staff_client, acme):
    response = staff_client.post(
        "/admin/devices/device/add/", {"tenant": acme.pk, "urn": "urn:dev:mac:0024befffe804ff1:", "tags": "[]"}
    )
    assert response.status_code == 302
    device = Device.objects.get()
    assert device.urn == "urn:dev:MAC:0024befffe804ff1:"

    body = senml({"n": "temperature", "v": 20}, device="urn:dev:MAC:0024befffe804ff1:")
    message_ingest(connection=make_connection(acme), body=body, headers=kpn_headers(body))

    assert Device.objects.count() == 1
    assert Reading.objects.get().device_id == device.pk


@pytest.mark.parametrize("urn", ["dev:MAC:0024befffe804ff1:", "urn:dev:MAC:00:24:be:", "urn:dev:MAC::"])
def test_a_urn_that_is_not_one_is_refused_in_the_admin_beside_its_field(staff_client, acme, urn):
    response = staff_client.post(
        "/admin/devices/device/add/", {"tenant": acme.pk, "serial": "SN-1", "urn": urn, "tags": "[]"}
    )

    assert response.status_code == 200
    assert "Must be urn:dev:&lt;TYPE&gt;:&lt;ID&gt;: (ending with the colon)." in response.content.decode()
    assert not Device.objects.exists()


def test_blanking_the_last_identifier_is_refused_in_the_admin(staff_client, acme):
    device = Device.objects.create(tenant=acme, serial="SN-1")

    response = staff_client.post(f"/admin/devices/device/{device.pk}/change/", {"tenant": acme.pk, "tags": "[]"})

    assert response.status_code == 200 and NO_IDENTITY in response.content.decode()
    device.refresh_from_db()
    assert device.serial == "SN-1"


def test_a_device_stored_without_an_identifier_keeps_being_editable_in_the_admin(staff_client, acme):
    # Stored before the rule existed: refusing an unrelated change would not give it an identity.
    device = Device.objects.create(tenant=acme, name="pump 7")
    form = {"tenant": acme.pk, "name": "pump 7", "custom1": "plant-7", "tags": "[]"}

    response = staff_client.post(f"/admin/devices/device/{device.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    device.refresh_from_db()
    assert device.custom1 == "plant-7"
