"""CSV import of devices: a report per row (created, updated, unchanged, refused and why); not CSV changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from devices.models import Device
from devices.services import NotCsv, devices_import_csv
from portal.secrets import Actor

FIXTURES = Path(__file__).parent / "fixtures"


def upload(client, data: bytes, name: str = "devices.csv", query: str = ""):
    return client.post(f"/api/v1/devices/import/{query}", {"file": SimpleUploadedFile(name, data)}, format="multipart")


def test_a_csv_creates_and_updates_devices_and_reports_each_row(bob, api_as, acme):
    existing = Device.objects.create(tenant=acme, serial="SN-2", custom1="old")
    report = upload(api_as(bob), (FIXTURES / "devices.csv").read_bytes())
    assert report.status_code == 200, report.json()
    answer = report.json()
    by_line = {row["line"]: row for row in answer["rows"]}
    assert (answer["created"], answer["updated"], answer["refused"]) == (2, 1, 3)
    assert by_line[2]["result"] == "created"
    assert (by_line[3]["result"], by_line[3]["device"]) == ("updated", existing.pk)
    assert by_line[4]["result"] == "created"
    assert by_line[5] == {"line": 5, "result": "refused", "device": None, "errors": {"imei": "must be 14 to 16 digits"}}
    assert "names no device" in by_line[6]["errors"]["row"]
    assert "at most 255" in by_line[7]["errors"]["custom1"]
    first = Device.objects.get(serial="SN-1")
    assert (first.imei, first.custom1, first.custom2, first.custom3, first.tags) == (
        "353785720001234",
        "plant-7",
        "line 3",
        "",
        ["north", "pump"],
    )
    assert first.urn == "urn:dev:IMEI:353785720001234:"
    existing.refresh_from_db()
    assert (existing.custom1, existing.custom2) == ("new", "kept-empty-cells")
    assert Device.objects.get(dev_eui="0059AC00001A2B3C").auth_key.reveal() == "Device-Key-0123456789abcdef"


def test_the_report_never_shows_an_auth_key(bob, api_as):
    report = upload(api_as(bob), b"serial,auth_key\nSN-9,Device-Key-0123456789abcdef\n")
    assert "Device-Key-0123456789abcdef" not in report.content.decode()
    assert report.json()["created"] == 1


def test_a_row_unchanged_is_reported_so(bob, api_as, acme):
    Device.objects.create(tenant=acme, serial="SN-1", custom1="x")
    assert upload(api_as(bob), b"serial,custom1\nSN-1,x\n").json()["rows"][0]["result"] == "unchanged"


def test_a_row_whose_identifiers_name_two_devices_is_refused(bob, api_as, acme):
    Device.objects.create(tenant=acme, serial="SN-1")
    Device.objects.create(tenant=acme, imei="353785720001234")
    row = upload(api_as(bob), b"serial,imei,custom1\nSN-1,353785720001234,x\n").json()["rows"][0]
    assert row["result"] == "refused" and "different devices" in row["errors"]["row"]
    assert not Device.objects.filter(custom1="x").exists()


def test_semicolon_separated_files_from_spreadsheets_are_read(bob, api_as):
    answer = upload(api_as(bob), "\ufeffSerial;CUSTOM1\nSN-1;Zürich\n".encode()).json()
    assert answer["created"] == 1
    assert Device.objects.get().custom1 == "Zürich"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b'{"serial": "SN-1"}', "unknown"),
        (b"serial,colour\nSN-1,blue\n", "unknown: 'colour'"),
        (b"name,custom1\nx,y\n", "at least one of"),
        (b"serial,serial\nSN-1,SN-2\n", "named twice"),
        ("serial\nSN-1\n".encode("utf-16"), "binary"),
        (b'serial,custom1\nSN-1,"unterminated\n', "not valid CSV"),
    ],
)
def test_an_upload_that_is_not_csv_changes_nothing(bob, api_as, acme, data, reason):
    Device.objects.create(tenant=acme, serial="SN-0", custom1="before")
    response = upload(api_as(bob), data)
    assert response.status_code == 400
    assert reason in response.json()["file"][0] and "nothing changed" in response.json()["file"][0]
    assert list(Device.objects.values_list("serial", "custom1")) == [("SN-0", "before")]


def test_a_json_body_is_not_a_csv_upload(bob, api_as):
    response = api_as(bob).post("/api/v1/devices/import/", {"serial": "SN-1"}, format="json")
    assert response.status_code == 415
    assert Device.objects.count() == 0


def test_a_text_csv_body_is_accepted_too(bob, api_as):
    response = api_as(bob).generic("POST", "/api/v1/devices/import/", b"serial\nSN-1\n", content_type="text/csv")
    assert response.status_code == 200 and response.json()["created"] == 1


def test_a_dry_run_reports_without_changing_anything(bob, api_as):
    answer = upload(api_as(bob), b"serial,custom1\nSN-1,x\nSN-2,y\n", query="?dry_run=true").json()
    assert (answer["dry_run"], answer["created"]) == (True, 2)
    assert Device.objects.count() == 0


def test_a_viewer_cannot_import(vera, api_as):
    assert upload(api_as(vera), b"serial\nSN-1\n").status_code == 403
    assert Device.objects.count() == 0


def test_an_import_reaches_only_the_importers_tenant(charlie, api_as, acme, globex):
    Device.objects.create(tenant=acme, serial="SN-1", custom1="acme's")
    answer = upload(api_as(charlie), b"serial,custom1\nSN-1,globex's\n").json()
    assert answer["created"] == 1
    assert Device.objects.get(tenant=acme).custom1 == "acme's"
    assert Device.objects.get(tenant=globex).custom1 == "globex's"


def test_the_service_refuses_too_many_rows_before_changing_anything(acme, monkeypatch):
    import devices.services

    monkeypatch.setattr(devices.services, "CSV_MAX_ROWS", 2)
    with pytest.raises(NotCsv, match="more than 2 rows"):
        devices_import_csv(tenant=acme, data=b"serial\nA\nB\nC\n", actor=Actor(label="t"))
    assert Device.objects.count() == 0
