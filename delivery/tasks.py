"""Celery tasks of the delivery engine. They take no payload and no secret: the rows
are the truth, and each task reads what it needs from them.

- `deliveries_pump`: the doorbell's task; sends due deliveries (delivery/pump.py).
- `deliveries_sweep` (beat): takes back stale claims and rings for due deliveries.
- `destinations_probe` (beat): tries engine-disabled destinations again.
"""

from __future__ import annotations

import logging

from celery import shared_task

from delivery import services
from delivery.doorbell import doorbell_answered

logger = logging.getLogger(__name__)


@shared_task(name="delivery.tasks.deliveries_pump", ignore_result=True)
def deliveries_pump() -> None:
    doorbell_answered()
    stats = services.deliveries_run()
    if stats.claimed:
        logger.info(
            "delivery pump: %d claimed, %d succeeded, %d failed attempts, %d refused",
            stats.claimed,
            stats.succeeded,
            stats.failed_attempts,
            stats.refused,
        )


@shared_task(name="delivery.tasks.deliveries_sweep", ignore_result=True)
def deliveries_sweep() -> None:
    services.deliveries_sweep()


@shared_task(name="delivery.tasks.destinations_probe", ignore_result=True)
def destinations_probe() -> None:
    services.destinations_probe_due()
