"""A canary secret saved through the foundation's paths never appears in output or logs."""

import logging

import pytest

from ingest.models import Connection, ConnectionKind
from portal.secrets import Actor, secret_rotate, secret_set

CANARY = "Canary-Foundation-Secret-42-xyzQ!"


@pytest.fixture
def conn(acme):
    return Connection.objects.create(tenant=acme, name="c", kind=ConnectionKind.KPN_THINGS)


def test_secret_changes_log_nothing_of_the_value(conn, caplog):
    caplog.set_level(logging.DEBUG)
    secret_set(obj=conn, field="secret", value=CANARY, actor=Actor(label="t"))
    secret_rotate(obj=conn, new_secret=CANARY[::-1] + "9", grace_seconds=10, actor=Actor(label="t"))
    assert CANARY not in caplog.text
    assert CANARY[::-1] not in caplog.text


def test_admin_pages_never_show_the_secret(conn, staff, client):
    secret_set(obj=conn, field="secret", value=CANARY, actor=Actor(label="t"))
    client.force_login(staff)
    for url in [
        "/admin/portal/secretauditlog/",
        "/admin/portal/tenant/",
        f"/admin/portal/tenant/{conn.tenant_id}/change/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert CANARY not in response.content.decode()
