"""Ingest reads."""

from __future__ import annotations

import functools
import uuid

from django.db import connection as db_connection

from ingest.models import Connection
from ingest.sql import fetch_instances, first_query_checks_connection, select_columns


def connection_for_ingest(connection_id: uuid.UUID) -> Connection | None:
    """The connection a webhook request names, or None (plain SQL: it runs for every request)."""
    found = first_query_checks_connection(
        lambda: fetch_instances(
            Connection, _connection_sql(), [Connection._meta.pk.get_db_prep_value(connection_id, db_connection)]
        )
    )
    return found[0] if found else None


@functools.cache
def _connection_sql() -> str:
    quote = db_connection.ops.quote_name
    return f"SELECT {select_columns(Connection)} FROM {quote(Connection._meta.db_table)} WHERE id = %s"  # noqa: S608
