"""The customer portal's pages (SPEC section 10). Object routes take the object's id;
each is listed in tests/portal_ui/object_urls.py, which checks that none is missing."""

from django.urls import path

from portal.pages import connections, dashboard, deliveries, destinations, devices, members, tenants
from portal.pages import messages as message_pages

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("tenants/switch/", tenants.tenant_switch_view, name="tenant-switch"),
    # Connections
    path("connections/", connections.connection_list, name="connection-list"),
    path("connections/new/", connections.connection_create, name="connection-create"),
    path("connections/<uuid:pk>/", connections.connection_detail, name="connection-detail"),
    path("connections/<uuid:pk>/edit/", connections.connection_edit, name="connection-edit"),
    path("connections/<uuid:pk>/rotate-secret/", connections.connection_rotate_secret, name="connection-rotate-secret"),
    path("connections/<uuid:pk>/delete/", connections.connection_delete, name="connection-delete"),
    # Destinations
    path("destinations/", destinations.destination_list, name="destination-list"),
    path("destinations/new/", destinations.destination_create, name="destination-create"),
    path("destinations/<uuid:pk>/", destinations.destination_detail, name="destination-detail"),
    path("destinations/<uuid:pk>/edit/", destinations.destination_edit, name="destination-edit"),
    path("destinations/<uuid:pk>/test/", destinations.destination_test, name="destination-test"),
    path("destinations/<uuid:pk>/tls-check/", destinations.destination_tls_check, name="destination-tls-check"),
    path("destinations/<uuid:pk>/rotate-secret/", destinations.destination_rotate_secret, name="destination-rotate"),
    path("destinations/<uuid:pk>/backfill/", destinations.destination_backfill, name="destination-backfill"),
    path("destinations/<uuid:pk>/enabled/", destinations.destination_enabled, name="destination-enabled"),
    path("destinations/<uuid:pk>/delete/", destinations.destination_delete, name="destination-delete"),
    # Delivery log
    path("deliveries/", deliveries.delivery_list, name="delivery-list"),
    path("deliveries/replay/", deliveries.delivery_replay_bulk, name="delivery-replay-bulk"),
    path("deliveries/<uuid:pk>/", deliveries.delivery_detail, name="delivery-detail"),
    path("deliveries/<uuid:pk>/replay/", deliveries.delivery_replay_view, name="delivery-replay"),
    # Messages
    path("messages/", message_pages.message_list, name="message-list"),
    path("messages/<uuid:pk>/", message_pages.message_detail, name="message-detail"),
    path("messages/<uuid:pk>/reprocess/", message_pages.message_reprocess_view, name="message-reprocess"),
    # Devices
    path("devices/", devices.device_list, name="device-list"),
    path("devices/new/", devices.device_create, name="device-create"),
    path("devices/import/", devices.device_import, name="device-import"),
    path("devices/<int:pk>/", devices.device_detail, name="device-detail"),
    path("devices/<int:pk>/edit/", devices.device_edit, name="device-edit"),
    path("devices/<int:pk>/delete/", devices.device_delete, name="device-delete"),
    # Members and API keys (admins)
    path("members/", members.member_list, name="member-list"),
    path("members/invite/", members.member_invite_view, name="member-invite"),
    path("members/<int:pk>/role/", members.member_role, name="member-role"),
    path("members/<int:pk>/remove/", members.member_remove_view, name="member-remove"),
    path("members/<int:pk>/resend/", members.member_resend, name="member-resend"),
    path("api-keys/", members.apikey_list, name="apikey-list"),
    path("api-keys/new/", members.apikey_create, name="apikey-create"),
    path("api-keys/<int:pk>/revoke/", members.apikey_revoke, name="apikey-revoke"),
]
