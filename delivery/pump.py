"""The task side of the delivery engine: claim due rows, build requests, record outcomes.

One `deliveries_run()` call (the body of the `deliveries_pump` Celery task) loops:

1. **claim** up to the free slots of due deliveries with `SELECT … FOR UPDATE SKIP
   LOCKED` (skipping destinations whose own slots are full), stamping each with a
   `claim_token` and a lease (`claimed_until`), in one short transaction;
2. **build** each request from snapshots loaded in bulk (one query each for the
   deliveries, messages with devices, readings and — cached for two seconds —
   destinations), the body once per message and format;
3. **submit** them to this process's event loop (delivery/engine.py);
4. **record** finished attempts in bulk: one INSERT of attempts, one UPDATE of
   deliveries, only for rows this claim still holds;

and keeps going while work arrives, then returns after DELIVERY_IDLE_SECONDS without
any, or after DELIVERY_RUN_SECONDS. Two workers never send the same attempt at once:
a row is claimed under a row lock, only when it is due and unclaimed (or its lease
ran out), and an attempt's hard deadline (its timeout, ≤ 30 s) ends well inside the
lease. A worker killed mid-send leaves its claims to run out; the sweeper clears them.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import json
import logging
import queue
import random
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from delivery.dynamic_fields import DynamicFieldError
from delivery.engine import Engine, Job, Outcome, engine_get
from delivery.models import Delivery, DeliveryAttempt, Destination
from delivery.payloads import payload_build
from delivery.request import request_build
from delivery.snapshot import DestinationData, DeviceData, MessageData, ReadingData
from portal import observability
from portal.fields import SecretUnavailable

logger = logging.getLogger(__name__)

# Waits before attempts 2, 3, … 10 of a series (± 10 % jitter).
RETRY_WAITS = (10, 60, 300, 1800, 7200, 18000, 36000, 36000, 36000)
MAX_TIMEOUT_SECONDS = 30
LEASE_MARGIN_SECONDS = 15
DESTINATION_CACHE_SECONDS = 2.0
MESSAGE_CACHE_SIZE = 2000


def attempt_timeout(*, timeout_seconds: int, attempt: int) -> int:
    """Attempt n of a series waits timeout_seconds * n for its answer, at most 30 s."""
    return min(timeout_seconds * attempt, MAX_TIMEOUT_SECONDS)


def retry_wait(*, attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` of a series, jittered ± 10 %."""
    base = RETRY_WAITS[min(attempt, len(RETRY_WAITS)) - 1]
    return base * random.uniform(0.9, 1.1)


def outcome_succeeded(outcome: Outcome, expected: int | None) -> bool:
    if outcome.status_code is None or outcome.error_class:
        return False
    if expected is not None:
        return outcome.status_code == expected
    return 200 <= outcome.status_code < 300


def outcome_error_text(outcome: Outcome, expected: int | None) -> str:
    if outcome.error_class:
        return outcome.error
    code = outcome.status_code
    if code is not None and 300 <= code < 400:
        return f"answered {code}: redirects are not followed"
    if code == 410:
        return "answered 410 Gone"
    if expected is not None and code is not None and 200 <= code < 300:
        return f"answered {code}, expected {expected}"
    return f"answered {code}"


# -- snapshots ---------------------------------------------------------------------------

_destination_cache: dict[uuid.UUID, tuple[float, DestinationData]] = {}
_message_cache: OrderedDict[uuid.UUID, MessageData] = OrderedDict()


