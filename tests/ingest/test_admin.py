"""The Django admin of connections and messages: rotation shows a new secret once, never a stored one."""

from __future__ import annotations

import html

import pytest

from ingest.models import Connection, ConnectionKind, Message
from ingest.services import message_ingest
from portal.models import SecretAuditLog
from tests.ingest.conftest import SECRET, kpn_headers, senml

NEW = "Admin-Set-Secret-0123456789-abcdXYZ!"


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def pages(client, connection) -> str:
    urls = ["/admin/ingest/connection/", f"/admin/ingest/connection/{connection.pk}/change/"]
    return html.unescape("".join(client.get(u).content.decode() for u in urls))


def test_connection_pages_never_show_the_stored_secret(staff_client, kpn):
    shown = pages(staff_client, kpn)
    assert SECRET not in shown and kpn.secret.token not in shown
    assert str(kpn.pk) in shown


def test_the_rotate_action_shows_each_new_secret_once_and_keeps_the_old_for_an_hour(staff_client, kpn, webhooks):
    response = staff_client.post(
        "/admin/ingest/connection/", {"action": "rotate_secret", "_selected_action": [kpn.pk, webhooks.pk]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = html.unescape(response.content.decode())  # generated secrets may hold & and the like
    kpn.refresh_from_db()
    webhooks.refresh_from_db()
    assert kpn.secret.reveal() in page and webhooks.secret.reveal() in page
    assert "whsec_" in page  # the Standard Webhooks connection's key, in its libraries' form
    assert [s.reveal() for s in kpn.secrets_in_force()][1] == SECRET
    # Shown once: no page afterwards holds it, and no flash message carries it.
    later = pages(staff_client, kpn) + html.unescape(staff_client.get("/admin/").content.decode())
    assert kpn.secret.reveal() not in later
    assert SecretAuditLog.objects.filter(action="rotate").count() == 2


def test_a_secret_set_in_the_form_is_stored_encrypted_audited_and_not_shown(staff_client, kpn):
    form = {
        "tenant": kpn.tenant_id,
        "name": "renamed",
        "description": "",
        "kind": ConnectionKind.KPN_THINGS,
        "enabled": "on",
        "username": "",
        "auth_mode": "basic",
        "device_key_header": "X-Device-Key",
        "plug_uuid": "",
        "auto_create_devices": "on",
        "new_secret": NEW,
    }
    response = staff_client.post(f"/admin/ingest/connection/{kpn.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    kpn.refresh_from_db()
    assert (kpn.name, kpn.secret.reveal()) == ("renamed", NEW)
    assert NEW not in pages(staff_client, kpn)
    assert SecretAuditLog.objects.filter(action="set", object_id=str(kpn.pk)).exists()


def test_a_weak_secret_in_the_form_is_refused(staff_client, kpn):
    form = {"tenant": kpn.tenant_id, "name": "x", "kind": "kpn-things", "auth_mode": "basic",
            "device_key_header": "X-Device-Key", "new_secret": "weak"}  # fmt: skip
    response = staff_client.post(f"/admin/ingest/connection/{kpn.pk}/change/", form)
    assert response.status_code == 200 and "The secret needs" in response.content.decode()
    kpn.refresh_from_db()
    assert kpn.secret.reveal() == SECRET


def test_messages_are_read_only_and_show_their_body(staff_client, kpn):
    body = senml({"n": "temperature", "v": 21.5})
    message_id = message_ingest(connection=kpn, body=body, headers=kpn_headers(body)).message_id
    page = staff_client.get(f"/admin/ingest/message/{message_id}/change/")
    assert page.status_code == 200 and "temperature" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert staff_client.get("/admin/ingest/message/add/").status_code == 403
    assert staff_client.get("/admin/ingest/message/").status_code == 200


def test_the_reprocess_action_accepts_invalid_messages_once_their_cause_is_fixed(staff_client, make_connection):
    connection = make_connection(auto_create_devices=False)
    body = senml({"n": "temperature", "v": 21.5})
    message_id = message_ingest(connection=connection, body=body, headers=kpn_headers(body)).message_id
    Connection.objects.filter(pk=connection.pk).update(auto_create_devices=True)
    response = staff_client.post("/admin/ingest/message/", {"action": "reprocess", "_selected_action": [message_id]})
    assert response.status_code == 302
    assert Message.objects.get(pk=message_id).status == "accepted"
