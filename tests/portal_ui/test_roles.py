"""Every page, every role: who may look, who may change, and who is sent to log in."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.models import User
from tests.portal_ui.object_urls import object_urls

# Pages without an object id, and who may read them.
LIST_PAGES = [
    "dashboard",
    "connection-list",
    "connection-create",
    "destination-list",
    "destination-create",
    "delivery-list",
    "message-list",
    "device-list",
    "device-create",
    "device-import",
]
ADMIN_PAGES = ["member-list", "apikey-list"]
# Pages that change something, without an object id: editors (or admins) only.
WRITE_PAGES = ["connection-create", "destination-create", "device-create", "device-import"]
ADMIN_WRITE_PAGES = ["member-invite", "apikey-create"]


def _all_urls(data) -> list[str]:
    return [reverse(n) for n in LIST_PAGES + ADMIN_PAGES] + [url for _n, url, _m in object_urls(data)]


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in_from_every_page(acme_data):
    client = Client()
    for url in _all_urls(acme_data):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["alice", "bob", "vera"])
def test_every_member_reads_every_list_page(who, acme_data, page_as, request):
    client = page_as(request.getfixturevalue(who))
    for name in LIST_PAGES:
        if name in WRITE_PAGES and who == "vera":
            continue
        response = client.get(reverse(name))
        assert response.status_code == 200, name


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["bob", "vera"])
def test_members_and_api_keys_are_for_admins_only(who, acme_data, page_as, request):
    client = page_as(request.getfixturevalue(who))
    for name in ADMIN_PAGES + ADMIN_WRITE_PAGES:
        assert client.get(reverse(name)).status_code in (403, 405), name
        assert client.post(reverse(name), {"email": "x@acme.test", "role": "admin"}).status_code == 403, name
    for name in ("member-role", "member-remove", "member-resend", "apikey-revoke"):
        for row_name, url, _methods in object_urls(acme_data):
            if row_name == name:
                assert client.post(url, {"role": "admin"}).status_code == 403, name
    assert not User.objects.filter(email="x@acme.test").exists()


@pytest.mark.django_db
def test_the_admin_sees_members_and_api_keys(acme_data, alice, page_as):
    client = page_as(alice)
    for name in ADMIN_PAGES:
        assert client.get(reverse(name)).status_code == 200, name


@pytest.mark.django_db
def test_a_viewer_cannot_change_anything(acme_data, vera, page_as):
    client = page_as(vera)
    for name in WRITE_PAGES:
        assert client.get(reverse(name)).status_code == 403, name
        assert client.post(reverse(name), {"name": "x"}).status_code == 403, name
    for name, url, methods in object_urls(acme_data):
        if "post" in methods:
            assert client.post(url, {"name": "x", "custom1": "x"}).status_code == 403, name
    acme_data.device.refresh_from_db()
    assert acme_data.device.custom1 == ""
    acme_data.connection.refresh_from_db()
    assert acme_data.connection.name == "acme KPN"


@pytest.mark.django_db
def test_a_viewer_sees_no_edit_buttons(acme_data, vera, page_as):
    client = page_as(vera)
    page = client.get(reverse("device-detail", kwargs={"pk": acme_data.device.pk})).content.decode()
    assert reverse("device-edit", kwargs={"pk": acme_data.device.pk}) not in page
    page = client.get(reverse("connection-list")).content.decode()
    assert reverse("connection-create") not in page


@pytest.mark.django_db
def test_the_navigation_shows_members_and_keys_to_admins_only(acme_data, alice, bob, page_as):
    assert reverse("member-list") in page_as(alice).get("/").content.decode()
    assert reverse("member-list") not in page_as(bob).get("/").content.decode()


@pytest.mark.django_db
def test_someone_in_no_tenant_is_told_so(db, page_as):
    loner = User.objects.create_user(email="loner@nowhere.test", password="x")
    response = page_as(loner).get("/")
    assert response.status_code == 403
    assert b"not a member of any tenant" in response.content