def destination_data(destination: Destination) -> DestinationData:
    """The destination as the engine uses it, secrets revealed; `problem` says why it cannot send."""
    problem = ""
    secrets: tuple[str, ...] = ()
    password = client_secret = ""
    try:
        secrets = tuple(sealed.reveal() for sealed in destination.secrets_in_force())
        if not secrets:
            problem = "no shared secret is set; set one to sign deliveries"
        if destination.auth_type == Destination.AuthType.BASIC:
            password = destination.auth_password.reveal() if destination.auth_password is not None else ""
        if destination.auth_type == Destination.AuthType.OAUTH2:
            sealed = destination.oauth2_client_secret
            client_secret = sealed.reveal() if sealed is not None else ""
    except SecretUnavailable:
        problem = (
            "a secret of this destination cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS; "
            "set the secret again (or restore the key), then enable the destination"
        )
    headers = tuple((h.name, h.value) for h in destination.header_rows.all())
    return DestinationData(
        id=destination.id,
        tenant_id=destination.tenant_id,
        url=destination.url,
        method=destination.method,
        headers=headers,
        signature=destination.signature,
        payload_format=destination.payload_format,
        expected_response_code=destination.expected_response_code,
        auth_type=destination.auth_type,
        auth_username=destination.auth_username,
        timeout_seconds=destination.timeout_seconds,
        max_attempts=destination.max_attempts,
        oauth2_token_url=destination.oauth2_token_url,
        oauth2_client_id=destination.oauth2_client_id,
        oauth2_scope=destination.oauth2_scope,
        failing_since=destination.failing_since,
        secrets=secrets,
        auth_password=password,
        oauth2_client_secret=client_secret,
        problem=problem,
    )


def destinations_load(ids: set[uuid.UUID]) -> dict[uuid.UUID, DestinationData]:
    now = time.monotonic()
    found = {i: e[1] for i in ids if (e := _destination_cache.get(i)) and now - e[0] < DESTINATION_CACHE_SECONDS}
    missing = ids - found.keys()
    if missing:
        for destination in Destination.objects.filter(id__in=missing).prefetch_related("header_rows"):
            data = destination_data(destination)
            _destination_cache[destination.id] = (now, data)
            found[destination.id] = data
    return found


def destination_cache_forget(destination_id: uuid.UUID) -> None:
    _destination_cache.pop(destination_id, None)


def message_data(message, readings: tuple[ReadingData, ...]) -> MessageData:
    """A message (loaded with its device) as the engine needs it, with its readings in order."""
    device = DeviceData.from_device(message.device) if message.device_id else None
    return MessageData(
        id=message.id, received_at=message.received_at, device=device, readings=readings, request_id=message.request_id
    )


def messages_load(ids: set[uuid.UUID]) -> dict[uuid.UUID, MessageData]:
    from devices.models import Reading
    from ingest.models import Message

    found = {i: _message_cache[i] for i in ids if i in _message_cache}
    missing = ids - found.keys()
    if missing and connection.vendor == "postgresql":
        loaded = _messages_load_postgresql(missing)
        found.update(loaded)
        _message_cache.update(loaded)
        missing = set()
    if missing:
        readings: dict[uuid.UUID, list[ReadingData]] = {i: [] for i in missing}
        for reading in Reading.objects.filter(message_id__in=missing).order_by("message_id", "id"):
            readings[reading.message_id].append(ReadingData.from_reading(reading))
        for message in Message.objects.filter(id__in=missing).select_related("device").defer("body"):
            data = message_data(message, tuple(readings[message.id]))
            found[message.id] = data
            _message_cache[message.id] = data
        while len(_message_cache) > MESSAGE_CACHE_SIZE:
            _message_cache.popitem(last=False)
    return found


def _messages_load_postgresql(ids: set[uuid.UUID]) -> dict[uuid.UUID, MessageData]:
    """Messages, their devices and readings in one query (the ORM needed two and model instances)."""
    from devices.models import Device, Reading
    from ingest.models import Message

    sql = f"""
        SELECT m.id, m.received_at, m.device_id, dv.serial, dv.imei, dv.iccid, dv.dev_eui, dv.custom1, dv.custom2,
               dv.custom3, dv.urn, r.name, r.unit, r.kind, r.value, r.sum, r.time, m.request_id
        FROM {Message._meta.db_table} m
        LEFT JOIN {Device._meta.db_table} dv ON dv.id = m.device_id
        LEFT JOIN {Reading._meta.db_table} r ON r.message_id = m.id
        WHERE m.id = ANY(%s::uuid[])
        ORDER BY m.id, r.id
    """  # noqa: S608 - table names are ours, the ids are a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(ids)])
        rows = cursor.fetchall()
    heads: dict[uuid.UUID, tuple] = {}
    readings: dict[uuid.UUID, list[ReadingData]] = {}
    for row in rows:
        message_id = row[0]
        if message_id not in heads:
            heads[message_id] = row
            readings[message_id] = []
        if row[11] is not None:
            value = json.loads(row[14]) if isinstance(row[14], str) else row[14]
            readings[message_id].append(
                ReadingData(name=row[11], unit=row[12], kind=row[13], value=value, sum=row[15], time=row[16])
            )
    loaded = {}
    for message_id, row in heads.items():
        device = None
        if row[2] is not None:
            device = DeviceData(
                id=row[2],
                serial=row[3],
                imei=row[4],
                iccid=row[5],
                dev_eui=row[6],
                custom1=row[7],
                custom2=row[8],
                custom3=row[9],
                urn=row[10],
            )
        loaded[message_id] = MessageData(
            id=message_id, received_at=row[1], device=device, readings=tuple(readings[message_id]), request_id=row[17]
        )
    return loaded


