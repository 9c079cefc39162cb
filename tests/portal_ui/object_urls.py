"""Every portal page that names an object, in one place.

`object_urls(data)` answers (route name, URL, methods) for each such page, filled with
the objects of one tenant. tests/portal_ui/test_isolation.py asks for each as an
outsider and expects 404, and fails when a route of portal/urls_pages.py that takes an
id is missing here — so a new page cannot ship without its isolation check.
"""

from __future__ import annotations

from django.urls import reverse

from tests.portal_ui.conftest import TenantData

GET, POST = "get", "post"


def object_urls(data: TenantData) -> list[tuple[str, str, tuple[str, ...]]]:
    def url(name: str, obj) -> str:
        return reverse(name, kwargs={"pk": obj.pk})

    rows = [
        ("connection-detail", data.connection, (GET,)),
        ("connection-edit", data.connection, (GET, POST)),
        ("connection-rotate-secret", data.connection, (POST,)),
        ("connection-delete", data.connection, (POST,)),
        ("destination-detail", data.destination, (GET,)),
        ("destination-edit", data.destination, (GET, POST)),
        ("destination-test", data.destination, (POST,)),
        ("destination-tls-check", data.destination, (POST,)),
        ("destination-rotate", data.destination, (POST,)),
        ("destination-backfill", data.destination, (GET, POST)),
        ("destination-enabled", data.destination, (POST,)),
        ("destination-delete", data.destination, (POST,)),
        ("delivery-detail", data.delivery, (GET,)),
        ("delivery-replay", data.delivery, (POST,)),
        ("message-detail", data.message, (GET,)),
        ("message-reprocess", data.message, (POST,)),
        ("device-detail", data.device, (GET,)),
        ("device-edit", data.device, (GET, POST)),
        ("device-delete", data.device, (POST,)),
        ("member-role", data.membership, (POST,)),
        ("member-remove", data.membership, (POST,)),
        ("member-resend", data.membership, (POST,)),
        ("apikey-revoke", data.api_key, (POST,)),
    ]
    return [(name, url(name, obj), methods) for name, obj, methods in rows]
