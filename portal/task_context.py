"""Celery signal receivers: log context per task, the request id across the broker, and
each worker's own metrics directory.

Imported by the web side (portal.request_context) and by the worker (portal.tasks).
"""

from __future__ import annotations

from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init

from portal.logging import context_bind, context_clear, context_get, request_id_clean

# The message header that carries a request id to the tasks enqueued while handling it.
TASK_REQUEST_ID_HEADER = "portal_request_id"


@before_task_publish.connect(dispatch_uid="portal.task_context.request_id_to_task")
def _request_id_to_task(headers: dict | None = None, **kwargs) -> None:
    """A task enqueued while a request (or a task) is handled carries its request id: a header, not an argument."""
    request_id = context_get().get("request_id")
    if request_id and headers is not None:
        headers.setdefault(TASK_REQUEST_ID_HEADER, request_id)


def task_request_id(task) -> str | None:
    request = getattr(task, "request", None)
    value = getattr(request, TASK_REQUEST_ID_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(TASK_REQUEST_ID_HEADER)
    return request_id_clean(value)


@task_prerun.connect(dispatch_uid="portal.task_context.task_started")
def _task_started(task=None, **kwargs) -> None:
    # A worker process runs task after task: nothing of the previous one may stick.
    context_clear()
    request_id = task_request_id(task)
    if request_id:
        context_bind(request_id=request_id)


@task_postrun.connect(dispatch_uid="portal.task_context.task_finished")
def _task_finished(**kwargs) -> None:
    context_clear()


@worker_init.connect(dispatch_uid="portal.task_context.worker_metrics_dir")
def _worker_metrics_dir(sender=None, **kwargs) -> None:
    """The worker's main process, before its pool forks: its processes write metrics under their own directory."""
    from portal import metrics

    metrics.multiprocess_dir_claim(f"celery-{getattr(sender, 'hostname', None) or 'worker'}")
