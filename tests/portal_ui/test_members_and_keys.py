"""Members (invite, role change, remove) and API keys (shown once, revoke): admins only."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from portal.models import ApiKey, Membership, Role, User


def _link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


@pytest.mark.django_db(transaction=True)
def test_inviting_a_stranger_creates_a_user_without_password_and_mails_a_link_that_sets_one(acme, alice, page_as):
    client = page_as(alice)
    response = client.post("/members/invite/", {"email": "Newbie@Acme.test", "role": "editor"})
    assert response.status_code == 302
    newbie = User.objects.get(email="newbie@acme.test")
    assert not newbie.has_usable_password()
    assert Membership.objects.get(tenant=acme, user=newbie).role == Role.EDITOR
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newbie@acme.test"]
    assert "Acme Sensors" in mail.outbox[0].subject
    stranger = Client()
    form = stranger.get(_link_in(mail.outbox[0]), follow=True)
    assert b"Set a new password" in form.content
    new_password = "Welc0me-aboard-2024"
    stranger.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    login = stranger.post("/accounts/login/", {"username": "newbie@acme.test", "password": new_password})
    assert login.status_code == 302
    assert b"Acme Sensors" in stranger.get("/").content


@pytest.mark.django_db(transaction=True)
def test_inviting_someone_who_has_an_account_adds_them_and_tells_them(acme, alice, charlie, page_as):
    page_as(alice).post("/members/invite/", {"email": "charlie@globex.test", "role": "viewer"})
    assert Membership.objects.get(tenant=acme, user=charlie).role == Role.VIEWER
    assert "/accounts/login/" in mail.outbox[0].body
    assert "reset" not in mail.outbox[0].body


@pytest.mark.django_db
def test_inviting_a_member_again_is_an_error_beside_the_email_field(acme, alice, bob, page_as):
    response = page_as(alice).post("/members/invite/", {"email": "bob@acme.test", "role": "viewer"})
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'id="id_email_field".*?already a member', html, re.S)
    assert Membership.objects.get(tenant=acme, user=bob).role == Role.EDITOR


@pytest.mark.django_db
def test_a_bad_address_is_an_error_beside_the_email_field(acme, alice, page_as):
    html = page_as(alice).post("/members/invite/", {"email": "not-an-address", "role": "viewer"}).content.decode()
    assert re.search(r'id="id_email_field".*?valid email', html, re.S | re.I)


@pytest.mark.django_db
def test_the_admin_changes_a_role(acme, alice, bob, page_as):
    membership = Membership.objects.get(tenant=acme, user=bob)
    page_as(alice).post(f"/members/{membership.pk}/role/", {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER


@pytest.mark.django_db
def test_the_last_admin_cannot_be_demoted_or_removed(acme, alice, page_as):
    membership = Membership.objects.get(tenant=acme, user=alice)
    client = page_as(alice)
    response = client.post(f"/members/{membership.pk}/role/", {"role": "viewer"}, follow=True)
    assert b"at least one admin" in response.content
    response = client.post(f"/members/{membership.pk}/remove/", follow=True)
    assert b"at least one admin" in response.content
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


@pytest.mark.django_db
def test_the_admin_removes_a_member_who_then_sees_no_tenant(acme, alice, vera, page_as):
    membership = Membership.objects.get(tenant=acme, user=vera)
    page_as(alice).post(f"/members/{membership.pk}/remove/")
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert page_as(vera).get("/").status_code == 403


@pytest.mark.django_db
def test_a_new_api_key_is_shown_once_works_and_is_never_shown_again(acme, alice, page_as):
    client = page_as(alice)
    response = client.post("/api-keys/new/", {"label": "ci", "role": "viewer"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = re.search(r'<code id="new-key" data-secret>(ip_[^<]+)</code>', response.content.decode()).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/api-keys/").status_code in (200, 403)  # authenticated: not 401
    assert api.get("/api/v1/api-keys/").status_code != 401
    listing = client.get("/api-keys/").content.decode()
    assert key not in listing and key[:10] in listing
    assert ApiKey.objects.get(tenant=acme, label="ci").role == Role.VIEWER


@pytest.mark.django_db
def test_revoking_a_key_makes_the_api_refuse_it(acme, alice, page_as):
    client = page_as(alice)
    answer = client.post("/api-keys/new/", {"label": "x", "role": "editor"}).content.decode()
    key = re.search(r"(ip_[A-Za-z0-9_-]{20,})", answer).group(1)
    api_key = ApiKey.objects.get(tenant=acme, label="x")
    client.post(f"/api-keys/{api_key.pk}/revoke/")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/api-keys/").status_code == 401
