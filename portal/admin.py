"""Django admin for platform staff: tenants, members, API keys and the secret audit log.

No secret and no key hash is ever shown: encrypted fields are not editable, and
`key_hash` is excluded.
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from portal.models import ApiKey, Membership, SecretAuditLog, Tenant, TenantSettings, User


class MembershipInline(admin.TabularInline):
    model = Membership
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


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]


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
