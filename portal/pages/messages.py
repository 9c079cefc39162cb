"""Messages: every raw request as received, its readings, its error, and reprocessing."""

from __future__ import annotations

import contextlib
import json

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from devices.models import Reading
from ingest.models import Message
from ingest.services import NotReprocessable, message_reprocess
from portal.pages.base import tenant_page
from portal.pages.filters import MessageFilterForm
from portal.tenancy import tenant_object_or_404

PAGE_SIZE = 50
BODY_SHOWN_BYTES = 64 * 1024


def body_text(message: Message) -> tuple[str, bool]:
    """The body for display: pretty JSON when it parses, else the text as received; and whether it was cut."""
    raw = bytes(message.body)
    cut = len(raw) > BODY_SHOWN_BYTES
    raw = raw[:BODY_SHOWN_BYTES]
    text = raw.decode("utf-8", errors="replace")
    if not cut:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return text, cut


@tenant_page()
def message_list(request):
    form = MessageFilterForm(request.GET or None, tenant=request.tenant)
    qs = form.queryset().select_related("connection", "device").order_by("-received_at")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "portal/messages/list.html"
    return render(request, template, {"form": form, "page": page, "filters": form.active()})


@tenant_page()
def message_detail(request, pk):
    message = tenant_object_or_404(Message.objects.select_related("connection", "device"), request.tenant, pk=pk)
    readings = Reading.objects.for_tenant(request.tenant).filter(message=message).order_by("time", "id")
    deliveries = message.deliveries.select_related("destination").order_by("destination__name")
    text, cut = body_text(message)
    return render(
        request,
        "portal/messages/detail.html",
        {"message": message, "readings": readings, "deliveries": deliveries, "body": text, "body_cut": cut},
    )


@tenant_page()
@require_POST
def message_reprocess_view(request, pk):
    message = tenant_object_or_404(Message, request.tenant, pk=pk)
    try:
        message = message_reprocess(message=message)
    except NotReprocessable as exc:
        flash.error(request, f"Not processed again: {exc}.")
    else:
        if message.status == Message.Status.ACCEPTED:
            flash.success(request, f"Processed again: {message.readings_count} readings, delivered as usual.")
        else:
            flash.error(request, f"Still invalid: {message.error}")
    return redirect("message-detail", pk=message.pk)