# -- claiming ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    destination_id: uuid.UUID
    message_id: uuid.UUID
    attempts_count: int
    series_attempts: int
    claim_token: uuid.UUID

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


# Failures where the receiver gave no HTTP answer at all.
NOT_ANSWERING = frozenset({"timeout", "connection", "tls", "protocol"})


class DestinationAllowance:
    """How many requests this worker process keeps in flight to each destination.

    Full width (DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION) until a request gets no answer at
    all (a timeout, a refused or broken connection); then one at a time, and each answer
    doubles the width back. Every request to a hanging receiver holds its connection
    until the timeout and is then dropped, so sending it a backlog at full width costs a
    TLS handshake and a slot a request, gains nothing, and piles onto a server in trouble.
    """

    def __init__(self) -> None:
        self._narrowed: dict[uuid.UUID, int] = {}

    def narrowed(self) -> dict[uuid.UUID, int]:
        """The destinations below full width, with their width."""
        return dict(self._narrowed)

    def outcome(self, destination_id: uuid.UUID, outcome: Outcome) -> None:
        if not outcome.answered and outcome.error_class in NOT_ANSWERING:
            self._narrowed[destination_id] = 1
        elif outcome.answered and destination_id in self._narrowed:
            wider = self._narrowed[destination_id] * 2
            if wider >= settings.DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION:
                del self._narrowed[destination_id]
            else:
                self._narrowed[destination_id] = wider


# One per worker process: it outlives each run of the pump, like the engine's clients.
_allowance = DestinationAllowance()


def due_deliveries(now: dt.datetime):
    """Pending, due, not held by a live claim, of an enabled destination; oldest first."""
    return (
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now, destination__enabled=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at", "created_at")
    )


