"""Signing the exact bytes that are sent, once per attempt, in one function.

- `Things-Message-Token`: lowercase hex SHA-256 of (body bytes + secret as UTF-8), as
  KPN Things sends it, with the current secret.
- Standard Webhooks: `webhook-id` (stable per delivery), `webhook-timestamp` (seconds)
  and `webhook-signature` = `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per
  secret in force (two, space-separated, during a rotation's grace period), key = the
  secret's UTF-8 bytes (or the decoded bytes of a `whsec_` value).
- `Things-Plug-UUID`: the destination id, always.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from portal.secrets import whsec_key_bytes

THINGS_TOKEN = "things-token"  # noqa: S105 - a scheme name, not a secret
STANDARD_WEBHOOKS = "standard-webhooks"
BOTH = "both"


def things_token(body: bytes, secret: str) -> str:
    return hashlib.sha256(body + secret.encode()).hexdigest()


def standard_webhooks_signature(*, key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_headers(
    *, body: bytes, secrets: tuple[str, ...], scheme: str, webhook_id: str, plug_uuid: str, timestamp: int
) -> list[tuple[str, str]]:
    """The signing headers for `body`; `secrets` has the current secret first."""
    if not secrets:
        raise ValueError("no secret to sign with")
    headers = [("Things-Plug-UUID", plug_uuid)]
    if scheme in (THINGS_TOKEN, BOTH):
        headers.append(("Things-Message-Token", things_token(body, secrets[0])))
    if scheme in (STANDARD_WEBHOOKS, BOTH):
        signatures = " ".join(
            standard_webhooks_signature(key=whsec_key_bytes(s), webhook_id=webhook_id, timestamp=timestamp, body=body)
            for s in secrets
        )
        headers += [
            ("webhook-id", webhook_id),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", signatures),
        ]
    return headers
