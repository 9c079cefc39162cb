"""Migration operations the apps share."""

from __future__ import annotations

from django.db import migrations


def index_dropped_without_blocking(*, table: str, index: str, column: str) -> migrations.RunPython:
    """Drop the single-column index `index` of `table`; reversed, create it again on `column`.

    For the database half of a SeparateDatabaseAndState whose state half is the field's
    AlterField(db_index=False): Django's own AlterField drops and re-adds the column's
    foreign key, which checks every row again under a lock that stops writes (on a large
    readings table, ingest would wait). On PostgreSQL the index goes CONCURRENTLY, so the
    migration must not be atomic.
    """

    def statement(schema_editor, sql: str) -> str:
        concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
        return sql.format(concurrently=concurrently, quote=schema_editor.quote_name)

    def forwards(apps, schema_editor) -> None:
        quote = schema_editor.quote_name
        schema_editor.execute(statement(schema_editor, "DROP INDEX{concurrently} IF EXISTS ") + quote(index))

    def backwards(apps, schema_editor) -> None:
        quote = schema_editor.quote_name
        schema_editor.execute(
            statement(schema_editor, "CREATE INDEX{concurrently} IF NOT EXISTS ")
            + f"{quote(index)} ON {quote(table)} ({quote(column)})"
        )

    return migrations.RunPython(forwards, backwards, elidable=False)
