"""Log in, log out, password reset by e-mail, and the tenant switcher."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from portal.models import Membership, Role, Tenant
from tests.conftest import PASSWORD


def _link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


@pytest.mark.django_db
def test_login_page_renders_and_a_member_lands_on_the_dashboard(alice):
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b'name="username"' in page.content and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": "alice@acme.test", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert b"Acme Sensors" in client.get("/").content


@pytest.mark.django_db
def test_a_wrong_password_is_told_on_the_form(alice):
    response = Client().post("/accounts/login/", {"username": "alice@acme.test", "password": "wrong"})
    assert response.status_code == 200
    assert b"errorlist nonfield" in response.content


@pytest.mark.django_db
def test_logout_ends_the_session(alice):
    client = Client()
    client.post("/accounts/login/", {"username": "alice@acme.test", "password": PASSWORD})
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_password_reset_sends_a_link_that_sets_a_new_password(alice):
    client = Client()
    response = client.post("/accounts/password_reset/", {"email": "alice@acme.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@acme.test"]
    link = _link_in(mail.outbox[0])
    form = client.get(link, follow=True)
    assert b"Set a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "An0ther-Long-Passw0rd", "new_password2": "An0ther-Long-Passw0rd"}
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("An0ther-Long-Passw0rd")


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(db):
    response = Client().post("/accounts/password_reset/", {"email": "nobody@acme.test"}, follow=True)
    assert b"Check your e-mail" in response.content
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_tenant_switcher_changes_the_tenant_of_every_page(acme, alice, page_as):
    other = Tenant.objects.create(slug="initech", name="Initech Labs")
    Membership.objects.create(tenant=other, user=alice, role=Role.VIEWER)
    client = page_as(alice)
    page = client.get("/").content.decode()
    assert 'name="tenant"' in page and "Initech Labs" in page
    response = client.post("/tenants/switch/", {"tenant": other.pk})
    assert response.status_code == 302
    page = client.get("/").content.decode()
    assert "<h1>Initech Labs</h1>" in page
    # As a viewer of initech, alice cannot create there.
    assert client.get("/connections/new/").status_code == 403


@pytest.mark.django_db
def test_switching_to_a_tenant_one_is_no_member_of_is_refused(acme, alice, globex, page_as):
    client = page_as(alice)
    response = client.post("/tenants/switch/", {"tenant": globex.pk}, follow=True)
    assert b"not a member of that tenant" in response.content
    assert b"<h1>Acme Sensors</h1>" in response.content


@pytest.mark.django_db
def test_pages_carry_no_inline_script_and_no_foreign_asset(acme_data, alice, page_as):
    client = page_as(alice)
    for url in ("/", "/connections/", "/destinations/", "/deliveries/", "/devices/", "/members/", "/api-keys/"):
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+\s*=", html), url
        # Every script and stylesheet is served by the portal itself: no CDN.
        assert not re.search(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', html), url
