"""Liveness and readiness probes for load balancers and orchestrators."""

from django.conf import settings
from django.db import connection as db_connection
from django.http import JsonResponse
from kombu import Connection


def healthz(request):
    """The process is up and answering."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:  # any driver error means not ready
        return type(exc).__name__


def _broker_ok() -> str | None:
    try:
        with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return None
    except Exception as exc:
        return type(exc).__name__


def readyz(request):
    """The database and the broker are reachable; 503 names what is not."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(problem is None for problem in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: ("ok" if problem is None else f"unreachable ({problem})") for name, problem in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
