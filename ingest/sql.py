"""Plain-SQL reads and writes for the statements every ingested message runs.

The ORM compiles each query anew: for the handful of statements of the ingest hot path
that costs more CPU than the rest of the request together. These helpers run the same
SQL directly, converting values exactly as the ORM does (each field's own `get_db_prep_save`
on the way in, the backend's and the field's converters on the way out), so the rows they
write and the instances they return are the ORM's. They work on PostgreSQL and SQLite.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from django.db import InterfaceError, OperationalError, models
from django.db import connection as db_connection

# A row's version on PostgreSQL: the transaction that wrote it and where it lies. An UPDATE
# writes a new row version elsewhere, even within the transaction that wrote the last one.
ROW_VERSION = "xmin::text || ':' || ctid::text"

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")


def select_columns(model: type[models.Model]) -> str:
    """The model's concrete columns, quoted, in field order (for SELECT … / RETURNING …)."""
    quote = db_connection.ops.quote_name
    return ", ".join(quote(field.column) for field in model._meta.concrete_fields)


@functools.cache
def _loaders(model: type[models.Model], alias: str) -> tuple[list[str], list[tuple]]:
    """(attnames, per column (converters, expression)) of the model's concrete fields, worked out once."""
    from django.db import connections

    connection = connections[alias]
    attnames, columns = [], []
    for field in model._meta.concrete_fields:
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        attnames.append(field.attname)
        columns.append((tuple(converters), column))
    return attnames, columns


def instance_from_row(model: type[M], row: Sequence) -> M:
    """A model instance from a row of `select_columns(model)`, as the ORM would load it."""
    attnames, columns = _loaders(model, db_connection.alias)
    values = []
    for (converters, column), value in zip(columns, row, strict=True):
        for converter in converters:
            value = converter(value, column, db_connection)
        values.append(value)
    return model.from_db(db_connection.alias, attnames, values)


def fetch_instances(model: type[M], sql: str, params: Sequence | Mapping) -> list[M]:
    """Instances of the rows `sql` returns; it must select (or return) `select_columns(model)`."""
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [instance_from_row(model, row) for row in cursor.fetchall()]


def first_query_checks_connection(run: Callable[[], T]) -> T:
    """`run()`, the request's first query, with no health check before it: a connection the
    server closed meanwhile fails that query instead, and it runs once more on a new one.

    Django's CONN_HEALTH_CHECKS sends a `SELECT 1` before the first query of every request:
    a round trip and a statement on each webhook request, for a connection that is almost
    always fine. Outside a transaction the first query can simply be retried.
    """
    database = db_connection
    checked = database.connection is None or database.health_check_done or not database.health_check_enabled
    if checked or database.in_atomic_block:
        return run()
    database.health_check_done = True
    try:
        return run()
    except (OperationalError, InterfaceError):
        if database.is_usable():
            raise  # the query failed, not the connection
        database.close()
        return run()


def insert_rows(model: type[models.Model], field_names: Sequence[str], rows: Iterable[Sequence]) -> int:
    """INSERT the rows (values in `field_names` order; foreign keys by id) in one statement."""
    rows = list(rows)
    if not rows:
        return 0
    quote = db_connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    columns = ", ".join(quote(field.column) for field in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        field.get_db_prep_save(value, connection=db_connection)
        for row in rows
        for field, value in zip(fields, row, strict=True)
    ]
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join([one] * len(rows))}",  # noqa: S608
            params,
        )
    return len(rows)


def insert_instance(obj: models.Model) -> None:
    """INSERT one new instance as `save(force_insert=True)` would, without the per-call query compilation.

    The model's primary key must be set by the caller (a UUID default), not by the database.
    """
    fields = [field for field in obj._meta.concrete_fields if field is not obj._meta.auto_field]
    values = [field.pre_save(obj, add=True) for field in fields]
    insert_rows(type(obj), [field.name for field in fields], [values])
    obj._state.adding = False
    obj._state.db = db_connection.alias
