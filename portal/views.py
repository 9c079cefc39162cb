"""The portal's tenant-side pages."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.tenancy import tenant_switch


@login_required
def dashboard(request):
    return render(request, "portal/dashboard.html")


@login_required
@require_POST
def tenant_switch_view(request):
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        tenant_id = -1
    if not tenant_switch(request, tenant_id):
        messages.error(request, "You are not a member of that tenant.")
    return redirect("dashboard")
