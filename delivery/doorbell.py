"""The doorbell: telling workers that deliveries are due. The rows are the truth.

`doorbell_ring_on_commit()` is the one way code in a transaction announces new or
re-opened deliveries: it publishes after COMMIT, so no worker looks before the rows
exist. A ring that is lost (a crash between COMMIT and publish, a broker that is down
or flushed) loses nothing: the sweeper rings for whatever is due.

`doorbell_ring_now_rollback_unsafe()` publishes at once; only code outside any
transaction (the sweeper, a pump scheduling its next look) may use it.

Rings are coalesced: with a Redis broker a short-lived flag absorbs rings while a
pump task is already queued, so 200 messages a second make a handful of tasks, not
200. A pump clears the flag when it starts (`doorbell_answered`), before it looks at
the rows, so a ring after that always makes a new task.

Within one process, rings after a commit that come less than `RECENT_FLAG_SECONDS` after this process
saw the flag set skip even that Redis round trip: the pump task the flag stands for
starts after that moment and runs until it has found nothing for
DELIVERY_IDLE_SECONDS, far longer, so it finds the new rows.

No ring is ever scheduled further ahead than `MAX_COUNTDOWN_SECONDS`, well inside the
Redis visibility timeout (a longer wait is a `next_attempt_at` the sweeper finds).
"""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

FLAG_KEY = "delivery:doorbell"
FLAG_SECONDS = 5
RECENT_FLAG_SECONDS = 0.05
# When this process last saw the flag set (monotonic seconds; per process, not per thread: a guess is safe).
_flag_seen_at = -1.0
MAX_COUNTDOWN_SECONDS = 600


@lru_cache(maxsize=4)
def _redis(url: str, pid: int):
    import redis

    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _flag_client():
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    return _redis(url, os.getpid())


def _publish(*, countdown: float | None = None, coalesce: bool = True, recent_enough: bool = False) -> None:
    from delivery.tasks import deliveries_pump

    global _flag_seen_at
    try:
        client = _flag_client() if coalesce else None
        if client is not None:
            now = time.monotonic()
            if recent_enough and now - _flag_seen_at < RECENT_FLAG_SECONDS:
                return  # a pump task was on its way a moment ago
            fresh = client.set(FLAG_KEY, b"1", nx=True, ex=FLAG_SECONDS)
            _flag_seen_at = now
            if not fresh:
                return  # a pump task is already on its way
        options = {"countdown": min(countdown, MAX_COUNTDOWN_SECONDS)} if countdown else {}
        try:
            deliveries_pump.apply_async(**options)
        except Exception:
            if client is not None:
                _flag_seen_at = -1.0
                client.delete(FLAG_KEY)
            raise
    except Exception as exc:
        # The broker being down must not fail the caller: the sweeper will find the rows.
        logger.warning("delivery doorbell not rung (%s); the sweeper will find the deliveries", type(exc).__name__)


def doorbell_ring_on_commit() -> None:
    """Tell workers, after the current transaction commits, that deliveries are due."""
    transaction.on_commit(_ring_after_commit)


def _ring_after_commit() -> None:
    _publish(recent_enough=True)


def doorbell_ring_now_rollback_unsafe(*, countdown: float | None = None) -> None:
    """Ring at once (or after `countdown` s, at most MAX_COUNTDOWN_SECONDS). Not for use inside a transaction."""
    _publish(countdown=countdown, coalesce=countdown is None)


NEXT_KEY = "delivery:doorbell:at"


def doorbell_ring_at_rollback_unsafe(when_epoch: float) -> None:
    """Ring when the next retry falls due (if within MAX_COUNTDOWN_SECONDS; else the sweeper will).

    Every pump that goes idle asks for a ring at the earliest `next_attempt_at`, so
    retries are sent on time one after another; a Redis key keeps it to one scheduled
    ring per moment.
    """
    wait = when_epoch - time.time()
    if wait > MAX_COUNTDOWN_SECONDS:
        return
    wait = max(wait, 0.05)
    try:
        client = _flag_client()
        if client is not None:
            scheduled = client.get(NEXT_KEY)
            if scheduled is not None and time.time() < float(scheduled) <= when_epoch + 0.05:
                return  # a ring is already on its way by then
            client.set(NEXT_KEY, repr(when_epoch), ex=int(wait) + 5)
    except Exception as exc:
        logger.warning("delivery doorbell schedule not read (%s)", type(exc).__name__)
    _publish(countdown=wait, coalesce=False)


def doorbell_answered() -> None:
    """A pump is starting: rings from now on make a new task."""
    global _flag_seen_at
    _flag_seen_at = -1.0
    try:
        client = _flag_client()
        if client is not None:
            client.delete(FLAG_KEY)
    except Exception as exc:
        logger.warning("delivery doorbell flag not cleared (%s)", type(exc).__name__)
