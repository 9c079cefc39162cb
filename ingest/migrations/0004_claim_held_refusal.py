"""A function the store statement calls to refuse itself when a duplicate claim is held.

Outside a transaction that statement is its own (it commits as it returns): an error is
the one way it can undo what it wrote when it finds, half-way, that another message
holds one of its claims. PostgreSQL only; elsewhere messages are stored statement by
statement inside a transaction.
"""

from django.db import migrations

# The names ingest.storage uses (CLAIM_HELD_FUNCTION, CLAIM_HELD_SQLSTATE), fixed here as they were.
CLAIM_HELD_FUNCTION = "ingest_claim_held"
CLAIM_HELD_SQLSTATE = "23I09"

CREATE = f"""
CREATE OR REPLACE FUNCTION {CLAIM_HELD_FUNCTION}() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'another message holds a duplicate claim of this one' USING ERRCODE = '{CLAIM_HELD_SQLSTATE}';
END
$$
"""


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {CLAIM_HELD_FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("ingest", "0003_message_claims")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
