"""The one small interface every kind of inbound connection implements.

A kind verifies a request (raising NotAuthentic) and parses its decoded body into
device identities and readings (raising InvalidPack). Kinds hold no state: one
instance of each serves every request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from ingest.errors import NotJson

if TYPE_CHECKING:
    from devices.models import Device
    from ingest.models import Connection
    from ingest.normalised import Parsed

# Media types a JSON body may be declared as; anything else answers 415.
JSON_MEDIA_TYPES = frozenset({"", "application/json", "text/json", "text/plain"})


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(body: bytes, content_type: str) -> Any:
    """The body as JSON, or NotJson (415 for a declared non-JSON type, 400 for bytes that are not JSON)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise NotJson(f"Content-Type {media_type} is not JSON; send application/json", status=415)
    if not body:
        raise NotJson("the body is empty; a JSON document is expected")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise NotJson("the body is not valid JSON") from None


class Inbound:
    """One request as a kind sees it: the raw body, its headers, and where it came from."""

    def __init__(
        self,
        *,
        body: bytes,
        headers: Mapping[str, str],
        received_at: datetime,
        content_type: str = "",
        serial_in_url: str = "",
    ) -> None:
        self.body = body
        self.headers = headers
        self.received_at = received_at
        self.content_type = content_type
        self.serial_in_url = serial_in_url

    @cached_property
    def document(self) -> Any:
        return decode_json(self.body, self.content_type)


@dataclass(frozen=True, slots=True)
class Verified:
    """What verification learnt: the Standard Webhooks id, or the device a per-device key belongs to."""

    webhook_id: str = ""
    device: Device | None = None


def revealed_secrets(connection: Connection) -> list[str]:
    """The connection's secrets that verify now (current, then previous in grace). Never log them."""
    return [sealed.reveal() for sealed in connection.secrets_in_force()]


class Kind:
    """How one kind of connection verifies requests and parses bodies."""

    slug: ClassVar[str]
    # A `whsec_` secret (Standard Webhooks form) is accepted and answered for this kind.
    accepts_whsec: ClassVar[bool] = False

    def needs_secret(self, connection: Connection) -> bool:
        """Whether requests are verified with the connection's shared secret."""
        return True

    def verify(self, *, connection: Connection, inbound: Inbound) -> Verified:
        raise NotImplementedError

    def parse(self, *, connection: Connection, inbound: Inbound) -> Parsed:
        raise NotImplementedError
