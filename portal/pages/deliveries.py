"""The delivery log: every delivery with its attempts; replay one, or all failed in a filter."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render

from delivery.models import Delivery
from portal.pages.base import is_htmx, tenant_page
from portal.pages.filters import DeliveryFilterForm
from portal.tenancy import tenant_object_or_404

PAGE_SIZE = 50


@tenant_page()
def delivery_list(request):
    form = DeliveryFilterForm(request.GET or None, tenant=request.tenant)
    qs = form.queryset().select_related("destination", "message__device").order_by("-created_at")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    failed_in_filter = form.queryset().filter(status=Delivery.Status.FAILED).count()
    context = {"form": form, "page": page, "filters": form.active(), "failed_in_filter": failed_in_filter}
    if is_htmx(request) and request.headers.get("HX-Target") == "delivery-results":
        return render(request, "portal/deliveries/_results.html", context)
    return render(request, "portal/deliveries/list.html", context)


@tenant_page()
def delivery_detail(request, pk):
    delivery = tenant_object_or_404(
        Delivery.objects.select_related("destination", "message__device", "message__connection"), request.tenant, pk=pk
    )
    attempts = delivery.attempts.order_by("number")
    template = "portal/deliveries/_attempts.html" if is_htmx(request) else "portal/deliveries/detail.html"
    return render(request, template, {"delivery": delivery, "attempts": attempts})
