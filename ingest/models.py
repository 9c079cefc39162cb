"""Inbound connections (webhook URLs) and the raw messages they receive."""

from __future__ import annotations

import uuid

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
            models.Index(fields=["connection", "body_sha256", "received_at"], name="message_dedupe_body"),
            models.Index(fields=["connection", "webhook_id", "received_at"], name="message_dedupe_webhook_id"),
            models.Index(fields=["tenant", "-received_at"], name="message_tenant_time"),
            models.Index(fields=["tenant", "status", "-received_at"], name="message_tenant_status_time"),
        ]

    def __str__(self) -> str:
        return f"message {self.id}"
