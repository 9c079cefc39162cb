"""Tenants, members and API keys: the writes."""

from __future__ import annotations

import hashlib
import secrets as random
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import transaction
from django.utils import timezone

from portal.models import ApiKey, Membership, Role, Tenant, User

API_KEY_PREFIX = "ip_"


def tenant_create(*, slug: str, name: str, owner_email: str, owner_password: str | None = None) -> tuple[Tenant, User]:
    """A new tenant with its first admin; the owner is created when unknown."""
    validate_slug(slug)
    owner_email = owner_email.strip().lower()
    try:
        validate_email(owner_email)
    except ValidationError:
        raise ValidationError(f"'{owner_email}' is not a valid e-mail address.", code="bad_email") from None
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError(f"A tenant with slug '{slug}' already exists.", code="duplicate_slug")
    with transaction.atomic():
        tenant = Tenant.objects.create(slug=slug, name=name)
        owner = User.objects.filter(email=owner_email).first()
        if owner is None:
            owner = User.objects.create_user(email=owner_email, password=owner_password)
        elif owner_password:
            owner.set_password(owner_password)
            owner.save(update_fields=["password"])
        Membership.objects.create(tenant=tenant, user=owner, role=Role.ADMIN)
    return tenant, owner


def member_set_role(*, tenant: Tenant, user: User, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
    return membership


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: `key` is the only time the plain key exists."""

    api_key: ApiKey
    key: str


def api_key_create(
    *, tenant: Tenant, label: str = "", role: str = Role.EDITOR, created_by: User | None = None
) -> NewApiKey:
    key = API_KEY_PREFIX + random.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        tenant=tenant, label=label, role=role, prefix=key[:10], key_hash=_hash(key), created_by=created_by
    )
    return NewApiKey(api_key=api_key, key=key)


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """The active key with this value, its last use recorded; None when unknown or revoked."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    # The lookup is by a hash of a high-entropy key, so timing reveals nothing useful.
    api_key = ApiKey.objects.select_related("tenant").filter(key_hash=_hash(key), revoked_at__isnull=True).first()
    if api_key is None:
        return None
    now = timezone.now()
    # One write a minute at most, so busy API clients do not write on every request.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
