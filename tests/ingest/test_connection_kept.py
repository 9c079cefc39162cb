"""A web process reads a connection once and keeps it; any change to its row counts from its commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import Device, Reading
from ingest.errors import ConnectionChanged
from ingest.models import Connection, Message, MessageClaim
from ingest.selectors import connection_for_ingest
from ingest.services import message_ingest
from portal.secrets import Actor, secret_rotate, secret_set
from tests.ingest.conftest import DEVEUI, OTHER_SECRET, kpn_headers, senml

ACTOR = Actor(label="test")


def url(connection: Connection) -> str:
    return f"/ingest/{connection.pk}/"


def body(value: float) -> bytes:
    return senml({"n": "temperature", "v": value})


def _reads_of_the_connection(client, connection: Connection, value: float) -> int:
    """How many times a signed request (answered 200) read the connection's row."""
    table = Connection._meta.db_table
    with CaptureQueriesContext(db_connection) as queries:
        response = client.post(url(connection), data=body(value), content_type="application/json",
                               headers=kpn_headers(body(value)))  # fmt: skip
    assert response.status_code == 200, response.content
    return sum(1 for query in queries.captured_queries if query["sql"].startswith("SELECT") and f'FROM "{table}"' in
               query["sql"].split("WHERE")[0])  # fmt: skip


def test_a_connection_is_read_by_its_first_request_only(client, kpn):
    assert [_reads_of_the_connection(client, kpn, value) for value in (1, 2, 3)] == [1, 0, 0]


def test_a_kept_row_is_read_anew_after_five_minutes(client, kpn, monkeypatch):
    import ingest.selectors

    now = [1000.0]
    monkeypatch.setattr(ingest.selectors, "_clock", lambda: now[0])
    reads = []
    for value, minutes_later in ((1, 0), (2, 4.9), (3, 5.1)):
        now[0] += minutes_later * 60
        reads.append(_reads_of_the_connection(client, kpn, value))
    assert reads == [1, 0, 1]


def test_a_change_in_the_same_transaction_as_the_row_it_changes_is_seen(client, kpn):
    # Both writes in the test's one transaction: the same xmin, another row version all the same.
    assert client.post(url(kpn), data=body(1), content_type="application/json",
                       headers=kpn_headers(body(1))).status_code == 200  # fmt: skip
    Connection.objects.filter(pk=kpn.pk).update(enabled=False)
    response = client.post(url(kpn), data=body(2), content_type="application/json", headers=kpn_headers(body(2)))
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
class TestOverHttp:
    def test_a_secret_replaced_after_the_connection_was_kept_counts_at_once(self, http, kpn):
        assert http.post(url(kpn), content=body(1), headers=kpn_headers(body(1))).status_code == 200
        secret_set(obj=kpn, field="secret", value=OTHER_SECRET, actor=ACTOR)

        old = http.post(url(kpn), content=body(2), headers=kpn_headers(body(2)))
        new = http.post(url(kpn), content=body(3), headers=kpn_headers(body(3), secret=OTHER_SECRET))

        assert (old.status_code, new.status_code) == (401, 200)
        assert Message.objects.count() == 2

    def test_a_sender_already_on_a_rotated_secret_is_accepted_at_once(self, http, kpn):
        assert http.post(url(kpn), content=body(1), headers=kpn_headers(body(1))).status_code == 200
        secret_rotate(obj=kpn, new_secret=OTHER_SECRET, grace_seconds=3600, actor=ACTOR)
        response = http.post(url(kpn), content=body(2), headers=kpn_headers(body(2), secret=OTHER_SECRET))
        assert response.status_code == 200, response.text

    def test_a_connection_disabled_then_enabled_again_answers_each_time_as_it_is(self, http, kpn):
        assert http.post(url(kpn), content=body(1), headers=kpn_headers(body(1))).status_code == 200
        Connection.objects.filter(pk=kpn.pk).update(enabled=False)
        assert http.post(url(kpn), content=body(2), headers=kpn_headers(body(2))).status_code == 403
        Connection.objects.filter(pk=kpn.pk).update(enabled=True)
        assert http.post(url(kpn), content=body(3), headers=kpn_headers(body(3))).status_code == 200

    def test_a_connection_deleted_after_it_was_kept_is_not_found(self, http, kpn):
        assert http.post(url(kpn), content=body(1), headers=kpn_headers(body(1))).status_code == 200
        Connection.objects.filter(pk=kpn.pk).delete()
        response = http.post(url(kpn), content=body(2), headers=kpn_headers(body(2)))
        assert response.status_code == 404
        assert Message.objects.count() == 0

    def test_a_body_that_is_not_json_is_answered_by_the_row_as_it_is_now(self, http, kpn, make_connection):
        # No refusal comes from a kept row: not even one for the body, which would tell a
        # sender with a revoked secret that it still verifies.
        other = make_connection()
        for connection in (kpn, other):
            assert http.post(url(connection), content=body(1), headers=kpn_headers(body(1))).status_code == 200
        Connection.objects.filter(pk=kpn.pk).update(enabled=False)
        secret_set(obj=other, field="secret", value=OTHER_SECRET, actor=ACTOR)

        disabled = http.post(url(kpn), content=b"{not json", headers=kpn_headers(b"{not json"))
        revoked = http.post(url(other), content=b"{not json", headers=kpn_headers(b"{not json"))

        assert (disabled.status_code, revoked.status_code) == (403, 401)

    def test_a_change_that_does_not_concern_the_sender_only_costs_a_second_look(self, http, kpn):
        assert http.post(url(kpn), content=body(1), headers=kpn_headers(body(1))).status_code == 200
        Connection.objects.filter(pk=kpn.pk).update(name="renamed")
        response = http.post(url(kpn), content=body(2), headers=kpn_headers(body(2)))
        assert response.status_code == 200 and "duplicate" not in response.json()
        assert (Message.objects.count(), Reading.objects.count()) == (2, 2)


