"""The portal's main journeys in a real browser (headless Chromium), against the live server."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt, Destination
from devices.models import Device
from ingest.models import Connection, Message
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.portal_ui.conftest import make_tenant_data
from tests.support.sink import Answer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _busy_day(data) -> None:
    """Messages and attempts spread over the last hours, so the dashboard's charts have bars."""
    now = timezone.now()
    for hours_ago in range(0, 20, 2):
        for n in range(hours_ago % 5 + 1):
            body = f'[{{"bn":"urn:dev:SERIAL:X:","n":"t","v":{hours_ago}.{n}}}]'.encode()
            message = Message.objects.create(
                tenant=data.tenant,
                connection=data.connection,
                device=data.device,
                received_at=now - timedelta(hours=hours_ago, minutes=n),
                status=Message.Status.ACCEPTED if n % 4 else Message.Status.INVALID,
                body=body,
                body_sha256=hashlib.sha256(body).hexdigest(),
            )
            ok = n % 3 != 0
            delivery = Delivery.objects.create(
                tenant=data.tenant,
                message=message,
                destination=data.destination,
                status="succeeded" if ok else "failed",
            )
            DeliveryAttempt.objects.create(
                delivery=delivery, number=1, started_at=message.received_at, status_code=200 if ok else 503, success=ok
            )


def test_log_in_and_see_the_dashboard(page, acme, alice, artifacts):
    data = make_tenant_data(acme, alice)
    _busy_day(data)
    page.goto("/devices/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "alice@acme.test")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/devices/")
    page.click("nav.main-nav >> text=Dashboard")
    page.wait_for_selector("svg[data-chart=messages] rect.bar-in")
    assert page.locator("svg[data-chart=deliveries] rect.bar-ok").count() > 0
    assert page.locator("svg[data-chart=rates]").is_visible()
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=True)
    # Nothing wider than the phone's screen: the page does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_create_a_connection_and_copy_its_url(page, acme, bob, artifacts):
    log_in(page, "bob@acme.test", PASSWORD)
    page.click("nav.main-nav >> text=Connections")
    page.click("text=New connection")
    page.fill("#id_name", "Field sensors")
    page.select_option("#id_kind", "kpn-things")
    page.click("button:has-text('Create connection')")
    page.wait_for_selector("#shown-once")
    connection = Connection.objects.get(tenant=acme, name="Field sensors")
    assert page.text_content("#new-secret") == connection.secret.reveal()
    page.click("#copy-ingest-url")
    page.wait_for_selector("#copy-ingest-url[data-copied=true]")
    assert page.evaluate("navigator.clipboard.readText()") == connection.ingest_url
    page.screenshot(path=str(artifacts / "connection-created.png"), full_page=True)
    # The secret is shown once: the page opened again does not have it.
    page.goto(f"/connections/{connection.pk}/")
    assert page.locator("#new-secret").count() == 0
    assert connection.secret.reveal() not in page.content()


def test_create_a_destination_with_two_dynamic_headers_and_test_send_to_the_sink(
    page, acme, bob, https_sink, artifacts
):
    log_in(page, "bob@acme.test", PASSWORD)
    page.goto("/destinations/new/")
    page.fill("#id_name", "Our receiver")
    page.fill("#id_url", https_sink.url("/in/[SERIAL]"))
    page.fill("#id_headers-0-name", "X-Device")
    page.fill("#id_headers-0-value", "[DEVEUI]")
    page.click("#add-header")  # JavaScript adds the row in place
    page.fill("#id_headers-1-name", "X-Customer")
    page.fill("#id_headers-1-value", "acme-[CUSTOM1]")
    page.select_option("#id_signature", "both")
    page.screenshot(path=str(artifacts / "destination-form.png"), full_page=True)
    page.click("#save-destination")
    page.wait_for_selector("#shown-once")
    secret = page.text_content("#new-secret")
    assert page.text_content("#new-whsec").startswith("whsec_")
    destination = Destination.objects.get(tenant=acme, name="Our receiver")
    assert [(h.name, h.value) for h in destination.header_rows.all()] == [
        ("X-Device", "[DEVEUI]"),
        ("X-Customer", "acme-[CUSTOM1]"),
    ]

    def receiver(recorded):
        expected = hashlib.sha256(recorded.body + secret.encode()).hexdigest()
        return Answer(204) if recorded.header("Things-Message-Token") == expected else Answer(401, body=b"bad token")

    https_sink.responder = receiver
    page.click("#test-send")
    page.wait_for_selector("#test-send-result")
    result = page.text_content("#test-send-result")
    assert "HTTP 204" in result and "rejected" in result and "HTTP 401" in result
    page.screenshot(path=str(artifacts / "destination-test-send.png"), full_page=True)
    sample = https_sink.wait_for(2)[0]
    assert sample.path == "/in/SAMPLE-SERIAL"
    assert sample.header("X-Device") == "0004A30B001C0000"
    assert sample.header("X-Customer") == "acme-sample-custom1"


