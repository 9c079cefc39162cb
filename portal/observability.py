"""What the delivery engine reports once it has recorded a batch: metrics and one log line per attempt.

The engine (delivery/pump.py) calls these after writing the attempts, with its own
objects; only their ids, codes and timings are read here — never a request, a header,
a body or an error text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from portal import metrics
from portal.logging import log_context

logger = logging.getLogger("delivery.attempts")

# The engine's error classes (delivery.http.failure_describe) as the metric's outcomes.
_OUTCOMES = {
    "timeout": "timeout",
    "tls": "tls_error",
    "connection": "connection_error",
    "protocol": "connection_error",
    "url_refused": "refused",
    "status": "http_error",
    "": "http_error",
}


def attempt_outcome(*, ok: bool, error_class: str, status_code: int | None) -> str:
    if ok:
        return "success"
    if not error_class and status_code is None:
        return "error"
    return _OUTCOMES.get(error_class, "error")


def delivery_attempts_report(reported: Sequence[tuple]) -> None:
    """(claimed, destination, outcome, ok, new status, ingest request id) per recorded attempt: count, time and
    log each."""
    if not reported:
        return
    log = logger.isEnabledFor(logging.INFO)
    for claimed, destination, outcome, ok, status, request_id in reported:
        label = attempt_outcome(ok=ok, error_class=outcome.error_class, status_code=outcome.status_code)
        metrics.delivery_attempted(outcome=label, seconds=outcome.duration_ms / 1000)
        if status in ("succeeded", "failed"):
            metrics.delivery_finished(outcome=status)
        if not log:
            continue
        with log_context(
            request_id=request_id or None,
            tenant_id=destination.tenant_id,
            destination_id=destination.id,
            delivery_id=claimed.id,
            message_id=claimed.message_id,
        ):
            logger.log(
                logging.INFO if ok else logging.WARNING,
                "delivery attempt %s %s",
                claimed.attempts_count + 1,
                "succeeded" if ok else f"failed ({label})",
                extra={
                    "attempt": claimed.attempts_count + 1,
                    "outcome": label,
                    "status_code": outcome.status_code,
                    "duration_ms": outcome.duration_ms,
                    "delivery_status": status,
                },
            )


def deliveries_failed_unsent(*, count: int) -> None:
    """Deliveries failed at once, without an attempt (an empty dynamic field, an unreadable secret)."""
    for _ in range(count):
        metrics.delivery_finished(outcome="failed")
