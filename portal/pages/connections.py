"""Connections: the webhook URLs a tenant's IoT platforms post to."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ingest.kinds import kind_for
from ingest.models import AuthMode, Connection, ConnectionKind
from ingest.services import connection_create as connection_create_service
from ingest.validation import connection_errors, device_key_header_errors
from portal.pages.base import editor_page, render_once, tenant_page
from portal.pages.secrets_forms import RotateSecretForm, ShownOnce, secret_field
from portal.secrets import Actor
from portal.tenancy import tenant_object_or_404

# How long the old secret of a connection keeps verifying after a rotation (SPEC 8).
CONNECTION_GRACE_SECONDS = 3600


class ConnectionForm(forms.ModelForm):
    secret = secret_field(label="Shared secret")

    class Meta:
        model = Connection
        fields = [
            "name",
            "description",
            "kind",
            "enabled",
            "username",
            "auth_mode",
            "device_key_header",
            "plug_uuid",
            "auto_create_devices",
        ]
        labels = {
            "username": "User name (Digital Matter, HTTP Basic)",
            "auth_mode": "Digital Matter verification",
            "device_key_header": "Device key header (Digital Matter, per-device key)",
            "plug_uuid": "Plug UUID (KPN Things)",
            "auto_create_devices": "Create unknown devices on arrival",
        }
        help_texts = {
            "plug_uuid": "When set, requests must carry this Things-Plug-UUID header.",
            "auto_create_devices": "Otherwise a message from an unknown device is kept as invalid.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            self.fields["secret"].help_text += " Digital Matter with per-device keys needs none."
        else:
            # Changing a secret is a rotation, on its own page, with a grace period.
            del self.fields["secret"]

    def clean_device_key_header(self) -> str:
        value = self.cleaned_data["device_key_header"]
        errors = device_key_header_errors(value)
        if errors:
            raise forms.ValidationError(errors)
        return value

    def clean(self):
        data = super().clean()
        errors = connection_errors(
            kind=data.get("kind"),
            auth_mode=data.get("auth_mode"),
            username=data.get("username"),
            plug_uuid=data.get("plug_uuid"),
            secret=data.get("secret"),
        )
        for name, problems in errors.items():
            self.add_error(name, problems)
        return data


def _shows_whsec(connection: Connection) -> bool:
    return kind_for(connection).accepts_whsec


@tenant_page()
def connection_list(request):
    connections = Connection.objects.for_tenant(request.tenant)
    return render(request, "portal/connections/list.html", {"connections": connections})


def _detail(request, connection: Connection, *, shown: ShownOnce | None = None, rotate_form=None):
    context = {
        "connection": connection,
        "shown": shown,
        "rotate_form": rotate_form
        or RotateSecretForm(allow_whsec=_shows_whsec(connection), default_grace=CONNECTION_GRACE_SECONDS),
        "needs_secret": kind_for(connection).needs_secret(connection),
        "kinds": ConnectionKind,
        "auth_modes": AuthMode,
        "message_count": connection.messages.count(),
        "now": timezone.now(),
    }
    if shown:
        return render_once(request, "portal/connections/detail.html", context)
    return render(request, "portal/connections/detail.html", context)


@tenant_page()
def connection_detail(request, pk):
    connection = tenant_object_or_404(Connection, request.tenant, pk=pk)
    return _detail(request, connection)


@editor_page
def connection_create(request):
    form = ConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in ConnectionForm.Meta.fields}
        secret = form.cleaned_data["secret"] or None
        actor = Actor.from_request(request)
        new = connection_create_service(tenant=request.tenant, actor=actor, secret=secret, **fields)
        messages.success(request, f"Connection {new.connection.name} created.")
        shown = ShownOnce(secret=new.generated_secret, whsec=new.whsec)
        if shown.secret or shown.whsec:
            return _detail(request, new.connection, shown=shown)
        return redirect("connection-detail", pk=new.connection.pk)
    return render(request, "portal/connections/form.html", {"form": form, "connection": None})


@editor_page
def connection_edit(request, pk):
    connection = tenant_object_or_404(Connection, request.tenant, pk=pk)
    form = ConnectionForm(request.POST or None, instance=connection)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved.")
        return redirect("connection-detail", pk=connection.pk)
    return render(request, "portal/connections/form.html", {"form": form, "connection": connection})


@tenant_page()
@require_POST
def connection_rotate_secret(request, pk):
    connection = tenant_object_or_404(Connection, request.tenant, pk=pk)
    form = RotateSecretForm(request.POST, allow_whsec=_shows_whsec(connection), default_grace=CONNECTION_GRACE_SECONDS)
    if not form.is_valid():
        return _detail(request, connection, rotate_form=form)
    shown = form.rotate(obj=connection, actor=Actor.from_request(request), show_whsec=_shows_whsec(connection))
    messages.success(request, "The secret was rotated.")
    if shown.secret or shown.whsec:
        return _detail(request, connection, shown=shown)
    return redirect("connection-detail", pk=connection.pk)


@tenant_page()
@require_POST
def connection_delete(request, pk):
    connection = tenant_object_or_404(Connection, request.tenant, pk=pk)
    name = connection.name
    connection.delete()
    messages.success(request, f"Connection {name} deleted, with its messages.")
    return redirect("connection-list")
