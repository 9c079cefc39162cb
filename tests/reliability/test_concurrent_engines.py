"""Two sweepers and several workers at once: no attempt is ever sent twice concurrently.

Real parts: three Celery worker subprocesses (two processes each), two of them with an
embedded beat, so two sweepers ring every second and up to six pumps claim from the
same rows at once; the test PostgreSQL and Redis; the local HTTPS sink, which answers
each request after 0.3 s and fails the first attempt of one delivery in five with a
500, so retries are claimed by whichever pump comes first.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pytest

from delivery.doorbell import doorbell_ring_now_rollback_unsafe
from delivery.models import Delivery, DeliveryAttempt
from tests.reliability.factories import destination_make, expected_webhook_ids, messages_make
from tests.support.faults import wait_until
from tests.support.sink import Answer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MESSAGES = 100
DESTINATIONS = 3
ANSWER_DELAY = 0.3
FAST = {"DELIVERY_SWEEP_SECONDS": "1", "DELIVERY_IDLE_SECONDS": "0.5", "DELIVERY_BATCH_SIZE": "20"}


def _fails_first(webhook_id: str) -> bool:
    return hashlib.sha256(webhook_id.encode()).digest()[0] % 5 == 0


def test_two_sweepers_and_three_workers_never_send_one_attempt_twice_at_once(acme, https_sink, celery_worker, figures):
    """Pass: for every webhook-id the sink never holds two requests at the same time (each
    arrives after the one before was answered); the sink's count per delivery equals its
    recorded attempts (nothing sent unrecorded, nothing recorded unsent); every delivery
    succeeds, those whose first attempt got a 500 with exactly two attempts."""
    seen: set[str] = set()

    def answer(recorded):
        webhook_id = recorded.header("webhook-id")
        first = webhook_id not in seen
        seen.add(webhook_id)
        return Answer(500 if first and _fails_first(webhook_id) else 200, delay=ANSWER_DELAY)

    https_sink.responder = answer
    destinations = [
        destination_make(acme, https_sink.url(f"/concurrent/{i}"), name=f"d{i}") for i in range(DESTINATIONS)
    ]
    messages_make(acme, MESSAGES, destinations=destinations)
    expected = set().union(*(expected_webhook_ids(d) for d in destinations))
    sweepers = [
        celery_worker(beat=True, concurrency=2, extra_env=FAST, name="sweeper-a"),
        celery_worker(beat=True, concurrency=2, extra_env=FAST, name="sweeper-b"),
    ]
    celery_worker(concurrency=2, extra_env=FAST, name="plain")
    for _ in range(6):
        doorbell_ring_now_rollback_unsafe()

    total = MESSAGES * DESTINATIONS
    wait_until(
        lambda: Delivery.objects.filter(status="succeeded").count() == total,
        timeout=180,
        what="every delivery to succeed",
        interval=0.5,
    )
    by_id: dict[str, list[float]] = defaultdict(list)
    for request in https_sink.requests:
        by_id[request.header("webhook-id")].append(request.received_at)
    overlaps = [
        webhook_id
        for webhook_id, times in by_id.items()
        if any(b < a + ANSWER_DELAY for a, b in zip(sorted(times), sorted(times)[1:], strict=False))
    ]
    recorded = {d.webhook_id: d.attempts_count for d in Delivery.objects.all()}
    retried = {w for w in expected if _fails_first(w)}
    figures(
        deliveries=total,
        sink_requests=sum(len(t) for t in by_id.values()),
        attempts_recorded=DeliveryAttempt.objects.count(),
        retried=len(retried),
        concurrent_duplicates=len(overlaps),
    )
    assert all("Sending due task delivery-sweep" in w.log() for w in sweepers), "both sweepers ran"
    assert set(by_id) == expected
    assert not overlaps, f"sent twice at once: {overlaps[:5]}"
    assert {w: len(t) for w, t in by_id.items()} == recorded, "the sink's ledger and the attempt records differ"
    assert all(recorded[w] == (2 if w in retried else 1) for w in expected)
