"""Destinations: where a tenant's readings go — fields, headers, secret, test send, TLS check, backfill."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone

from delivery.models import Delivery, Destination
from portal.pages.base import tenant_page
from portal.tenancy import tenant_object_or_404


@tenant_page()
def destination_list(request):
    destinations = Destination.objects.for_tenant(request.tenant).prefetch_related("connections")
    return render(request, "portal/destinations/list.html", {"destinations": destinations})


def _detail_context(request, destination: Destination, **extra) -> dict:
    recent = destination.deliveries.order_by("-created_at")[:10]
    counts = {
        status: destination.deliveries.filter(status=status).count()
        for status in (Delivery.Status.PENDING, Delivery.Status.FAILED)
    }
    return {
        "destination": destination,
        "headers": destination.header_rows.all(),
        "connections": destination.connections.all(),
        "recent": recent,
        "counts": counts,
        "now": timezone.now(),
        **extra,
    }


@tenant_page()
def destination_detail(request, pk):
    destination = tenant_object_or_404(Destination, request.tenant, pk=pk)
    return render(request, "portal/destinations/detail.html", _detail_context(request, destination))
