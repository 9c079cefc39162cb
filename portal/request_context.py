"""The request id, log context, access log line and HTTP metrics of every request."""

from __future__ import annotations

import logging
import time

from portal import metrics, task_context  # noqa: F401  (task_context: tasks a request enqueues carry its id)
from portal.logging import context_bind, log_context, request_id_clean, request_id_new

REQUEST_ID_HEADER = "X-Request-ID"

access_log = logging.getLogger("portal.access")


def request_area(path: str) -> str:
    """A small, fixed set of names for the part of the site a path belongs to (a metric label)."""
    first = path.lstrip("/").split("/", 1)[0]
    if first in {"ingest", "api", "admin", "accounts", "static", "healthz", "readyz", "metrics"}:
        return first
    return "portal"


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID when it is well formed) that
    every log line of the request carries, answers it in X-Request-ID, and counts the
    request by area and status code.

    Put it first in MIDDLEWARE, so what the middleware below it logs carries the id too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_clean(request.headers.get(REQUEST_ID_HEADER)) or request_id_new()
        request.request_id = request_id
        started = time.perf_counter()
        area = request_area(request.path)
        with log_context(request_id=request_id):
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            metrics.http_request_finished(area=area, code=response.status_code, seconds=seconds)
            if area not in {"static", "healthz", "readyz", "metrics"}:
                self._bind_tenant(request)
                # The path only: query strings can carry tokens.
                access_log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round(seconds * 1000, 1),
                    },
                )
        return response

    @staticmethod
    def _bind_tenant(request) -> None:
        # Only when a view already worked out the tenant: never a query just for a log line.
        lazy = getattr(request, "tenant_context", None)
        wrapped = getattr(lazy, "_wrapped", None)
        tenant = getattr(wrapped, "tenant", None)
        if tenant is not None:
            context_bind(tenant_id=tenant.pk)
