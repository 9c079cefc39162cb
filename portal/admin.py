"""Django admin for platform staff: tenants, members, API keys and the secret audit log.

No secret and no key hash is ever shown: encrypted fields are not editable, and
`key_hash` is excluded. As in the portal, a tenant never loses its last active admin: not
by a membership changed, deleted or edited inline, nor by deleting or deactivating its user.
"""

from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse

from portal.models import ApiKey, Membership, Role, SecretAuditLog, Tenant, TenantSettings, User
from portal.services import LAST_ADMIN, member_remove, members_last_admins


def _last_admin_refusal(memberships: Iterable[Membership]) -> str | None:
    """Why removing or demoting these memberships (as stored) is refused; None when it is not.

    Run it in the transaction that makes the change: it locks the tenants' admins.
    """
    last = members_last_admins(memberships)
    if not last:
        return None
    tenants = list(dict.fromkeys(str(m.tenant) for m in last))
    named = f"Tenant {tenants[0]}" if len(tenants) == 1 else f"Tenants {', '.join(tenants)}"
    return f"{named} would be left without an admin. {LAST_ADMIN}"


class KeepsTenantAdmins:
    """Deleting (one object or the selected ones) is refused when it would take a tenant's
    last admin with it. `memberships_of` says which memberships a deletion removes."""

    actions = ["delete_selected"]

    def memberships_of(self, queryset):
        raise NotImplementedError

    def _refusal(self, queryset) -> str | None:
        return _last_admin_refusal(self.memberships_of(queryset).select_related("tenant"))

    def delete_view(self, request, object_id, extra_context=None):
        # Refused before the confirmation page too, so staff are not asked to confirm in vain.
        with transaction.atomic():
            obj = self.get_object(request, unquote(object_id))
            if obj is not None and self.has_delete_permission(request, obj):
                refusal = self._refusal(self.model._default_manager.filter(pk=obj.pk))
                if refusal:
                    self.message_user(request, refusal, messages.ERROR)
                    opts = self.opts
                    change_url = reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_change",
                        args=[quote(obj.pk)],
                        current_app=self.admin_site.name,
                    )
                    return HttpResponseRedirect(change_url)
            return super().delete_view(request, object_id, extra_context)

    @admin.action(permissions=["delete"], description=admin_actions.delete_selected.short_description)
    def delete_selected(self, request, queryset):
        with transaction.atomic():
            refusal = self._refusal(queryset)
            if refusal:
                self.message_user(request, f"Nothing was deleted. {refusal}", messages.ERROR)
                return None
            return admin_actions.delete_selected(self, request, queryset)


class MembershipInlineFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        # The stored memberships this save deletes or demotes; promotions count once saved.
        leaving = [
            form.instance.pk
            for form in self.initial_forms
            if self._should_delete_form(form) or (not form.errors and form.cleaned_data.get("role") != Role.ADMIN)
        ]
        if leaving:
            refusal = _last_admin_refusal(Membership.objects.filter(pk__in=leaving).select_related("tenant"))
            if refusal:
                raise ValidationError(refusal)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
    extra = 0
    autocomplete_fields = ["user"]


class TenantSettingsInline(admin.StackedInline):
    """Retention of the tenant's data; without a row the defaults apply."""

    model = TenantSettings
    can_delete = False
    extra = 1
    max_num = 1


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline, TenantSettingsInline]


class UserAdminChangeForm(UserChangeForm):
    def clean(self):
        cleaned = super().clean()
        # Deactivating is refused like deleting; editing a user who is already inactive is not.
        if "is_active" in self.changed_data and not cleaned.get("is_active"):
            refusal = _last_admin_refusal(Membership.objects.filter(user=self.instance).select_related("tenant"))
            if refusal:
                self.add_error("is_active", refusal)
        return cleaned


@admin.register(User)
class UserAdmin(KeepsTenantAdmins, DjangoUserAdmin):
    form = UserAdminChangeForm
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def memberships_of(self, queryset):
        return Membership.objects.filter(user__in=queryset)


class MembershipAdminForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        # The stored membership: the instance takes the form's values once this has run.
        stored = Membership.objects.select_related("tenant").get(pk=self.instance.pk)
        demoted = cleaned.get("role", stored.role) != Role.ADMIN
        moved = cleaned.get("tenant", stored.tenant) != stored.tenant
        if demoted or moved:
            refusal = _last_admin_refusal([stored])
            if refusal:
                self.add_error("role" if demoted else "tenant", refusal)
        return cleaned


@admin.register(Membership)
class MembershipAdmin(KeepsTenantAdmins, admin.ModelAdmin):
    form = MembershipAdminForm
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]

    def memberships_of(self, queryset):
        return queryset

    def delete_model(self, request, obj):
        member_remove(membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            member_remove(membership=membership)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "label", "tenant", "role", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["prefix", "label", "tenant__slug"]
    exclude = ["key_hash"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "created_by"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        # A key is shown once when made; that happens in the portal or by create_api_key.
        return False

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        from portal.services import api_key_revoke

        for api_key in queryset:
            api_key_revoke(api_key=api_key)


@admin.register(SecretAuditLog)
class SecretAuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "object_repr", "field", "action", "actor_label"]
    list_filter = ["action", "tenant"]
    search_fields = ["object_repr", "actor_label", "object_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
