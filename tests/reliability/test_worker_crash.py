"""`kill -9` of a Celery worker with 500 deliveries in flight: nothing is lost.

Real parts: a `celery -A portal worker` subprocess, the test PostgreSQL and Redis, and
the local HTTPS sink answering every request after 1 s. 500 deliveries to 20
destinations (25 each, inside the default 32 in flight per destination) are claimed
by one pump at once; the worker is killed (SIGKILL to its whole process group) half a
second after the sink received the first of them, so none has been answered and all
500 are in flight: claimed, partly sent, nothing recorded. A new worker with beat (the
sweeper every SWEEP_SECONDS) is started at once. The sink's ledger is then compared
with the deliveries that were made.

(The sink runs in this test process; on a loaded 2-core machine it takes a few seconds
to accept 500 TLS connections, so the attempt timeout is 10 s rather than 5.)
"""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from delivery.doorbell import doorbell_ring_now_rollback_unsafe
from delivery.models import Delivery, DeliveryAttempt
from delivery.pump import LEASE_MARGIN_SECONDS, attempt_timeout
from tests.reliability.factories import destination_make, expected_webhook_ids, ledger, messages_make
from tests.support.faults import wait_until
from tests.support.sink import Answer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

IN_FLIGHT = 500
DESTINATIONS = 20
SWEEP_SECONDS = 5
TIMEOUT_SECONDS = 10
SINK_DELAY = 1.0
# All 500 in flight at once in one worker process (its defaults are 256, and 16 per destination).
ENGINE = {
    "DELIVERY_MAX_IN_FLIGHT": "512",
    "DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION": str(IN_FLIGHT // DESTINATIONS),
    "DELIVERY_BATCH_SIZE": "100",
    "DELIVERY_IDLE_SECONDS": "0.5",
    "DELIVERY_SWEEP_SECONDS": str(SWEEP_SECONDS),
}
# A new worker's start, one pump run and the sink's answer, on a loaded 2-core machine.
START_AND_SEND_ALLOWANCE = 20.0


def test_a_worker_killed_with_500_in_flight_loses_nothing_and_resends_with_the_same_webhook_id(
    acme, https_sink, celery_worker, figures
):
    """Pass: every delivery reaches the sink at least once and ends `succeeded`; every
    duplicate is the same delivery (same webhook-id, same body); the new worker has
    everything delivered within the killed claims' lease + one sweeper interval (+ its
    own start-up and the sink's 1 s)."""
    https_sink.default = Answer(200, delay=SINK_DELAY)
    expected: set[str] = set()
    for index in range(DESTINATIONS):
        destination = destination_make(acme, https_sink.url(f"/crash/{index}"), timeout_seconds=TIMEOUT_SECONDS)
        messages_make(acme, IN_FLIGHT // DESTINATIONS, destinations=[destination])
        expected |= expected_webhook_ids(destination)

    doomed = celery_worker(extra_env=ENGINE, name="doomed")
    doorbell_ring_now_rollback_unsafe()
    https_sink.wait_for(1, timeout=60)
    time.sleep(SINK_DELAY / 2)  # more arrive; none is answered yet
    sent_before_kill = len(https_sink.requests)
    doomed.kill()
    killed_at = time.monotonic()
    in_flight = Delivery.objects.filter(status="pending", claimed_until__isnull=False).count()
    recorded_before_kill = DeliveryAttempt.objects.count()
    lease_ends = max(
        Delivery.objects.filter(status="pending", claimed_until__isnull=False).values_list("claimed_until", flat=True),
        default=None,
    )
    lease_left = max((lease_ends - timezone.now()).total_seconds(), 0.0) if lease_ends else 0.0

    celery_worker(beat=True, extra_env=ENGINE, name="rescuer")
    wait_until(
        lambda: Delivery.objects.filter(status="succeeded").count() == IN_FLIGHT,
        timeout=lease_left + SWEEP_SECONDS + START_AND_SEND_ALLOWANCE + 60,
        what="every delivery to succeed after the kill",
        interval=0.25,
    )
    recovered_seconds = time.monotonic() - killed_at

    received = ledger(https_sink.requests)
    duplicates = sum(n - 1 for n in received.values())
    figures(
        in_flight_at_kill=in_flight,
        sent_before_kill=sent_before_kill,
        recorded_before_kill=recorded_before_kill,
        sink_requests=sum(received.values()),
        delivered=len(set(received) & expected),
        duplicates=duplicates,
        lease_left_at_kill_s=round(lease_left, 1),
        recovery_s=round(recovered_seconds, 1),
    )
    assert in_flight == IN_FLIGHT and recorded_before_kill == 0, "not all 500 were in flight when the worker died"
    assert set(received) == expected, "the sink got a request that is no delivery, or missed one"
    assert max(received.values()) <= 2, "a delivery was sent more than once after the one crash"
    for webhook_id in (w for w, n in received.items() if n > 1):
        copies = [r for r in https_sink.requests if r.header("webhook-id") == webhook_id]
        assert len({r.body for r in copies}) == 1, f"{webhook_id}: duplicates with different bodies"
    assert Delivery.objects.exclude(status="succeeded").count() == 0
    assert Delivery.objects.filter(claimed_until__isnull=False).count() == 0
    # The lease was the claim time + attempt timeout + margin; the sweeper runs every SWEEP_SECONDS.
    assert lease_left <= attempt_timeout(timeout_seconds=TIMEOUT_SECONDS, attempt=1) + LEASE_MARGIN_SECONDS
    assert recovered_seconds <= lease_left + SWEEP_SECONDS + START_AND_SEND_ALLOWANCE
