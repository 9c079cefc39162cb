"""Destinations: where a tenant's readings go: fields, headers, secret, test send, TLS check, backfill.

The rules a destination must meet are delivery.validation's; the actions are
delivery.services'. This module turns them into forms and pages.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from delivery import services
from delivery.dynamic_fields import FIELDS as DYNAMIC_FIELDS
from delivery.dynamic_fields import SAMPLE_VALUES
from delivery.models import Delivery, Destination
from delivery.validation import (
    AUTH_FIELDS,
    MAX_HEADERS,
    auth_errors,
    authorization_header_errors,
    header_errors,
    url_errors,
)
from devices.models import Device
from ingest.models import Connection
from portal.pages.base import editor_page, is_htmx, render_once, tenant_page
from portal.pages.filters import DATETIME_INPUT
from portal.pages.secrets_forms import SECRET_HELP, RotateSecretForm, SecretInput, ShownOnce, clean_new_secret
from portal.secrets import Actor
from portal.tenancy import tenant_object_or_404

# What each dynamic field is replaced by, for the help beside the URL and headers.
DYNAMIC_FIELD_HELP = {
    "SERIAL": "the device's serial number",
    "IMEI": "the device's IMEI",
    "ICCID": "the SIM's ICCID",
    "DEVEUI": "the device's LoRaWAN DevEUI",
    "CUSTOM1": "the device's CUSTOM1 field",
    "CUSTOM2": "the device's CUSTOM2 field",
    "CUSTOM3": "the device's CUSTOM3 field",
    "DEVICE_ID": "the portal's id of the device",
}
# Write-only fields besides the shared secret: set when given, kept when left empty.
OTHER_SECRETS = ("auth_password", "oauth2_client_secret")


class DestinationForm(forms.ModelForm):
    secret = forms.CharField(
        label="Shared secret", required=False, strip=False, widget=SecretInput(), help_text=SECRET_HELP
    )
    auth_password = forms.CharField(
        label="Basic auth password", required=False, strip=False, widget=SecretInput(), help_text="Write-only."
    )
    oauth2_client_secret = forms.CharField(
        label="OAuth2 client secret", required=False, strip=False, widget=SecretInput(), help_text="Write-only."
    )

    class Meta:
        model = Destination
        fields = [
            "name",
            "description",
            "url",
            "method",
            "expected_response_code",
            "signature",
            "payload_format",
            "auth_type",
            "auth_username",
            "oauth2_token_url",
            "oauth2_client_id",
            "oauth2_scope",
            "max_attempts",
            "timeout_seconds",
            "connections",
            "enabled",
        ]
        labels = {
            "url": "URL",
            "expected_response_code": "Expected response code",
            "auth_username": "Basic auth user name",
            "timeout_seconds": "Timeout of the first attempt (seconds)",
            "max_attempts": "Attempts at most",
        }
        help_texts = {
            "url": "https:// only; may hold dynamic fields, e.g. https://example.com/devices/[SERIAL]/readings",
            "expected_response_code": "Empty: any 2xx is success. A code (200-299): only that code is.",
            "method": "GET carries the same body.",
            "signature": "Things-Message-Token as KPN Things sends it, Standard Webhooks headers, or both.",
            "max_attempts": "1 to 10; waits between attempts grow from 10 s to 10 h.",
            "timeout_seconds": "Each retry waits longer for an answer (n times this, at most 30 s).",
            "connections": "None ticked: the messages of all connections.",
            "enabled": "A disabled destination receives nothing; its deliveries wait.",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "url": forms.URLInput(attrs={"inputmode": "url", "spellcheck": "false"}),
            "oauth2_token_url": forms.URLInput(attrs={"spellcheck": "false"}),
            "connections": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["connections"].queryset = Connection.objects.for_tenant(tenant)
        self.fields["url"].widget.input_type = "text"  # dynamic fields are not a valid URL for the browser
        self.fields["oauth2_token_url"].widget.input_type = "text"
        if self.instance._state.adding:
            self.fields["secret"].label = "Shared secret"
        else:
            # Changing the shared secret is a rotation, on the destination's page.
            del self.fields["secret"]
            for name in OTHER_SECRETS:
                if getattr(self.instance, name) is not None:
                    self.fields[name].help_text = "Set. Write-only: leave empty to keep it."

    def clean_url(self) -> str:
        value = self.cleaned_data["url"]
        errors = url_errors(value)
        if errors:
            raise forms.ValidationError([e[0].upper() + e[1:] + "." for e in errors])
        return value

    def clean_oauth2_token_url(self) -> str:
        value = self.cleaned_data["oauth2_token_url"]
        errors = url_errors(value, what="token URL") if value else []
        if errors:
            raise forms.ValidationError([e[0].upper() + e[1:] + "." for e in errors])
        return value

    def clean_secret(self) -> str:
        return clean_new_secret(self.cleaned_data["secret"], allow_whsec=False)

    def _has(self, data: dict, name: str) -> bool:
        """Given now, or (for a write-only field) stored already."""
        if data.get(name):
            return True
        return name in OTHER_SECRETS and not self.instance._state.adding and getattr(self.instance, name) is not None

    def clean(self):
        data = super().clean()
        errors = auth_errors(auth_type=data.get("auth_type"), values={n: self._has(data, n) for n in AUTH_FIELDS})
        for name, problems in errors.items():
            # A field that failed its own check (a bad token URL, say) is not also called missing.
            if name not in self.errors:
                self.add_error(name, problems)
        return data


class HeaderForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, widget=forms.TextInput(attrs={"spellcheck": "false"}))
    value = forms.CharField(max_length=2000, required=False, widget=forms.TextInput(attrs={"spellcheck": "false"}))


class BaseHeaderFormSet(forms.BaseFormSet):
    """The header editor: rows of name and value; empty rows are ignored."""

    # The destination's auth type, to refuse an Authorization header that would clash with it.
    auth_type: str | None = None

    def headers(self) -> dict[str, str]:
        return {
            form.cleaned_data["name"]: form.cleaned_data.get("value", "")
            for form in self.forms
            if form.cleaned_data.get("name") and not self._should_delete_form(form)
        }

    def clean(self):
        if any(self.errors):
            return
        rows = [f for f in self.forms if f.cleaned_data.get("name") and not self._should_delete_form(f)]
        for form in self.forms:
            named = form.cleaned_data.get("name")
            if not self._should_delete_form(form) and form.cleaned_data.get("value") and not named:
                form.add_error("name", "A header needs a name.")
        # By `names` from here on, not cleaned_data: add_error drops a refused name from it.
        names = [f.cleaned_data["name"] for f in rows]
        for form, name in zip(rows, names, strict=True):
            if names.count(name) > 1:
                form.add_error("name", "The same header name twice.")
        errors = header_errors({name: f.cleaned_data.get("value", "") for f, name in zip(rows, names, strict=True)})
        if isinstance(errors, list):
            raise forms.ValidationError(errors)
        for form, name in zip(rows, names, strict=True):
            for problem in errors.get(name, []):
                about_value = any(word in problem for word in ("value", "dynamic field", "characters"))
                form.add_error("value" if about_value else "name", problem[0].upper() + problem[1:] + ".")
            clash = authorization_header_errors(auth_type=self.auth_type, header_names=[name])
            if clash:
                form.add_error("name", clash)


HeaderFormSet = forms.formset_factory(
    HeaderForm, formset=BaseHeaderFormSet, extra=0, can_delete=True, max_num=MAX_HEADERS, validate_max=True
)
HEADERS_PREFIX = "headers"


def _header_formset(request, destination: Destination | None) -> BaseHeaderFormSet:
    """The editor bound to the POST, or filled from the stored headers (plus one empty row)."""
    if request.method == "POST":
        return HeaderFormSet(request.POST, prefix=HEADERS_PREFIX)
    initial = [{"name": h.name, "value": h.value} for h in destination.header_rows.all()] if destination else []
    formset = HeaderFormSet(initial=initial, prefix=HEADERS_PREFIX)
    if len(initial) < MAX_HEADERS:
        # One empty row to type into, also without JavaScript.
        formset = forms.formset_factory(
            HeaderForm, formset=BaseHeaderFormSet, extra=1, can_delete=True, max_num=MAX_HEADERS, validate_max=True
        )(initial=initial, prefix=HEADERS_PREFIX)
    return formset


def _with_one_more_row(request) -> BaseHeaderFormSet:
    """The posted editor with one more empty row: 'Add header' without JavaScript."""
    data = request.POST.copy()
    total = int(data.get(f"{HEADERS_PREFIX}-TOTAL_FORMS", "0") or 0)
    if total < MAX_HEADERS:
        data[f"{HEADERS_PREFIX}-TOTAL_FORMS"] = str(total + 1)
    return HeaderFormSet(data, prefix=HEADERS_PREFIX)


def _form_page(
    request, form: DestinationForm, headers: BaseHeaderFormSet, destination: Destination | None, *, hide_errors=False
):
    context = {
        "hide_errors": hide_errors,
        "form": form,
        "headers": headers,
        "destination": destination,
        "dynamic_fields": [(name, DYNAMIC_FIELD_HELP[name], SAMPLE_VALUES[name]) for name in DYNAMIC_FIELDS],
        "max_headers": MAX_HEADERS,
    }
    return render(request, "portal/destinations/form.html", context)


def _save(request, form: DestinationForm, headers: BaseHeaderFormSet, destination: Destination | None):
    """Create or update the destination; answers what to show once (a new secret) or None."""
    arguments = {
        "fields": {name: form.cleaned_data[name] for name in DestinationForm.Meta.fields if name != "connections"},
        # A write-only field left empty keeps what is stored.
        "secrets": {
            name: form.cleaned_data[name] for name in ("secret", *OTHER_SECRETS) if form.cleaned_data.get(name)
        },
        "headers": headers.headers(),
        "connections": form.cleaned_data["connections"],
        "actor": Actor.from_request(request),
    }
    if destination is not None:
        return services.destination_update(destination=destination, **arguments), None
    new = services.destination_create(tenant=request.tenant, **arguments)
    # A generated secret is shown once; the whsec form of any new key too (SPEC 8).
    return new.destination, ShownOnce(secret=new.generated_secret, whsec=new.whsec)


def _edit(request, destination: Destination | None):
    form = DestinationForm(request.POST or None, instance=destination, tenant=request.tenant)
    if request.method == "POST" and "add_header" in request.POST:
        # "Add header" without JavaScript: the same form again, one more row, nothing saved yet.
        return _form_page(request, form, _with_one_more_row(request), destination, hide_errors=True)
    headers = _header_formset(request, destination)
    if request.method == "POST":
        headers.auth_type = request.POST.get("auth_type")
        form_ok, headers_ok = form.is_valid(), headers.is_valid()
        if form_ok and headers_ok:
            destination, shown = _save(request, form, headers, destination)
            messages.success(request, f"Destination {destination.name} saved.")
            if shown:
                return _detail_page(request, destination, shown=shown)
            return redirect("destination-detail", pk=destination.pk)
    return _form_page(request, form, headers, destination)


@tenant_page()
def destination_list(request):
    destinations = Destination.objects.for_tenant(request.tenant).prefetch_related("connections")
    return render(request, "portal/destinations/list.html", {"destinations": destinations})


@editor_page
def destination_create(request):
    return _edit(request, None)


@editor_page
def destination_edit(request, pk):
    return _edit(request, tenant_object_or_404(Destination, request.tenant, pk=pk))


def _detail_page(request, destination: Destination, **extra):
    recent = destination.deliveries.select_related("message__device").order_by("-created_at")[:10]
    counts = {
        status: destination.deliveries.filter(status=status).count()
        for status in (Delivery.Status.PENDING, Delivery.Status.FAILED)
    }
    context = {
        "destination": destination,
        "header_rows": destination.header_rows.all(),
        "connections": destination.connections.all(),
        "recent": recent,
        "counts": counts,
        "now": timezone.now(),
        "rotate_form": RotateSecretForm(default_grace=0),
        "backfill_form": BackfillForm(tenant=request.tenant),
        **extra,
    }
    if extra.get("shown"):
        return render_once(request, "portal/destinations/detail.html", context)
    return render(request, "portal/destinations/detail.html", context)


@tenant_page()
def destination_detail(request, pk):
    return _detail_page(request, tenant_object_or_404(Destination, request.tenant, pk=pk))


@tenant_page()
@require_POST
def destination_test(request, pk):
    destination = tenant_object_or_404(Destination, request.tenant, pk=pk)
    result = services.destination_test_send(destination=destination, wrong_token=True)
    if is_htmx(request):
        return render(request, "portal/destinations/_test_result.html", {"result": result})
    return _detail_page(request, destination, test_result=result)


@tenant_page()
@require_POST
def destination_tls_check(request, pk):
    destination = tenant_object_or_404(Destination, request.tenant, pk=pk)
    report = services.destination_tls_check(url=destination.url)
    if is_htmx(request):
        return render(request, "portal/destinations/_tls_report.html", {"report": report})
    return _detail_page(request, destination, tls_report=report)


@tenant_page()
@require_POST
def destination_rotate_secret(request, pk):
    destination = tenant_object_or_404(Destination, request.tenant, pk=pk)
    form = RotateSecretForm(request.POST, default_grace=0)
    if not form.is_valid():
        return _detail_page(request, destination, rotate_form=form)
    shown = form.rotate(obj=destination, actor=Actor.from_request(request), show_whsec=True)
    messages.success(request, "The secret was rotated.")
    return _detail_page(request, destination, shown=shown)


@tenant_page()
@require_POST
def destination_enabled(request, pk):
    destination = tenant_object_or_404(Destination, request.tenant, pk=pk)
    enable = request.POST.get("enabled") == "true"
    services.destination_set_enabled(destination=destination, enabled=enable)
    messages.success(request, "Enabled: waiting deliveries are sent, oldest first." if enable else "Disabled.")
    return redirect("destination-detail", pk=destination.pk)


@tenant_page()
@require_POST
def destination_delete(request, pk):
    destination = tenant_object_or_404(Destination, request.tenant, pk=pk)
    name = destination.name
    destination.delete()
    messages.success(request, f"Destination {name} deleted, with its delivery log.")
    return redirect("destination-list")


class BackfillForm(forms.Form):
    since = forms.DateTimeField(label="From (UTC)", widget=DATETIME_INPUT)
    until = forms.DateTimeField(label="Until (UTC)", widget=DATETIME_INPUT)
    devices = forms.ModelMultipleChoiceField(
        queryset=Device.objects.none(),
        required=False,
        help_text="None chosen: every device's messages.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["devices"].queryset = Device.objects.for_tenant(tenant).order_by("serial", "id")

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", "Must be after 'From'.")
        return data


@editor_page
def destination_backfill(request, pk):
    destination = tenant_object_or_404(Destination, request.tenant, pk=pk)
    form = BackfillForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.deliveries_backfill(
                destination=destination,
                since=form.cleaned_data["since"],
                until=form.cleaned_data["until"],
                device_ids=[d.pk for d in form.cleaned_data["devices"]],
            )
        except services.BackfillTooLarge as exc:
            form.add_error("since", f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        else:
            messages.success(
                request,
                f"Backfill: {result.messages} messages in range, {result.created} new deliveries "
                f"({result.existing} already had one; replay those from the delivery log).",
            )
            return redirect("destination-detail", pk=destination.pk)
    return render(request, "portal/destinations/backfill.html", {"destination": destination, "form": form})
