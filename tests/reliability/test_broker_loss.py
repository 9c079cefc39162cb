"""Redis flushed and restarted with 2,000 deliveries queued: all delivered from the database.

Never the shared Redis: a throwaway `redis-server` on its own loopback port is the
broker of this test's worker (and beat). 2,000 pending deliveries are announced by
pump tasks queued in it; the worker starts sending to the local HTTPS sink (each
answer after 0.1 s, 32 in flight), and once 300 have arrived the throwaway Redis is
flushed (FLUSHALL) and restarted empty — every queued task, every unacked task and the
doorbell's flag are gone, and the worker's broker connection breaks. Pumps run for
at most DELIVERY_RUN_SECONDS=3 here, so the rest of the work can only be found again
from the rows (the sweeper, every 2 s), not finished by the pump that was running.
"""

from __future__ import annotations

import itertools
import time

import pytest

from delivery.models import Delivery
from delivery.tasks import deliveries_pump
from portal.celery import app
from tests.reliability.factories import destination_make, expected_webhook_ids, ledger, messages_make
from tests.support.faults import ThrowawayRedis, wait_until
from tests.support.sink import Answer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUEUED = 2000
FLUSH_AFTER = 300
SWEEP_SECONDS = 2
# A worker that lost its broker reconnects (Celery retries every few seconds), then the
# next sweep rings; on a loaded 2-core machine that takes a few seconds more.
RECONNECT_ALLOWANCE = 15.0


@pytest.fixture
def throwaway_redis(tmp_path):
    server = ThrowawayRedis(tmp_path / "redis").start()
    yield server
    server.stop()


def test_a_flushed_and_restarted_broker_loses_none_of_2000_queued_deliveries(
    acme, https_sink, celery_worker, throwaway_redis, figures
):
    """Pass: the sink receives every one of the 2,000 deliveries exactly once (no loss, no
    double send), all end `succeeded`, and after the restart sending never stalls for
    longer than one sweeper interval (+ the worker's reconnection)."""
    https_sink.default = Answer(200, delay=0.1)
    destination = destination_make(acme, https_sink.url("/broker"))
    messages_make(acme, QUEUED, destinations=[destination])
    expected = expected_webhook_ids(destination)
    with app.connection_for_write(throwaway_redis.url) as connection:
        for _ in range(3):
            deliveries_pump.apply_async(connection=connection)
    assert throwaway_redis.client().llen("celery") == 3, "the announcements are queued in the broker"

    worker = celery_worker(
        beat=True,
        extra_env={
            "CELERY_BROKER_URL": throwaway_redis.url,
            "DELIVERY_SWEEP_SECONDS": str(SWEEP_SECONDS),
            "DELIVERY_RUN_SECONDS": "3",
            "DELIVERY_IDLE_SECONDS": "0.5",
        },
    )
    https_sink.wait_for(FLUSH_AFTER, timeout=120)
    throwaway_redis.flushall()
    throwaway_redis.restart()
    restarted_at = time.time()
    pending_at_flush = Delivery.objects.filter(status="pending").count()

    drained = wait_until(
        lambda: Delivery.objects.filter(status="succeeded").count() == QUEUED,
        timeout=240,
        what="all 2,000 deliveries to succeed",
        interval=0.5,
    )
    after_restart = [restarted_at, *sorted(r.received_at for r in https_sink.requests if r.received_at > restarted_at)]
    longest_stall = max(b - a for a, b in itertools.pairwise(after_restart))
    received = ledger(https_sink.requests)
    figures(
        queued=QUEUED,
        pending_at_flush=pending_at_flush,
        delivered=len(set(received) & expected),
        duplicates=sum(n - 1 for n in received.values()),
        longest_stall_after_restart_s=round(longest_stall, 1),
        drained_after_restart_s=round(drained, 1),
    )
    assert pending_at_flush > 0, "the flush came after the work was done: nothing was at stake"
    assert "Connection to broker lost" in worker.log(), "the worker never noticed the broker going away"
    assert set(received) == expected
    assert max(received.values()) == 1, "a delivery was sent twice"
    assert not Delivery.objects.exclude(status="succeeded").exists()
    assert longest_stall <= SWEEP_SECONDS + RECONNECT_ALLOWANCE
