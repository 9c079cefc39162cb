"""How a request authenticates to its destination: `none`, `basic` or `oauth2`.

One class per kind behind one small interface, found through `AUTH_METHODS`:
`static_headers(destination)` gives headers known when the request is built, and
`authorization(client, destination, rejected=)` (async) a header that needs a fetch.

OAuth2 is the client credentials grant (RFC 6749 4.4): the client id and secret go
as HTTP Basic to the token URL, through the same hardened client as deliveries; the
token is cached per destination until shortly before `expires_in` runs out, and a 401
from the destination refreshes it once (the engine passes the refused header as `rejected`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass, field

import httpx

from delivery.snapshot import DestinationData

# A token is renewed this long before it says it expires.
EXPIRY_MARGIN_SECONDS = 30
DEFAULT_TOKEN_LIFETIME = 3600


class AuthFailed(Exception):
    """The destination's credentials could not be used (e.g. the token endpoint said no)."""


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class NoAuth:
    needs_fetch = False

    def static_headers(self, destination: DestinationData) -> list[tuple[str, str]]:
        return []


class BasicAuth:
    needs_fetch = False

    def static_headers(self, destination: DestinationData) -> list[tuple[str, str]]:
        return [("Authorization", _basic(destination.auth_username, destination.auth_password))]


@dataclass
class _Token:
    fingerprint: str
    value: str = field(repr=False)
    expires_at: float


class OAuth2ClientCredentials:
    """Tokens are cached per destination, in the process (per event loop) that uses them."""

    needs_fetch = True

    def __init__(self) -> None:
        self._tokens: dict[object, _Token] = {}
        self._locks: dict[object, asyncio.Lock] = {}

    def static_headers(self, destination: DestinationData) -> list[tuple[str, str]]:
        return []

    @staticmethod
    def _fingerprint(destination: DestinationData) -> str:
        # A change of URL, client, secret or scope makes the cached token stale.
        material = "\x00".join(
            [
                destination.oauth2_token_url,
                destination.oauth2_client_id,
                destination.oauth2_client_secret,
                destination.oauth2_scope,
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def forget(self, destination_id) -> None:
        self._tokens.pop(destination_id, None)

    async def authorization(
        self, client: httpx.AsyncClient, destination: DestinationData, *, rejected: str | None = None
    ) -> str:
        """`Bearer <token>`; `rejected` is a header the destination answered 401 to, so it is renewed."""
        fingerprint = self._fingerprint(destination)
        lock = self._locks.setdefault(destination.id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(destination.id)
            usable = (
                cached is not None
                and cached.fingerprint == fingerprint
                and cached.expires_at > time.monotonic()
                and "Bearer " + cached.value != rejected
            )
            if not usable:
                cached = await self._fetch(client, destination, fingerprint)
                self._tokens[destination.id] = cached
            assert cached is not None
            return "Bearer " + cached.value

    async def _fetch(self, client: httpx.AsyncClient, destination: DestinationData, fingerprint: str) -> _Token:
        form = {"grant_type": "client_credentials"}
        if destination.oauth2_scope:
            form["scope"] = destination.oauth2_scope
        response = await client.post(
            destination.oauth2_token_url,
            data=form,
            headers={
                "Authorization": _basic(destination.oauth2_client_id, destination.oauth2_client_secret),
                "Accept": "application/json",
            },
            timeout=min(destination.timeout_seconds, 30),
        )
        if response.status_code != 200:
            raise AuthFailed(f"the OAuth2 token endpoint answered {response.status_code}")
        try:
            answer = response.json()
            token = answer["access_token"]
        except (ValueError, KeyError, TypeError):
            raise AuthFailed("the OAuth2 token endpoint's answer has no access_token") from None
        if not isinstance(token, str) or not token:
            raise AuthFailed("the OAuth2 token endpoint's answer has no access_token")
        try:
            lifetime = int(answer.get("expires_in", DEFAULT_TOKEN_LIFETIME))
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        expires_at = time.monotonic() + max(lifetime - EXPIRY_MARGIN_SECONDS, 1)
        return _Token(fingerprint=fingerprint, value=token, expires_at=expires_at)


# Each user of these (an engine, a test send) makes its own instances: the OAuth2
# token cache and its locks belong to one event loop.
AUTH_METHODS: dict[str, type[NoAuth | BasicAuth | OAuth2ClientCredentials]] = {
    "none": NoAuth,
    "basic": BasicAuth,
    "oauth2": OAuth2ClientCredentials,
}


def auth_methods() -> dict[str, NoAuth | BasicAuth | OAuth2ClientCredentials]:
    return {name: cls() for name, cls in AUTH_METHODS.items()}
