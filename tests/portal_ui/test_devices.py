"""Devices: CUSTOM1-3 and tags edited by editors, identifiers checked, CSV import with a report per row."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from devices.models import Device


@pytest.mark.django_db
def test_an_editor_sets_custom_fields_and_tags(acme_data, bob, page_as):
    device = acme_data.device
    response = page_as(bob).post(
        f"/devices/{device.pk}/edit/",
        {
            "serial": device.serial,
            "custom1": "site-amsterdam",
            "custom2": "contract 17",
            "custom3": "",
            "tags": "pumps, north, pumps",
        },
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert (device.custom1, device.custom2, device.custom3) == ("site-amsterdam", "contract 17", "")
    assert device.tags == ["pumps", "north"]
    page = page_as(bob).get(f"/devices/{device.pk}/").content.decode()
    assert "site-amsterdam" in page


@pytest.mark.django_db
def test_custom_fields_longer_than_255_characters_are_refused_beside_the_field(acme_data, bob, page_as):
    device = acme_data.device
    html = (
        page_as(bob)
        .post(f"/devices/{device.pk}/edit/", {"serial": device.serial, "custom1": "x" * 256})
        .content.decode()
    )
    assert re.search(r'id="id_custom1_field".*?class="errorlist".*?at most 255', html, re.S)


@pytest.mark.django_db
def test_a_serial_of_another_device_is_refused_beside_the_field(acme_data, bob, page_as):
    Device.objects.create(tenant=acme_data.tenant, serial="TAKEN-1")
    html = page_as(bob).post("/devices/new/", {"serial": "TAKEN-1"}).content.decode()
    assert re.search(r'id="id_serial_field".*?class="errorlist".*?Another device', html, re.S)


@pytest.mark.django_db
def test_a_device_key_is_write_only(acme_data, bob, page_as):
    device = acme_data.device
    key = "device-key-0123456789abcdef"
    page_as(bob).post(f"/devices/{device.pk}/edit/", {"serial": device.serial, "auth_key": key})
    device.refresh_from_db()
    assert device.auth_key.reveal() == key
    form = page_as(bob).get(f"/devices/{device.pk}/edit/").content.decode()
    assert key not in form


@pytest.mark.django_db
def test_a_new_device_gets_its_urn(acme, bob, page_as):
    response = page_as(bob).post("/devices/new/", {"imei": "353456789012345", "custom1": "a"})
    assert response.status_code == 302
    device = Device.objects.get(tenant=acme, imei="353456789012345")
    assert device.urn == "urn:dev:IMEI:353456789012345:"


@pytest.mark.django_db
def test_csv_import_reports_each_row(acme_data, bob, page_as):
    existing = acme_data.device
    csv_data = (
        "serial,name,custom1,tags\n"
        f"{existing.serial},Pump A,site-a,pumps|north\n"
        "NEW-0002,Pump B,site-b,pumps\n"
        ",No identifier,site-c,\n"
    ).encode()
    response = page_as(bob).post("/devices/import/", {"file": SimpleUploadedFile("devices.csv", csv_data)})
    html = response.content.decode()
    assert response.status_code == 200
    rows = dict(re.findall(r'data-line="(\d+)" data-result="(\w+)"', html))
    assert rows == {"2": "updated", "3": "created", "4": "refused"}
    assert "names no device" in html
    existing.refresh_from_db()
    assert existing.custom1 == "site-a" and existing.tags == ["pumps", "north"]
    assert Device.objects.get(tenant=acme_data.tenant, serial="NEW-0002").custom1 == "site-b"


@pytest.mark.django_db
def test_csv_import_check_only_changes_nothing(acme_data, bob, page_as):
    data = b"serial,custom1\nDRY-1,x\n"
    html = (
        page_as(bob)
        .post("/devices/import/", {"file": SimpleUploadedFile("d.csv", data), "dry_run": "on"})
        .content.decode()
    )
    assert 'data-result="created"' in html and "nothing was changed" in html
    assert not Device.objects.filter(serial="DRY-1").exists()


@pytest.mark.django_db
def test_a_file_that_is_not_csv_is_refused_beside_the_file_field(acme_data, bob, page_as):
    html = (
        page_as(bob).post("/devices/import/", {"file": SimpleUploadedFile("x.csv", b"\x00\x01binary")}).content.decode()
    )
    assert re.search(r'id="id_file_field".*?class="errorlist".*?Nothing was imported', html, re.S)


@pytest.mark.django_db
def test_the_device_list_filters_by_text_and_tag(acme_data, vera, page_as):
    Device.objects.create(tenant=acme_data.tenant, serial="OTHER-9", tags=["south"], custom1="needle")
    client = page_as(vera)
    assert "OTHER-9" in client.get("/devices/?q=needle").content.decode()
    assert "OTHER-9" not in client.get("/devices/?q=haystack").content.decode()
    assert "OTHER-9" in client.get("/devices/?tag=south").content.decode()
    assert acme_data.device.serial not in client.get("/devices/?tag=south").content.decode()


@pytest.mark.django_db
def test_a_device_without_an_identifier_is_refused(acme, bob, page_as):
    html = page_as(bob).post("/devices/new/", {"name": "pump 7", "custom1": "a"}).content.decode()
    assert "Give the device at least one of serial, IMEI, ICCID or DevEUI." in html
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_a_device_messages_name_only_by_its_urn_can_be_edited(acme, bob, page_as):
    device = Device.objects.create(tenant=acme, urn="urn:dev:MAC:0024befffe804ff1:")
    response = page_as(bob).post(f"/devices/{device.pk}/edit/", {"custom1": "plant-7"})
    assert response.status_code == 302
    device.refresh_from_db()
    assert (device.custom1, device.urn) == ("plant-7", "urn:dev:MAC:0024befffe804ff1:")


@pytest.mark.django_db
def test_a_device_stored_without_an_identifier_keeps_its_custom_fields_editable(acme, bob, page_as):
    # Stored before the rule existed: refusing an unrelated change would not give it an identity.
    device = Device.objects.create(tenant=acme, name="pump 7")
    response = page_as(bob).post(f"/devices/{device.pk}/edit/", {"name": "pump 7", "custom1": "plant-7"})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.custom1 == "plant-7"


@pytest.mark.django_db
def test_blanking_the_last_identifier_is_refused(acme_data, bob, page_as):
    device = acme_data.device
    html = page_as(bob).post(f"/devices/{device.pk}/edit/", {"serial": "", "custom1": "a"}).content.decode()
    assert "Give the device at least one of serial, IMEI, ICCID or DevEUI." in html
    device.refresh_from_db()
    assert (device.serial, device.custom1) == ("ACME-0001", "")


NO_IDENTIFIER = "Give the device at least one of serial, IMEI, ICCID or DevEUI."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("imei", "12", "IMEI must be 14 to 16 digits."),
        ("serial", "has space", "serial must be 1 to 64 characters without spaces"),
        ("iccid", "8931", "ICCID must be 18 to 22 digits"),
        ("dev_eui", "0059AC00001A2B3", "DevEUI must be 16 hexadecimal digits."),
        # Refused by the form field itself, before the identifier rules are applied.
        ("imei", "1" * 33, "at most 32 characters"),
    ],
)
def test_a_malformed_identifier_is_refused_with_its_own_reason_not_the_no_identity_one(
    acme, bob, page_as, field, value, reason
):
    html = page_as(bob).post("/devices/new/", {field: value, "custom1": "a"}).content.decode()

    assert re.search(rf'id="id_{field}_field".*?class="errorlist".*?{re.escape(reason)}', html, re.S)
    assert NO_IDENTIFIER not in html and "errorlist nonfield" not in html
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_an_identifier_typed_malformed_in_place_of_the_last_one_is_refused_with_its_own_reason_only(
    acme_data, bob, page_as
):
    device = acme_data.device

    html = page_as(bob).post(f"/devices/{device.pk}/edit/", {"serial": "", "imei": "12"}).content.decode()

    assert re.search(r'id="id_imei_field".*?class="errorlist".*?IMEI must be 14 to 16 digits', html, re.S)
    assert NO_IDENTIFIER not in html and "errorlist nonfield" not in html
    device.refresh_from_db()
    assert (device.serial, device.imei) == ("ACME-0001", "")