def deliveries_claim(
    *,
    limit: int,
    busy: Counter | None = None,
    exclude: set[uuid.UUID] | None = None,
    narrowed: dict[uuid.UUID, int] | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due deliveries, at most the free slots of each destination.

    A destination has DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION slots, or its width in
    `narrowed`; `busy` are the slots already taken.
    """
    busy = busy or Counter()
    narrowed = narrowed or {}
    per_destination = settings.DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION
    free = {d: narrowed.get(d, per_destination) - busy[d] for d in {*busy, *narrowed}}
    full = [d for d, n in free.items() if n <= 0] + list(exclude or ())
    now = timezone.now()
    token = uuid.uuid4()
    if connection.vendor == "postgresql":
        partly = {d: n for d, n in free.items() if n > 0}
        return _claim_postgresql(limit=limit, free=partly, full=full, now=now, token=token)
    with transaction.atomic():
        rows = list(
            due_deliveries(now)
            .exclude(destination_id__in=full)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", "destination_id", "message_id", "attempts_count", "series_attempts",
                         "destination__timeout_seconds", "destination__auth_type")[:limit]
        )  # fmt: skip
        taken = Counter()
        kept = []
        lease = 0
        for row in rows:
            if taken[row[1]] >= free.get(row[1], per_destination):
                continue
            taken[row[1]] += 1
            kept.append(row)
            timeout = attempt_timeout(timeout_seconds=row[5], attempt=row[4] + 1)
            lease = max(lease, timeout * (2 if row[6] == Destination.AuthType.OAUTH2 else 1))
        if not kept:
            return []
        Delivery.objects.filter(id__in=[r[0] for r in kept]).update(
            claimed_until=now + dt.timedelta(seconds=lease + LEASE_MARGIN_SECONDS), claim_token=token
        )
    return [
        Claimed(
            id=r[0], destination_id=r[1], message_id=r[2], attempts_count=r[3], series_attempts=r[4], claim_token=token
        )
        for r in kept
    ]


def _claim_postgresql(
    *, limit: int, free: dict[uuid.UUID, int], full: list[uuid.UUID], now: dt.datetime, token: uuid.UUID
) -> list[Claimed]:
    """The claim as one statement: lock due rows (SKIP LOCKED), keep each destination's
    free slots, stamp lease and token, return them. One round trip instead of four.

    The lease of each row is its attempt's hard deadline (timeout_seconds * attempt,
    at most 30 s; twice that for OAuth2, which may fetch a token) plus a margin.
    """
    per_destination = settings.DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION
    busy_ids = list(free)
    busy_free = [free[d] for d in busy_ids]
    delivery, destination = Delivery._meta.db_table, Destination._meta.db_table
    sql = f"""
        WITH candidates AS (
            SELECT d.id, d.destination_id, d.next_attempt_at, d.created_at
            FROM {delivery} d JOIN {destination} t ON t.id = d.destination_id
            WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s
              AND (d.claimed_until IS NULL OR d.claimed_until < %(now)s)
              AND t.enabled AND NOT (d.destination_id = ANY(%(full)s::uuid[]))
            ORDER BY d.next_attempt_at, d.created_at
            LIMIT %(limit)s
            FOR UPDATE OF d SKIP LOCKED
        ), ranked AS (
            SELECT c.id, COALESCE(q.free, %(per_destination)s) AS free,
                   row_number() OVER (PARTITION BY c.destination_id ORDER BY c.next_attempt_at, c.created_at) AS rank
            FROM candidates c
            LEFT JOIN unnest(%(busy_ids)s::uuid[], %(busy_free)s::int[]) AS q(destination_id, free)
              ON q.destination_id = c.destination_id
        )
        UPDATE {delivery} d
        SET claim_token = %(token)s,
            claimed_until = %(now)s + make_interval(secs => %(margin)s
                + LEAST(t.timeout_seconds * (d.series_attempts + 1), %(max_timeout)s)
                * CASE WHEN t.auth_type = 'oauth2' THEN 2 ELSE 1 END)
        FROM ranked r, {destination} t
        WHERE d.id = r.id AND r.rank <= r.free AND t.id = d.destination_id
        RETURNING d.id, d.destination_id, d.message_id, d.attempts_count, d.series_attempts, d.next_attempt_at,
                  d.created_at
    """  # noqa: S608 - table names are ours, every value is a parameter
    params = {
        "now": now,
        "full": full,
        "limit": limit,
        "per_destination": per_destination,
        "busy_ids": busy_ids,
        "busy_free": busy_free,
        "token": token,
        "margin": LEASE_MARGIN_SECONDS,
        "max_timeout": MAX_TIMEOUT_SECONDS,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rows.sort(key=lambda r: (r[5], r[6]))  # RETURNING keeps no order: oldest first
    return [
        Claimed(
            id=r[0], destination_id=r[1], message_id=r[2], attempts_count=r[3], series_attempts=r[4], claim_token=token
        )
        for r in rows
    ]


# -- building ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A claimed delivery that is not sent: failed at once, or released for its destination's problem."""

    claimed: Claimed
    reason: str
    destination_problem: bool = False


