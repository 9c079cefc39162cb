"""The webhook endpoint: `POST /ingest/<connection id>/[<serial>[/]]`.

HTTP only: method, size, connection and the mapping of outcomes to answers. The
verification, storage and normalisation are `ingest.services.message_ingest`, which
commits before this view answers 2xx.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from csp.decorators import csp_exempt
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ingest.errors import ConnectionChanged, NotAuthentic, NotJson
from ingest.models import Message
from ingest.selectors import connection_for_ingest
from ingest.services import message_ingest
from portal.fields import SecretUnavailable
from portal.logging import context_bind

try:
    from portal.metrics import message_received
except ImportError:  # the operations' metrics are optional to ingest

    def message_received(*, kind: str, status: str) -> None:
        return None


logger = logging.getLogger("ingest")

ALLOWED_METHODS = ("POST", "GET")
READ_CHUNK_BYTES = 64 * 1024
RETRY_AFTER_SECONDS = 10
MAX_SERIAL_IN_URL = 64
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
# What a serial in the URL may hold: printable, no spaces or control characters.
SERIAL_IN_URL = re.compile(r"[^\s\x00-\x1f\x7f]{1,64}\Z")
# Answers that refuse the request before it reaches a connection's verification.
REJECTED = "rejected"


def _answer(status: int, payload: dict, request_id: str, **headers: str) -> HttpResponse:
    response = HttpResponse(json.dumps(payload), content_type="application/json", status=status)
    response["X-Request-ID"] = request_id
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _request_id(request: HttpRequest) -> str:
    """The request's id: the one the request middleware gave it, else the caller's X-Request-ID, else new."""
    known = getattr(request, "request_id", None)
    if known:
        return known
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    return given if REQUEST_ID.match(given) else uuid.uuid4().hex


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, read in chunks; None as soon as it passes `limit` (the rest is never read)."""
    if request.META.get("CONTENT_LENGTH"):
        stream = request  # Django bounds this by Content-Length
    elif request.META.get("wsgi.input_terminated"):
        stream = request.META["wsgi.input"]  # chunked: the server marks where the body ends
    else:
        return b""
    chunks, total = [], 0
    while chunk := stream.read(READ_CHUNK_BYTES):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _source_ip(request: HttpRequest) -> str | None:
    address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None  # a unix socket, or a server that does not say


def _unavailable(request_id: str, reason: str, kind: str) -> HttpResponse:
    message_received(kind=kind, status="unavailable")
    return _answer(
        503,
        {"error": f"{reason}; nothing was stored, send it again later"},
        request_id,
        Retry_After=str(RETRY_AFTER_SECONDS),
    )


# A sender's JSON answer, never a document a browser renders: no Content-Security-Policy to build.
@csp_exempt()
@csrf_exempt
def receive(request: HttpRequest, connection_id: uuid.UUID, serial: str = "") -> HttpResponse:
    """Verify, store (committed) and normalise one webhook request, then answer what became of it."""
    request_id = _request_id(request)
    received_at = timezone.now()
    if request.method not in ALLOWED_METHODS:
        message_received(kind="unknown", status=REJECTED)
        return _answer(405, {"error": "use POST (or GET with a body)"}, request_id, Allow="POST, GET")
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        message_received(kind="unknown", status=REJECTED)
        return _answer(400, {"error": "Content-Length is not a number"}, request_id)
    too_large = {"error": f"the body is larger than {limit} bytes"}
    if declared > limit:
        message_received(kind="unknown", status=REJECTED)
        return _answer(413, too_large, request_id)
    body = _read_body(request, limit)
    if body is None:
        message_received(kind="unknown", status=REJECTED)
        return _answer(413, too_large, request_id)
    if request.method == "GET" and not body:
        message_received(kind="unknown", status=REJECTED)
        return _answer(405, {"error": "a GET needs a body; use POST"}, request_id, Allow="POST, GET")
    if serial and not SERIAL_IN_URL.match(serial):
        message_received(kind="unknown", status=REJECTED)
        return _answer(
            400,
            {"error": f"the serial in the URL must be 1 to {MAX_SERIAL_IN_URL} characters without spaces"},
            request_id,
        )
    inbound = _Received(
        body=body,
        headers=request.headers,
        content_type=request.META.get("CONTENT_TYPE", ""),
        serial=serial,
        source_ip=_source_ip(request),
        request_id=request_id,
        received_at=received_at,
    )
    # The connection as this process kept it first; read anew when what it says could be out of date.
    for fresh in (False, True, True):
        response = _receive_for(connection_id, inbound, fresh=fresh)
        if response is not None:
            return response
    return _unavailable(request_id, "the connection kept changing while the message was stored", "unknown")


