"""Members of a tenant: invite, change role, remove — the writes behind the members page.

Role changes go through `portal.services.member_set_role`. What is decided here: an
invited stranger becomes a user with an unusable password and gets a one-time link to
set one; a tenant never loses its last admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from portal.models import Membership, Role, Tenant, User
from portal.services import member_set_role


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


def _other_admins(membership: Membership) -> bool:
    return Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.ADMIN).exclude(pk=membership.pk).exists()


def member_change_role(*, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    with transaction.atomic():
        # Lock the tenant's admins so two demotions at once cannot leave none.
        list(Membership.objects.select_for_update().filter(tenant_id=membership.tenant_id, role=Role.ADMIN))
        if membership.role == Role.ADMIN and role != Role.ADMIN and not _other_admins(membership):
            raise ValidationError({"role": "A tenant needs at least one admin; make someone else admin first."})
        return member_set_role(tenant=membership.tenant, user=membership.user, role=role)


def member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(tenant_id=membership.tenant_id, role=Role.ADMIN))
        if membership.role == Role.ADMIN and not _other_admins(membership):
            raise ValidationError("A tenant needs at least one admin; make someone else admin first.")
        membership.delete()