def jobs_prepare(claimed: list[Claimed]) -> tuple[list[tuple[Claimed, Job]], list[Refusal]]:
    destinations = destinations_load({c.destination_id for c in claimed})
    messages = messages_load({c.message_id for c in claimed})
    bodies: dict[tuple[uuid.UUID, str], bytes] = {}
    jobs: list[tuple[Claimed, Job]] = []
    refusals: list[Refusal] = []
    now = int(time.time())
    for item in claimed:
        destination = destinations.get(item.destination_id)
        message = messages.get(item.message_id)
        if destination is None or message is None:
            continue  # deleted meanwhile: the row went with it (cascade)
        if destination.problem:
            refusals.append(Refusal(item, destination.problem, destination_problem=True))
            continue
        key = (message.id, destination.payload_format)
        if key not in bodies:
            bodies[key] = payload_build(message=message, payload_format=destination.payload_format)
        try:
            request = request_build(
                destination=destination,
                message=message,
                webhook_id=item.webhook_id,
                body=bodies[key],
                timestamp=now,
            )
        except DynamicFieldError as exc:
            refusals.append(Refusal(item, str(exc)))
            continue
        timeout = attempt_timeout(timeout_seconds=destination.timeout_seconds, attempt=item.series_attempts + 1)
        jobs.append(
            (
                item,
                Job(
                    delivery_id=item.id,
                    claim_token=item.claim_token,
                    destination=destination,
                    request=request,
                    timeout=timeout,
                    request_id=message.request_id,
                ),
            )
        )
    return jobs, refusals


# -- recording ---------------------------------------------------------------------------


