"""Filter forms of the list pages: GET parameters in, a tenant-scoped queryset out.

The delivery log's bulk replay posts the same parameters back, so "replay all failed in
this filter" replays exactly the rows the page listed.
"""

from __future__ import annotations

from datetime import UTC

from django import forms
from django.db.models import QuerySet

from delivery.models import Delivery, Destination
from devices.models import Device
from ingest.models import Connection, Message
from portal.models import Tenant

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _utc(value):
    # The pages show and take UTC (TIME_ZONE is UTC), so a naive input is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class TimeRangeMixin(forms.Form):
    since = forms.DateTimeField(label="From (UTC)", required=False, widget=DATETIME_INPUT)
    until = forms.DateTimeField(label="Until (UTC)", required=False, widget=DATETIME_INPUT)

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "Must be after 'From'.")
        return data


class DeliveryFilterForm(TimeRangeMixin, forms.Form):
    destination = forms.ModelChoiceField(queryset=Destination.objects.none(), required=False, empty_label="All")
    status = forms.ChoiceField(choices=[("", "All"), *Delivery.Status.choices], required=False)
    device = forms.ModelChoiceField(queryset=Device.objects.none(), required=False, empty_label="All")

    field_order = ["destination", "status", "device", "since", "until"]

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["destination"].queryset = Destination.objects.for_tenant(tenant).order_by("name")
        self.fields["device"].queryset = Device.objects.for_tenant(tenant).order_by("serial", "id")

    def queryset(self) -> QuerySet[Delivery]:
        """The tenant's deliveries matching the valid filters (all of them when none is valid)."""
        qs = Delivery.objects.for_tenant(self.tenant)
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("destination"):
            qs = qs.filter(destination=data["destination"])
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("device"):
            qs = qs.filter(message__device=data["device"])
        if data.get("since"):
            qs = qs.filter(created_at__gte=_utc(data["since"]))
        if data.get("until"):
            qs = qs.filter(created_at__lte=_utc(data["until"]))
        return qs

    def active(self) -> dict[str, str]:
        """The filter parameters in use, to repeat in links and in the bulk replay form."""
        if not self.is_valid():
            return {}
        return {name: self.data[name] for name in self.fields if self.data.get(name)}


class MessageFilterForm(TimeRangeMixin, forms.Form):
    connection = forms.ModelChoiceField(queryset=Connection.objects.none(), required=False, empty_label="All")
    status = forms.ChoiceField(choices=[("", "All"), *Message.Status.choices], required=False)
    device = forms.ModelChoiceField(queryset=Device.objects.none(), required=False, empty_label="All")

    field_order = ["connection", "status", "device", "since", "until"]

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["connection"].queryset = Connection.objects.for_tenant(tenant)
        self.fields["device"].queryset = Device.objects.for_tenant(tenant).order_by("serial", "id")

    def queryset(self) -> QuerySet[Message]:
        qs = Message.objects.for_tenant(self.tenant)
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("connection"):
            qs = qs.filter(connection=data["connection"])
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("device"):
            qs = qs.filter(device=data["device"])
        if data.get("since"):
            qs = qs.filter(received_at__gte=_utc(data["since"]))
        if data.get("until"):
            qs = qs.filter(received_at__lte=_utc(data["until"]))
        return qs

    def active(self) -> dict[str, str]:
        if not self.is_valid():
            return {}
        return {name: self.data[name] for name in self.fields if self.data.get(name)}
