"""Delivery writes. (The engine is built on these; see the delivery issue.)"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from delivery.models import Delivery, Destination


def deliveries_create_for_message(*, message) -> list[Delivery]:
    """One pending Delivery per matching destination, in the caller's transaction.

    Called by ingest inside the transaction that stores the message, so a message and
    its deliveries commit together. Workers are told after commit.
    """
    destinations = (
        Destination.objects.filter(tenant_id=message.tenant_id, enabled=True)
        .filter(Q(connections=None) | Q(connections=message.connection_id))
        .distinct()
    )
    now = timezone.now()
    deliveries = [
        Delivery(tenant_id=message.tenant_id, message=message, destination=d, next_attempt_at=now) for d in destinations
    ]
    return Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
