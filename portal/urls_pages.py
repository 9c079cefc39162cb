"""The customer portal's pages."""

from django.urls import path

from portal import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("tenants/switch/", views.tenant_switch_view, name="tenant-switch"),
]
