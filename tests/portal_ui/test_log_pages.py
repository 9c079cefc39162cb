"""Messages (readings, errors, reprocess), the delivery log (filters, attempts, replay) and the dashboard."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt, Destination
from devices.models import Device
from ingest.models import Message
from portal.pages.dashboard import dashboard_stats


def _invalid_message(data, body: bytes) -> Message:
    return Message.objects.create(
        tenant=data.tenant,
        connection=data.connection,
        received_at=timezone.now(),
        status=Message.Status.INVALID,
        error="a record has neither a value nor a sum",
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        content_type="application/json",
    )


@pytest.mark.django_db
def test_a_message_page_shows_its_readings_body_and_deliveries(acme_data, vera, page_as):
    html = page_as(vera).get(f"/messages/{acme_data.message.pk}/").content.decode()
    assert "temperature" in html and "21.5" in html and "Cel" in html
    assert "&quot;bn&quot;: &quot;urn:dev:SERIAL:X:&quot;" in html  # the body, pretty-printed
    assert f"/deliveries/{acme_data.delivery.pk}/" in html
    assert 'id="reprocess"' not in html  # accepted messages are not processed again


@pytest.mark.django_db
def test_the_message_list_filters_by_status(acme_data, vera, page_as):
    bad = _invalid_message(acme_data, b'[{"n":"x"}]')
    client = page_as(vera)
    html = client.get("/messages/?status=invalid").content.decode()
    assert f"/messages/{bad.pk}/" in html and f"/messages/{acme_data.message.pk}/" not in html
    assert "neither a value nor a sum" in html


@pytest.mark.django_db
def test_reprocessing_an_invalid_message_that_is_still_invalid_says_why(acme_data, bob, page_as):
    bad = _invalid_message(acme_data, b'[{"n":"x"}]')
    html = page_as(bob).get(f"/messages/{bad.pk}/").content.decode()
    assert 'id="reprocess"' in html
    response = page_as(bob).post(f"/messages/{bad.pk}/reprocess/", follow=True)
    assert b"Still invalid" in response.content
    bad.refresh_from_db()
    assert bad.status == Message.Status.INVALID


@pytest.mark.django_db
def test_reprocessing_an_invalid_message_after_the_cause_is_fixed_accepts_it(acme_data, bob, page_as):
    # Invalid because its device was unknown and the connection did not create devices; then the device is added.
    body = b'[{"bn":"urn:dev:SERIAL:LATE-1:","n":"temperature","u":"Cel","v":19}]'
    message = _invalid_message(acme_data, body)
    Device.objects.create(tenant=acme_data.tenant, serial="LATE-1", urn="urn:dev:SERIAL:LATE-1:")
    response = page_as(bob).post(f"/messages/{message.pk}/reprocess/", follow=True)
    assert b"Processed again" in response.content
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED and message.readings_count == 1


@pytest.mark.django_db
def test_the_delivery_log_filters_by_destination_status_device_and_time(acme_data, vera, page_as):
    other_destination = Destination.objects.create(tenant=acme_data.tenant, name="Other", url="https://example.org/")
    succeeded = Delivery.objects.create(
        tenant=acme_data.tenant, message=acme_data.message, destination=other_destination, status="succeeded"
    )
    client = page_as(vera)
    failed_row, ok_row = f'id="delivery-{acme_data.delivery.pk}"', f'id="delivery-{succeeded.pk}"'
    html = client.get(f"/deliveries/?destination={other_destination.pk}").content.decode()
    assert ok_row in html and failed_row not in html
    html = client.get("/deliveries/?status=failed").content.decode()
    assert failed_row in html and ok_row not in html
    html = client.get(f"/deliveries/?device={acme_data.device.pk}").content.decode()
    assert failed_row in html and ok_row in html
    future = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    html = client.get(f"/deliveries/?since={future}").content.decode()
    assert failed_row not in html and ok_row not in html


@pytest.mark.django_db
def test_the_delivery_log_answers_only_its_results_to_htmx(acme_data, vera, page_as):
    html = page_as(vera).get("/deliveries/?status=failed", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="delivery-results")
    assert b"<html" not in html.content and b'id="deliveries"' in html.content


@pytest.mark.django_db
def test_a_delivery_page_lists_its_attempts(acme_data, vera, page_as):
    html = page_as(vera).get(f"/deliveries/{acme_data.delivery.pk}/").content.decode()
    assert "answered 500" in html and "HttpStatus" in html and "boom" in html and "12 ms" in html
    assert acme_data.delivery.webhook_id in html


@pytest.mark.django_db
def test_replaying_a_failed_delivery_puts_it_back_to_pending_with_its_attempts_kept(acme_data, bob, page_as):
    delivery = acme_data.delivery
    response = page_as(bob).post(f"/deliveries/{delivery.pk}/replay/", {"next": "/deliveries/?status=failed"})
    assert response["Location"] == "/deliveries/?status=failed"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING and delivery.series_attempts == 0
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


@pytest.mark.django_db
def test_replay_refuses_to_send_elsewhere(acme_data, bob, page_as):
    response = page_as(bob).post(f"/deliveries/{acme_data.delivery.pk}/replay/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/deliveries/{acme_data.delivery.pk}/"


@pytest.mark.django_db
def test_replay_all_failed_in_a_filter_replays_only_those(acme_data, bob, page_as):
    other_destination = Destination.objects.create(tenant=acme_data.tenant, name="Other", url="https://example.org/")
    other_failed = Delivery.objects.create(
        tenant=acme_data.tenant, message=acme_data.message, destination=other_destination, status="failed"
    )
    client = page_as(bob)
    html = client.get(f"/deliveries/?destination={acme_data.destination.pk}&status=failed").content.decode()
    assert "Replay all 1 failed" in html
    client.post("/deliveries/replay/", {"destination": str(acme_data.destination.pk)})
    acme_data.delivery.refresh_from_db()
    other_failed.refresh_from_db()
    assert acme_data.delivery.status == "pending"
    assert other_failed.status == "failed"


@pytest.mark.django_db
def test_bulk_replay_never_touches_another_tenants_deliveries(acme_data, globex_data, bob, page_as):
    page_as(bob).post("/deliveries/replay/", {})
    globex_data.delivery.refresh_from_db()
    assert globex_data.delivery.status == "failed"
    acme_data.delivery.refresh_from_db()
    assert acme_data.delivery.status == "pending"


@pytest.mark.django_db
def test_the_dashboard_counts_per_hour_and_rates_per_destination(acme_data):
    now = timezone.now()
    DeliveryAttempt.objects.create(delivery=acme_data.delivery, number=2, started_at=now, status_code=200, success=True)
    stats = dashboard_stats(tenant=acme_data.tenant, now=now)
    assert len(stats.messages_per_hour) == 24
    assert sum(v.get("accepted", 0) for _, v in stats.messages_per_hour) == 1
    assert sum(v.get("ok", 0) for _, v in stats.attempts_per_hour) == 1
    assert sum(v.get("bad", 0) for _, v in stats.attempts_per_hour) == 1
    [rate] = stats.rates
    assert (rate.label, rate.succeeded, rate.failed, rate.rate) == ("acme receiver", 0, 1, 0.0)


@pytest.mark.django_db
def test_the_dashboard_draws_its_charts_as_svg(acme_data, vera, page_as):
    html = page_as(vera).get("/").content.decode()
    assert html.count("<svg") == 3
    messages_chart = re.search(r'data-chart="messages">(.*?)</svg>', html, re.S).group(1)
    assert messages_chart.count('<rect class="bar-in"') == 1
    assert 'data-stat="messages">1<' in html
    assert "acme receiver" in html


@pytest.mark.django_db
def test_the_dashboard_leaves_out_what_is_older_than_24_hours(acme_data):
    Message.objects.filter(pk=acme_data.message.pk).update(received_at=timezone.now() - timedelta(hours=25))
    stats = dashboard_stats(tenant=acme_data.tenant)
    assert sum(sum(v.values()) for _, v in stats.messages_per_hour) == 0
