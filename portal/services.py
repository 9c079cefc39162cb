"""Tenants, members and API keys: the writes.

Members: an invited stranger becomes a user with an unusable password and gets a
one-time link to set one; a tenant never loses its last active admin.
"""

from __future__ import annotations

import hashlib
import secrets as random
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email, validate_slug
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

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


@dataclass(frozen=True)
class Invitation:
    membership: Membership
    new_user: bool


def set_password_url(*, user: User, base_url: str) -> str:
    """A one-time link to Django's password-set page (valid for PASSWORD_RESET_TIMEOUT)."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return base_url.rstrip("/") + path


def _send_invitation(*, membership: Membership, inviter: User, base_url: str) -> None:
    user = membership.user
    context = {
        "tenant": membership.tenant,
        "role": membership.get_role_display().lower(),
        "inviter": inviter.email,
        "email": user.email,
        "login_url": base_url.rstrip("/") + reverse("login"),
        # Someone who never set a password gets a link to set one; others just log in.
        "set_password_url": None if user.has_usable_password() else set_password_url(user=user, base_url=base_url),
    }
    subject = render_to_string("portal/email/invitation_subject.txt", context).strip()
    body = render_to_string("portal/email/invitation_body.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])


def member_invite(*, tenant: Tenant, email: str, role: str, invited_by: User, base_url: str) -> Invitation:
    """Add `email` to the tenant with `role`, creating the user when unknown, and e-mail them."""
    email = User.objects.normalize_email(email).strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    with transaction.atomic():
        user = User.objects.filter(email=email).first()
        new_user = user is None
        if new_user:
            user = User.objects.create_user(email=email, password=None)  # unusable until they set one
        elif Membership.objects.filter(tenant=tenant, user=user).exists():
            raise ValidationError({"email": f"{email} is already a member of this tenant."})
        membership = Membership.objects.create(tenant=tenant, user=user, role=role)
        transaction.on_commit(lambda: _send_invitation(membership=membership, inviter=invited_by, base_url=base_url))
    return Invitation(membership=membership, new_user=new_user)


def member_resend_invitation(*, membership: Membership, invited_by: User, base_url: str) -> None:
    _send_invitation(membership=membership, inviter=invited_by, base_url=base_url)


LAST_ADMIN = "A tenant needs at least one admin; make someone else admin first."


def members_last_admins(memberships: Iterable[Membership]) -> list[Membership]:
    """Those of `memberships` that are admins of a tenant with no active admin besides them:
    removing or demoting them all, or deactivating their users, would leave it without one
    (LAST_ADMIN). An admin whose user is inactive cannot log in, so does not count.

    Locks the tenants' admins and their users until the transaction ends, so two demotions,
    removals or deactivations at once cannot leave none; call it in the transaction that
    makes the change.
    """
    memberships = list(memberships)
    leaving = {m.pk for m in memberships}
    # The users are locked too (not FOR UPDATE OF the memberships alone): PostgreSQL re-checks
    # the filter on a row only when that row changed while it waited, so a deactivation
    # committed meanwhile is seen only through its locked user row.
    admins = Membership.objects.select_for_update().filter(
        tenant_id__in={m.tenant_id for m in memberships}, role=Role.ADMIN, user__is_active=True
    )
    active = dict(admins.values_list("pk", "tenant_id"))
    kept = {tenant_id for pk, tenant_id in active.items() if pk not in leaving}
    # Only an active admin can be the last one: an inactive one going leaves as many as before.
    return [m for m in memberships if m.pk in active and m.tenant_id not in kept]


def _last_admin(membership: Membership) -> bool:
    """Whether `membership` is its tenant's last active admin (locking the admins, see members_last_admins)."""
    return bool(members_last_admins([membership]))


def member_change_role(*, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    with transaction.atomic():
        if _last_admin(membership) and role != Role.ADMIN:
            raise ValidationError({"role": LAST_ADMIN})
        return member_set_role(tenant=membership.tenant, user=membership.user, role=role)


def member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        if _last_admin(membership):
            raise ValidationError(LAST_ADMIN)
        membership.delete()


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
