"""Connections of each kind for acme, and how senders sign requests to them."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from ingest.models import AuthMode, Connection, ConnectionKind
from portal.secrets import Actor, secret_set, whsec_form

SECRET = "Kpn-Shared-Secret-0123456789-abcd!"
OTHER_SECRET = "Rotated-Shared-Secret-9876543210-xyZ#"
FIXTURES = Path(__file__).parent / "fixtures"
DEVEUI = "0059AC00001A2B3C"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def senml(*records: dict, device: str = f"urn:dev:DEVEUI:{DEVEUI}:") -> bytes:
    """A compact SenML pack whose first record names the device."""
    first = {"bn": device, **records[0]} if device else records[0]
    return json.dumps([first, *records[1:]], separators=(",", ":")).encode()


def kpn_headers(body: bytes, secret: str = SECRET, plug: uuid.UUID | str | None = None) -> dict:
    headers = {
        "Content-Type": "application/json",
        "Things-Message-Token": hashlib.sha256(body + secret.encode()).hexdigest(),
    }
    if plug is not None:
        headers["Things-Plug-UUID"] = str(plug)
    return headers


def sw_headers(body: bytes, secret: str = SECRET, msg_id: str | None = None, at: datetime | None = None) -> dict:
    """Signed by the standardwebhooks reference library, as a sender's would be."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(whsec_form(secret)).sign(msg_id, at, body.decode()),
    }


def basic_headers(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Content-Type": "application/json", "Authorization": f"Basic {token}"}


@pytest.fixture
def make_connection(acme):
    def make(
        kind: str = ConnectionKind.KPN_THINGS, *, tenant=None, secret: str | None = SECRET, **fields
    ) -> Connection:
        connection = Connection.objects.create(tenant=tenant or acme, name=f"{kind} in", kind=kind, **fields)
        if secret:
            secret_set(obj=connection, field="secret", value=secret, actor=Actor(label="test"))
        return Connection.objects.get(pk=connection.pk)

    return make


@pytest.fixture
def kpn(make_connection) -> Connection:
    return make_connection(ConnectionKind.KPN_THINGS)


@pytest.fixture
def webhooks(make_connection) -> Connection:
    return make_connection(ConnectionKind.STANDARD_WEBHOOKS)


@pytest.fixture
def dm_basic(make_connection) -> Connection:
    return make_connection(ConnectionKind.DIGITAL_MATTER, auth_mode=AuthMode.BASIC, username="oem")


@pytest.fixture
def dm_device_key(make_connection) -> Connection:
    return make_connection(ConnectionKind.DIGITAL_MATTER, auth_mode=AuthMode.DEVICE_KEY, secret=None)


@pytest.fixture
def http(live_server):
    """An HTTP client talking to the live test server over a real socket."""
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        yield client
