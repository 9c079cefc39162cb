"""Tenant isolation of the pages that take no id: lists, dashboard, forms, generated from
the URL configuration; and the admin for a member who is not staff.

tests/security/test_tenant_isolation_matrix.py covers every route with an object id
and the API's lists. Here acme gets one row of each kind, each carrying a marker; charlie
(admin of globex) opens every portal page without an id, and none may show a marker or
count acme's rows. A new list page is covered as soon as it is routed.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern

from tests.security.test_tenant_isolation_matrix import (
    make_api_key,
    make_connection,
    make_delivery,
    make_device,
    make_membership,
    make_reading,
)

pytestmark = pytest.mark.django_db

MARKER = "acmeonlymarker"


def page_routes() -> list[str]:
    """Every portal page route without a parameter (portal/urls_pages.py and the root)."""
    from portal import urls_pages

    return [
        "/" + str(entry.pattern)
        for entry in urls_pages.urlpatterns
        if isinstance(entry, URLPattern) and not entry.pattern.regex.groupindex
    ]


@pytest.fixture
def acme_rows(acme):
    connection = make_connection(acme)
    connection.name = f"{MARKER}-connection"
    connection.save()
    device = make_device(acme)
    device.serial, device.custom1 = f"{MARKER}-serial", f"{MARKER}-custom"
    device.save()
    delivery = make_delivery(acme)
    delivery.destination.name = f"{MARKER}-destination"
    delivery.destination.save()
    make_reading(acme)
    key = make_api_key(acme)
    key.label = f"{MARKER}-key"
    key.save()
    member = make_membership(acme)
    member.user.email = f"{MARKER}@acme.test"
    member.user.save()
    return connection


def test_the_routes_without_an_id_are_found():
    routes = page_routes()
    assert "/" in routes and "/connections/" in routes and "/deliveries/" in routes, routes


@pytest.mark.parametrize("path", page_routes())
def test_an_outsider_sees_nothing_of_another_tenant_on_any_page_without_an_id(path, acme_rows, charlie):
    """Pass: the page answers (200, or a redirect/refusal for POST-only routes) and holds no
    marker of acme's rows."""
    client = Client()
    client.force_login(charlie)
    response = client.get(path)
    assert response.status_code in (200, 302, 403, 405), (path, response.status_code)
    assert MARKER not in response.content.decode(errors="replace")
    assert "acme" not in response.content.decode(errors="replace").lower()


def test_a_member_who_is_not_staff_gets_no_admin_page(acme_rows, alice):
    """Pass: the admin's index and a change page of the member's own tenant redirect to the admin login."""
    client = Client()
    client.force_login(alice)
    for path in ("/admin/", f"/admin/ingest/connection/{acme_rows.pk}/change/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
        assert MARKER not in response.content.decode()


def test_control_the_tenants_own_admin_does_see_the_markers(acme_rows, alice):
    """Pass (a control, so the outsider test can fail): acme's admin sees acme's rows on its lists."""
    client = Client()
    client.force_login(alice)
    for path in ("/connections/", "/devices/", "/destinations/", "/api-keys/", "/members/"):
        assert MARKER in client.get(path).content.decode(), path