def test_rotate_a_secret_and_see_it_once(page, acme, alice):
    data = make_tenant_data(acme, alice)
    log_in(page, "alice@acme.test", PASSWORD)
    page.goto(f"/destinations/{data.destination.pk}/")
    page.click("#rotate-secret")
    page.wait_for_selector("#shown-once")
    shown = page.text_content("#new-secret")
    data.destination.refresh_from_db()
    assert data.destination.secret.reveal() == shown
    page.reload()  # the browser asks to send the form again; a fresh visit is a GET
    page.goto(f"/destinations/{data.destination.pk}/")
    assert page.locator("#shown-once").count() == 0
    assert shown not in page.content()


def test_open_the_delivery_log_and_replay_a_failed_delivery(page, acme, alice, artifacts):
    data = make_tenant_data(acme, alice)
    log_in(page, "alice@acme.test", PASSWORD)
    page.click("nav.main-nav >> text=Delivery log")
    page.select_option("#id_status", "failed")  # htmx reloads the results and the address
    page.wait_for_url(re.compile(r".*status=failed.*"))
    row = page.locator(f"#delivery-{data.delivery.pk}")
    assert "failed" in row.text_content()
    page.screenshot(path=str(artifacts / "delivery-log.png"), full_page=True)
    page.click(f"#delivery-{data.delivery.pk} [data-replay]")
    page.wait_for_selector("text=Replaying")
    data.delivery.refresh_from_db()
    assert data.delivery.status == "pending"
    # Pending now, it has left the "failed" filter; its own page keeps the earlier attempt.
    assert page.locator(f"#delivery-{data.delivery.pk}").count() == 0
    page.goto(f"/deliveries/{data.delivery.pk}/")
    assert page.text_content("#delivery-status") == "pending"
    assert "answered 500" in page.text_content("#attempts")


def test_edit_a_devices_custom1(page, acme, bob):
    device = Device.objects.create(tenant=acme, serial="PUMP-7", urn="urn:dev:SERIAL:PUMP-7:")
    log_in(page, "bob@acme.test", PASSWORD)
    page.click("nav.main-nav >> text=Devices")
    page.click("text=PUMP-7")
    page.click("#edit-device")
    page.fill("#id_custom1", "site-amsterdam")
    page.click("button:has-text('Save')")
    page.wait_for_selector("dd[data-field=custom1]:has-text('site-amsterdam')")
    device.refresh_from_db()
    assert device.custom1 == "site-amsterdam"


def test_import_a_csv_of_devices(page, acme, bob, tmp_path):
    Device.objects.create(tenant=acme, serial="SN-0001", urn="urn:dev:SERIAL:SN-0001:")
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "serial,name,custom1,tags\nSN-0001,Pump 1,site-a,pumps\nSN-0002,Pump 2,site-b,pumps|north\n,x,y,\n"
    )
    log_in(page, "bob@acme.test", PASSWORD)
    page.goto("/devices/")
    page.click("text=Import CSV")
    page.set_input_files("#id_file", str(csv_file))
    page.click("#import-submit")
    page.wait_for_selector("#import-report")
    results = page.eval_on_selector_all("#import-rows tr[data-line]", "rows => rows.map(r => r.dataset.result)")
    assert results == ["updated", "created", "refused"]
    assert Device.objects.get(tenant=acme, serial="SN-0002").tags == ["pumps", "north"]
