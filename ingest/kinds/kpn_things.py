"""KPN Things: a SenML pack signed with Things-Message-Token (and, optionally, Things-Plug-UUID)."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from ingest.errors import NotAuthentic
from ingest.kinds.base import Inbound, Kind, Verified, revealed_secrets
from ingest.models import Connection, ConnectionKind
from ingest.normalised import Parsed
from ingest.senml import senml_parse

TOKEN_HEADER = "Things-Message-Token"  # noqa: S105 — a header name, not a secret
PLUG_HEADER = "Things-Plug-UUID"


def kpn_token(body: bytes, secret: str) -> str:
    """Lowercase hex SHA-256 of the raw body bytes followed by the secret's UTF-8 bytes."""
    return hashlib.sha256(body + secret.encode()).hexdigest()


def _header_bytes(value: str) -> bytes:
    # WSGI hands headers over as latin-1 text; compare the bytes as they came.
    return value.encode("latin-1", errors="replace")


def kpn_token_valid(*, body: bytes, token: str, secrets: list[str]) -> bool:
    """Whether `token` is the Things-Message-Token of `body` for any of `secrets` (constant time)."""
    given = _header_bytes(token)
    valid = False
    for secret in secrets:
        valid |= hmac.compare_digest(given, kpn_token(body, secret).encode())
    return valid


def plug_uuid_valid(*, header: str, plug_uuid: uuid.UUID) -> bool:
    """Whether Things-Plug-UUID is exactly the connection's plug UUID (canonical lowercase form)."""
    return hmac.compare_digest(_header_bytes(header), str(plug_uuid).encode())


class KpnThings(Kind):
    slug = ConnectionKind.KPN_THINGS

    def verify(self, *, connection: Connection, inbound: Inbound) -> Verified:
        token = inbound.headers.get(TOKEN_HEADER, "")
        if not token:
            raise NotAuthentic(f"no {TOKEN_HEADER} header")
        if not kpn_token_valid(body=inbound.body, token=token, secrets=revealed_secrets(connection)):
            raise NotAuthentic(f"{TOKEN_HEADER} does not match the body and the shared secret")
        if connection.plug_uuid is not None and not plug_uuid_valid(
            header=inbound.headers.get(PLUG_HEADER, ""), plug_uuid=connection.plug_uuid
        ):
            raise NotAuthentic(f"{PLUG_HEADER} is missing or is not this connection's plug UUID")
        return Verified()

    def parse(self, *, connection: Connection, inbound: Inbound) -> Parsed:
        return senml_parse(inbound.document, received_at=inbound.received_at)
