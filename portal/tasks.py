"""Periodic housekeeping of the portal itself."""

from __future__ import annotations

from celery import shared_task

from portal import task_context  # noqa: F401  (log context per task, the worker's metrics directory)
from portal.retention import retention_prune as retention_prune_run


@shared_task(name="portal.tasks.retention_prune", ignore_result=True)
def retention_prune() -> None:
    """Remove data past its retention (hourly, from CELERY_BEAT_SCHEDULE)."""
    retention_prune_run()
