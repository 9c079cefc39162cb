"""Devices of a tenant, and the readings normalised from their messages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from portal.fields import EncryptedSecretField
from portal.models import TenantOwned

# The identifiers a device is found by; each unique within its tenant when set.
IDENTIFIER_FIELDS = ("serial", "imei", "iccid", "dev_eui")


def _unique_when_set(field: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(
        fields=["tenant", field], condition=~Q(**{field: ""}), name=f"device_unique_{field}_per_tenant"
    )


class Device(TenantOwned):
    """One physical device of a tenant, known by one or more identifiers."""

    serial = models.CharField(max_length=64, blank=True)
    imei = models.CharField("IMEI", max_length=32, blank=True)
    iccid = models.CharField("ICCID", max_length=32, blank=True)
    dev_eui = models.CharField("DevEUI", max_length=32, blank=True)
    urn = models.CharField(
        "URN", max_length=200, blank=True, help_text="The urn:dev:<TYPE>:<ID>: the device is named by in SenML."
    )
    name = models.CharField(max_length=200, blank=True)
    custom1 = models.CharField("CUSTOM1", max_length=255, blank=True)
    custom2 = models.CharField("CUSTOM2", max_length=255, blank=True)
    custom3 = models.CharField("CUSTOM3", max_length=255, blank=True)
    tags = models.JSONField(default=list, blank=True)
    auth_key = EncryptedSecretField()
    auth_key_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "serial", "id"]
        constraints = [_unique_when_set(f) for f in IDENTIFIER_FIELDS] + [
            models.UniqueConstraint(fields=["tenant", "urn"], condition=~Q(urn=""), name="device_unique_urn_per_tenant")
        ]

    def __str__(self) -> str:
        return self.name or self.serial or self.imei or self.dev_eui or self.iccid or self.urn or f"device {self.pk}"

    @property
    def auth_key_set(self) -> bool:
        # A new instance holds "" until it is read back; only a sealed key counts.
        return bool(self.auth_key)


class Reading(TenantOwned):
    """One resolved SenML record (or Digital Matter field) of one message."""

    class Kind(models.TextChoices):
        NUMBER = "number", "Number"
        STRING = "string", "String"
        BOOLEAN = "boolean", "Boolean"
        DATA = "data", "Data"

    # Indexed as the first column of reading_device_time: readings are the largest table
    # and every message writes several, so no second index on it alone.
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.CASCADE, related_name="readings", db_index=False
    )
    message = models.ForeignKey("ingest.Message", on_delete=models.CASCADE, related_name="readings")
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=32, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, blank=True)
    # A JSON number, string or boolean; for `data` the base64url text as sent. Null when only a sum.
    value = models.JSONField(null=True, blank=True)
    sum = models.FloatField(null=True, blank=True)
    time = models.DateTimeField()

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-time"], name="reading_tenant_time"),
            models.Index(fields=["device", "-time"], name="reading_device_time"),
            models.Index(fields=["tenant", "name", "-time"], name="reading_tenant_name_time"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value if self.value is not None else self.sum}"
