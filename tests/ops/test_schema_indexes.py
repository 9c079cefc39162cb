"""The schema: migrations match the models, and the write-heavy tables keep no index on a
foreign key alone that a composite index already begins with (each would be kept up to
date on every insert)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from portal.migration_operations import index_dropped_without_blocking

# (table, foreign key column) whose lookups a composite index beginning with it serves.
# The tenant keys keep their own index: counting a big tenant's rows scans the narrow one.
COVERED = [
    ("devices_reading", "device_id"),
    ("delivery_delivery", "message_id"),
    ("delivery_deliveryattempt", "delivery_id"),
]


def indexed_columns(table: str) -> dict[str, list[str]]:
    """Each index of `table` by name, with its columns in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, array_agg(a.attname ORDER BY k.position)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, position)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE t.relname = %s
            GROUP BY i.relname
            """,
            [table],
        )
        return dict(cursor.fetchall())


def foreign_key_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.attname FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
            WHERE c.conrelid = %s::regclass AND c.contype = 'f'
            """,
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_the_migrations_match_the_models():
    # Exits non-zero (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
@pytest.mark.parametrize(("table", "column"), COVERED)
def test_a_foreign_key_is_served_by_a_composite_index_and_has_no_index_of_its_own(table, column):
    indexes = indexed_columns(table)

    assert [name for name, columns in indexes.items() if columns == [column]] == []
    assert any(columns[0] == column and len(columns) > 1 for columns in indexes.values()), indexes
    assert column in foreign_key_columns(table)


@pytest.mark.django_db(transaction=True)
def test_the_index_drop_runs_outside_a_transaction_and_is_undone_by_its_reverse():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE schema_test_rows (owner_id integer)")
        cursor.execute("CREATE INDEX schema_test_rows_owner ON schema_test_rows (owner_id)")
    drop = index_dropped_without_blocking(table="schema_test_rows", index="schema_test_rows_owner", column="owner_id")
    try:
        with connection.schema_editor(atomic=False) as editor:
            drop.code(None, editor)
        assert indexed_columns("schema_test_rows") == {}

        with connection.schema_editor(atomic=False) as editor:
            drop.reverse_code(None, editor)
        assert indexed_columns("schema_test_rows") == {"schema_test_rows_owner": ["owner_id"]}
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE schema_test_rows")
