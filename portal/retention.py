"""Data retention: old messages, readings and finished deliveries are removed in small batches.

What is due, per tenant (TenantSettings, or its defaults):
- succeeded deliveries (and their attempts) delivered more than `succeeded_delivery_retention_days` ago;
- failed deliveries (and their attempts) whose last attempt is older than `failed_delivery_retention_days`;
- messages (and their readings) received more than `message_retention_days` ago that have no
  delivery left: a message a kept delivery points at is kept too, since a replay needs it;
- duplicate claims (for every tenant at once) older than the duplicate window: they no
  longer make anything a duplicate.
Pending deliveries are never pruned, nor the messages they belong to.

Each batch is one short transaction that locks at most `batch_size` rows, skips rows
another transaction holds (SKIP LOCKED) and gives up on any lock it would wait for, so
the pruning never stands in the way of ingest, the delivery engine or a replay.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt
from ingest.models import DUPLICATE_WINDOW, Message, MessageClaim
from portal import metrics
from portal.models import Tenant, TenantSettings

logger = logging.getLogger(__name__)

# How the models' labels map to the metric's kinds.
_KINDS = {
    "ingest.Message": "messages",
    "devices.Reading": "readings",
    "delivery.Delivery": "deliveries",
    "delivery.DeliveryAttempt": "attempts",
    "ingest.MessageClaim": "duplicate_claims",
}


@dataclass(frozen=True)
class RetentionPolicy:
    message_days: int = TenantSettings.DEFAULT_MESSAGE_DAYS
    succeeded_delivery_days: int = TenantSettings.DEFAULT_SUCCEEDED_DELIVERY_DAYS
    failed_delivery_days: int = TenantSettings.DEFAULT_FAILED_DELIVERY_DAYS


@dataclass
class PruneResult:
    """Rows removed, by model label; `complete` is False when the time budget ran out first."""

    removed: Counter = field(default_factory=Counter)
    complete: bool = True


def retention_policy_for(*, tenant: Tenant) -> RetentionPolicy:
    row = TenantSettings.objects.filter(tenant=tenant).first()
    if row is None:
        return RetentionPolicy()
    return RetentionPolicy(
        message_days=row.message_retention_days,
        succeeded_delivery_days=row.succeeded_delivery_retention_days,
        failed_delivery_days=row.failed_delivery_retention_days,
    )


def due_succeeded_deliveries(*, tenant_id: int, now: datetime, days: int) -> QuerySet[Delivery]:
    cutoff = now - timedelta(days=days)
    # delivered_at is never before created_at: the created_at bound lets the tenant/time index narrow the scan.
    return Delivery.objects.filter(
        Q(delivered_at__lt=cutoff) | Q(delivered_at__isnull=True),
        tenant_id=tenant_id,
        status=Delivery.Status.SUCCEEDED,
        created_at__lt=cutoff,
    )


def due_failed_deliveries(*, tenant_id: int, now: datetime, days: int) -> QuerySet[Delivery]:
    cutoff = now - timedelta(days=days)
    recent_attempt = DeliveryAttempt.objects.filter(delivery=OuterRef("pk"), started_at__gte=cutoff)
    return Delivery.objects.filter(tenant_id=tenant_id, status=Delivery.Status.FAILED, created_at__lt=cutoff).filter(
        ~Exists(recent_attempt)
    )


def due_messages(*, tenant_id: int, now: datetime, days: int) -> QuerySet[Message]:
    cutoff = now - timedelta(days=days)
    return Message.objects.filter(tenant_id=tenant_id, received_at__lt=cutoff).filter(
        ~Exists(Delivery.objects.filter(message=OuterRef("pk")))
    )


def _batch_delete(due: QuerySet, *, batch_size: int) -> Counter:
    """Delete one batch of `due`, in one short transaction; empty when nothing (unlocked) is due."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Never queue behind another transaction's lock: give up and try again next run.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute("SET LOCAL statement_timeout = '60s'")
        ids = list(due.order_by().select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return Counter()
        # The rows are locked now; `due` is asked again so a row that stopped being due
        # between the two statements (a replay, a new delivery of an old message) stays.
        _, per_model = due.filter(pk__in=ids).delete()
    return Counter({label: n for label, n in per_model.items() if n})


def _prune(due: QuerySet, *, batch_size: int, deadline: float, result: PruneResult) -> None:
    while True:
        if time.monotonic() > deadline:
            result.complete = False
            return
        try:
            removed = _batch_delete(due, batch_size=batch_size)
        except OperationalError as exc:
            # A lock or statement timeout: what is left is pruned on the next run.
            logger.warning("retention batch gave up: %s", type(exc).__name__)
            result.complete = False
            return
        if not removed:
            return
        result.removed.update(removed)
        for label, count in removed.items():
            metrics.rows_pruned(kind=_KINDS.get(label, "other"), count=count)


def retention_prune(
    *, now: datetime | None = None, batch_size: int | None = None, max_seconds: float | None = None
) -> PruneResult:
    """Remove every tenant's data that is past its retention, a batch at a time."""
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    deadline = time.monotonic() + (max_seconds if max_seconds is not None else settings.RETENTION_MAX_SECONDS)
    result = PruneResult()
    for tenant in Tenant.objects.order_by("pk"):
        policy = retention_policy_for(tenant=tenant)
        # Deliveries first: a message goes only once no delivery points at it.
        for due in (
            due_succeeded_deliveries(tenant_id=tenant.pk, now=now, days=policy.succeeded_delivery_days),
            due_failed_deliveries(tenant_id=tenant.pk, now=now, days=policy.failed_delivery_days),
            due_messages(tenant_id=tenant.pk, now=now, days=policy.message_days),
        ):
            _prune(due, batch_size=batch_size, deadline=deadline, result=result)
    expired_claims = MessageClaim.objects.filter(claimed_at__lt=now - DUPLICATE_WINDOW)
    _prune(expired_claims, batch_size=batch_size, deadline=deadline, result=result)
    logger.info(
        "retention pruned %s",
        ", ".join(f"{n} {_KINDS.get(label, label)}" for label, n in sorted(result.removed.items())) or "nothing",
        extra={"removed": {_KINDS.get(k, k): v for k, v in result.removed.items()}, "complete": result.complete},
    )
    return result
