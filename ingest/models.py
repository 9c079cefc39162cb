"""Inbound connections (webhook URLs) and the raw messages they receive."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse

from portal.models import RotatableSecret, TenantOwned


class ConnectionKind(models.TextChoices):
    KPN_THINGS = "kpn-things", "KPN Things"
    DIGITAL_MATTER = "digital-matter", "Digital Matter OEM Server"
    STANDARD_WEBHOOKS = "standard-webhooks", "Standard Webhooks"


class AuthMode(models.TextChoices):
    BASIC = "basic", "HTTP Basic"
    DEVICE_KEY = "device-key", "Per-device key"


class Connection(TenantOwned, RotatableSecret):
    """One webhook URL of a tenant, and how requests to it are verified."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=32, choices=ConnectionKind.choices)
    enabled = models.BooleanField(default=True)
    # Digital Matter: Basic auth user name, or the header that carries a device's key.
    username = models.CharField(max_length=150, blank=True)
    auth_mode = models.CharField(max_length=16, choices=AuthMode.choices, default=AuthMode.BASIC)
    device_key_header = models.CharField(max_length=100, default="X-Device-Key")
    # KPN Things: when set, the Things-Plug-UUID header must equal it.
    plug_uuid = models.UUIDField(null=True, blank=True)
    auto_create_devices = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def ingest_url(self) -> str:
        return settings.PORTAL_BASE_URL + reverse("ingest", kwargs={"connection_id": self.id})


class Message(TenantOwned):
    """One raw request body as received, kept exactly, with what became of it."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        INVALID = "invalid", "Invalid"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="messages")
    device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    received_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    error = models.TextField(blank=True)
    body = models.BinaryField()
    body_sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=200, blank=True)
    webhook_id = models.CharField(max_length=200, blank=True)
    serial_in_url = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    readings_count = models.PositiveIntegerField(default=0)
    # What the parser skipped without failing (e.g. unknown Digital Matter FTypes).
    skipped = models.JSONField(default=list, blank=True)
    # Follows the message from ingest to its deliveries in logs.
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["tenant", "-received_at"], name="message_tenant_time"),
            models.Index(fields=["tenant", "status", "-received_at"], name="message_tenant_status_time"),
        ]

    def __str__(self) -> str:
        return f"message {self.id}"


# The same body (or the same webhook-id) on one connection within this window is a duplicate.
DUPLICATE_WINDOW = timedelta(hours=24)


class MessageClaim(models.Model):
    """What makes a later request a duplicate of a message: its body, or its webhook-id, on its connection.

    The key is a digest of (connection, what, value), so a claim is one unique index
    entry: a request inserts its claims with the message, and a concurrent or later
    request with the same body or webhook-id runs into them (ON CONFLICT), in the same
    statement that stores it. Claims older than DUPLICATE_WINDOW no longer count and
    are replaced by the next claimant; the retention run deletes them. Plain columns,
    no foreign keys: a claim outlives nothing it names for longer than the window.
    """

    key = models.UUIDField(primary_key=True)
    message_id = models.UUIDField()
    claimed_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"claim of message {self.message_id}"


def claim_key(connection_id: uuid.UUID, what: str, value: str) -> uuid.UUID:
    """128 bits of SHA-256 over the connection, the kind of claim and its value."""
    digest = hashlib.sha256(f"{connection_id}:{what}:{value}".encode()).digest()
    return uuid.UUID(bytes=digest[:16])


def claim_keys(connection_id: uuid.UUID, body_sha256: str, webhook_id: str) -> list[uuid.UUID]:
    """A message's claim keys, sorted: two requests sharing both take them in the same order."""
    keys = {claim_key(connection_id, "sha256", body_sha256)}
    if webhook_id:
        keys.add(claim_key(connection_id, "webhook-id", webhook_id))
    return sorted(keys)
