"""Writing an ingested message: the message row, its readings and its deliveries together.

On PostgreSQL that is ONE statement (data-modifying CTEs): on the path of every webhook
request, each round trip and each statement parsed costs more CPU than the rows it
writes. Its text never changes, whatever the number of readings (they travel as
arrays), so psycopg converts it once and PostgreSQL runs it as a prepared statement.
Elsewhere (SQLite under `make run`) the same rows are written statement by statement.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection as db_connection
from django.utils import timezone

from delivery.doorbell import doorbell_ring_on_commit
from delivery.services import deliveries_create_for_message, deliveries_create_params, deliveries_create_sql
from devices.models import Reading
from ingest.models import Message
from ingest.sql import insert_instance, insert_rows


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One reading of a message, its device already found."""

    device_id: int
    name: str
    unit: str
    kind: str
    value: object
    sum: float | None
    time: datetime


READING_COLUMNS = ("tenant", "device", "message", "name", "unit", "kind", "value", "sum", "time")
# The array type each reading column travels as (the value as JSON text, cast on arrival).
READING_ARRAYS = (
    ("device", "bigint[]"),
    ("name", "text[]"),
    ("unit", "text[]"),
    ("kind", "text[]"),
    ("value", "text[]"),
    ("sum", "double precision[]"),
    ("time", "timestamptz[]"),
)


@functools.cache
def _message_fields() -> tuple:
    return tuple(field for field in Message._meta.concrete_fields if field is not Message._meta.auto_field)


@functools.cache
def _store_sql() -> str:
    quote = db_connection.ops.quote_name
    fields = _message_fields()
    message_columns = ", ".join(quote(field.column) for field in fields)
    message_values = ", ".join(f"%(m_{field.column})s" for field in fields)
    reading_table = quote(Reading._meta.db_table)
    reading_columns = ", ".join(quote(Reading._meta.get_field(name).column) for name in READING_COLUMNS)
    arrays = ", ".join(f"%(r_{name})s::{array_type}" for name, array_type in READING_ARRAYS)
    names = ", ".join(quote(name) for name, _type in READING_ARRAYS)
    # Identifiers come from the models; every value is a parameter.
    return f"""
        WITH message AS (
            INSERT INTO {quote(Message._meta.db_table)} ({message_columns}) VALUES ({message_values})
        ), readings AS (
            INSERT INTO {reading_table} ({reading_columns})
            SELECT %(tenant)s, r."device", %(message)s, r."name", r."unit", r."kind", r."value"::jsonb,
                   r."sum", r."time"
            FROM unnest({arrays}) AS r({names})
        ), deliveries AS (
            {deliveries_create_sql(condition="%(accepted)s")}
            RETURNING 1
        )
        SELECT count(*) FROM deliveries
    """  # noqa: S608


def _json_or_null(value: object) -> str | None:
    # As the JSONField stores it: Python None is SQL NULL, anything else its JSON text.
    return None if value is None else json.dumps(value)


def readings_insert(*, message: Message, readings: Sequence[ReadingRow]) -> int:
    """INSERT the readings of a message already stored (or being stored statement by statement)."""
    rows = [
        (message.tenant_id, r.device_id, message.pk, r.name, r.unit, r.kind, r.value, r.sum, r.time) for r in readings
    ]
    return insert_rows(Reading, READING_COLUMNS, rows)


def message_store(*, message: Message, readings: Sequence[ReadingRow]) -> int:
    """INSERT the new message, its readings and (when it is accepted) its deliveries; how many deliveries.

    The caller's transaction holds it all; workers are told after it commits.
    """
    accepted = message.status == Message.Status.ACCEPTED
    if db_connection.vendor != "postgresql":
        insert_instance(message)
        readings_insert(message=message, readings=readings)
        return deliveries_create_for_message(message=message) if accepted else 0
    params = {
        f"m_{field.column}": field.get_db_prep_save(field.pre_save(message, add=True), connection=db_connection)
        for field in _message_fields()
    }
    params.update(deliveries_create_params(message=message, now=timezone.now()))
    params["accepted"] = accepted
    params["r_device"] = [r.device_id for r in readings]
    params["r_name"] = [r.name for r in readings]
    params["r_unit"] = [r.unit for r in readings]
    params["r_kind"] = [r.kind for r in readings]
    params["r_value"] = [_json_or_null(r.value) for r in readings]
    params["r_sum"] = [r.sum for r in readings]
    params["r_time"] = [r.time for r in readings]
    with db_connection.cursor() as cursor:
        cursor.execute(_store_sql(), params)
        (created,) = cursor.fetchone()
    message._state.adding = False
    message._state.db = db_connection.alias
    if created:
        doorbell_ring_on_commit()
    return created
