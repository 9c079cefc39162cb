"""Destinations (where a tenant's readings go), and one Delivery row per message and destination."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from portal.fields import EncryptedSecretField
from portal.models import RotatableSecret, TenantOwned


class Destination(TenantOwned, RotatableSecret):
    """One customer HTTPS endpoint; its id is the Things-Plug-UUID it receives."""

    class Method(models.TextChoices):
        POST = "POST", "POST"
        GET = "GET", "GET"

    class Signature(models.TextChoices):
        THINGS_TOKEN = "things-token", "Things-Message-Token"
        STANDARD_WEBHOOKS = "standard-webhooks", "Standard Webhooks"
        BOTH = "both", "Both"

    class AuthType(models.TextChoices):
        NONE = "none", "None"
        BASIC = "basic", "HTTP Basic"
        OAUTH2 = "oauth2", "OAuth2 client credentials"

    class PayloadFormat(models.TextChoices):
        SENML = "senml", "SenML"
        JSON = "json", "JSON"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    url = models.CharField("URL", max_length=2000)
    method = models.CharField(max_length=4, choices=Method.choices, default=Method.POST)
    expected_response_code = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(200), MaxValueValidator(299)]
    )
    signature = models.CharField(max_length=20, choices=Signature.choices, default=Signature.THINGS_TOKEN)
    auth_type = models.CharField(max_length=8, choices=AuthType.choices, default=AuthType.NONE)
    auth_username = models.CharField(max_length=200, blank=True)
    auth_password = EncryptedSecretField()
    oauth2_token_url = models.CharField("OAuth2 token URL", max_length=2000, blank=True)
    oauth2_client_id = models.CharField("OAuth2 client id", max_length=200, blank=True)
    oauth2_client_secret = EncryptedSecretField()
    oauth2_scope = models.CharField("OAuth2 scope", max_length=500, blank=True)
    payload_format = models.CharField(max_length=8, choices=PayloadFormat.choices, default=PayloadFormat.SENML)
    max_attempts = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(10)])
    timeout_seconds = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    connections = models.ManyToManyField(
        "ingest.Connection", blank=True, related_name="destinations", help_text="Empty means all of the tenant's."
    )
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Start of the current run of failed attempts; 24 h of it disables the destination.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_probe_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class DestinationHeader(models.Model):
    """One static connector header of a destination; the value may hold dynamic fields."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="header_rows")
    name = models.CharField(max_length=200)
    value = models.CharField(max_length=2000, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["destination", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["destination", "name"], name="destinationheader_unique_name")]

    def __str__(self) -> str:
        return self.name


class Delivery(TenantOwned):
    """One message to one destination: its state is the truth the engine works from."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed as the first column of the unique message-destination pair: no second index
    # on it alone for every delivery written to keep up to date.
    message = models.ForeignKey("ingest.Message", on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts_count = models.PositiveSmallIntegerField(default=0)
    # Attempts of the current series (a replay starts a new series; attempts_count keeps counting).
    series_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker holds the delivery; a claim past this time is stale.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Which claim holds it: an outcome is recorded only by the claim that sent it.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["message", "destination"], name="delivery_unique_message_destination")
        ]
        indexes = [
            # The engine's claim query: due pending deliveries.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_pending_due"),
            models.Index(fields=["tenant", "-created_at"], name="delivery_tenant_time"),
            # The delivery log filtered by status (failed ones, for replay) without a scan.
            models.Index(fields=["tenant", "status", "-created_at"], name="delivery_tenant_status_time"),
            models.Index(fields=["destination", "status", "-created_at"], name="delivery_dest_status_time"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.id}"

    @property
    def webhook_id(self) -> str:
        """The same for every attempt of this delivery, so receivers can drop duplicates."""
        return f"msg_{self.id.hex}"


class DeliveryAttempt(models.Model):
    """One try of one delivery, as the receiver answered it."""

    # The unique (delivery, number) pair's index serves lookups by delivery.
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    success = models.BooleanField(default=False)
    error_class = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    response_body = models.TextField(blank=True, help_text="The first 1 KiB of the response body.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="deliveryattempt_unique_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
