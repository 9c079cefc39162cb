"""The sending half of the delivery engine: one asyncio event loop per worker process.

Why asyncio in a thread (and not one task per delivery, nor gevent): a delivery spends
nearly all its time waiting for the receiver. A per-process event loop keeps hundreds
of requests in flight with one thread, so the number in flight does not depend on the
number of worker processes, and a hanging destination only occupies its own slots
while the others go on. httpx's AsyncClient gives keep-alive connection pools; each
destination has its own client (its own connection pool; the clients of the loop share
one SSLContext, never shared with another thread: see delivery/http.py),
created in the loop that uses it and kept between tasks. gevent would need the whole
worker monkey-patched (psycopg, Django) and hides blocking calls; asyncio keeps the
ORM work in the ordinary Celery task thread and only the network on the loop.

The Celery task thread (delivery/services.py `deliveries_run`) claims rows, builds
requests and records outcomes; this module only sends. `Engine.submit(job)` returns a
`concurrent.futures.Future[Outcome]`. Nothing here touches the database.

`attempt_send` is the one function that sends an attempt, used by the engine, the test
send and the probe alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import email.utils
import functools
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
from django.conf import settings

from delivery.auth import AuthFailed, OAuth2ClientCredentials, auth_methods
from delivery.http import GuardedClient, client_build, failure_describe, tls_context
from delivery.request import OutboundRequest
from delivery.snapshot import DestinationData

RESPONSE_KEPT_BYTES = 1024
# Past this much response body, stop reading and drop the connection.
RESPONSE_DRAIN_LIMIT = 256 * 1024
CLIENT_IDLE_SECONDS = 600


@dataclass(frozen=True)
class Job:
    """One attempt to send, handed from the task thread to the loop."""

    delivery_id: uuid.UUID
    claim_token: uuid.UUID | None
    destination: DestinationData = field(repr=False)
    request: OutboundRequest = field(repr=False)
    timeout: float
    # The ingest request the message came with: the attempt's log line carries it.
    request_id: str = ""


@dataclass(frozen=True)
class Outcome:
    delivery_id: uuid.UUID
    claim_token: uuid.UUID | None
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None = None
    error_class: str = ""
    error: str = ""
    response_body: str = ""
    retry_after: float | None = None

    @property
    def answered(self) -> bool:
        return self.status_code is not None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


@functools.lru_cache(maxsize=64)
def _timeout_extension(seconds: float) -> dict:
    return httpx.Timeout(seconds).as_dict()


async def _exchange(client: GuardedClient, request: OutboundRequest, headers: list[tuple[str, str]], timeout: float):
    # The request is built here, not by client.build_request: merging our headers into the
    # client's defaults took a tenth of a sender's CPU (py-spy), and a delivery's headers
    # are complete already (httpx adds Host and Content-Length). No Accept-Encoding: an
    # answer is kept only for its first kilobyte, so nothing needs decompressing.
    http_request = httpx.Request(
        request.method,
        request.url,
        headers=[(k.encode(), v.encode()) for k, v in headers],
        content=request.body,
        extensions={"timeout": _timeout_extension(timeout)},
    )
    response = await client.send(http_request, stream=True)
    kept = bytearray()
    try:
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if len(kept) < RESPONSE_KEPT_BYTES:
                kept += chunk[: RESPONSE_KEPT_BYTES - len(kept)]
            if total > RESPONSE_DRAIN_LIMIT:
                break
    finally:
        await response.aclose()
    return response, bytes(kept)


async def attempt_send(*, client: GuardedClient, auth: dict, job: Job) -> Outcome:
    """Send one attempt and describe what happened; never raises for a network failure."""
    started_at = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    destination = job.destination
    method = auth[destination.auth_type]
    status_code = None
    body = b""
    retry_after = None
    error_class = error = ""
    # One overall deadline: the attempt's timeout (twice for OAuth2, which may fetch a token).
    deadline = job.timeout * (2 if method.needs_fetch else 1)
    try:
        async with asyncio.timeout(deadline):
            headers = list(job.request.headers)
            authorization = None
            if isinstance(method, OAuth2ClientCredentials):
                authorization = await method.authorization(client, destination)
            response, body = await _exchange(
                client,
                job.request,
                [*headers, *([("Authorization", authorization)] if authorization else [])],
                job.timeout,
            )
            if response.status_code == 401 and authorization is not None:
                # The token may have been revoked early: renew it once and resend.
                authorization = await method.authorization(client, destination, rejected=authorization)
                response, body = await _exchange(
                    client, job.request, [*headers, ("Authorization", authorization)], job.timeout
                )
            status_code = response.status_code
            if status_code in (429, 503):
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
    except AuthFailed as exc:
        error_class, error = "auth", str(exc)
    except Exception as exc:  # every failure of the exchange is an outcome, never a crash of the loop
        error_class, error = failure_describe(exc, timeout=deadline)
    return Outcome(
        delivery_id=job.delivery_id,
        claim_token=job.claim_token,
        started_at=started_at,
        duration_ms=int((time.perf_counter() - t0) * 1000),
        status_code=status_code,
        error_class=error_class,
        error=error,
        response_body=body.decode("utf-8", errors="replace"),
        retry_after=retry_after,
    )


class Engine:
    """A long-lived event loop thread with a client per destination (one per process)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.clients: dict[uuid.UUID, tuple[GuardedClient, float]] = {}
        self.auth = auth_methods()
        self._tasks: set[asyncio.Task] = set()
        self._tls = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="delivery-engine", daemon=True)
        self.thread.start()
        self._ready.wait(10)
        self._last_sweep = time.monotonic()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def _client(self, destination_id: uuid.UUID) -> GuardedClient:
        now = time.monotonic()
        entry = self.clients.get(destination_id)
        if entry is None:
            client = client_build(
                max_connections=settings.DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION, ssl_context=self._tls_context()
            )
        else:
            client = entry[0]
        self.clients[destination_id] = (client, now)
        if now - self._last_sweep > 60:
            self._last_sweep = now
            for key, (idle_client, used) in list(self.clients.items()):
                if now - used > CLIENT_IDLE_SECONDS:
                    del self.clients[key]
                    self.loop.create_task(idle_client.aclose())
        return client

    def _tls_context(self):
        """This loop's SSLContext, made again when the trusted CA setting changes."""
        key = settings.DESTINATION_CA_BUNDLE
        if self._tls is None or self._tls[0] != key:
            self._tls = (key, tls_context())
        return self._tls[1]

    async def _send(self, job: Job) -> Outcome:
        return await attempt_send(client=self._client(job.destination.id), auth=self.auth, job=job)

    def submit(self, job: Job) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(self._send(job), self.loop)

    def submit_many(self, jobs: list[Job]) -> list[concurrent.futures.Future]:
        """Start many sends with one wake-up of the loop (one per job costs a syscall each)."""
        futures: list[concurrent.futures.Future] = [concurrent.futures.Future() for _ in jobs]

        def start() -> None:
            for job, future in zip(jobs, futures, strict=True):
                task = self.loop.create_task(self._send(job))
                self._tasks.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(lambda t, f=future: _settle(f, t))

        self.loop.call_soon_threadsafe(start)
        return futures

    def forget_destination(self, destination_id: uuid.UUID) -> None:
        """Drop a destination's client and token (its settings changed)."""

        def drop() -> None:
            entry = self.clients.pop(destination_id, None)
            if entry is not None:
                self.loop.create_task(entry[0].aclose())
            oauth = self.auth["oauth2"]
            assert isinstance(oauth, OAuth2ClientCredentials)
            oauth.forget(destination_id)

        self.loop.call_soon_threadsafe(drop)


def _settle(future: concurrent.futures.Future, task: asyncio.Task) -> None:
    if task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine_get() -> Engine:
    """This process's engine, made on first use (and again in a forked child)."""
    global _engine
    with _engine_lock:
        if _engine is None or _engine.pid != os.getpid() or not _engine.thread.is_alive():
            _engine = Engine()
        return _engine


async def _send_one(job: Job) -> Outcome:
    async with client_build(max_connections=2) as client:
        return await attempt_send(client=client, auth=auth_methods(), job=job)


def send_now(job: Job) -> Outcome:
    """Send one attempt from synchronous code (test send, probe) with a client of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_send_one(job))
    # Called from inside an event loop (e.g. an async view): run it on a loop of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _send_one(job)).result()
