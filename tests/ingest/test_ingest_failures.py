"""When things go wrong: the database failing or gone (503), bodies too large to read, query budget.

These run in-process through Django's test client, because they need to reach into the
request: to break the database connection in the middle of the ingest transaction, or to
hand the view a request stream that counts what is read from it.
"""

from __future__ import annotations

import socket

import psycopg
import pytest
from django.db import connection as db_connection

import ingest.services
from devices.models import Device
from ingest.models import Message
from tests.ingest.conftest import DEVEUI, kpn_headers, senml

BODY = senml({"n": "temperature", "u": "Cel", "v": 21.5})


def client_headers(headers: dict) -> dict:
    """requests-style headers as the test client's WSGI environ keys."""
    extra = {}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        extra[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return extra


def post(client, connection, body: bytes, **extra):
    headers = client_headers(kpn_headers(body))
    return client.generic("POST", f"/ingest/{connection.pk}/", body, **{**headers, **extra})


def second_connection() -> psycopg.Connection:
    """A connection to the test database of its own, beside Django's."""
    params = db_connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"],
        port=params["PORT"] or 5432,
        autocommit=True,
    )


def messages_seen_from_outside() -> int:
    """Counted over a new connection, so what the failed request's connection did not commit is not seen."""
    with second_connection() as other:
        return other.execute("SELECT count(*) FROM ingest_message").fetchone()[0]


# --- 503 --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_commit_that_fails_answers_503_with_retry_after_and_keeps_nothing(client, kpn, monkeypatch):
    # Given: the database connection dies inside the ingest transaction, after every
    # write and before COMMIT — simulated by terminating our own PostgreSQL backend from
    # a second connection, so COMMIT fails for real.
    real = ingest.services.message_store

    def then_lose_the_database(**store):
        result = real(**store)
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        with second_connection() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        return result

    monkeypatch.setattr(ingest.services, "message_store", then_lose_the_database)
    try:
        response = post(client, kpn, BODY)
    finally:
        db_connection.close()

    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "nothing was stored" in response.json()["error"]
    assert messages_seen_from_outside() == 0


def test_a_connection_the_server_closed_between_requests_is_replaced_and_the_next_request_stored(http, kpn):
    # Over the live server: Django's test client leaves out the per-request connection
    # housekeeping this is about. Ingest skips Django's SELECT 1 before each request; its
    # first query (the store: the connection's row is kept from the first request) finds the
    # dead connection instead, and runs again on a new one.
    assert http.post(f"/ingest/{kpn.pk}/", content=BODY, headers=kpn_headers(BODY)).status_code == 200
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        ours = cursor.fetchone()[0]
    with second_connection() as admin:
        # Every connection to the test database but this test's own and the admin's: the server's.
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid NOT IN (%s, pg_backend_pid())",
            [ours],
        ).fetchone()[0]
    assert ended >= 1

    other = senml({"n": "temperature", "u": "Cel", "v": 22.5})
    response = http.post(f"/ingest/{kpn.pk}/", content=other, headers=kpn_headers(other))

    assert response.status_code == 200, response.text
    assert messages_seen_from_outside() == 2


@pytest.mark.django_db(transaction=True)
def test_a_database_that_cannot_be_reached_answers_503_with_retry_after(client, kpn):
    # Given: the database's port refuses connections (a port we bound, then freed).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = str(probe.getsockname()[1])
    db_connection.close()
    real_port = db_connection.settings_dict["PORT"]
    db_connection.settings_dict["PORT"] = closed_port
    try:
        response = post(client, kpn, BODY)
    finally:
        db_connection.close()
        db_connection.settings_dict["PORT"] = real_port

    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert Message.objects.count() == 0


# --- bodies too large -------------------------------------------------------------------------


class CountingStream:
    """A request body of `size` bytes that counts how much of it is read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.read_bytes if n is None or n < 0 else min(n, self.size - self.read_bytes)
        self.read_bytes += n
        return b" " * n

    def readline(self, *args) -> bytes:
        return self.read(*args)


TWO_MB = 2 * 1024 * 1024


def test_a_declared_2_mb_body_is_refused_without_reading_any_of_it(client, kpn):
    stream = CountingStream(TWO_MB)
    response = post(
        client, kpn, b"", CONTENT_LENGTH=str(TWO_MB), CONTENT_TYPE="application/json", **{"wsgi.input": stream}
    )
    assert response.status_code == 413
    assert stream.read_bytes == 0


def test_an_undeclared_2_mb_body_is_read_only_until_it_passes_the_limit(client, kpn, settings):
    # Chunked transfer: no Content-Length, the server marks the end of the body.
    stream = CountingStream(TWO_MB)
    extra = {"CONTENT_TYPE": "application/json", "wsgi.input": stream, "wsgi.input_terminated": True}
    response = post(client, kpn, b"", **extra)
    assert response.status_code == 413
    assert stream.read_bytes <= settings.INGEST_MAX_BODY_BYTES + 64 * 1024 < TWO_MB


def test_an_undeclared_body_under_the_limit_is_read_whole(client, kpn):
    class Body(CountingStream):
        def read(self, n: int = -1) -> bytes:
            chunk = BODY[self.read_bytes : self.read_bytes + (n if n and n > 0 else len(BODY))]
            self.read_bytes += len(chunk)
            return chunk

    extra = {"wsgi.input": Body(len(BODY)), "wsgi.input_terminated": True}
    response = post(client, kpn, b"", **{**client_headers(kpn_headers(BODY)), **extra})
    assert response.status_code == 200, response.content


# --- queries ---------------------------------------------------------------------------------


def test_an_accepted_message_costs_the_same_few_queries_whatever_its_size(client, kpn, django_assert_max_num_queries):
    Device.objects.create(tenant=kpn.tenant, dev_eui=DEVEUI)
    small = senml({"n": "r0", "v": 0})
    large = senml(*({"n": f"r{i}", "v": i} for i in range(50)))
    assert post(client, kpn, senml({"n": "first", "v": 0})).status_code == 200  # reads the connection and keeps it
    # The plan mode and one statement that checks the connection is unchanged, finds the device,
    # marks it seen and stores claims, message, readings and deliveries — plus the savepoint
    # pair the test's own transaction turns atomic() into
    with django_assert_max_num_queries(4) as small_queries:
        assert post(client, kpn, small).status_code == 200
    with django_assert_max_num_queries(4) as large_queries:
        assert post(client, kpn, large).json()["readings"] == 50
    assert len(small_queries.captured_queries) == len(large_queries.captured_queries)
