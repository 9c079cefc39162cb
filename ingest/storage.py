"""Writing an ingested message: its duplicate claims, the message row, its readings and
its deliveries together.

On PostgreSQL that is ONE statement (data-modifying CTEs): on the path of every webhook
request, each round trip and each statement parsed costs more CPU than the rows it
writes. Its text never changes, whatever the number of readings (they travel as one
JSON array), so psycopg converts it once and PostgreSQL runs it as a prepared statement.
Elsewhere (SQLite under `make run`) the same rows are written statement by statement.

The duplicate claims go in with ON CONFLICT: a request with the same body or webhook-id
within the window runs into them (waiting, if need be, for the transaction that holds
them to end), and the statement then refuses itself with an error (`ingest_claim_held()`,
SQLSTATE 23I09), so nothing of the message is left. That is what lets ingest run the
statement outside any transaction: on its own it is one implicit transaction (with the
plan-mode setting in the same pipeline), committed when its answer arrives, in one round
trip instead of BEGIN, statement and COMMIT in three.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.db import DatabaseError, models, transaction
from django.db import connection as db_connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from delivery.doorbell import doorbell_ring_on_commit
from delivery.services import deliveries_create_for_message, deliveries_create_params, deliveries_create_sql
from devices.identity import DeviceIdentity
from devices.models import Reading
from devices.services import device_seen_params, device_seen_sql
from ingest.errors import ConnectionChanged
from ingest.models import DUPLICATE_WINDOW, Connection, Message, MessageClaim
from ingest.sql import ROW_VERSION, insert_instance, insert_rows


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


# Fields whose value psycopg takes as the model holds it: Django's preparation of them on
# PostgreSQL returns the value unchanged, and running it for every field of every message
# cost about a tenth of the statement's CPU.
_AS_THEY_ARE = frozenset(
    {"AutoField", "BigAutoField", "IntegerField", "PositiveIntegerField", "CharField", "TextField", "UUIDField",
     "DateTimeField"}
)  # fmt: skip


def _taken_as_it_is(field: models.Field) -> bool:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return False  # pre_save sets it
    kind = field.target_field if field.is_relation else field
    return kind.get_internal_type() in _AS_THEY_ARE


@functools.cache
def _message_params() -> tuple[tuple[str, str, models.Field | None], ...]:
    """(parameter, attribute, field to prepare the value with, or None to take it as it is) per column."""
    return tuple(
        (f"m_{field.column}", field.attname, None if _taken_as_it_is(field) else field) for field in _message_fields()
    )


@functools.cache
def _store_sql(device_lookup: tuple[str, ...] = (), versioned: bool = False) -> str:
    """The statement that stores a message; with `device_lookup` (the fields of the one device
    its readings belong to) it also finds that device and marks it seen, and stores nothing
    at all when there is no such device. When `versioned` it writes nothing at all unless the
    connection's row is still the version ingest read."""
    quote = db_connection.ops.quote_name
    fields = _message_fields()
    message_columns = ", ".join(quote(field.column) for field in fields)
    current = "TRUE"
    if versioned:
        connections = quote(Connection._meta.db_table)
        # A quoted table name and a fixed expression; the values are parameters.
        current = (
            f"EXISTS (SELECT 1 FROM {connections} WHERE id = %(m_connection_id)s"  # noqa: S608
            f" AND {ROW_VERSION} = %(connection_version)s)"
        )
    if device_lookup:
        device = f"device AS ({device_seen_sql(device_lookup, 'id', only_if=current if versioned else '')}),"
        found, device_id, reading_device, readings_from = (
            "EXISTS (SELECT 1 FROM device)", "(SELECT id FROM device)", "device.id", ", device"
        )  # fmt: skip
    else:
        device, found, device_id, reading_device, readings_from = "", current, "NULL", 'r."device"', ""
    message_values = ", ".join(
        device_id if device_lookup and field.attname == "device_id" else f"%(m_{field.column})s" for field in fields
    )
    reading_table = quote(Reading._meta.db_table)
    reading_columns = ", ".join(quote(Reading._meta.get_field(name).column) for name in READING_COLUMNS)
    record = ", ".join(f"{quote(name)} {sql_type}" for name, sql_type in READING_RECORD)
    claims = quote(MessageClaim._meta.db_table)
    # Identifiers come from the models; every value is a parameter.
    return f"""
        WITH {device} claim AS (
            INSERT INTO {claims} (key, message_id, claimed_at)
            SELECT key, %(message)s, %(m_received_at)s FROM unnest(%(claim_keys)s::uuid[]) AS key WHERE {found}
            ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id, claimed_at = EXCLUDED.claimed_at
            WHERE {claims}.claimed_at < %(claims_before)s
            RETURNING 1
        ), message AS (
            INSERT INTO {quote(Message._meta.db_table)} ({message_columns}) SELECT {message_values} WHERE {found}
        ), readings AS (
            INSERT INTO {reading_table} ({reading_columns})
            SELECT %(tenant)s, {reading_device}, %(message)s, r."name", r."unit", r."kind", r."value", r."sum", r."time"
            FROM json_to_recordset(%(readings)s::json) AS r({record}){readings_from}
        ), deliveries AS (
            {deliveries_create_sql(condition=f"%(accepted)s AND {found}")}
            RETURNING 1
        )
        SELECT
            CASE WHEN {found} AND (SELECT count(*) FROM claim) < %(claims_wanted)s THEN {CLAIM_HELD_FUNCTION}() END,
            (SELECT count(*) FROM deliveries),
            {device_id},
            {current}
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
    """What `message_store` did: whether the message took all its claims, how many deliveries
    it made, and the id of the device it looked up (None: it had none to look up).

    When `claimed` is False another message holds a claim and nothing of this one may stay:
    the caller rolls its transaction back.
    """

    claimed: bool
    deliveries: int
    device_id: int | None = None


def _claims_take_portable(*, message: Message, keys: Sequence) -> bool:
    """Statement by statement (SQLite, one writer at a time): take the claims unless a live one is held."""
    if first_claimant(keys, received_at=message.received_at) is not None:
        return False
    for key in keys:
        MessageClaim.objects.update_or_create(
            key=key, defaults={"message_id": message.pk, "claimed_at": message.received_at}
        )
    return True


# The portal plans every statement for its actual values (plan_cache_mode is
# force_custom_plan: see the settings). Ingest's store statement writes rows and looks up
# unique keys, whose plan does not depend on the values; planning it anew for every
# message cost about 1 ms of PostgreSQL CPU (bench: 2.4-3.3 ms a message with custom
# plans, 1.35-1.8 ms with generic ones). set_config(…, true) rather than SET LOCAL: it
# lasts to the end of the implicit transaction too, where SET LOCAL warns in the server log.
GENERIC_PLANS = "SELECT set_config('plan_cache_mode', 'auto', true)"

# What the store statement raises when another message holds one of its claims (migration
# ingest 0004 creates the function). In the integrity class (23): Django then takes it, like
# a unique violation, for a refusal of the data, not a sign the connection broke.
CLAIM_HELD_FUNCTION = "ingest_claim_held"
CLAIM_HELD_SQLSTATE = "23I09"


def _claim_held(exc: DatabaseError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == CLAIM_HELD_SQLSTATE


def message_store(
    *,
    message: Message,
    readings: Sequence[ReadingRow],
    claim_keys: Sequence,
    device_lookup: DeviceIdentity | None = None,
    connection_version: str | None = None,
) -> Stored | None:
    """INSERT the new message's claims, the message, its readings and (when it is accepted) its deliveries.

    With `device_lookup` (PostgreSQL only) the readings' device is the one it names, found and
    marked seen by the same statement: when there is none, nothing is written and the
    result is None. With `connection_version` (PostgreSQL only) nothing is written either
    unless the message's connection is still that version of its row: ConnectionChanged.

    On PostgreSQL outside any transaction the statement is its own, committed when this
    returns. Inside the caller's transaction (always, elsewhere), a result that is not
    `claimed` means that transaction must be rolled back (on PostgreSQL it is marked so).
    Workers are told after the commit.
    """
    accepted = message.status == Message.Status.ACCEPTED
    if db_connection.vendor != "postgresql":
        if device_lookup is not None or connection_version is not None:
            raise ValueError("a message's device and connection are checked in its store statement on PostgreSQL only")
        if not _claims_take_portable(message=message, keys=claim_keys):
            return Stored(claimed=False, deliveries=0)
        insert_instance(message)
        readings_insert(message=message, readings=readings)
        return Stored(claimed=True, deliveries=deliveries_create_for_message(message=message) if accepted else 0)
    params = {
        key: getattr(message, attname)
        if field is None
        else field.get_db_prep_save(field.pre_save(message, add=True), connection=db_connection)
        for key, attname, field in _message_params()
    }
    params.update(deliveries_create_params(message=message, now=timezone.now()))
    params["accepted"] = accepted
    params["claim_keys"] = list(claim_keys)
    params["claims_wanted"] = len(claim_keys)
    params["claims_before"] = message.received_at - DUPLICATE_WINDOW
    params["readings"] = _readings_json(readings)
    if connection_version is not None:
        params["connection_version"] = connection_version
    lookup = ()
    if device_lookup is not None:
        lookup = tuple(name for name, _value in device_lookup.lookup)
        params.update(
            device_seen_params(tenant_id=message.tenant_id, identity=device_lookup, seen_at=message.received_at)
        )
    try:
        # The pipeline's errors arrive as it ends, past the cursor's own translation into Django's.
        with db_connection.wrap_database_errors, db_connection.cursor() as cursor:
            # One round trip for both (and, outside a transaction, for the commit): the plan
            # mode must be set before the statement is planned.
            try:
                with db_connection.connection.pipeline():
                    cursor.execute(GENERIC_PLANS)
                    cursor.execute(_store_sql(lookup, connection_version is not None), params)
            except psycopg.OperationalError as exc:
                # An error at the commit the pipeline's end makes (a deferred foreign key) leaves
                # psycopg unable to end it; the error itself is the cause. (A sync of our own
                # inside the block would surface it directly, at one more round trip a message.)
                if isinstance(exc.__context__, psycopg.errors.DatabaseError):
                    raise exc.__context__ from None
                raise
            _refused, created, device_id, current = cursor.fetchone()
    except DatabaseError as exc:
        if db_connection.connection is not None and db_connection.connection.pgconn.pipeline_status:
            db_connection.close()  # stuck in pipeline mode: no query would run on it again
        if not _claim_held(exc):
            raise
        if db_connection.in_atomic_block:
            transaction.set_rollback(True)
        return Stored(claimed=False, deliveries=0)
    if not current:
        raise ConnectionChanged
    if lookup and device_id is None:
        return None
    message._state.adding = False
    message._state.db = db_connection.alias
    if device_id is not None:
        message.device_id = device_id
    if created:
        doorbell_ring_on_commit()
    return Stored(claimed=True, deliveries=created, device_id=device_id)


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
