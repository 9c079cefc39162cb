"""The bench's tenants, connections and destinations, made the way a customer makes them.

Tenants and API keys come from the pinned management commands; connections and
destinations from the REST API with that key, so the bench exercises the same
validation (URL guard, allowed ports, secret strength) as a customer would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from bench.stack import Stack


def strong_secret() -> str:
    """A secret that passes the portal's strength rule (upper, lower, digit, symbol, 32+)."""
    return "Bn1#" + secrets.token_hex(16)


@dataclass(frozen=True)
class Route:
    """One connection of the bench and the sink path of the destination it feeds (if any)."""

    connection_id: str
    ingest_path: str
    secret: str
    sink_path: str = ""
    destination_id: str = ""


class PortalApi:
    def __init__(self, *, stack: Stack, key: str, slug: str) -> None:
        self.stack = stack
        self.slug = slug
        self.client = httpx.Client(
            base_url=stack.web_url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60.0
        )

    @classmethod
    def for_new_tenant(cls, *, stack: Stack, slug: str) -> PortalApi:
        stack.manage("create_tenant", slug, "--name", f"Bench {slug}", "--owner", f"owner@{slug}.bench.invalid")
        key = stack.manage("create_api_key", slug, "--label", "bench").strip().splitlines()[-1]
        return cls(stack=stack, key=key, slug=slug)

    def _post(self, path: str, payload: dict) -> dict:
        answer = self.client.post(path, json=payload)
        if answer.status_code != 201:
            raise RuntimeError(f"POST {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def connection_create(self, *, name: str) -> tuple[str, str, str]:
        """A KPN Things connection; returns (id, ingest path, secret)."""
        secret = strong_secret()
        made = self._post("/connections/", {"name": name, "kind": "kpn-things", "secret": secret})
        return str(made["id"]), urlsplit(made["ingest_url"]).path, secret

    def destination_create(self, *, name: str, sink_path: str, connection_id: str, **fields) -> tuple[str, str]:
        """A destination posting to the sink at sink_path; returns (id, secret)."""
        secret = strong_secret()
        payload = {
            "name": name,
            "url": self.stack.sink_url + sink_path,
            "secret": secret,
            "connections": [connection_id],
            **fields,
        }
        made = self._post("/destinations/", payload)
        return str(made["id"]), secret

    def route_create(self, *, name: str, sink_path: str = "", **fields) -> tuple[Route, str]:
        """A connection and, with sink_path, one destination for it; returns (route, destination secret)."""
        connection_id, ingest_path, secret = self.connection_create(name=name)
        if not sink_path:
            return Route(connection_id=connection_id, ingest_path=ingest_path, secret=secret), ""
        destination_id, destination_secret = self.destination_create(
            name=name, sink_path=sink_path, connection_id=connection_id, **fields
        )
        route = Route(
            connection_id=connection_id,
            ingest_path=ingest_path,
            secret=secret,
            sink_path=sink_path,
            destination_id=destination_id,
        )
        return route, destination_secret

    def destination_delete(self, destination_id: str) -> None:
        answer = self.client.delete(f"/destinations/{destination_id}/")
        if answer.status_code not in (204, 404):
            raise RuntimeError(f"DELETE destination answered {answer.status_code}: {answer.text[:300]}")

    def messages_count(self, *, connection_id: str) -> int | None:
        """How many messages the portal stored for a connection, or None without a messages API."""
        answer = self.client.get("/messages/", params={"connection": connection_id})
        if answer.status_code != 200:
            return None
        return answer.json().get("count")

    def close(self) -> None:
        self.client.close()
