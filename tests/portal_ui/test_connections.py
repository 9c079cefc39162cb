"""Connections: create with a secret shown once, the ingest URL, rotation, sender snippets."""

from __future__ import annotations

import re

import pytest

from ingest.models import Connection, ConnectionKind
from portal.models import SecretAuditLog
from tests.portal_ui.conftest import STRONG_SECRET


def _shown_secret(html: str) -> str:
    return re.search(r'<code id="new-secret" data-secret>([^<]+)</code>', html).group(1)


@pytest.mark.django_db
def test_creating_a_connection_generates_a_secret_shown_once(acme, bob, page_as):
    client = page_as(bob)
    response = client.post(
        "/connections/new/",
        {
            "name": "Field KPN",
            "kind": "kpn-things",
            "enabled": "on",
            "auth_mode": "basic",
            "device_key_header": "X-Device-Key",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    import html as html_lib

    secret = html_lib.unescape(_shown_secret(html))
    connection = Connection.objects.get(tenant=acme, name="Field KPN")
    assert connection.secret.reveal() == secret
    assert connection.ingest_url in html
    later = client.get(f"/connections/{connection.pk}/").content.decode()
    assert secret not in html_lib.unescape(later)
    assert "new-secret" not in later
    assert SecretAuditLog.objects.filter(object_id=str(connection.pk), field="secret").exists()


@pytest.mark.django_db
def test_a_standard_webhooks_connection_shows_its_whsec_key_once(acme, bob, page_as):
    response = page_as(bob).post(
        "/connections/new/",
        {"name": "SWH", "kind": "standard-webhooks", "auth_mode": "basic", "device_key_header": "X-Device-Key"},
    )
    assert re.search(r'<code id="new-whsec" data-whsec>whsec_[A-Za-z0-9+/=]+</code>', response.content.decode())


@pytest.mark.django_db
def test_a_supplied_secret_is_never_echoed(acme, bob, page_as):
    response = page_as(bob).post(
        "/connections/new/",
        {
            "name": "Mine",
            "kind": "kpn-things",
            "secret": STRONG_SECRET,
            "auth_mode": "basic",
            "device_key_header": "X-Device-Key",
        },
        follow=True,
    )
    assert STRONG_SECRET.encode() not in response.content
    assert Connection.objects.get(name="Mine").secret.reveal() == STRONG_SECRET


@pytest.mark.django_db
def test_a_weak_secret_is_refused_beside_its_field(acme, bob, page_as):
    html = (
        page_as(bob)
        .post(
            "/connections/new/",
            {
                "name": "Weak",
                "kind": "kpn-things",
                "secret": "short",
                "auth_mode": "basic",
                "device_key_header": "X-Device-Key",
            },
        )
        .content.decode()
    )
    assert re.search(r'id="id_secret_field".*?class="errorlist".*?at least 32 characters', html, re.S)
    assert 'value="short"' not in html
    assert not Connection.objects.filter(name="Weak").exists()


@pytest.mark.django_db
def test_digital_matter_basic_needs_a_user_name_beside_its_field(acme, bob, page_as):
    html = (
        page_as(bob)
        .post(
            "/connections/new/",
            {"name": "DM", "kind": "digital-matter", "auth_mode": "basic", "device_key_header": "X-Device-Key"},
        )
        .content.decode()
    )
    assert re.search(r'id="id_username_field".*?class="errorlist".*?user name', html, re.S)


@pytest.mark.django_db
def test_digital_matter_with_device_keys_gets_no_secret(acme, bob, page_as):
    response = page_as(bob).post(
        "/connections/new/",
        {"name": "DM keys", "kind": "digital-matter", "auth_mode": "device-key", "device_key_header": "X-Key"},
    )
    assert response.status_code == 302
    assert Connection.objects.get(name="DM keys").secret is None


@pytest.mark.django_db
def test_the_detail_page_has_the_url_a_copy_button_and_snippets_without_the_secret(acme_data, vera, page_as):
    connection = acme_data.connection
    html = page_as(vera).get(f"/connections/{connection.pk}/").content.decode()
    assert f'value="{connection.ingest_url}"' in html
    assert 'data-copy-target="#ingest-url"' in html
    assert "hashlib.sha256(body + SECRET.encode" in html  # Python
    assert 'crypto.createHash("sha256")' in html  # Node.js
    assert STRONG_SECRET not in html


@pytest.mark.django_db
def test_rotating_with_a_generated_secret_shows_it_once_and_keeps_the_old_one_for_the_grace(acme_data, bob, page_as):
    connection = acme_data.connection
    response = page_as(bob).post(f"/connections/{connection.pk}/rotate-secret/", {"secret": "", "grace_seconds": 3600})
    import html as html_lib

    new_secret = html_lib.unescape(_shown_secret(response.content.decode()))
    connection.refresh_from_db()
    assert connection.secret.reveal() == new_secret != STRONG_SECRET
    assert [s.reveal() for s in connection.secrets_in_force()] == [new_secret, STRONG_SECRET]


@pytest.mark.django_db
def test_editing_a_connection_changes_its_fields_not_its_secret(acme_data, bob, page_as):
    connection = acme_data.connection
    response = page_as(bob).post(
        f"/connections/{connection.pk}/edit/",
        {
            "name": "Renamed",
            "kind": ConnectionKind.KPN_THINGS,
            "auth_mode": "basic",
            "device_key_header": "X-Device-Key",
            "secret": "ignored-" + STRONG_SECRET,
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Renamed"
    assert connection.secret.reveal() == STRONG_SECRET
