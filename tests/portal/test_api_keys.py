"""API keys: Bearer authentication, hashing, revocation, and the tenant they imply."""

import pytest
from rest_framework.test import APIClient

from portal.models import ApiKey, Role
from portal.services import api_key_create, api_key_revoke


def test_a_key_authenticates_and_records_its_last_use(acme, key_client):
    new = api_key_create(tenant=acme, role=Role.ADMIN)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new.key}")
    response = client.get("/api/v1/api-keys/")
    assert response.status_code == 200
    assert ApiKey.objects.get(pk=new.api_key.pk).last_used_at is not None


def test_only_the_hash_is_stored(acme):
    new = api_key_create(tenant=acme)
    stored = ApiKey.objects.get(pk=new.api_key.pk)
    assert new.key not in str(vars(stored))


@pytest.mark.parametrize("header", ["Bearer ip_wrong", "Bearer ", "Bearer"])
def test_a_wrong_or_empty_key_is_refused(acme, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/api-keys/").status_code in (401, 403)


def test_a_revoked_key_is_refused(acme):
    new = api_key_create(tenant=acme, role=Role.ADMIN)
    api_key_revoke(api_key=new.api_key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new.key}")
    response = client.get("/api/v1/api-keys/")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_creating_a_key_shows_it_once(alice, api_as):
    client = api_as(alice)
    created = client.post("/api/v1/api-keys/", {"label": "ci"})
    assert created.status_code == 201
    key = created.json()["key"]
    listed = client.get("/api/v1/api-keys/").content.decode()
    assert key not in listed
    assert created.json()["api_key"]["prefix"] in listed


def test_keys_are_an_admin_matter(bob, api_as):
    assert api_as(bob).get("/api/v1/api-keys/").status_code == 403


def test_an_outsider_neither_lists_nor_reaches_another_tenants_key(acme, alice, charlie, api_as):
    key = api_key_create(tenant=acme, label="acme-only").api_key
    client = api_as(charlie)
    assert "acme-only" not in client.get("/api/v1/api-keys/").content.decode()
    assert client.get(f"/api/v1/api-keys/{key.pk}/").status_code == 404
    assert client.delete(f"/api/v1/api-keys/{key.pk}/").status_code == 404
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_a_key_of_one_tenant_sees_only_that_tenant(acme, globex, key_client):
    api_key_create(tenant=globex, label="globex-key")
    body = key_client(acme, Role.ADMIN).get("/api/v1/api-keys/").content.decode()
    assert "globex-key" not in body