# Refusals that a row this process kept may give only because it is out of date (the
# connection deleted as the message was committed is an integrity error).
_REFUSALS_A_KEPT_ROW_MAY_CAUSE = (NotAuthentic, NotJson, SecretUnavailable, DataError, IntegrityError)


@dataclass(frozen=True, slots=True)
class _Received:
    body: bytes
    headers: Mapping[str, str]
    content_type: str
    serial: str
    source_ip: str | None
    request_id: str
    received_at: datetime


def _receive_for(connection_id: uuid.UUID, inbound: _Received, *, fresh: bool) -> HttpResponse | None:
    """The answer to the request; None when the connection must be read anew and the request taken again.

    That is when it changed after it was read, or when the answer would be a refusal on a
    row this process kept (disabled, not authentic, not JSON, a secret or a value that
    cannot be read or stored): the row may be out of date, and only a row read for this
    request may refuse.
    """
    request_id, source_ip, kind = inbound.request_id, inbound.source_ip, "unknown"
    found = None
    try:
        try:
            found = connection_for_ingest(connection_id, fresh=fresh)
            if found is None:
                message_received(kind="unknown", status="not_found")
                return _answer(404, {"error": "no such connection"}, request_id)
            connection = found.connection
            context_bind(tenant_id=connection.tenant_id, connection_id=connection.pk)
            if not connection.enabled:
                if found.cached:
                    return None
                message_received(kind=connection.kind, status="forbidden")
                return _answer(403, {"error": "this connection is disabled"}, request_id)
            kind = connection.kind
            result = message_ingest(
                connection=connection,
                body=inbound.body,
                headers=inbound.headers,
                content_type=inbound.content_type,
                serial_in_url=inbound.serial,
                source_ip=source_ip,
                request_id=request_id,
                received_at=inbound.received_at,
                connection_version=found.version,
            )
        except _REFUSALS_A_KEPT_ROW_MAY_CAUSE:
            if found is not None and found.cached:
                return None
            raise
    except ConnectionChanged:
        return None
    except NotAuthentic as exc:
        message_received(kind=kind, status="unauthorized")
        # The source address and our own reason only: never a header value, token or secret.
        logger.warning("ingest refused: %s", exc, extra={"source_ip": source_ip, "connection_id": str(connection_id)})
        return _answer(401, {"error": f"not authenticated: {exc}"}, request_id)
    except NotJson as exc:
        message_received(kind=kind, status=REJECTED)
        return _answer(exc.status, {"error": str(exc)}, request_id)
    except SecretUnavailable:
        logger.error("ingest: the secret of connection %s cannot be decrypted", connection_id)
        return _unavailable(request_id, "the connection's secret cannot be read", kind)
    except DataError:
        # A value the database refuses: sending it again would not help, so no 503.
        logger.exception("ingest: a value of the message cannot be stored", extra={"connection_id": str(connection_id)})
        message_received(kind=kind, status=REJECTED)
        return _answer(
            400, {"error": "the message holds a value that cannot be stored; nothing was stored"}, request_id
        )
    except DatabaseError:
        logger.exception("ingest: database error", extra={"connection_id": str(connection_id)})
        return _unavailable(request_id, "the database is unavailable", kind)
    context_bind(message_id=result.message_id)
    if result.status == Message.Status.INVALID:
        message_received(kind=kind, status="duplicate" if result.duplicate else "invalid")
        payload = {"message_id": str(result.message_id), "error": result.error}
        if result.duplicate:
            payload["duplicate"] = True
        return _answer(422, payload, request_id)
    message_received(kind=kind, status="duplicate" if result.duplicate else "accepted")
    payload = {"message_id": str(result.message_id), "readings": result.readings}
    if result.duplicate:
        payload["duplicate"] = True
    return _answer(200, payload, request_id)


@csp_exempt()
@csrf_exempt
def unknown(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other URL under /ingest/: JSON 404, like an unknown connection."""
    message_received(kind="unknown", status="not_found")
    return _answer(404, {"error": "no such connection"}, _request_id(request))
