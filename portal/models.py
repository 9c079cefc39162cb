"""Tenants, their members and API keys, and the audit log of secret changes."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from portal.fields import EncryptedSecretField


class EmailUserManager(UserManager):
    """Users are known by their e-mail address; there is no separate user name."""

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person who logs in: a tenant member, or platform staff (is_staff)."""

    username = None
    email = models.EmailField("e-mail address", unique=True)

    objects = EmailUserManager()

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


# What each role may do, from least to most.
ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


def role_at_least(role: str, needed: str) -> bool:
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


class Tenant(models.Model):
    """One customer organisation; every tenant-owned row points at one."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> TenantQuerySet:
        return self.filter(tenant=tenant)


class TenantOwned(models.Model):
    """Base of every tenant-owned model: rows are reached through `for_tenant`."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(models.Model):
    """One user's role in one tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__slug", "user__email"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} as {self.role}"


class ApiKey(models.Model):
    """A tenant's key for the REST API; only its SHA-256 is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, db_index=True, help_text="The first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.label or 'no label'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RotatableSecret(models.Model):
    """Fields of a shared secret that can be rotated with a grace period."""

    secret = EncryptedSecretField()
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    previous_secret = EncryptedSecretField()
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def secret_set(self) -> bool:
        return self.secret is not None

    def secrets_in_force(self) -> list:
        """Sealed secrets that verify now: the current one, then the previous one in grace."""
        sealed = [self.secret] if self.secret is not None else []
        if (
            self.previous_secret is not None
            and self.previous_secret_expires_at is not None
            and self.previous_secret_expires_at > timezone.now()
        ):
            sealed.append(self.previous_secret)
        return sealed


class SecretAuditLog(models.Model):
    """One change of one secret: who, when, which object and field; never the value."""

    class Action(models.TextChoices):
        SET = "set", "Set"
        ROTATE = "rotate", "Rotated"
        CLEAR = "clear", "Cleared"
        REENCRYPT = "reencrypt", "Re-encrypted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200, blank=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    field = models.CharField(max_length=64)
    action = models.CharField(max_length=12, choices=Action.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="secretaudit_tenant_time")]

    def __str__(self) -> str:
        return f"{self.action} {self.field} of {self.object_repr} by {self.actor_label}"


class TenantSettings(models.Model):
    """How long one tenant's data is kept; a tenant without a row gets the defaults."""

    DEFAULT_MESSAGE_DAYS = 30
    DEFAULT_SUCCEEDED_DELIVERY_DAYS = 7
    DEFAULT_FAILED_DELIVERY_DAYS = 30

    tenant = models.OneToOneField(Tenant, primary_key=True, on_delete=models.CASCADE, related_name="settings")
    message_retention_days = models.PositiveSmallIntegerField(
        default=DEFAULT_MESSAGE_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Raw messages and their readings. A message stays while any of its deliveries is kept.",
    )
    succeeded_delivery_retention_days = models.PositiveSmallIntegerField(
        default=DEFAULT_SUCCEEDED_DELIVERY_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Succeeded deliveries and their attempts, counted from delivery.",
    )
    failed_delivery_retention_days = models.PositiveSmallIntegerField(
        default=DEFAULT_FAILED_DELIVERY_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Failed deliveries and their attempts, counted from the last attempt. Pending ones are never pruned.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "tenant settings"
        verbose_name_plural = "tenant settings"

    def __str__(self) -> str:
        return f"settings of {self.tenant_id}"
