"""The doorbell: how rings after a commit become pump tasks in the broker (no worker runs here)."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.db import transaction

from delivery import doorbell
from tests.support.celery_worker import broker_flush


def queued_pumps() -> int:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("celery")


def ring_after_commit() -> None:
    with transaction.atomic():
        doorbell.doorbell_ring_on_commit()


@pytest.fixture
def broker(transactional_db):
    broker_flush()
    yield redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker_flush()


def test_rings_while_a_pump_is_queued_make_no_second_task(broker):
    ring_after_commit()
    ring_after_commit()
    ring_after_commit()

    assert queued_pumps() == 1
    assert broker.exists(doorbell.FLAG_KEY)


def test_a_ring_just_after_this_process_saw_the_flag_asks_redis_nothing(broker, monkeypatch):
    # A window long enough that the second ring falls inside it on any machine.
    monkeypatch.setattr(doorbell, "RECENT_FLAG_SECONDS", 60.0)
    ring_after_commit()
    broker.delete(doorbell.FLAG_KEY)  # a worker elsewhere took the task and cleared the flag …

    ring_after_commit()  # … but that pump runs for DELIVERY_IDLE_SECONDS at least: it will see these rows

    assert queued_pumps() == 1
    assert not broker.exists(doorbell.FLAG_KEY), "the second ring did not even set the flag"


def test_once_the_moment_has_passed_a_ring_makes_a_new_task(broker, monkeypatch):
    monkeypatch.setattr(doorbell, "RECENT_FLAG_SECONDS", 0.0)
    ring_after_commit()
    broker.delete(doorbell.FLAG_KEY)

    ring_after_commit()

    assert queued_pumps() == 2


def test_a_pump_starting_in_this_process_forgets_what_it_saw(broker, monkeypatch):
    monkeypatch.setattr(doorbell, "RECENT_FLAG_SECONDS", 60.0)
    ring_after_commit()

    doorbell.doorbell_answered()  # this process's pump clears the flag and is about to look at the rows
    ring_after_commit()

    assert queued_pumps() == 2


def test_a_rolled_back_transaction_rings_nothing(broker):
    with transaction.atomic():
        doorbell.doorbell_ring_on_commit()
        transaction.set_rollback(True)

    assert queued_pumps() == 0
