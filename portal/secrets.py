"""Write-only shared secrets: strength, generation, setting, rotation and audit.

Every change of a secret goes through `secret_set` or `secret_rotate`, which write the
audit log. Values are never logged, echoed or put in an exception.
"""

from __future__ import annotations

import base64
import secrets as random
import string
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from portal.fields import EncryptedSecretField, SealedSecret
from portal.models import ApiKey, SecretAuditLog, User

SPECIAL_CHARACTERS = "#?!@$%^&(){}:.,/+*;"
MIN_SECRET_LENGTH = 32
WHSEC_PREFIX = "whsec_"


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a logged-in user, an API key, or the system itself."""

    user: User | None = None
    api_key: ApiKey | None = None
    label: str = "system"

    @classmethod
    def from_request(cls, request) -> Actor:
        api_key = getattr(request, "auth", None)
        if isinstance(api_key, ApiKey):
            return cls(api_key=api_key, label=f"API key {api_key.prefix}")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls(user=user, label=user.email)
        return cls()


def secret_strength_errors(value: str) -> list[str]:
    """What a secret lacks to meet the strength rules (empty when it is strong)."""
    problems = []
    if len(value) < MIN_SECRET_LENGTH:
        problems.append(f"at least {MIN_SECRET_LENGTH} characters (it has {len(value)})")
    if not any(c.isupper() for c in value):
        problems.append("an upper-case letter")
    if not any(c.islower() for c in value):
        problems.append("a lower-case letter")
    if not any(c.isdigit() for c in value):
        problems.append("a digit")
    if not any(c in SPECIAL_CHARACTERS for c in value):
        problems.append(f"one of {SPECIAL_CHARACTERS}")
    return problems


def validate_secret_strength(value: str, *, allow_whsec: bool = False) -> None:
    """Raise ValidationError unless the secret is strong (or, where allowed, a valid whsec_ key)."""
    if allow_whsec and value.startswith(WHSEC_PREFIX):
        whsec_key_bytes(value)  # raises ValidationError when malformed
        return
    problems = secret_strength_errors(value)
    if problems:
        raise ValidationError("The secret needs " + ", ".join(problems) + ".", code="weak_secret")


def secret_generate(length: int = 40) -> str:
    """A random secret that meets the strength rules."""
    alphabet = string.ascii_letters + string.digits + SPECIAL_CHARACTERS
    while True:
        candidate = "".join(random.choice(alphabet) for _ in range(length))
        if not secret_strength_errors(candidate):
            return candidate


def whsec_key_bytes(value: str) -> bytes:
    """The Standard Webhooks key: decoded bytes of a `whsec_` value, else the UTF-8 bytes."""
    if not value.startswith(WHSEC_PREFIX):
        return value.encode()
    try:
        key = base64.b64decode(value[len(WHSEC_PREFIX) :], validate=True)
    except ValueError:
        raise ValidationError("A whsec_ secret must be followed by base64.", code="bad_whsec") from None
    if not 24 <= len(key) <= 64:
        raise ValidationError(
            f"A whsec_ secret must decode to 24 to 64 bytes (it decodes to {len(key)}).", code="bad_whsec"
        )
    return key


def whsec_form(value: str) -> str:
    """The secret as Standard Webhooks libraries take it: whsec_ + base64 of the key."""
    if value.startswith(WHSEC_PREFIX):
        return value
    return WHSEC_PREFIX + base64.b64encode(value.encode()).decode()


def _audit(*, obj: models.Model, field: str, action: str, actor: Actor) -> None:
    SecretAuditLog.objects.create(
        tenant_id=getattr(obj, "tenant_id", None),
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        actor_label=actor.label,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=True),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        field=field,
        action=action,
    )


def secret_set(*, obj: models.Model, field: str, value: str | None, actor: Actor) -> None:
    """Set (or clear, with None/empty) one secret field, without grace for the old value."""
    now = timezone.now()
    setattr(obj, field, value or None)
    update_fields = [field]
    rotated_at = f"{field}_rotated_at"
    if hasattr(obj, rotated_at):
        setattr(obj, rotated_at, now if value else None)
        update_fields.append(rotated_at)
    if hasattr(obj, "updated_at"):
        update_fields.append("updated_at")
    with transaction.atomic():
        obj.save(update_fields=update_fields)
        _audit(obj=obj, field=field, action="set" if value else "clear", actor=actor)


@dataclass(frozen=True)
class RotationResult:
    """What a rotation answers: the generated secret (never one the caller gave) and the whsec form."""

    generated_secret: str | None
    whsec: str


def secret_rotate(
    *, obj, new_secret: str | None = None, grace_seconds: int = 0, actor: Actor, allow_whsec: bool = False
) -> RotationResult:
    """Replace the main `secret` of a RotatableSecret; the old one verifies for `grace_seconds`."""
    if new_secret:
        validate_secret_strength(new_secret, allow_whsec=allow_whsec)
    value = new_secret or secret_generate()
    now = timezone.now()
    with transaction.atomic():
        if grace_seconds > 0 and obj.secret is not None:
            obj.previous_secret = obj.secret
            obj.previous_secret_expires_at = now + timedelta(seconds=grace_seconds)
        else:
            obj.previous_secret = None
            obj.previous_secret_expires_at = None
        obj.secret = value
        obj.secret_rotated_at = now
        fields = ["secret", "secret_rotated_at", "previous_secret", "previous_secret_expires_at"]
        if hasattr(obj, "updated_at"):
            fields.append("updated_at")
        obj.save(update_fields=fields)
        _audit(obj=obj, field="secret", action="rotate", actor=actor)
    return RotationResult(generated_secret=None if new_secret else value, whsec=whsec_form(value))


def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedSecretField)]


def secrets_reencrypt(*, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every stored secret with the first key; returns rows changed per model."""
    from django.apps import apps

    changed: dict[str, int] = {}
    for model in apps.get_models():
        fields = encrypted_fields(model)
        if not fields:
            continue
        count = 0
        pks = list(model._base_manager.values_list("pk", flat=True).order_by("pk"))
        for start in range(0, len(pks), batch_size):
            with transaction.atomic():
                rows = model._base_manager.select_for_update().filter(pk__in=pks[start : start + batch_size])
                for row in rows:
                    dirty = []
                    for name in fields:
                        sealed = getattr(row, name)
                        if isinstance(sealed, SealedSecret):
                            setattr(row, name, SealedSecret(sealed.rotated_token()))
                            dirty.append(name)
                    if dirty:
                        model._base_manager.filter(pk=row.pk).update(**{n: getattr(row, n) for n in dirty})
                        for name in dirty:
                            _audit(obj=row, field=name, action="reencrypt", actor=Actor(label="reencrypt_secrets"))
                        count += 1
        changed[model._meta.label] = count
    return changed
