"""/metrics: what it exports, that counters move, and who may read it."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from delivery.models import Delivery
from portal import metrics
from tests.ops.conftest import samples, value
from tests.ops.factories import delivery_make, destination_make, message_make, now

pytestmark = pytest.mark.django_db


def test_a_request_moves_the_http_counter_of_its_area_and_code(client, scrape):
    before = scrape()
    client.get("/healthz")
    client.get("/healthz")
    client.get("/api/v1/api-keys/")  # not logged in: 401
    after = scrape()
    assert value(after, "portal_http_requests_total", area="healthz", code="200") - value(
        before, "portal_http_requests_total", area="healthz", code="200"
    ) == pytest.approx(2)
    assert value(after, "portal_http_requests_total", area="api", code="401") - value(
        before, "portal_http_requests_total", area="api", code="401"
    ) == pytest.approx(1)
    assert value(after, "portal_http_request_duration_seconds_count", area="healthz") - value(
        before, "portal_http_request_duration_seconds_count", area="healthz"
    ) == pytest.approx(2)


def test_messages_in_are_counted_by_connection_kind_and_status(scrape):
    before = scrape()
    metrics.message_received(kind="kpn-things", status="accepted")
    metrics.message_received(kind="kpn-things", status="accepted")
    metrics.message_received(kind="digital-matter", status="unauthorized")
    after = scrape()

    def moved(**labels):
        return value(after, "portal_ingest_messages_total", **labels) - value(
            before, "portal_ingest_messages_total", **labels
        )

    assert moved(kind="kpn-things", status="accepted") == pytest.approx(2)
    assert moved(kind="digital-matter", status="unauthorized") == pytest.approx(1)
    assert moved(kind="kpn-things", status="unauthorized") == pytest.approx(0)


def test_label_values_outside_the_fixed_sets_are_counted_as_other(scrape):
    before = scrape()
    metrics.message_received(kind="kpn-things", status="a typo")
    after = scrape()
    assert value(after, "portal_ingest_messages_total", kind="kpn-things", status="other") - value(
        before, "portal_ingest_messages_total", kind="kpn-things", status="other"
    ) == pytest.approx(1)
    assert not any(dict(labels).get("status") == "a typo" for _, labels in samples(after))


def test_attempt_latency_lands_in_the_histogram_buckets_and_deliveries_by_outcome(scrape):
    before = scrape()
    metrics.delivery_attempted(outcome="success", seconds=0.2)
    metrics.delivery_attempted(outcome="timeout", seconds=5.0)
    metrics.delivery_finished(outcome="succeeded")
    after = scrape()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("portal_delivery_attempts_total", outcome="success") == pytest.approx(1)
    assert moved("portal_delivery_attempts_total", outcome="timeout") == pytest.approx(1)
    # 0.2 s is above the 0.1 s bucket and inside the 0.25 s one.
    assert moved("portal_delivery_attempt_duration_seconds_bucket", outcome="success", le="0.1") == 0
    assert moved("portal_delivery_attempt_duration_seconds_bucket", outcome="success", le="0.25") == 1
    assert moved("portal_delivery_attempt_duration_seconds_sum", outcome="timeout") == pytest.approx(5.0)
    assert moved("portal_deliveries_finished_total", outcome="succeeded") == pytest.approx(1)


def test_queue_gauges_are_read_from_the_database_at_scrape_time(acme, scrape):
    t = now()
    healthy = destination_make(acme)
    gone = destination_make(acme, enabled=False)
    empty = scrape()
    assert value(empty, "portal_metrics_database_up") == 1
    assert value(empty, "portal_deliveries_pending") == 0
    assert value(empty, "portal_delivery_oldest_pending_age_seconds") == 0
    assert value(empty, "portal_destinations_disabled") == 1

    # Pending: one created 2 h ago and due for 10 minutes, one waiting for a retry in an hour.
    delivery_make(
        message_make(acme, age=timedelta(hours=2), now=t),
        healthy,
        status=Delivery.Status.PENDING,
        age=timedelta(hours=2),
        next_attempt_in=-timedelta(minutes=10),
        now=t,
    )
    delivery_make(
        message_make(acme, age=timedelta(minutes=5), now=t),
        healthy,
        status=Delivery.Status.PENDING,
        age=timedelta(minutes=5),
        next_attempt_in=timedelta(hours=1),
        now=t,
    )
    delivery_make(
        message_make(acme, age=timedelta(days=1), now=t),
        gone,
        status=Delivery.Status.SUCCEEDED,
        age=timedelta(days=1),
        now=t,
    )
    text = scrape()
    assert value(text, "portal_deliveries_pending") == 2
    assert value(text, "portal_deliveries_pending_due") == 1
    assert 2 * 3600 <= value(text, "portal_delivery_oldest_pending_age_seconds") < 2 * 3600 + 600
    assert 600 <= value(text, "portal_delivery_oldest_due_wait_seconds") < 1200
    assert value(text, "portal_destinations_disabled") == 1


# --- who may read /metrics ---------------------------------------------------------


def test_loopback_may_scrape_by_default(client):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_other_addresses_are_refused_by_default(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert b"portal_" not in response.content


def test_a_proxied_request_is_refused_even_from_loopback(client):
    # Behind a reverse proxy on the same machine every client looks like 127.0.0.1.
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert response.status_code == 403


def test_the_allow_list_takes_networks(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_the_token_lets_any_address_in_and_a_wrong_one_is_asked_for_the_right_one(client, settings):
    settings.METRICS_TOKEN = "scrape-token-for-tests-0123456789"
    settings.METRICS_ALLOWED_IPS = []
    good = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests-0123456789"
    )
    assert good.status_code == 200
    assert good["Content-Type"].startswith("text/plain")
    assert b"portal_deliveries_pending" in good.content

    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests-x")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401


def test_this_test_session_counts_in_a_directory_of_its_own():
    # Set by tests/conftest.py after Django (and so portal.metrics) was loaded: the module reads it at use.
    assert str(metrics.root()) == os.environ["PORTAL_METRICS_ROOT"]
    assert "portal-metrics-" in str(metrics.root())
    metrics.message_received(kind="kpn-things", status="accepted")
    assert list(metrics.root().glob("counter_*.db"))
