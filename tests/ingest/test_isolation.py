"""Tenant isolation of every endpoint of ingest and devices: charlie (globex) never reaches acme's rows.

Declarative: each resource names how to make an acme row and which routes to try; the
tests below run every route of every resource as charlie, by session and by API key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message
from ingest.services import message_ingest
from portal.models import Role
from portal.secrets import Actor, secret_set
from tests.ingest.conftest import SECRET, kpn_headers, senml


def make_connection(tenant) -> Connection:
    connection = Connection.objects.create(tenant=tenant, name="acme-only", kind=ConnectionKind.KPN_THINGS)
    secret_set(obj=connection, field="secret", value=SECRET, actor=Actor(label="test"))
    return Connection.objects.get(pk=connection.pk)


def make_message(tenant, body: bytes | None = None) -> Message:
    body = body or senml({"n": "acme-only", "v": 1})
    result = message_ingest(connection=make_connection(tenant), body=body, headers=kpn_headers(body))
    return Message.objects.get(pk=result.message_id)


def make_invalid_message(tenant) -> Message:
    return make_message(tenant, b"[]")


def make_reading(tenant) -> Reading:
    return Reading.objects.get(message=make_message(tenant))


def make_device(tenant) -> Device:
    return Device.objects.create(tenant=tenant, serial="ACME-ONLY", custom1="acme-only")


@dataclass(frozen=True)
class Resource:
    prefix: str
    make: object
    # (method, suffix after the detail URL, body)
    detail_calls: tuple[tuple[str, str, dict], ...]


RESOURCES = [
    Resource(
        "connections",
        make_connection,
        (
            ("get", "", {}),
            ("patch", "", {"name": "taken"}),
            ("put", "", {"name": "taken", "kind": "kpn-things"}),
            ("delete", "", {}),
            ("post", "rotate-secret/", {}),
        ),
    ),
    Resource(
        "devices",
        make_device,
        (("get", "", {}), ("patch", "", {"custom1": "taken"}), ("put", "", {"serial": "X"}), ("delete", "", {})),
    ),
    Resource("messages", make_invalid_message, (("get", "", {}), ("post", "reprocess/", {}))),
    Resource("readings", make_reading, (("get", "", {}),)),
]


def snapshot(obj) -> dict:
    obj.refresh_from_db()
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.fixture(params=["session", "api-key"])
def outsider(request, charlie, globex, api_as, key_client):
    return api_as(charlie) if request.param == "session" else key_client(globex, Role.ADMIN)


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.prefix)
def test_an_outsider_gets_404_on_every_route_of_another_tenants_row(resource, acme, outsider):
    obj = resource.make(acme)
    before = snapshot(obj)
    for method, suffix, body in resource.detail_calls:
        response = getattr(outsider, method)(f"/api/v1/{resource.prefix}/{obj.pk}/{suffix}", body, format="json")
        assert response.status_code == 404, f"{method} {resource.prefix}/{suffix}: {response.status_code}"
        assert "acme-only" not in response.content.decode()
    assert snapshot(obj) == before


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.prefix)
def test_an_outsider_lists_none_of_another_tenants_rows(resource, acme, outsider):
    resource.make(acme)
    response = outsider.get(f"/api/v1/{resource.prefix}/")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_filters_by_another_tenants_ids_find_nothing(acme, outsider):
    reading = make_reading(acme)
    queries = [
        f"messages/?connection={reading.message.connection_id}",
        f"messages/?device={reading.device_id}",
        f"readings/?device={reading.device_id}",
        f"readings/?message={reading.message_id}",
    ]
    for query in queries:
        response = outsider.get(f"/api/v1/{query}")
        assert response.status_code == 200 and response.json()["results"] == [], query


def test_an_import_by_an_outsider_never_touches_another_tenants_device(acme, outsider):
    device = make_device(acme)
    data = SimpleUploadedFile("d.csv", b"serial,custom1\nACME-ONLY,taken\n")
    assert outsider.post("/api/v1/devices/import/", {"file": data}, format="multipart").json()["created"] == 1
    device.refresh_from_db()
    assert device.custom1 == "acme-only"


def test_a_webhook_to_one_tenants_connection_never_reaches_another_tenants_device(acme, globex, make_connection):
    acme_device = Device.objects.create(tenant=acme, imei="351234567890123")
    globex_connection = make_connection(tenant=globex)
    body = senml({"n": "t", "v": 1}, device="urn:dev:IMEI:351234567890123:")
    result = message_ingest(connection=globex_connection, body=body, headers=kpn_headers(body))
    message = Message.objects.get(pk=result.message_id)
    assert message.device != acme_device and message.device.tenant == globex
    assert not Reading.objects.filter(device=acme_device).exists()


def test_a_connection_cannot_be_created_for_another_tenant(acme, outsider):
    created = outsider.post("/api/v1/connections/", {"name": "mine", "kind": "kpn-things", "tenant": acme.pk}).json()
    assert Connection.objects.get(pk=created["id"]).tenant != acme
