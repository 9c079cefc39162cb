"""Ingest reads."""

from __future__ import annotations

import uuid

from django.db import connection as db_connection

from ingest.models import Connection
from ingest.sql import fetch_instances, select_columns


def connection_for_ingest(connection_id: uuid.UUID) -> Connection | None:
    """The connection a webhook request names, or None (plain SQL: it runs for every request)."""
    quote = db_connection.ops.quote_name
    found = fetch_instances(
        Connection,
        f"SELECT {select_columns(Connection)} FROM {quote(Connection._meta.db_table)} WHERE id = %s",  # noqa: S608
        [Connection._meta.pk.get_db_prep_value(connection_id, db_connection)],
    )
    return found[0] if found else None
