"""Writing an ingested message: its duplicate claims, the message row, its readings and
its deliveries together.

On PostgreSQL that is ONE statement (data-modifying CTEs): on the path of every webhook
request, each round trip and each statement parsed costs more CPU than the rows it
writes. Its text never changes, whatever the number of readings (they travel as one
JSON array), so psycopg converts it once and PostgreSQL runs it as a prepared statement.
Elsewhere (SQLite under `make run`) the same rows are written statement by statement.

The duplicate claims go in with ON CONFLICT: a request with the same body or webhook-id
within the window runs into them (waiting, if need be, for the transaction that holds
them to end), and its caller rolls its whole transaction back.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection as db_connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from delivery.doorbell import doorbell_ring_on_commit
from delivery.services import deliveries_create_for_message, deliveries_create_params, deliveries_create_sql
from devices.models import Reading
from ingest.models import DUPLICATE_WINDOW, Message, MessageClaim
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
# The readings travel as one JSON array of records, typed on arrival: one parameter to
# convert instead of an array per column (psycopg's array dumping cost more than the JSON).
READING_RECORD = (
    ("device", "bigint"),
    ("name", "text"),
    ("unit", "text"),
    ("kind", "text"),
    ("value", "jsonb"),
    ("sum", "double precision"),
    ("time", "timestamptz"),
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
    record = ", ".join(f"{quote(name)} {sql_type}" for name, sql_type in READING_RECORD)
    claims = quote(MessageClaim._meta.db_table)
    # Identifiers come from the models; every value is a parameter.
    return f"""
        WITH claim AS (
            INSERT INTO {claims} (key, message_id, claimed_at)
            SELECT key, %(message)s, %(m_received_at)s FROM unnest(%(claim_keys)s::uuid[]) AS key
            ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id, claimed_at = EXCLUDED.claimed_at
            WHERE {claims}.claimed_at < %(claims_before)s
            RETURNING 1
        ), message AS (
            INSERT INTO {quote(Message._meta.db_table)} ({message_columns}) VALUES ({message_values})
        ), readings AS (
            INSERT INTO {reading_table} ({reading_columns})
            SELECT %(tenant)s, r."device", %(message)s, r."name", r."unit", r."kind", r."value", r."sum", r."time"
            FROM json_to_recordset(%(readings)s::json) AS r({record})
        ), deliveries AS (
            {deliveries_create_sql(condition="%(accepted)s")}
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM claim), (SELECT count(*) FROM deliveries)
    """  # noqa: S608


def _readings_json(readings: Sequence[ReadingRow]) -> str:
    # A value of None becomes JSON null, which arrives as SQL NULL: as the JSONField stores it.
    return json.dumps(
        [
            {"device": r.device_id, "name": r.name, "unit": r.unit, "kind": r.kind, "value": r.value, "sum": r.sum,
             "time": r.time.isoformat()}
            for r in readings
        ],
        separators=(",", ":"),
    )  # fmt: skip


def readings_insert(*, message: Message, readings: Sequence[ReadingRow]) -> int:
    """INSERT the readings of a message already stored (or being stored statement by statement)."""
    rows = [
        (message.tenant_id, r.device_id, message.pk, r.name, r.unit, r.kind, r.value, r.sum, r.time) for r in readings
    ]
    return insert_rows(Reading, READING_COLUMNS, rows)


@dataclass(frozen=True, slots=True)
class Stored:
    """What `message_store` did: whether the message took all its claims, and how many deliveries it made.

    When `claimed` is False another message holds a claim: the caller must roll back.
    """

    claimed: bool
    deliveries: int


def _claims_take_portable(*, message: Message, keys: Sequence) -> bool:
    """Statement by statement (SQLite, one writer at a time): take the claims unless a live one is held."""
    if first_claimant(keys, received_at=message.received_at) is not None:
        return False
    for key in keys:
        MessageClaim.objects.update_or_create(
            key=key, defaults={"message_id": message.pk, "claimed_at": message.received_at}
        )
    return True


def generic_plans_for_this_transaction() -> None:
    """Let PostgreSQL reuse its plans of the prepared statements of this transaction.

    The portal plans every statement for its actual values (plan_cache_mode is
    force_custom_plan: see the settings). Ingest's statements are writes and lookups by
    unique keys whose plan does not depend on the values, and planning the store
    statement anew cost about 1 ms of PostgreSQL CPU a message (bench: 2.4-3.3 ms a
    message with custom plans, 1.35-1.8 ms with generic ones) for one more round trip.
    """
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = auto")


def message_store(*, message: Message, readings: Sequence[ReadingRow], claim_keys: Sequence) -> Stored:
    """INSERT the new message's claims, the message, its readings and (when it is accepted) its deliveries.

    The caller's transaction holds it all and must roll back when the result is not
    `claimed`; workers are told after it commits.
    """
    accepted = message.status == Message.Status.ACCEPTED
    if db_connection.vendor != "postgresql":
        if not _claims_take_portable(message=message, keys=claim_keys):
            return Stored(claimed=False, deliveries=0)
        insert_instance(message)
        readings_insert(message=message, readings=readings)
        return Stored(claimed=True, deliveries=deliveries_create_for_message(message=message) if accepted else 0)
    params = {
        f"m_{field.column}": field.get_db_prep_save(field.pre_save(message, add=True), connection=db_connection)
        for field in _message_fields()
    }
    params.update(deliveries_create_params(message=message, now=timezone.now()))
    params["accepted"] = accepted
    params["claim_keys"] = list(claim_keys)
    params["claims_before"] = message.received_at - DUPLICATE_WINDOW
    params["readings"] = _readings_json(readings)
    with db_connection.cursor() as cursor:
        cursor.execute(_store_sql(), params)
        taken, created = cursor.fetchone()
    if taken < len(claim_keys):
        return Stored(claimed=False, deliveries=0)
    message._state.adding = False
    message._state.db = db_connection.alias
    if created:
        doorbell_ring_on_commit()
    return Stored(claimed=True, deliveries=created)


def first_claimant(claim_keys: Sequence, *, received_at: datetime) -> Message | None:
    """The earliest stored message holding any of these claims within the window before
    `received_at` (the one a duplicate received then repeats); a claim past the window,
    not yet deleted, names nothing."""
    held = MessageClaim.objects.filter(key__in=list(claim_keys), claimed_at__gte=received_at - DUPLICATE_WINDOW).values(
        "message_id"
    )
    return (
        Message.objects.filter(pk__in=held)
        .only("id", "status", "readings_count", "error", "received_at")
        .order_by("received_at")
        .first()
    )


def claims_release_orphaned(claim_keys: Sequence) -> int:
    """Delete those of these claims whose message is gone (deleted within the window); how many.

    Not a condition of the claiming statement itself: there a subquery would read the
    statement's snapshot, which misses a message committed while the statement waited
    for its claim, and two identical requests at once would both be stored.
    """
    alive = Message.objects.filter(pk=OuterRef("message_id"))
    deleted, _ = MessageClaim.objects.filter(~Exists(alive), key__in=list(claim_keys)).delete()
    return deleted