@pytest.mark.django_db(transaction=True)
class TestStoringWithAnOutdatedRow:
    """What the store statement does when the row ingest read is no longer the connection's."""

    @pytest.fixture
    def outdated(self, kpn):
        version = connection_for_ingest(kpn.pk, fresh=True).version
        Connection.objects.filter(pk=kpn.pk).update(name="changed meanwhile")
        return version

    def test_a_known_device_is_neither_stored_to_nor_marked_seen(self, kpn, outdated):
        seen = timezone.now() - timedelta(hours=1)
        device = Device.objects.create(tenant=kpn.tenant, dev_eui=DEVEUI, last_seen_at=seen)
        with pytest.raises(ConnectionChanged):
            message_ingest(connection=kpn, body=body(1), headers=kpn_headers(body(1)), connection_version=outdated)
        assert (Message.objects.count(), Reading.objects.count(), MessageClaim.objects.count()) == (0, 0, 0)
        assert Device.objects.get(pk=device.pk).last_seen_at == seen

    def test_a_new_device_is_not_created(self, kpn, outdated):
        with pytest.raises(ConnectionChanged):
            message_ingest(connection=kpn, body=body(1), headers=kpn_headers(body(1)), connection_version=outdated)
        assert (Device.objects.count(), Message.objects.count(), MessageClaim.objects.count()) == (0, 0, 0)

    def test_the_version_read_now_stores(self, kpn, outdated):
        current = connection_for_ingest(kpn.pk, fresh=True).version
        assert current != outdated
        result = message_ingest(connection=kpn, body=body(1), headers=kpn_headers(body(1)), connection_version=current)
        assert Message.objects.get().pk == result.message_id


def test_a_connection_that_keeps_changing_answers_503_after_three_reads(client, kpn, monkeypatch):
    import ingest.views

    reads = []
    real = ingest.views.connection_for_ingest

    def counted(connection_id, *, fresh=False):
        reads.append(fresh)
        return real(connection_id, fresh=fresh)

    def always_changed(**request):
        raise ConnectionChanged

    monkeypatch.setattr(ingest.views, "connection_for_ingest", counted)
    monkeypatch.setattr(ingest.views, "message_ingest", always_changed)
    response = client.post(url(kpn), data=body(1), content_type="application/json", headers=kpn_headers(body(1)))

    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert "kept changing" in response.json()["error"]
    assert reads == [False, True, True]
    assert Message.objects.count() == 0
