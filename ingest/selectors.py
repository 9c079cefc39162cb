"""Ingest reads."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from dataclasses import dataclass

from django.db import connection as db_connection

from ingest.models import Connection
from ingest.sql import ROW_VERSION, first_query_checks_connection, instance_from_row, select_columns

# Connections whose rows a web process keeps (PostgreSQL only: see IngestConnection), and
# for how long: the version check is what keeps them right; the limit bounds what nothing
# foresaw (a database restored under running web processes, say).
CACHED_CONNECTIONS = 1024
CACHED_SECONDS = 300.0
_rows: dict[uuid.UUID, tuple[tuple, float]] = {}
_clock = time.monotonic
_rows_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class IngestConnection:
    """The connection a webhook request names, and the version of its row that ingest read.

    The version (`xmin:ctid`) changes with every UPDATE of the row, even two in one
    transaction. A row a web process kept from an earlier request (`cached`) is used
    to verify and parse at once; the statement that stores the message checks that the
    version is still the row's, and ingest raises ConnectionChanged when it is not. So a
    rotated secret, a disabled or deleted connection counts from its commit, as it did
    when every request read the row.
    """

    connection: Connection
    version: str | None  # None off PostgreSQL, where nothing is kept
    cached: bool


def connection_for_ingest(connection_id: uuid.UUID, *, fresh: bool = False) -> IngestConnection | None:
    """The connection a webhook request names, or None; from this process's rows unless `fresh`.

    Plain SQL and a cache: it runs for every request.
    """
    kept = None if fresh else _rows.get(connection_id)
    if kept is not None and _clock() - kept[1] < CACHED_SECONDS:
        return _found(kept[0], cached=True)
    postgresql = db_connection.vendor == "postgresql"
    rows = first_query_checks_connection(lambda: _connection_rows(connection_id, postgresql=postgresql))
    if not rows:
        with _rows_lock:
            _rows.pop(connection_id, None)
        return None
    row = tuple(rows[0])
    if not postgresql:
        return IngestConnection(connection=instance_from_row(Connection, row), version=None, cached=False)
    with _rows_lock:  # threaded web workers
        if connection_id not in _rows and len(_rows) >= CACHED_CONNECTIONS:
            del _rows[next(iter(_rows))]  # the one kept longest
        _rows[connection_id] = (row, _clock())
    return _found(row, cached=False)


def _found(row: tuple, *, cached: bool) -> IngestConnection:
    # A new instance each time: nothing a request caches on it outlives the request.
    return IngestConnection(connection=instance_from_row(Connection, row[:-1]), version=row[-1], cached=cached)


def _connection_rows(connection_id: uuid.UUID, *, postgresql: bool) -> list:
    key = Connection._meta.pk.get_db_prep_value(connection_id, db_connection)
    with db_connection.cursor() as cursor:
        cursor.execute(_connection_sql(postgresql), [key])
        return cursor.fetchall()


@functools.cache
def _connection_sql(postgresql: bool) -> str:
    quote = db_connection.ops.quote_name
    version = f", {ROW_VERSION}" if postgresql else ""
    return f"SELECT {select_columns(Connection)}{version} FROM {quote(Connection._meta.db_table)} WHERE id = %s"  # noqa: S608
