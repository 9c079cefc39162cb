# Duplicate detection moves from two indexes on messages to claims (see MessageClaim).

import hashlib
import uuid
from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

WINDOW = timedelta(hours=24)
BATCH = 2000


def _key(connection_id, what, value):
    # Frozen copy of ingest.models.claim_key as of this migration.
    return uuid.UUID(bytes=hashlib.sha256(f"{connection_id}:{what}:{value}".encode()).digest()[:16])


def claims_of_recent_messages(apps, schema_editor):
    """Messages of the last window keep catching their duplicates across the upgrade."""
    Message = apps.get_model("ingest", "Message")
    MessageClaim = apps.get_model("ingest", "MessageClaim")
    recent = (
        Message.objects.filter(received_at__gte=timezone.now() - WINDOW)
        .order_by("received_at")
        .values_list("id", "connection_id", "body_sha256", "webhook_id", "received_at")
    )
    seen, batch = set(), []
    for message_id, connection_id, body_sha256, webhook_id, received_at in recent.iterator(chunk_size=BATCH):
        keys = [_key(connection_id, "sha256", body_sha256)]
        if webhook_id:
            keys.append(_key(connection_id, "webhook-id", webhook_id))
        for key in keys:
            if key not in seen:  # the first message of a key is the one later duplicates name
                seen.add(key)
                batch.append(MessageClaim(key=key, message_id=message_id, claimed_at=received_at))
        if len(batch) >= BATCH:
            MessageClaim.objects.bulk_create(batch)
            batch = []
    MessageClaim.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0002_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="MessageClaim",
            fields=[
                ("key", models.UUIDField(primary_key=True, serialize=False)),
                ("message_id", models.UUIDField()),
                ("claimed_at", models.DateTimeField(db_index=True)),
            ],
        ),
        migrations.RunPython(claims_of_recent_messages, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name="message",
            name="message_dedupe_body",
        ),
        migrations.RemoveIndex(
            model_name="message",
            name="message_dedupe_webhook_id",
        ),
    ]
