"""The tenant switcher for people who are members of several tenants."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal.tenancy import tenant_switch


@login_required
@require_POST
def tenant_switch_view(request):
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        tenant_id = -1
    if not tenant_switch(request, tenant_id):
        messages.error(request, "You are not a member of that tenant.")
    # Object pages of the old tenant would answer 404 in the new one: start from its dashboard.
    return redirect("dashboard")
