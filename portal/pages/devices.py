"""Devices: identifiers, CUSTOM1-3, tags, the per-device key, and CSV import."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from devices import services as device_services
from devices.models import IDENTIFIER_FIELDS, Device, Reading
from devices.validation import NO_IDENTIFIER, TAKEN, device_identifiers_check, device_identity_refused
from ingest.models import Message
from portal.pages.base import editor_page, tenant_page
from portal.pages.secrets_forms import SecretInput
from portal.secrets import Actor, secret_set
from portal.tenancy import tenant_object_or_404

PAGE_SIZE = 50


class TagsField(forms.CharField):
    """Tags typed as a comma-separated list; stored as a list of distinct strings."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        tags: list[str] = []
        for tag in (t.strip() for t in text.split(",")):
            if tag and tag not in tags:
                tags.append(tag)
        return tags


class DeviceForm(forms.ModelForm):
    tags = TagsField(required=False, help_text="Separated by commas, e.g. warehouse, floor-2.")
    auth_key = forms.CharField(
        label="Device key",
        required=False,
        strip=False,
        widget=SecretInput(),
        help_text="For Digital Matter connections with per-device keys. "
        "Write-only: leave empty to keep the current one.",
    )
    clear_auth_key = forms.BooleanField(label="Remove the device key", required=False)

    class Meta:
        model = Device
        fields = ["name", "serial", "imei", "iccid", "dev_eui", "custom1", "custom2", "custom3", "tags"]
        help_texts = {
            "custom1": "Free text up to 255 characters; [CUSTOM1] in a destination's URL or headers is replaced by it.",
            "custom2": "Free text; [CUSTOM2] in destinations.",
            "custom3": "Free text; [CUSTOM3] in destinations.",
        }

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.instance.tenant = tenant
        if self.instance._state.adding:
            del self.fields["clear_auth_key"]

    def clean(self):
        data = super().clean()
        # The tenant is no form field, so Django's (tenant, field) constraint check is skipped: this says it.
        checked = device_identifiers_check(
            tenant=self.tenant, values={name: data.get(name) for name in IDENTIFIER_FIELDS}, device=self.instance
        )
        data.update(checked.normalised)
        taken = [name for name, problem in checked.problems.items() if problem == TAKEN]
        for name, problem in checked.problems.items():
            if problem != TAKEN:
                self.add_error(name, f"{Device._meta.get_field(name).verbose_name} {problem}.")
        # The urn is not edited here; a device messages name by one (KPN's MAC, …) keeps it.
        after = {**{f: data.get(f) for f in IDENTIFIER_FIELDS}, "urn": self.instance.urn}
        if device_identity_refused(values=after, device=self.instance, malformed=self.errors):
            raise forms.ValidationError(NO_IDENTIFIER)
        for name in taken:
            self.add_error(name, f"Another device of this tenant has this {Device._meta.get_field(name).verbose_name}.")
        return data

    def _post_clean(self):
        # Writes go through devices.services; the model instance is not filled from the form.
        pass


@tenant_page()
def device_list(request):
    devices = Device.objects.for_tenant(request.tenant)
    query = request.GET.get("q", "").strip()
    tag = request.GET.get("tag", "").strip()
    if query:
        devices = devices.filter(
            Q(name__icontains=query)
            | Q(serial__icontains=query)
            | Q(imei__icontains=query)
            | Q(iccid__icontains=query)
            | Q(dev_eui__icontains=query)
            | Q(custom1__icontains=query)
            | Q(custom2__icontains=query)
            | Q(custom3__icontains=query)
        )
    if tag:
        devices = devices.filter(tags__contains=[tag])
    page = Paginator(devices.order_by("serial", "id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/devices/list.html", {"page": page, "q": query, "tag": tag})


@tenant_page()
def device_detail(request, pk):
    device = tenant_object_or_404(Device, request.tenant, pk=pk)
    readings = Reading.objects.for_tenant(request.tenant).filter(device=device).order_by("-time", "-id")[:50]
    recent_messages = Message.objects.for_tenant(request.tenant).filter(device=device).order_by("-received_at")[:10]
    return render(
        request,
        "portal/devices/detail.html",
        {"device": device, "readings": readings, "recent_messages": recent_messages},
    )


def _save_device(request, form: DeviceForm, device: Device | None = None) -> Device:
    fields = {name: form.cleaned_data[name] for name in DeviceForm.Meta.fields}
    with transaction.atomic():
        if device is None:
            device = device_services.device_create(tenant=request.tenant, **fields)
        else:
            device = device_services.device_update(device=device, **fields)
        actor = Actor.from_request(request)
        if form.cleaned_data.get("auth_key"):
            secret_set(obj=device, field="auth_key", value=form.cleaned_data["auth_key"], actor=actor)
        elif form.cleaned_data.get("clear_auth_key") and device.auth_key_set:
            secret_set(obj=device, field="auth_key", value=None, actor=actor)
    return device


@editor_page
def device_create(request):
    form = DeviceForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        device = _save_device(request, form)
        messages.success(request, f"Device {device} created.")
        return redirect("device-detail", pk=device.pk)
    return render(request, "portal/devices/form.html", {"form": form, "device": None})


@editor_page
def device_edit(request, pk):
    device = tenant_object_or_404(Device, request.tenant, pk=pk)
    form = DeviceForm(request.POST or None, instance=device, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        _save_device(request, form, device)
        messages.success(request, "Saved.")
        return redirect("device-detail", pk=device.pk)
    return render(request, "portal/devices/form.html", {"form": form, "device": device})


@tenant_page()
@require_POST
def device_delete(request, pk):
    device = tenant_object_or_404(Device, request.tenant, pk=pk)
    name = str(device)
    device.delete()
    messages.success(request, f"Device {name} deleted.")
    return redirect("device-list")


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8; the first row names the columns: serial, imei, iccid, dev_eui, name, custom1, custom2, "
        "custom3, tags (separated by |), auth_key. At least one identifier column.",
    )
    dry_run = forms.BooleanField(label="Only check: change nothing, show what would happen", required=False)

    MAX_BYTES = 5 * 1024 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {self.MAX_BYTES // (1024 * 1024)} MiB; split it.")
        return upload


@editor_page
def device_import(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        try:
            report = device_services.devices_import_csv(
                tenant=request.tenant,
                data=form.cleaned_data["file"].read(),
                actor=Actor.from_request(request),
                dry_run=form.cleaned_data["dry_run"],
            )
        except device_services.NotCsv as exc:
            form.add_error("file", f"Nothing was imported: {exc}.")
    results = ("created", "updated", "unchanged", "refused")
    counts = {result: report.count(result) for result in results} if report else {}
    return render(request, "portal/devices/import.html", {"form": form, "report": report, "counts": counts})
