"""An outsider (charlie, admin of globex) gets 404 for every page of acme's objects."""

from __future__ import annotations

import pytest

from portal import urls_pages
from tests.portal_ui.object_urls import object_urls


def _routes_with_ids() -> set[str]:
    return {p.name for p in urls_pages.urlpatterns if p.pattern.converters}


def test_every_page_with_an_object_id_is_in_the_isolation_list(acme_data):
    listed = {name for name, _url, _methods in object_urls(acme_data)}
    missing = _routes_with_ids() - listed
    assert not missing, f"add these routes to tests/portal_ui/object_urls.py: {sorted(missing)}"


@pytest.mark.django_db
def test_outsider_gets_404_for_every_object_page_and_changes_nothing(acme_data, charlie, page_as):
    client = page_as(charlie)
    for name, url, methods in object_urls(acme_data):
        for method in methods:
            response = getattr(client, method)(url, {"name": "taken over", "role": "viewer", "custom1": "x"})
            assert response.status_code == 404, f"{method.upper()} {url} ({name}) answered {response.status_code}"
            assert b"Acme" not in response.content
    acme_data.connection.refresh_from_db()
    acme_data.device.refresh_from_db()
    acme_data.api_key.refresh_from_db()
    acme_data.membership.refresh_from_db()
    assert acme_data.connection.name == "acme KPN"
    assert acme_data.device.custom1 == ""
    assert acme_data.api_key.revoked_at is None
    assert acme_data.membership.role == "admin"


@pytest.mark.django_db
def test_a_member_reaches_the_same_pages(acme_data, alice, page_as):
    # The list above is reachable for the tenant's own admin: the 404s are not a broken URL.
    client = page_as(alice)
    for name, url, methods in object_urls(acme_data):
        if "get" in methods:
            assert client.get(url).status_code == 200, name
