"""Retention: pruning removes exactly what is past its tenant's retention, and nothing else."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections

from delivery.models import Delivery, DeliveryAttempt
from devices.models import Reading
from ingest.models import DUPLICATE_WINDOW, Message, MessageClaim
from portal.models import TenantSettings
from portal.retention import retention_policy_for, retention_prune
from tests.ops.factories import delivery_make, destination_make, message_make, now

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def test_a_tenant_without_settings_gets_the_defaults(acme):
    policy = retention_policy_for(tenant=acme)
    assert (policy.message_days, policy.succeeded_delivery_days, policy.failed_delivery_days) == (30, 7, 30)


def test_messages_and_their_readings_go_after_30_days_and_younger_ones_stay(acme):
    t = now()
    old = message_make(acme, age=30 * DAY + HOUR, readings=3, now=t)
    young = message_make(acme, age=30 * DAY - HOUR, readings=2, now=t)

    result = retention_prune(now=t)

    assert list(Message.objects.values_list("pk", flat=True)) == [young.pk]
    assert not Reading.objects.filter(message_id=old.pk).exists()
    assert Reading.objects.filter(message=young).count() == 2
    assert result.removed == {"ingest.Message": 1, "devices.Reading": 3}
    assert result.complete


def test_succeeded_deliveries_go_after_7_days_with_their_attempts(acme):
    t = now()
    destination = destination_make(acme)
    old = delivery_make(
        message_make(acme, age=8 * DAY, now=t), destination, status="succeeded", age=7 * DAY + HOUR, now=t,
        attempts_ago=[7 * DAY + HOUR],
    )  # fmt: skip
    young = delivery_make(
        message_make(acme, age=8 * DAY, now=t), destination, status="succeeded", age=7 * DAY - HOUR, now=t,
        attempts_ago=[7 * DAY - HOUR],
    )  # fmt: skip

    retention_prune(now=t)

    assert list(Delivery.objects.values_list("pk", flat=True)) == [young.pk]
    assert not DeliveryAttempt.objects.filter(delivery_id=old.pk).exists()
    assert DeliveryAttempt.objects.filter(delivery=young).count() == 1
    # The old delivery's message is younger than 30 days: it stays.
    assert Message.objects.count() == 2


def test_failed_deliveries_go_30_days_after_their_last_attempt(acme):
    t = now()
    destination = destination_make(acme)
    # Created 40 days ago; the first series failed then, a replay failed again 10 days ago.
    replayed = delivery_make(
        message_make(acme, age=40 * DAY, now=t), destination, status="failed", age=40 * DAY, now=t,
        attempts_ago=[40 * DAY, 10 * DAY],
    )  # fmt: skip
    stale = delivery_make(
        message_make(acme, age=40 * DAY, now=t), destination, status="failed", age=40 * DAY, now=t,
        attempts_ago=[40 * DAY, 31 * DAY],
    )  # fmt: skip
    # Failed at once with no attempt (an empty dynamic field) 29 days ago.
    unattempted_young = delivery_make(
        message_make(acme, age=29 * DAY, now=t), destination, status="failed", age=29 * DAY, now=t
    )

    retention_prune(now=t)

    assert set(Delivery.objects.values_list("pk", flat=True)) == {replayed.pk, unattempted_young.pk}
    assert not Delivery.objects.filter(pk=stale.pk).exists()
    # The stale delivery's message (40 days) had nothing left pointing at it: gone too.
    assert not Message.objects.filter(pk=stale.message_id).exists()
    # The replayed delivery keeps its 40-day-old message, which a replay needs.
    assert Message.objects.filter(pk=replayed.message_id).exists()


def test_pending_deliveries_and_their_messages_are_never_pruned(acme):
    t = now()
    destination = destination_make(acme)
    pending = delivery_make(
        message_make(acme, age=400 * DAY, readings=2, now=t), destination, status="pending", age=400 * DAY, now=t,
        attempts_ago=[400 * DAY], next_attempt_in=-DAY,
    )  # fmt: skip

    result = retention_prune(now=t)

    assert Delivery.objects.filter(pk=pending.pk, status="pending").exists()
    assert DeliveryAttempt.objects.filter(delivery=pending).count() == 1
    assert Message.objects.filter(pk=pending.message_id).exists()
    assert Reading.objects.filter(message_id=pending.message_id).count() == 2
    assert not result.removed


def test_each_tenant_is_pruned_by_its_own_settings(acme, globex):
    t = now()
    TenantSettings.objects.create(
        tenant=acme, message_retention_days=2, succeeded_delivery_retention_days=1, failed_delivery_retention_days=3
    )
    acme_old = message_make(acme, age=2 * DAY + HOUR, now=t)
    acme_young = message_make(acme, age=2 * DAY - HOUR, now=t)
    globex_msg = message_make(globex, age=2 * DAY + HOUR, now=t)  # globex keeps 30 days
    acme_dest, globex_dest = destination_make(acme), destination_make(globex)
    acme_ok = delivery_make(acme_young, acme_dest, status="succeeded", age=DAY + HOUR, now=t)
    globex_ok = delivery_make(globex_msg, globex_dest, status="succeeded", age=DAY + HOUR, now=t)

    retention_prune(now=t)

    assert not Message.objects.filter(pk=acme_old.pk).exists()
    assert not Delivery.objects.filter(pk=acme_ok.pk).exists()
    assert Message.objects.filter(pk=acme_young.pk).exists()
    assert Delivery.objects.filter(pk=globex_ok.pk).exists()
    assert Message.objects.filter(pk=globex_msg.pk).exists()


def test_small_batches_still_remove_everything_due_and_count_it(acme):
    t = now()
    for _ in range(7):
        message_make(acme, age=31 * DAY, readings=1, now=t)
    keep = message_make(acme, age=DAY, now=t)

    result = retention_prune(now=t, batch_size=2)

    assert list(Message.objects.values_list("pk", flat=True)) == [keep.pk]
    assert result.removed == {"ingest.Message": 7, "devices.Reading": 7}
    assert result.complete


def test_a_run_out_of_time_stops_and_says_so(acme):
    t = now()
    message_make(acme, age=31 * DAY, now=t)

    result = retention_prune(now=t, max_seconds=-1)

    assert not result.complete
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_rows_another_transaction_holds_are_skipped_not_waited_for(acme):
    t = now()
    held = message_make(acme, age=31 * DAY, now=t)
    free = message_make(acme, age=31 * DAY, now=t)

    # A second connection holds a row lock on one due message, as a reprocess would.
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SELECT id FROM ingest_message WHERE id = %s FOR UPDATE", [held.pk])
        result = retention_prune(now=t)
    finally:
        other.rollback()
        other.close()

    assert result.removed == {"ingest.Message": 1}
    assert list(Message.objects.values_list("pk", flat=True)) == [held.pk]
    assert not Message.objects.filter(pk=free.pk).exists()
    # The lock is gone: the next run takes the rest.
    retention_prune(now=t)
    assert not Message.objects.exists()


def test_a_batch_sets_a_lock_timeout_so_it_never_queues_behind_a_long_lock(acme):
    t = now()
    message_make(acme, age=31 * DAY, now=t)
    recorder = _Recorder()
    with connection.execute_wrapper(recorder):
        retention_prune(now=t)
    assert any("lock_timeout" in sql for sql in recorder.statements)


class _Recorder:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)


def test_the_prune_task_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["portal-retention-prune"]
    assert entry["task"] == "portal.tasks.retention_prune"
    assert entry["schedule"] <= 3600


def test_staff_see_a_tenants_retention_in_the_admin(client, staff, acme):
    client.force_login(staff)
    page = client.get(f"/admin/portal/tenant/{acme.pk}/change/")
    assert page.status_code == 200
    for field in ("message_retention_days", "succeeded_delivery_retention_days", "failed_delivery_retention_days"):
        assert field.encode() in page.content


def test_duplicate_claims_go_after_24_hours_and_younger_ones_stay(acme):
    t = now()
    old, young = (
        MessageClaim.objects.create(key=uuid.uuid4(), message_id=uuid.uuid4(), claimed_at=t - DUPLICATE_WINDOW + age)
        for age in (-HOUR, HOUR)
    )

    result = retention_prune(now=t)

    assert list(MessageClaim.objects.values_list("pk", flat=True)) == [young.pk]
    assert result.removed == {"ingest.MessageClaim": 1}
    assert not MessageClaim.objects.filter(pk=old.pk).exists()
