"""Tenant isolation, generated from the URL configuration.

Every route that takes an object id is listed from the resolver. For each, an object of
tenant acme is made and charlie — an admin of another tenant — asks for it with every
method the route accepts: the answer must be 404, and the object must be unchanged.
A route with an id that has no factory here fails `test_every_object_route_is_covered`,
so a new page or endpoint cannot ship without its isolation check.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from delivery.models import Delivery, Destination
from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message
from portal.api_urls import router
from portal.models import ApiKey, Membership, Role, Tenant, User
from portal.services import api_key_create

# Routes whose id is not a tenant-owned object reached by members, and why.
EXEMPT_PREFIXES = {
    "admin/": "the Django admin is for platform staff; non-staff are sent to its login",
    "ingest/": "the public webhook: the connection id is the address, verified per request",
    "accounts/": "Django's auth views (password reset tokens), not tenant objects",
    "api/schema": "the schema is not tenant data",
}


@dataclass(frozen=True)
class Route:
    pattern: str
    name: str
    kwargs: tuple[str, ...]


def _walk(patterns, prefix: str = "") -> list[Route]:
    routes = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            routes += _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            kwargs = tuple(entry.pattern.regex.groupindex)
            # DRF's `.json` suffix twins of each route add nothing to check.
            if kwargs and entry.name and "format" not in kwargs:
                routes.append(Route(prefix + str(entry.pattern), entry.name, kwargs))
    return routes


def object_routes() -> list[Route]:
    routes = _walk(get_resolver().url_patterns)
    return [r for r in routes if not any(r.pattern.startswith(p) for p in EXEMPT_PREFIXES)]


# ---- factories: one object of `tenant` per kind of route ------------------------------


def make_connection(tenant: Tenant) -> Connection:
    return Connection.objects.create(tenant=tenant, name="acme-conn", kind=ConnectionKind.KPN_THINGS)


def make_device(tenant: Tenant) -> Device:
    return Device.objects.create(tenant=tenant, serial=f"SER{uuid.uuid4().hex[:8]}", custom1="acme-custom")


def make_message(tenant: Tenant) -> Message:
    body = b'[{"bn":"urn:dev:IMEI:1:","n":"t","v":1}]'
    return Message.objects.create(
        tenant=tenant,
        connection=make_connection(tenant),
        received_at=timezone.now(),
        status=Message.Status.INVALID,
        error="kept for the isolation test",
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )


def make_reading(tenant: Tenant) -> Reading:
    message = make_message(tenant)
    return Reading.objects.create(tenant=tenant, message=message, name="t", value=1, kind="number", time=timezone.now())


def make_destination(tenant: Tenant) -> Destination:
    return Destination.objects.create(tenant=tenant, name="acme-dest", url="https://example.com/in")


def make_delivery(tenant: Tenant) -> Delivery:
    return Delivery.objects.create(
        tenant=tenant,
        message=make_message(tenant),
        destination=make_destination(tenant),
        status=Delivery.Status.FAILED,
    )


def make_api_key(tenant: Tenant) -> ApiKey:
    return api_key_create(tenant=tenant, label="acme-key").api_key


def make_membership(tenant: Tenant) -> Membership:
    user = User.objects.create_user(email=f"m{uuid.uuid4().hex[:6]}@acme.test")
    return Membership.objects.create(tenant=tenant, user=user, role=Role.VIEWER)


# The first word of a route's name (`connection-detail`, `device_edit`, …) says what it shows.
FACTORIES: dict[str, Callable[[Tenant], object]] = {
    "connection": make_connection,
    "device": make_device,
    "message": make_message,
    "reading": make_reading,
    "destination": make_destination,
    "delivery": make_delivery,
    "apikey": make_api_key,
    "api-key": make_api_key,
    "membership": make_membership,
    "member": make_membership,
}


def _factory_for(route: Route):
    name = route.name.replace("_", "-")
    for key in sorted(FACTORIES, key=len, reverse=True):
        if name == key or name.startswith(key + "-"):
            return FACTORIES[key]
    return None


def _path(route: Route, obj) -> str:
    path = route.pattern
    for kwarg in route.kwargs:
        # Regex routes (DRF's router) and converter routes (path()) alike.
        path = re.sub(rf"\(\?P<{kwarg}>[^)]*\)", str(obj.pk), path)
        path = re.sub(rf"<(?:\w+:)?{kwarg}>", str(obj.pk), path)
    return "/" + path.replace("^", "").replace("$", "").lstrip("/")


def test_every_object_route_is_covered():
    uncovered = [f"{r.name} ({r.pattern})" for r in object_routes() if _factory_for(r) is None]
    assert not uncovered, "routes with an object id but no isolation factory: " + ", ".join(uncovered)


def test_the_matrix_holds_the_detail_route_of_every_api_resource():
    names = {r.name for r in object_routes()}
    missing = [basename for _prefix, _viewset, basename in router.registry if f"{basename}-detail" not in names]
    assert router.registry and not missing, f"detail routes missing from the matrix: {missing}"


def _snapshot(obj) -> dict:
    obj.refresh_from_db()
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.mark.django_db
@pytest.mark.parametrize("route", object_routes(), ids=lambda r: r.name)
def test_an_outsider_gets_404_for_every_method(route, acme, charlie):
    factory = _factory_for(route)
    assert factory is not None, f"no factory for {route.name}"
    obj = factory(acme)
    before = _snapshot(obj)
    client = APIClient()
    client.force_login(charlie)
    path = _path(route, obj)
    for method in ("get", "post", "patch", "put", "delete"):
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code in (404, 405), f"{method.upper()} {path} answered {response.status_code}"
        assert str(acme.slug) not in response.content.decode()
    assert _snapshot(obj) == before


@pytest.mark.django_db
def test_lists_never_show_a_foreign_row(acme, globex, key_client):
    for factory in {make_connection, make_device, make_reading, make_delivery, make_api_key, make_membership}:
        factory(acme)
    client = key_client(globex, Role.ADMIN)
    for prefix, viewset, _basename in router.registry:
        model = viewset.queryset.model
        acme_ids = {str(pk) for pk in model.objects.filter(tenant=acme).values_list("pk", flat=True)}
        assert acme_ids, f"no acme row of {model.__name__} to look for"
        url = f"/api/v1/{prefix}/"
        response = client.get(url)
        assert response.status_code == 200, url
        listed = {str(row["id"]) for row in response.json()["results"]}
        assert not listed & acme_ids, f"{url} shows another tenant's rows"
