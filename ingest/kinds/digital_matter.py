"""Digital Matter OEM Server's HTTP connector: HTTP Basic, or a per-device key header."""

from __future__ import annotations

import base64
import binascii
import hmac

from devices.selectors import device_find
from ingest.digital_matter import device_identity, digital_matter_parse
from ingest.errors import NotAuthentic, NotJson
from ingest.kinds.base import Inbound, Kind, Verified, revealed_secrets
from ingest.models import AuthMode, Connection, ConnectionKind
from ingest.normalised import Parsed


def basic_credentials(header: str) -> tuple[bytes, bytes] | None:
    """(user, password) of an `Authorization: Basic …` header, as bytes; None when it is not one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def basic_valid(*, header: str, username: str, secrets: list[str]) -> bool:
    """Whether the header carries the user name and one of the secrets (constant time, no short cut)."""
    credentials = basic_credentials(header)
    if credentials is None:
        return False
    user, password = credentials
    user_ok = hmac.compare_digest(user, username.encode())
    password_ok = False
    for secret in secrets:
        password_ok |= hmac.compare_digest(password, secret.encode())
    return user_ok and password_ok


class DigitalMatter(Kind):
    slug = ConnectionKind.DIGITAL_MATTER

    def needs_secret(self, connection: Connection) -> bool:
        return connection.auth_mode == AuthMode.BASIC

    def verify(self, *, connection: Connection, inbound: Inbound) -> Verified:
        if connection.auth_mode == AuthMode.DEVICE_KEY:
            return self._verify_device_key(connection=connection, inbound=inbound)
        header = inbound.headers.get("Authorization", "")
        if not header:
            raise NotAuthentic("no HTTP Basic credentials")
        if not basic_valid(header=header, username=connection.username, secrets=revealed_secrets(connection)):
            raise NotAuthentic("HTTP Basic credentials do not match")
        return Verified()

    def _verify_device_key(self, *, connection: Connection, inbound: Inbound) -> Verified:
        given = inbound.headers.get(connection.device_key_header, "")
        if not given:
            raise NotAuthentic(f"no {connection.device_key_header} header")
        try:
            identity = device_identity(inbound.document, serial_in_url=inbound.serial_in_url)
        except NotJson:
            identity = None
        except ValueError:  # InvalidPack: identifiers of the wrong type
            identity = None
        if identity is None:
            raise NotAuthentic("the request names no device whose key could be checked")
        device = device_find(tenant_id=connection.tenant_id, identity=identity)
        if device is None or device.auth_key is None:
            raise NotAuthentic("the device is unknown or has no key")
        if not hmac.compare_digest(given.encode("latin-1", errors="replace"), device.auth_key.reveal().encode()):
            raise NotAuthentic(f"{connection.device_key_header} does not match the device's key")
        return Verified(device=device)

    def parse(self, *, connection: Connection, inbound: Inbound) -> Parsed:
        return digital_matter_parse(inbound.document, serial_in_url=inbound.serial_in_url)
