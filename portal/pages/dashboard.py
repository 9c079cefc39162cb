"""The dashboard: messages in and deliveries out per hour over 24 h, success rate per destination."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.shortcuts import render
from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt, Destination
from ingest.models import Connection, Message
from portal.models import Tenant
from portal.pages.base import tenant_page
from portal.pages.charts import RateRow, Series, hourly_bar_chart, success_rate_chart

HOURS = 24


def _hour_slots(now: datetime) -> list[datetime]:
    last = now.replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


def _fill(slots: list[datetime], rows, keys: dict[str, str]) -> list[tuple[datetime, dict[str, int]]]:
    """Per-hour counts for every slot (zero where the query had no row)."""
    by_hour: dict[datetime, dict[str, int]] = {}
    for row in rows:
        by_hour[row["hour"]] = {series: row[column] for series, column in keys.items()}
    return [(slot, by_hour.get(slot, {})) for slot in slots]


@dataclass(frozen=True)
class DashboardStats:
    messages_per_hour: list[tuple[datetime, dict[str, int]]]
    attempts_per_hour: list[tuple[datetime, dict[str, int]]]
    rates: list[RateRow]
    since: datetime


def dashboard_stats(*, tenant: Tenant, now: datetime | None = None) -> DashboardStats:
    """Counts of the last 24 hours of one tenant, per hour and per destination."""
    now = now or timezone.now()
    slots = _hour_slots(now)
    since = slots[0]
    messages = (
        Message.objects.for_tenant(tenant)
        .filter(received_at__gte=since)
        .annotate(hour=TruncHour("received_at"))
        .values("hour")
        .annotate(
            accepted=Count("id", filter=Q(status=Message.Status.ACCEPTED)),
            invalid=Count("id", filter=~Q(status=Message.Status.ACCEPTED)),
        )
    )
    attempts = (
        DeliveryAttempt.objects.filter(delivery__tenant=tenant, started_at__gte=since)
        .annotate(hour=TruncHour("started_at"))
        .values("hour")
        .annotate(ok=Count("id", filter=Q(success=True)), bad=Count("id", filter=Q(success=False)))
    )
    per_destination = {
        row["destination"]: row
        for row in Delivery.objects.for_tenant(tenant)
        .filter(created_at__gte=since)
        .values("destination")
        .annotate(
            succeeded=Count("id", filter=Q(status=Delivery.Status.SUCCEEDED)),
            failed=Count("id", filter=Q(status=Delivery.Status.FAILED)),
            pending=Count("id", filter=Q(status=Delivery.Status.PENDING)),
        )
    }
    rates = []
    for destination in Destination.objects.for_tenant(tenant).order_by("name"):
        row = per_destination.get(destination.id, {"succeeded": 0, "failed": 0, "pending": 0})
        finished = row["succeeded"] + row["failed"]
        rates.append(
            RateRow(
                label=destination.name,
                rate=row["succeeded"] / finished if finished else None,
                succeeded=row["succeeded"],
                failed=row["failed"],
                pending=row["pending"],
            )
        )
    return DashboardStats(
        messages_per_hour=_fill(slots, messages, {"accepted": "accepted", "invalid": "invalid"}),
        attempts_per_hour=_fill(slots, attempts, {"ok": "ok", "bad": "bad"}),
        rates=rates,
        since=since,
    )


@tenant_page()
def dashboard(request):
    tenant = request.tenant
    stats = dashboard_stats(tenant=tenant)
    messages_chart = hourly_bar_chart(
        stats.messages_per_hour,
        [Series("accepted", "Accepted", "bar-in"), Series("invalid", "Invalid", "bar-bad")],
        title="Messages in per hour, last 24 hours",
    )
    deliveries_chart = hourly_bar_chart(
        stats.attempts_per_hour,
        [Series("ok", "Succeeded", "bar-ok"), Series("bad", "Failed", "bar-bad")],
        title="Delivery attempts out per hour, last 24 hours",
    )
    rate_chart = success_rate_chart(stats.rates, title="Success rate per destination, last 24 hours")
    totals = {
        "messages": sum(sum(v.values()) for _, v in stats.messages_per_hour),
        "attempts_ok": sum(v.get("ok", 0) for _, v in stats.attempts_per_hour),
        "attempts_bad": sum(v.get("bad", 0) for _, v in stats.attempts_per_hour),
        "failed": Delivery.objects.for_tenant(tenant).filter(status=Delivery.Status.FAILED).count(),
        "pending": Delivery.objects.for_tenant(tenant).filter(status=Delivery.Status.PENDING).count(),
    }
    context = {
        "stats": stats,
        "messages_chart": messages_chart,
        "deliveries_chart": deliveries_chart,
        "rate_chart": rate_chart,
        "totals": totals,
        "disabled_destinations": Destination.objects.for_tenant(tenant).filter(enabled=False),
        "has_connections": Connection.objects.for_tenant(tenant).exists(),
        "has_destinations": Destination.objects.for_tenant(tenant).exists(),
    }
    return render(request, "portal/dashboard.html", context)
