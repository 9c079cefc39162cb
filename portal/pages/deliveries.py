"""The delivery log: every delivery with its attempts; replay one, or all failed in a filter."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from delivery.models import Delivery
from delivery.services import deliveries_replay, delivery_replay
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
    context = {
        "form": form,
        "page": page,
        "filters": form.active(),
        "failed_in_filter": failed_in_filter,
    }
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


def _back(request, default: str) -> str:
    """Where to return after a replay: the page the button was on, when it is ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


@tenant_page()
@require_POST
def delivery_replay_view(request, pk):
    delivery = tenant_object_or_404(Delivery, request.tenant, pk=pk)
    if delivery.status != Delivery.Status.FAILED:
        messages.error(request, f"Only a failed delivery is replayed; this one is {delivery.status}.")
    elif delivery_replay(delivery=delivery):
        messages.success(request, "Replaying: the delivery is pending again, with a new series of attempts.")
    else:
        messages.error(request, "A worker holds this delivery right now; try again in a moment.")
    return redirect(_back(request, reverse("delivery-detail", kwargs={"pk": delivery.pk})))


@tenant_page()
@require_POST
def delivery_replay_bulk(request):
    form = DeliveryFilterForm(request.POST, tenant=request.tenant)
    if not form.is_valid():
        messages.error(request, "The filter is not valid; nothing was replayed.")
        return redirect("delivery-list")
    count = deliveries_replay(queryset=form.queryset().filter(status=Delivery.Status.FAILED))
    messages.success(request, f"Replaying {count} failed deliveries.")
    filters = {k: v for k, v in form.active().items() if k != "status"}
    return redirect(reverse("delivery-list") + ("?" + urlencode(filters) if filters else ""))