def _still_held(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> set[uuid.UUID]:
    tokens = {t for _, t in pairs}
    held = Delivery.objects.select_for_update().filter(id__in=[i for i, _ in pairs], claim_token__in=tokens)
    wanted = set(pairs)
    return {i for i, t in held.values_list("id", "claim_token") if (i, t) in wanted}


def refusals_record(refusals: list[Refusal]) -> None:
    """Fail deliveries that cannot be built; release those whose destination cannot send."""
    from delivery.services import destination_disable

    if not refusals:
        return
    now = timezone.now()
    with transaction.atomic():
        held = _still_held([(r.claimed.id, r.claimed.claim_token) for r in refusals])
        failed = [
            Delivery(
                id=r.claimed.id,
                status=Delivery.Status.FAILED,
                last_error=r.reason,
                last_status_code=None,
                next_attempt_at=None,
                claimed_until=None,
                claim_token=None,
            )
            for r in refusals
            if not r.destination_problem and r.claimed.id in held
        ]
        Delivery.objects.bulk_update(
            failed, ["status", "last_error", "last_status_code", "next_attempt_at", "claimed_until", "claim_token"]
        )
        released = [r.claimed.id for r in refusals if r.destination_problem and r.claimed.id in held]
        Delivery.objects.filter(id__in=released).update(claimed_until=None, claim_token=None)
    observability.deliveries_failed_unsent(count=len(failed))
    for destination_id, reason in {(r.claimed.destination_id, r.reason) for r in refusals if r.destination_problem}:
        destination_disable(destination_id=destination_id, reason=reason, at=now)


@dataclass
class Recorded:
    succeeded: int = 0
    failed_attempts: int = 0
    earliest_retry: dt.datetime | None = None


OUTCOME_FIELDS = (
    "status",
    "attempts_count",
    "series_attempts",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "delivered_at",
)


@dataclass
class Planned:
    """What one outcome writes: the attempt row and the delivery's new state."""

    claimed: Claimed
    destination: DestinationData
    outcome: Outcome
    ok: bool
    attempt: DeliveryAttempt
    row: Delivery


def _outcomes_write_postgresql(planned: list[Planned]) -> set[uuid.UUID]:
    """One statement: update the deliveries this claim still holds, insert their attempts.

    The rows travel as arrays, so the statement's text is the same for any batch size:
    psycopg converts it once and PostgreSQL runs it prepared.
    """
    rows = [p.row for p in planned]
    attempts = [p.attempt for p in planned]
    params = {
        "id": [r.id for r in rows],
        "token": [p.claimed.claim_token for p in planned],
        "status": [r.status for r in rows],
        "attempts_count": [r.attempts_count for r in rows],
        "series_attempts": [r.series_attempts for r in rows],
        "next_attempt_at": [r.next_attempt_at for r in rows],
        "last_status_code": [r.last_status_code for r in rows],
        "last_error": [r.last_error for r in rows],
        "delivered_at": [r.delivered_at for r in rows],
        "number": [a.number for a in attempts],
        "started_at": [a.started_at for a in attempts],
        "duration_ms": [a.duration_ms for a in attempts],
        "status_code": [a.status_code for a in attempts],
        "success": [a.success for a in attempts],
        "error_class": [a.error_class for a in attempts],
        "error": [a.error for a in attempts],
        "response_body": [a.response_body for a in attempts],
    }
    with connection.cursor() as cursor:
        cursor.execute(_outcomes_write_sql(), params)
        return {row[0] for row in cursor.fetchall()}


@functools.cache
def _outcomes_write_sql() -> str:
    delivery, attempt = Delivery._meta.db_table, DeliveryAttempt._meta.db_table
    return f"""
        WITH v AS (
            SELECT * FROM unnest(
                %(id)s::uuid[], %(token)s::uuid[], %(status)s::text[], %(attempts_count)s::int[],
                %(series_attempts)s::int[], %(next_attempt_at)s::timestamptz[], %(last_status_code)s::int[],
                %(last_error)s::text[], %(delivered_at)s::timestamptz[], %(number)s::int[],
                %(started_at)s::timestamptz[], %(duration_ms)s::int[], %(status_code)s::int[],
                %(success)s::boolean[], %(error_class)s::text[], %(error)s::text[], %(response_body)s::text[]
            ) AS v(id, token, status, attempts_count, series_attempts, next_attempt_at, last_status_code,
                   last_error, delivered_at, number, started_at, duration_ms, status_code, success, error_class,
                   error, response_body)
        ), held AS (
            UPDATE {delivery} d
            SET status = v.status, attempts_count = v.attempts_count, series_attempts = v.series_attempts,
                next_attempt_at = v.next_attempt_at, last_status_code = v.last_status_code,
                last_error = v.last_error, delivered_at = v.delivered_at, claimed_until = NULL, claim_token = NULL
            FROM v WHERE d.id = v.id AND d.claim_token = v.token
            RETURNING d.id
        )
        INSERT INTO {attempt} (delivery_id, number, started_at, duration_ms, status_code, success, error_class,
                               error, response_body)
        SELECT v.id, v.number, v.started_at, v.duration_ms, v.status_code, v.success, v.error_class, v.error,
               v.response_body
        FROM v JOIN held ON held.id = v.id
        RETURNING delivery_id
    """  # noqa: S608 - table names are ours, every value is a parameter


def _outcomes_write_portable(planned: list[Planned]) -> set[uuid.UUID]:
    with transaction.atomic():
        held = _still_held([(p.claimed.id, p.claimed.claim_token) for p in planned])
        kept = [p for p in planned if p.claimed.id in held]
        DeliveryAttempt.objects.bulk_create([p.attempt for p in kept])
        Delivery.objects.bulk_update([p.row for p in kept], [*OUTCOME_FIELDS, "claimed_until", "claim_token"])
    return held


def outcome_plan(claimed: Claimed, destination: DestinationData, outcome: Outcome, now: dt.datetime) -> Planned:
    """The attempt row and the delivery's next state for one outcome (no database work)."""
    ok = outcome_succeeded(outcome, destination.expected_response_code)
    number = claimed.attempts_count + 1
    series = claimed.series_attempts + 1
    error_text = "" if ok else outcome_error_text(outcome, destination.expected_response_code)
    attempt = DeliveryAttempt(
        delivery_id=claimed.id,
        number=number,
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        status_code=outcome.status_code,
        success=ok,
        error_class=outcome.error_class or ("" if ok else "status"),
        error=error_text,
        response_body=outcome.response_body,
    )
    row = Delivery(
        id=claimed.id,
        attempts_count=number,
        series_attempts=series,
        last_status_code=outcome.status_code,
        last_error=error_text,
        claimed_until=None,
        claim_token=None,
    )
    if ok:
        row.status, row.next_attempt_at, row.delivered_at = Delivery.Status.SUCCEEDED, None, now
    elif series >= destination.max_attempts:
        row.status, row.next_attempt_at, row.delivered_at = Delivery.Status.FAILED, None, None
    else:
        wait = retry_wait(attempt=series)
        if outcome.retry_after is not None:
            wait = max(wait, outcome.retry_after)
        row.status, row.delivered_at = Delivery.Status.PENDING, None
        row.next_attempt_at = now + dt.timedelta(seconds=wait)
    return Planned(claimed=claimed, destination=destination, outcome=outcome, ok=ok, attempt=attempt, row=row)


def outcomes_record(results: list[tuple[Claimed, Job, Outcome]]) -> Recorded:
    """Write attempts and delivery states in bulk (only for rows the claim still holds);
    then apply what the outcomes mean for their destinations."""
    from delivery.services import destination_disable

    summary = Recorded()
    if not results:
        return summary
    now = timezone.now()
    planned = [outcome_plan(claimed, job.destination, outcome, now) for claimed, job, outcome in results]
    write = _outcomes_write_postgresql if connection.vendor == "postgresql" else _outcomes_write_portable
    held = write(planned)
    succeeded_destinations: set[uuid.UUID] = set()
    failed_destinations: dict[uuid.UUID, DestinationData] = {}
    gone: dict[uuid.UUID, str] = {}
    reported: list[tuple] = []
    for p, (_claimed, job, _outcome) in zip(planned, results, strict=True):
        if p.claimed.id not in held:
            logger.warning("delivery %s: claim lost before its outcome was recorded", p.claimed.id)
            continue
        reported.append((p.claimed, p.destination, p.outcome, p.ok, p.row.status, job.request_id))
        if p.ok:
            summary.succeeded += 1
            succeeded_destinations.add(p.destination.id)
            continue
        summary.failed_attempts += 1
        failed_destinations[p.destination.id] = p.destination
        if p.outcome.status_code == 410:
            gone[p.destination.id] = "the destination answered 410 Gone"
        if p.row.next_attempt_at is not None and (
            summary.earliest_retry is None or p.row.next_attempt_at < summary.earliest_retry
        ):
            summary.earliest_retry = p.row.next_attempt_at
    recovered = [d for d in succeeded_destinations if (c := _destination_cache.get(d)) and c[1].failing_since]
    if recovered:
        Destination.objects.filter(id__in=recovered).update(failing_since=None)
    still_failing = [d for d in failed_destinations if d not in succeeded_destinations]
    if still_failing:
        Destination.objects.filter(id__in=still_failing, failing_since__isnull=True).update(failing_since=now)
    observability.delivery_attempts_report(reported)
    limit = dt.timedelta(seconds=settings.DELIVERY_DISABLE_AFTER_SECONDS)
    for destination_id in still_failing:
        since = failed_destinations[destination_id].failing_since
        if destination_id in gone:
            destination_disable(destination_id=destination_id, reason=gone[destination_id], at=now)
        elif since is not None and now - since >= limit:
            hours = int(limit.total_seconds() // 3600)
            reason = f"every attempt failed for {hours} h (since {since:%Y-%m-%d %H:%M} UTC)"
            destination_disable(destination_id=destination_id, reason=reason, at=now)
    return summary


# -- the loop ----------------------------------------------------------------------------


@dataclass
class RunStats:
    claimed: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    refused: int = 0


class Finished:
    """The sends of one run that have come back, in the order they finished.

    Each future reports itself here when it is done, so a wake-up of the task thread costs
    the same whether ten requests are out or three hundred: `concurrent.futures.wait`
    locks and hooks every future it is given, on every call. With ten destinations (up to
    144 in flight a process) that made a delivery cost 3.0-3.5 ms of worker CPU against
    2.4-2.7 ms to one destination (16 in flight); now both cost the same (bench scenario 3).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[concurrent.futures.Future] = queue.SimpleQueue()

    def watch(self, future: concurrent.futures.Future) -> None:
        future.add_done_callback(self._queue.put)

    def take(self, *, timeout: float) -> list[concurrent.futures.Future]:
        """Those back within `timeout` seconds (none: an empty list), and any more a moment later."""
        try:
            first = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return []
        time.sleep(0.002)  # let a few more finish, to write them in one go
        taken = [first]
        while True:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                return taken


def _collect(in_flight: dict, done) -> list[tuple[Claimed, Job, Outcome]]:
    results = []
    for future in done:
        claimed, job = in_flight.pop(future)
        results.append((claimed, job, future.result()))
    return results


def deliveries_run(
    *, seconds: float | None = None, idle_seconds: float | None = None, engine: Engine | None = None
) -> RunStats:
    """Send due deliveries until none has come for `idle_seconds`, or about `seconds` have passed.

    At the deadline the run drains: requests still out then are waited for, but new
    claims go on meanwhile for every other destination, so a hanging destination never
    stalls the rest while a run hands over to the next. The deadline is jittered so the
    worker processes do not hand over at the same moment.
    """
    from delivery.doorbell import doorbell_ring_at_rollback_unsafe, doorbell_ring_now_rollback_unsafe

    if not connection.in_atomic_block:
        close_old_connections()  # a connection kept across tasks may have gone stale
    engine = engine or engine_get()
    seconds = settings.DELIVERY_RUN_SECONDS if seconds is None else seconds
    idle_seconds = settings.DELIVERY_IDLE_SECONDS if idle_seconds is None else idle_seconds
    poll = settings.DELIVERY_POLL_SECONDS
    capacity = settings.DELIVERY_MAX_IN_FLIGHT
    stats = RunStats()
    in_flight: dict[concurrent.futures.Future, tuple[Claimed, Job]] = {}
    finished = Finished()
    busy: Counter = Counter()
    start = last_work = time.monotonic()
    deadline = start + seconds * random.uniform(0.8, 1.2)
    draining: set[concurrent.futures.Future] | None = None
    held_back: set[uuid.UUID] = set()
    while True:
        now = time.monotonic()
        if draining is None and now >= deadline:
            # Wait for what is out; claim nothing more for a destination until its own are back.
            draining = set(in_flight)
        if draining is not None:
            draining &= in_flight.keys()
            held_back = {in_flight[f][0].destination_id for f in draining}
        claimed: list[Claimed] = []
        limit = 0
        if len(in_flight) < capacity and (draining is None or draining):
            limit = min(capacity - len(in_flight), settings.DELIVERY_BATCH_SIZE)
            claimed = deliveries_claim(limit=limit, busy=busy, exclude=held_back, narrowed=_allowance.narrowed())
        if claimed:
            last_work = now
            stats.claimed += len(claimed)
            jobs, refusals = jobs_prepare(claimed)
            refusals_record(refusals)
            stats.refused += len(refusals)
            for (item, job), future in zip(jobs, engine.submit_many([job for _, job in jobs]), strict=True):
                in_flight[future] = (item, job)
                busy[item.destination_id] += 1
                finished.watch(future)
        if in_flight:
            # A full batch means more may be due: look again at once; otherwise wait for answers.
            done = finished.take(timeout=0 if claimed and len(claimed) == limit else poll)
            if done:
                results = _collect(in_flight, done)
                for item, _, outcome in results:
                    _allowance.outcome(item.destination_id, outcome)
                    busy[item.destination_id] -= 1
                    if busy[item.destination_id] <= 0:
                        del busy[item.destination_id]
                summary = outcomes_record(results)
                stats.succeeded += summary.succeeded
                stats.failed_attempts += summary.failed_attempts
                last_work = time.monotonic()
        elif not claimed:
            if draining is not None or now - last_work >= idle_seconds:
                break
            time.sleep(poll)
    if draining is not None:
        # Stopped at the deadline, maybe with work left: the next pump takes over.
        doorbell_ring_now_rollback_unsafe()
    # Ask for a ring when the next retry falls due (of this run or any other): each
    # idle pump passes the baton, so retries go out on time, not at the next sweep.
    next_due = next_retry_at()
    if next_due is not None:
        doorbell_ring_at_rollback_unsafe(next_due.timestamp())
    return stats


def next_retry_at() -> dt.datetime | None:
    """The earliest future `next_attempt_at` of a pending delivery (the partial index answers it)."""
    return (
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__gt=timezone.now())
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def deliveries_release_stale(*, now: dt.datetime | None = None) -> int:
    """Take back claims whose lease ran out (their worker died); returns how many."""
    now = now or timezone.now()
    return Delivery.objects.filter(status=Delivery.Status.PENDING, claimed_until__lt=now).update(
        claimed_until=None, claim_token=None
    )


def deliveries_release_for_destination(*, destination_id: uuid.UUID) -> int:
    """A re-enabled destination's waiting deliveries become due now, oldest first."""
    now = timezone.now()
    return (
        Delivery.objects.filter(destination_id=destination_id, status=Delivery.Status.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(next_attempt_at=F("created_at"), claimed_until=None, claim_token=None)
    )
