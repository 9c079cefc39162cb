"""Members and API keys of the tenant: admins only."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.models import ApiKey, Membership, Role
from portal.pages.base import admin_page, render_once
from portal.services import (
    api_key_create,
    api_key_revoke,
    member_change_role,
    member_invite,
    member_remove,
    member_resend_invitation,
)
from portal.tenancy import tenant_object_or_404


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    label = forms.CharField(max_length=100, required=False, help_text="What uses this key, to tell keys apart.")
    role = forms.ChoiceField(
        choices=Role.choices, initial=Role.EDITOR, help_text="What the key may do, like a member's role."
    )


def _apply_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError onto the form, field by field where it names fields."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _members_page(request, invite_form: InviteForm | None = None, status: int = 200):
    memberships = Membership.objects.for_tenant(request.tenant).select_related("user").order_by("user__email")
    return render(
        request,
        "portal/members.html",
        {"memberships": memberships, "invite_form": invite_form or InviteForm(), "roles": Role.choices},
        status=status,
    )


@admin_page
def member_list(request):
    return _members_page(request)


@admin_page
@require_POST
def member_invite_view(request):
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = member_invite(
                tenant=request.tenant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                base_url=request.build_absolute_uri("/"),
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            who = invitation.membership.user.email
            messages.success(
                request,
                f"Invited {who}; an e-mail with a link to set a password is on its way."
                if invitation.new_user
                else f"Added {who}; they were told by e-mail.",
            )
            return redirect("member-list")
    return _members_page(request, invite_form=form)


@admin_page
@require_POST
def member_role(request, pk: int):
    membership = tenant_object_or_404(Membership.objects.select_related("user"), request.tenant, pk=pk)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            member_change_role(membership=membership, role=form.cleaned_data["role"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
    else:
        messages.error(request, "Choose one of the roles.")
    return redirect("member-list")


@admin_page
@require_POST
def member_remove_view(request, pk: int):
    membership = tenant_object_or_404(Membership.objects.select_related("user"), request.tenant, pk=pk)
    try:
        member_remove(membership=membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Removed {membership.user.email} from this tenant.")
    return redirect("member-list")


@admin_page
@require_POST
def member_resend(request, pk: int):
    membership = tenant_object_or_404(Membership.objects.select_related("user"), request.tenant, pk=pk)
    member_resend_invitation(membership=membership, invited_by=request.user, base_url=request.build_absolute_uri("/"))
    messages.success(request, f"Sent the invitation to {membership.user.email} again.")
    return redirect("member-list")


def _keys_page(request, form: ApiKeyForm | None = None, new_key: str | None = None, status: int = 200):
    keys = ApiKey.objects.for_tenant(request.tenant).select_related("created_by")
    context = {"keys": keys, "form": form or ApiKeyForm(), "new_key": new_key}
    if new_key:
        return render_once(request, "portal/api_keys.html", context, status=status)
    return render(request, "portal/api_keys.html", context, status=status)


@admin_page
def apikey_list(request):
    return _keys_page(request)


@admin_page
@require_POST
def apikey_create(request):
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, form=form)
    created = api_key_create(
        tenant=request.tenant, label=form.cleaned_data["label"], role=form.cleaned_data["role"], created_by=request.user
    )
    # Shown in this answer only: it is stored as a hash and cannot be shown again.
    return _keys_page(request, new_key=created.key)


@admin_page
@require_POST
def apikey_revoke(request, pk: int):
    api_key = tenant_object_or_404(ApiKey, request.tenant, pk=pk)
    api_key_revoke(api_key=api_key)
    messages.success(request, f"Revoked the key {api_key.prefix}…; requests with it are refused from now on.")
    return redirect("apikey-list")
