"""One outbound request, built in small pieces: URL and headers with dynamic fields,
the body, the signature over those exact bytes, and the static auth header.

`request_build` is pure: the same inputs give the same request, which is what the
tests pin. The OAuth2 header, which needs a fetch, is added by the engine at send time.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from delivery.auth import AUTH_METHODS
from delivery.dynamic_fields import fields_fill_header, fields_fill_url
from delivery.payloads import payload_build
from delivery.signing import signature_headers
from delivery.snapshot import DestinationData, MessageData


@lru_cache(maxsize=1)
def portal_version() -> str:
    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0"


def user_agent() -> str:
    return f"IntegrationPortal/{portal_version()}"


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def request_build(
    *,
    destination: DestinationData,
    message: MessageData,
    webhook_id: str,
    body: bytes | None = None,
    timestamp: int | None = None,
) -> OutboundRequest:
    """The request for one attempt. Raises DynamicFieldError when a field cannot be filled."""
    device = message.device
    url = fields_fill_url(destination.url, device)
    static = [(name, fields_fill_header(name, value, device)) for name, value in destination.headers]
    if body is None:
        body = payload_build(message=message, payload_format=destination.payload_format)
    signed = signature_headers(
        body=body,
        secrets=destination.secrets,
        scheme=destination.signature,
        webhook_id=webhook_id,
        plug_uuid=str(destination.id),
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )
    auth = AUTH_METHODS[destination.auth_type]().static_headers(destination)
    headers = [
        *static,
        ("Content-Type", "application/json"),
        ("User-Agent", user_agent()),
        *signed,
        *auth,
    ]
    return OutboundRequest(method=destination.method, url=url, headers=tuple(headers), body=body)
