"""Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature over a SenML pack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from ingest.errors import NotAuthentic
from ingest.kinds.base import Inbound, Kind, Verified, revealed_secrets
from ingest.models import Connection, ConnectionKind
from ingest.normalised import Parsed
from ingest.senml import senml_parse
from portal.secrets import whsec_key_bytes

# A timestamp further than this from now, in either direction, is refused (replays, skewed clocks).
TOLERANCE_SECONDS = 5 * 60
MAX_WEBHOOK_ID = 200


def signature(*, key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    """Base64 HMAC-SHA256 of "id.timestamp.body" — the part after `v1,`."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def signatures_valid(*, keys: list[bytes], webhook_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether any `v1,` signature of the space-separated header matches any key (constant time)."""
    given = [part[3:].encode("latin-1", errors="replace") for part in header.split() if part.startswith("v1,")]
    valid = False
    for key in keys:
        expected = signature(key=key, webhook_id=webhook_id, timestamp=timestamp, body=body)
        for candidate in given:
            valid |= hmac.compare_digest(candidate, expected)
    return valid


def timestamp_fresh(timestamp: str, *, now: float) -> bool:
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    return abs(now - int(timestamp)) <= TOLERANCE_SECONDS


class StandardWebhooks(Kind):
    slug = ConnectionKind.STANDARD_WEBHOOKS
    accepts_whsec = True

    def verify(self, *, connection: Connection, inbound: Inbound) -> Verified:
        webhook_id = inbound.headers.get("webhook-id", "")
        timestamp = inbound.headers.get("webhook-timestamp", "")
        header = inbound.headers.get("webhook-signature", "")
        if not (webhook_id and timestamp and header):
            raise NotAuthentic("webhook-id, webhook-timestamp and webhook-signature are all required")
        if len(webhook_id) > MAX_WEBHOOK_ID:
            raise NotAuthentic(f"webhook-id is longer than {MAX_WEBHOOK_ID} characters")
        if not timestamp_fresh(timestamp, now=time.time()):
            raise NotAuthentic("webhook-timestamp is not within 5 minutes of now")
        keys = [whsec_key_bytes(secret) for secret in revealed_secrets(connection)]
        if not signatures_valid(
            keys=keys, webhook_id=webhook_id, timestamp=timestamp, body=inbound.body, header=header
        ):
            raise NotAuthentic("no webhook-signature matches")
        return Verified(webhook_id=webhook_id)

    def parse(self, *, connection: Connection, inbound: Inbound) -> Parsed:
        return senml_parse(inbound.document, received_at=inbound.received_at)
