"""Django admin for platform staff: devices (CUSTOM1-3 editable in the list) and readings (read-only).

The device key is write-only: set through a password field that is never filled in,
shown only as "key set". As in the API and the portal, a device must have an identity
(devices.validation); one stored without (before that rule) stays editable otherwise.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from devices.identity import default_urn, identifier_error, normalise_identifier
from devices.models import IDENTIFIER_FIELDS, Device, Reading
from devices.services import MIN_AUTH_KEY_LENGTH
from devices.validation import IDENTITY_FIELDS, NO_IDENTITY, URN_FORMAT, device_identity_refused, urn_canonical
from portal.secrets import Actor, secret_set


class DeviceForm(forms.ModelForm):
    new_auth_key = forms.CharField(
        required=False,
        strip=False,
        min_length=MIN_AUTH_KEY_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: a new per-device key replaces the current one. Leave empty to keep it.",
    )

    class Meta:
        model = Device
        fields = [
            "tenant",
            "name",
            "serial",
            "imei",
            "iccid",
            "dev_eui",
            "urn",
            "tags",
            "custom1",
            "custom2",
            "custom3",
        ]

    def clean_urn(self) -> str:
        # As the API stores it: messages look devices up by the urn with its TYPE upper-cased,
        # so urn:dev:mac:…: as typed would never be found, and a second device made.
        value = self.cleaned_data.get("urn") or ""
        if not value:
            return value
        canonical = urn_canonical(value)
        if canonical is None:
            raise forms.ValidationError(URN_FORMAT)
        return canonical

    def clean(self):
        cleaned = super().clean()
        for name in IDENTIFIER_FIELDS:
            value = cleaned.get(name)
            if value:
                problem = identifier_error(name, value)
                if problem:
                    self.add_error(name, problem[0].upper() + problem[1:] + ".")
                else:
                    cleaned[name] = normalise_identifier(name, value)
        after = {name: cleaned.get(name) for name in IDENTITY_FIELDS}
        # The instance still holds the stored fields: the form's are put on it after clean().
        if device_identity_refused(values=after, device=self.instance, malformed=self.errors):
            raise forms.ValidationError(NO_IDENTITY)
        return cleaned


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    form = DeviceForm
    list_display = ["__str__", "tenant", "serial", "imei", "dev_eui", "custom1", "custom2", "custom3", "last_seen_at"]
    list_editable = ["custom1", "custom2", "custom3"]
    list_filter = ["tenant", ("last_seen_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = [
        "serial",
        "imei",
        "iccid",
        "dev_eui",
        "urn",
        "name",
        "custom1",
        "custom2",
        "custom3",
        "tenant__slug",
    ]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["key_is_set", "auth_key_rotated_at", "last_seen_at", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "serial", "imei", "iccid", "dev_eui", "urn", "tags"]}),
        ("CUSTOM1-3", {"fields": ["custom1", "custom2", "custom3"]}),
        ("Key", {"fields": ["new_auth_key", "key_is_set", "auth_key_rotated_at"]}),
        (None, {"fields": ["last_seen_at", "created_at", "updated_at"]}),
    ]

    @admin.display(boolean=True, description="key set")
    def key_is_set(self, obj) -> bool:
        return obj.auth_key_set

    def save_model(self, request, obj, form, change):
        if not obj.urn:
            obj.urn = default_urn({name: getattr(obj, name) for name in IDENTIFIER_FIELDS})
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("new_auth_key"):
            secret_set(
                obj=obj, field="auth_key", value=form.cleaned_data["new_auth_key"], actor=Actor.from_request(request)
            )


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ["name", "value", "unit", "kind", "sum", "time", "device", "message_id", "tenant"]
    list_filter = ["kind", "tenant"]
    search_fields = ["name", "device__serial", "device__imei", "device__dev_eui"]
    list_select_related = ["device", "tenant"]
    show_full_result_count = False
    fields = ["tenant", "device", "message", "name", "unit", "kind", "value", "sum", "time"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
