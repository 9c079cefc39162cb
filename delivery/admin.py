"""Django admin for platform staff: destinations (headers inline) and deliveries
(attempts inline, read-only). No secret is ever shown: encrypted fields are not
editable, and the rotate action generates a new secret without displaying it (the
tenant sets a known one through the portal or the API)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from delivery import services
from delivery.models import Delivery, DeliveryAttempt, Destination, DestinationHeader
from delivery.validation import header_errors, url_errors
from portal.secrets import Actor, secret_rotate


class DestinationAdminForm(forms.ModelForm):
    """Staff meet the same URL rules as the API and the portal (delivery/validation.py)."""

    class Meta:
        model = Destination
        fields = "__all__"  # noqa: DJ007 - the ModelAdmin chooses the fields it shows

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        errors = url_errors(url)
        if errors:
            raise forms.ValidationError(errors)
        return url

    def clean_oauth2_token_url(self) -> str:
        url = self.cleaned_data.get("oauth2_token_url") or ""
        errors = url_errors(url, what="token URL") if url else []
        if errors:
            raise forms.ValidationError(errors)
        return url


class DestinationHeaderFormSet(forms.BaseInlineFormSet):
    """The header rules of the API and the portal: RFC 9110 names, no CR/LF, not the portal's own."""

    def clean(self) -> None:
        super().clean()
        headers: dict[str, str] = {}
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or not data.get("name"):
                continue
            headers[data["name"]] = data.get("value", "")
        errors = header_errors(headers)
        if isinstance(errors, dict):
            errors = [f"{name}: {'; '.join(problems)}" for name, problems in errors.items()]
        if errors:
            raise forms.ValidationError(errors)


class DestinationHeaderInline(admin.TabularInline):
    model = DestinationHeader
    formset = DestinationHeaderFormSet
    extra = 0
    fields = ["position", "name", "value"]


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationAdminForm
    list_display = ["name", "tenant", "url", "enabled", "signature", "auth_type", "disabled_reason", "updated_at"]
    list_filter = ["enabled", "signature", "auth_type", "payload_format", "tenant"]
    search_fields = ["name", "url", "id", "tenant__slug"]
    readonly_fields = [
        "id",
        "secret_set",
        "secret_rotated_at",
        "disabled_at",
        "failing_since",
        "last_probe_at",
        "created_at",
        "updated_at",
    ]
    autocomplete_fields = ["tenant"]
    filter_horizontal = ["connections"]
    inlines = [DestinationHeaderInline]
    actions = ["rotate_secret", "replay_failed"]

    @admin.display(boolean=True, description="secret set")
    def secret_set(self, obj) -> bool:
        return obj.secret_set

    @admin.action(description="Rotate the shared secret (generated, not shown; the old one stops at once)")
    def rotate_secret(self, request, queryset):
        actor = Actor.from_request(request)
        for destination in queryset:
            secret_rotate(obj=destination, grace_seconds=0, actor=actor)
        self.message_user(
            request,
            f"Rotated {queryset.count()} secret(s). New secrets are never shown here: the tenant sets a known "
            "one through the portal or the API.",
            messages.SUCCESS,
        )

    @admin.action(description="Replay the failed deliveries of the selected destinations")
    def replay_failed(self, request, queryset):
        count = services.deliveries_replay(
            queryset=Delivery.objects.filter(destination__in=queryset, status=Delivery.Status.FAILED)
        )
        self.message_user(request, f"{count} deliveries put back to pending.", messages.SUCCESS)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "status_code", "success", "error_class", "error", "response_body"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "destination", "status", "attempts_count", "last_status_code", "created_at"]
    list_filter = ["status", "tenant"]
    search_fields = ["id", "message__id", "destination__name"]
    list_select_related = ["tenant", "destination"]
    readonly_fields = [
        "id",
        "tenant",
        "message",
        "destination",
        "status",
        "attempts_count",
        "series_attempts",
        "next_attempt_at",
        "claimed_until",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    exclude = ["claim_token"]
    inlines = [DeliveryAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Replay the selected deliveries (same id and webhook-id)")
    def replay(self, request, queryset):
        count = services.deliveries_replay(queryset=queryset)
        self.message_user(request, f"{count} deliveries put back to pending.", messages.SUCCESS)
