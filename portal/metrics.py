"""Prometheus metrics: what the code counts, and the /metrics view that serves them.

Web processes (several gunicorn workers) and Celery worker processes all count, so the
counters live in prometheus-client's multiprocess mode: each process writes its values
to small memory-mapped files under one directory per machine, `PROMETHEUS_MULTIPROC_DIR`
(default `var/prometheus/`), and /metrics adds up every file found there. A service's
main process claims a subdirectory of its own (`web-<host>/`, `celery-<node name>/`) and empties
it when it starts, so a restart never wipes the files of the processes of another
service that are still running. Gauges that describe the data (pending deliveries, the
oldest one's age, disabled destinations) are computed from the database when scraped.

Callers use the small functions below (`message_received`, `delivery_attempted`, …);
label values are checked against fixed sets, so a typo cannot grow the label space.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import shutil
from collections.abc import Iterable, Iterator
from glob import glob
from pathlib import Path

_ROOT_ENV = "PORTAL_METRICS_ROOT"
_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _root_default() -> Path:
    # The same var/ as portal.settings, without loading Django (gunicorn's master imports this).
    base = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("PORTAL_VAR_DIR", base / "var")) / "prometheus"


# prometheus-client picks multiprocess mode when it is imported, from the environment:
# set it first. PORTAL_METRICS_ROOT remembers the machine's directory once a process has
# pointed PROMETHEUS_MULTIPROC_DIR at its own subdirectory (and for the processes it starts).
# Both are read again whenever a value is first written or a scrape is served, never cached.
os.environ.setdefault(_ROOT_ENV, os.environ.get(_DIR_ENV) or str(_root_default()))
os.environ.setdefault(_DIR_ENV, os.environ[_ROOT_ENV])
Path(os.environ[_ROOT_ENV]).mkdir(parents=True, exist_ok=True)


def root() -> Path:
    """The directory every process of this machine writes its metrics under."""
    return Path(os.environ[_ROOT_ENV])


from prometheus_client import (  # noqa: E402  (must follow the environment set above)
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead  # noqa: E402

# Label values each metric accepts; anything else is counted as "other".
MESSAGE_STATUSES = frozenset(
    {
        "accepted",  # stored and normalised (200)
        "duplicate",  # seen before, answered with the first message id (200)
        "invalid",  # authentic but not a valid pack, stored as invalid (422)
        "unauthorized",  # bad or missing token, signature or credentials (401)
        "forbidden",  # disabled connection (403)
        "not_found",  # unknown connection (404)
        "rejected",  # wrong method, too large, not JSON (405, 413, 415, 400)
        "unavailable",  # the database could not commit (503)
        "error",  # anything else (5xx)
    }
)
CONNECTION_KINDS = frozenset({"kpn-things", "digital-matter", "standard-webhooks", "unknown"})
ATTEMPT_OUTCOMES = frozenset({"success", "http_error", "timeout", "connection_error", "tls_error", "refused", "error"})
DELIVERY_OUTCOMES = frozenset({"succeeded", "failed"})
PRUNED_KINDS = frozenset({"messages", "readings", "deliveries", "attempts", "duplicate_claims"})
AREAS = frozenset({"ingest", "api", "admin", "accounts", "static", "healthz", "readyz", "metrics", "portal"})

_messages = Counter(
    "portal_ingest_messages", "Webhook requests to ingest URLs, by connection kind and outcome.", ["kind", "status"]
)
_http_requests = Counter("portal_http_requests", "HTTP requests answered, by area and status code.", ["area", "code"])
_http_seconds = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer an HTTP request, by area.",
    ["area"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_attempts = Counter("portal_delivery_attempts", "Delivery attempts, by outcome.", ["outcome"])
_attempt_seconds = Histogram(
    "portal_delivery_attempt_duration_seconds",
    "Time from sending a delivery's request to its answer (or failure), by outcome.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
)
_deliveries = Counter("portal_deliveries_finished", "Deliveries that reached a final state, by outcome.", ["outcome"])
_pruned = Counter("portal_retention_pruned_rows", "Rows removed by the retention task, by kind.", ["kind"])


def _label(value: object, allowed: frozenset[str]) -> str:
    text = str(value)
    return text if text in allowed else "other"


def message_received(*, kind: str, status: str) -> None:
    """One request to an ingest URL was answered (`status` is one of MESSAGE_STATUSES)."""
    _messages.labels(kind=_label(kind, CONNECTION_KINDS), status=_label(status, MESSAGE_STATUSES)).inc()


def http_request_finished(*, area: str, code: int, seconds: float) -> None:
    area = _label(area, AREAS)
    _http_requests.labels(area=area, code=str(code)).inc()
    _http_seconds.labels(area=area).observe(seconds)


def delivery_attempted(*, outcome: str, seconds: float) -> None:
    """One attempt of a delivery ended (`outcome` is one of ATTEMPT_OUTCOMES)."""
    outcome = _label(outcome, ATTEMPT_OUTCOMES)
    _attempts.labels(outcome=outcome).inc()
    _attempt_seconds.labels(outcome=outcome).observe(seconds)


def delivery_finished(*, outcome: str) -> None:
    """A delivery became `succeeded`, or `failed` after its last attempt."""
    _deliveries.labels(outcome=_label(outcome, DELIVERY_OUTCOMES)).inc()


def rows_pruned(*, kind: str, count: int) -> None:
    if count:
        _pruned.labels(kind=_label(kind, PRUNED_KINDS)).inc(count)


# --- multiprocess bookkeeping -------------------------------------------------------


def multiprocess_dir_claim(name: str) -> Path:
    """Make this process, and every process it forks from now on, write under root()/<name>.

    Called once by a service's main process before it forks (gunicorn's master, a Celery
    worker's main process). The subdirectory is emptied first: its files belong to the
    previous run of this same service.
    """
    path = root() / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[_DIR_ENV] = str(path)
    return path


def process_dead(pid: int) -> None:
    """Drop the live-gauge files of a process that exited (gunicorn's child_exit hook)."""
    mark_process_dead(pid, os.environ.get(_DIR_ENV, str(root())))


def multiprocess_mode() -> bool:
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class _FilesCollector:
    """Every process's files on this machine: root() and each service's subdirectory."""

    def collect(self) -> Iterable:
        files = glob(str(root() / "*.db")) + glob(str(root() / "*" / "*.db"))
        return MultiProcessCollector.merge(files, accumulate=True)


class _DatabaseCollector:
    """Gauges of the delivery queue, read from the database at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError

        up = GaugeMetricFamily("portal_metrics_database_up", "1 when the database answered this scrape's queries.")
        try:
            stats = delivery_queue_stats()
        except DatabaseError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("portal_deliveries_pending", "Deliveries waiting to be sent.", value=stats["pending"])
        yield GaugeMetricFamily(
            "portal_deliveries_pending_due",
            "Pending deliveries whose next attempt time has come.",
            value=stats["due"],
        )
        yield GaugeMetricFamily(
            "portal_delivery_oldest_pending_age_seconds",
            "Age of the oldest pending delivery (0 when none), waits between retries included.",
            value=stats["oldest_pending_age"],
        )
        yield GaugeMetricFamily(
            "portal_delivery_oldest_due_wait_seconds",
            "How long the most overdue pending delivery has been due (0 when none): the queue lag.",
            value=stats["oldest_due_wait"],
        )
        yield GaugeMetricFamily(
            "portal_destinations_disabled", "Destinations disabled (410 Gone or failing).", value=stats["disabled"]
        )


def delivery_queue_stats() -> dict[str, float]:
    """Counts and ages of pending deliveries, and the number of disabled destinations."""
    from django.db.models import Count, Min
    from django.utils import timezone

    from delivery.models import Delivery, Destination

    now = timezone.now()
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING).order_by()
    # Counts and next_attempt_at come from the partial index of pending deliveries alone
    # (index-only); the oldest created_at reads the pending rows (bench/RESULTS-db.md).
    count = pending.aggregate(count=Count("*"))["count"]
    due = pending.filter(next_attempt_at__lte=now).aggregate(count=Count("*"), oldest=Min("next_attempt_at"))
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"] if count else None
    return {
        "pending": count,
        "due": due["count"],
        "oldest_pending_age": max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        "oldest_due_wait": max(0.0, (now - due["oldest"]).total_seconds()) if due["oldest"] else 0.0,
        "disabled": Destination.objects.filter(enabled=False).count(),
    }


def machine_registry(*, include_database: bool) -> CollectorRegistry:
    """Every process's counters on this machine, and optionally the database gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FilesCollector())
    if include_database:
        registry.register(_DatabaseCollector())
    return registry


def exposition(*, include_database: bool = True) -> bytes:
    """The text a scrape gets: every process's counters, plus the database gauges."""
    output = generate_latest(machine_registry(include_database=include_database))
    if not multiprocess_mode():
        # prometheus-client was imported before PROMETHEUS_MULTIPROC_DIR was set: this
        # process counts in memory, so serve its own registry too.
        output += generate_latest(REGISTRY)
    return output


# --- access to /metrics -------------------------------------------------------------

_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def metrics_access_allowed(request) -> bool:
    """A valid `Authorization: Bearer <METRICS_TOKEN>`, or a direct request from METRICS_ALLOWED_IPS.

    A request that came through a reverse proxy is never let in by address: behind a
    proxy on the same machine every client would look like loopback.
    """
    from django.conf import settings

    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    if any(header in request.META for header in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks(settings.METRICS_ALLOWED_IPS))


def _networks(entries: list[str]) -> list:
    from django.core.exceptions import ImproperlyConfigured

    try:
        return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {exc}") from None


def metrics_view(request):
    from django.conf import settings
    from django.http import HttpResponse

    if not metrics_access_allowed(request):
        if settings.METRICS_TOKEN:
            response = HttpResponse("A valid metrics token is needed.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return HttpResponse("Metrics are served to allowed addresses only.\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
