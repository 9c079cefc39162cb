"""Destinations: every field, the header editor, dynamic-field help, test send and TLS check
against the local HTTPS sink, rotation shown once, backfill, and the receiver snippets."""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import json
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping

from delivery.models import Delivery, Destination
from portal.secrets import whsec_key_bytes
from tests.portal_ui.conftest import STRONG_SECRET
from tests.support.sink import Answer


def form_data(url: str = "https://receiver.example.com/in/[SERIAL]", headers=(), **fields) -> dict:
    data = {
        "name": "Receiver",
        "description": "",
        "url": url,
        "method": "POST",
        "expected_response_code": "",
        "signature": "things-token",
        "payload_format": "senml",
        "auth_type": "none",
        "max_attempts": "3",
        "timeout_seconds": "5",
        "enabled": "on",
        "headers-TOTAL_FORMS": str(len(headers)),
        "headers-INITIAL_FORMS": "0",
        "headers-MIN_NUM_FORMS": "0",
        "headers-MAX_NUM_FORMS": "20",
    }
    for index, (name, value) in enumerate(headers):
        data[f"headers-{index}-name"] = name
        data[f"headers-{index}-value"] = value
    data.update(fields)
    return data


def shown(html: str, what: str) -> str:
    return html_lib.unescape(re.search(rf'<code id="{what}" data-[a-z]+>([^<]+)</code>', html).group(1))


@pytest.mark.django_db
def test_creating_a_destination_with_two_dynamic_headers_shows_its_secret_and_whsec_once(acme, bob, page_as):
    headers = [("X-Device", "[DEVEUI]"), ("X-Customer", "acme-[CUSTOM1]")]
    response = page_as(bob).post("/destinations/new/", form_data(headers=headers))
    assert response.status_code == 200
    html = response.content.decode()
    destination = Destination.objects.get(tenant=acme, name="Receiver")
    secret, whsec = shown(html, "new-secret"), shown(html, "new-whsec")
    assert destination.secret.reveal() == secret
    assert whsec_key_bytes(whsec) == secret.encode()
    assert [(h.name, h.value) for h in destination.header_rows.all()] == headers
    assert destination.url == "https://receiver.example.com/in/[SERIAL]"
    later = page_as(bob).get(f"/destinations/{destination.pk}/").content.decode()
    assert secret not in html_lib.unescape(later) and "new-whsec" not in later


@pytest.mark.django_db
def test_the_form_explains_every_dynamic_field(acme, bob, page_as):
    html = page_as(bob).get("/destinations/new/").content.decode()
    for name in ("SERIAL", "IMEI", "ICCID", "DEVEUI", "CUSTOM1", "CUSTOM2", "CUSTOM3", "DEVICE_ID"):
        assert f"[{name}]" in html
    assert 'id="headers-empty-row"' in html and 'data-add-row="headers"' in html


@pytest.mark.django_db
def test_an_http_url_is_refused_beside_the_url_field(acme, bob, page_as):
    html = page_as(bob).post("/destinations/new/", form_data(url="http://receiver.example.com/")).content.decode()
    assert re.search(r'id="id_url_field".*?class="errorlist".*?https://', html, re.S)
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_header_errors_are_shown_in_their_own_row(acme, bob, page_as):
    headers = [("X-Good", "fine"), ("Bad Name", "x"), ("X-Typo", "[SERIALL]")]
    html = page_as(bob).post("/destinations/new/", form_data(headers=headers)).content.decode()
    assert re.search(r'id="id_headers-1-name_field".*?class="errorlist".*?token', html, re.S)
    assert re.search(
        r'id="id_headers-2-value_field".*?class="errorlist".*?unknown dynamic field \[SERIALL\]', html, re.S | re.I
    )
    assert not re.search(r'id="id_headers-0-name_field"[^>]*has-error', html)
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_the_same_header_name_twice_is_an_error_in_both_rows(acme, bob, page_as):
    response = page_as(bob).post("/destinations/new/", form_data(headers=[("X-A", "1"), ("X-A", "2")]))

    assert response.status_code == 200
    html = response.content.decode()
    for row in (0, 1):
        assert re.search(rf'id="id_headers-{row}-name_field".*?class="errorlist".*?same header name twice', html, re.S)
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_a_refused_header_name_beside_an_auth_type_is_an_error_not_a_crash(acme, bob, page_as):
    data = form_data(headers=[("Bad Name", "x")], auth_type="basic", auth_username="u", auth_password="p")

    response = page_as(bob).post("/destinations/new/", data)

    assert response.status_code == 200
    assert re.search(r'id="id_headers-0-name_field".*?class="errorlist".*?token', response.content.decode(), re.S)


@pytest.mark.django_db
def test_adding_a_header_row_without_javascript_saves_nothing(acme, bob, page_as):
    data = form_data(headers=[("X-One", "1")], add_header="1")
    html = page_as(bob).post("/destinations/new/", data).content.decode()
    assert 'name="headers-TOTAL_FORMS" value="2"' in html
    assert 'name="headers-1-name"' in html
    assert 'value="X-One"' in html
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_removing_a_header_row_drops_it(acme_data, bob, page_as):
    destination = acme_data.destination
    data = form_data(url=destination.url, headers=[("X-Customer", "[CUSTOM1]"), ("X-New", "v")])
    data["headers-0-DELETE"] = "on"
    page_as(bob).post(f"/destinations/{destination.pk}/edit/", data)
    assert [h.name for h in destination.header_rows.all()] == ["X-New"]


@pytest.mark.django_db
def test_basic_auth_needs_a_password_beside_its_field_and_keeps_a_stored_one(acme_data, bob, page_as):
    destination = acme_data.destination
    data = form_data(url=destination.url, auth_type="basic", auth_username="u")
    html = page_as(bob).post(f"/destinations/{destination.pk}/edit/", data).content.decode()
    assert re.search(r'id="id_auth_password_field".*?class="errorlist".*?password', html, re.S)
    page_as(bob).post(f"/destinations/{destination.pk}/edit/", {**data, "auth_password": "pw-123456"})
    destination.refresh_from_db()
    assert destination.auth_password.reveal() == "pw-123456"
    page_as(bob).post(f"/destinations/{destination.pk}/edit/", {**data, "name": "Renamed"})
    destination.refresh_from_db()
    assert destination.name == "Renamed" and destination.auth_password.reveal() == "pw-123456"
    assert destination.secret.reveal() == STRONG_SECRET


def _token_checking_receiver(secret: str):
    def answer(recorded):
        expected = hashlib.sha256(recorded.body + secret.encode()).hexdigest()
        return Answer(200, body=b"thanks") if recorded.header("Things-Message-Token") == expected else Answer(401)

    return answer


@pytest.mark.django_db
def test_test_send_reaches_the_sink_and_reports_the_wrong_token_rejected(acme_data, bob, page_as, https_sink):
    destination = acme_data.destination
    Destination.objects.filter(pk=destination.pk).update(url=https_sink.url("/in/[SERIAL]"))
    https_sink.responder = _token_checking_receiver(STRONG_SECRET)
    response = page_as(bob).post(f"/destinations/{destination.pk}/test/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'id="test-send-result"' in html and "<html" not in html
    assert "accepted" in html and "HTTP 200" in html
    assert "rejected" in html and "HTTP 401" in html
    first, _wrong = https_sink.wait_for(2)
    assert first.path == "/in/SAMPLE-SERIAL"
    assert first.header("X-Customer") == "sample-custom1"


@pytest.mark.django_db
def test_test_send_without_javascript_answers_the_whole_page(acme_data, bob, page_as, https_sink):
    destination = acme_data.destination
    Destination.objects.filter(pk=destination.pk).update(url=https_sink.url("/in"))
    html = page_as(bob).post(f"/destinations/{destination.pk}/test/").content.decode()
    assert "<html" in html and 'id="test-send-result"' in html
    # The sink accepts anything: the page warns that the receiver does not check tokens.
    assert "does not check the token" in html


@pytest.mark.django_db
def test_tls_check_reports_the_sinks_certificate(acme_data, bob, page_as, https_sink):
    destination = acme_data.destination
    Destination.objects.filter(pk=destination.pk).update(url=https_sink.url("/in"))
    html = page_as(bob).post(f"/destinations/{destination.pk}/tls-check/", HTTP_HX_REQUEST="true").content.decode()
    assert "accepted" in html
    assert "TLSv1.3" in html or "TLSv1.2" in html
    assert "Portal Test CA" in html


@pytest.mark.django_db
def test_tls_check_refuses_a_self_signed_server_with_a_reason(acme_data, bob, page_as, sink_factory):
    sink = sink_factory(cert="self_signed")
    destination = acme_data.destination
    Destination.objects.filter(pk=destination.pk).update(url=sink.url("/in"))
    html = page_as(bob).post(f"/destinations/{destination.pk}/tls-check/").content.decode()
    assert 'id="tls-check-report"' in html and "refused" in html
    assert "certificate" in html.lower()


@pytest.mark.django_db
def test_rotating_a_destination_secret_shows_it_and_its_whsec_once(acme_data, bob, page_as):
    destination = acme_data.destination
    response = page_as(bob).post(f"/destinations/{destination.pk}/rotate-secret/", {"grace_seconds": "0"})
    html = response.content.decode()
    new_secret = shown(html, "new-secret")
    destination.refresh_from_db()
    assert destination.secret.reveal() == new_secret != STRONG_SECRET
    assert whsec_key_bytes(shown(html, "new-whsec")) == new_secret.encode()
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_backfill_creates_deliveries_for_the_range(acme_data, bob, page_as):
    other = Destination.objects.create(tenant=acme_data.tenant, name="New one", url="https://example.org/in")
    now = timezone.now()
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    until = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = page_as(bob).post(f"/destinations/{other.pk}/backfill/", {"since": since, "until": until}, follow=True)
    assert b"1 new deliveries" in response.content
    assert Delivery.objects.filter(destination=other, message=acme_data.message).exists()


@pytest.mark.django_db
def test_backfill_until_before_since_is_an_error_beside_until(acme_data, bob, page_as):
    html = (
        page_as(bob)
        .post(
            f"/destinations/{acme_data.destination.pk}/backfill/",
            {"since": "2024-01-02T00:00", "until": "2024-01-01T00:00"},
        )
        .content.decode()
    )
    assert re.search(r'id="id_until_field".*?class="errorlist".*?after', html, re.S)


@pytest.mark.django_db
def test_disabling_and_enabling_a_destination(acme_data, bob, page_as):
    destination = acme_data.destination
    page_as(bob).post(f"/destinations/{destination.pk}/enabled/", {"enabled": "false"})
    destination.refresh_from_db()
    assert not destination.enabled
    page_as(bob).post(f"/destinations/{destination.pk}/enabled/", {"enabled": "true"})
    destination.refresh_from_db()
    assert destination.enabled


@pytest.mark.django_db
def test_ticking_enabled_in_the_edit_form_releases_what_waited_like_the_api(acme_data, bob, page_as):
    destination = acme_data.destination
    Destination.objects.filter(pk=destination.pk).update(enabled=False, disabled_at=timezone.now(), disabled_reason="x")
    Delivery.objects.filter(pk=acme_data.delivery.pk).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now() + timedelta(hours=5)
    )

    page_as(bob).post(f"/destinations/{destination.pk}/edit/", form_data(url=destination.url, enabled="on"))

    destination.refresh_from_db()
    assert destination.enabled and destination.disabled_reason == "" and destination.disabled_at is None
    delivery = Delivery.objects.get(pk=acme_data.delivery.pk)
    assert delivery.next_attempt_at == delivery.created_at


@pytest.mark.django_db
def test_unticking_enabled_in_the_edit_form_is_a_user_disabling(acme_data, bob, page_as):
    destination = acme_data.destination

    page_as(bob).post(f"/destinations/{destination.pk}/edit/", form_data(url=destination.url, enabled=""))

    destination.refresh_from_db()
    assert not destination.enabled and destination.disabled_reason == "disabled by a user"


def _snippet(html: str, name: str) -> str:
    return html_lib.unescape(re.search(rf'data-snippet="{name}">(.*?)</code>', html, re.S).group(1))


@pytest.mark.django_db
def test_the_python_receiver_snippet_accepts_a_real_delivery_and_refuses_a_wrong_token(
    acme_data, bob, page_as, https_sink, monkeypatch
):
    destination = acme_data.destination
    Destination.objects.filter(pk=destination.pk).update(url=https_sink.url("/in"), signature="both")
    page_as(bob).post(f"/destinations/{destination.pk}/test/")
    good, wrong = https_sink.wait_for(2)
    html = page_as(bob).get(f"/destinations/{destination.pk}/").content.decode()
    monkeypatch.setenv("PORTAL_DESTINATION_SECRET", STRONG_SECRET)
    for name in ("things-python", "swh-python"):
        scope: dict = {}
        exec(compile(_snippet(html, name), name, "exec"), scope)  # noqa: S102 - our own snippet, tested
        # Headers as a web framework gives them (Django's request.headers): case-insensitive.
        assert scope["is_from_portal"](good.body, CaseInsensitiveMapping(good.header_map)), name
        assert not scope["is_from_portal"](wrong.body, CaseInsensitiveMapping(wrong.header_map)), name


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
@pytest.mark.django_db
def test_the_node_receiver_snippets_accept_a_real_delivery_and_refuse_a_wrong_token(
    acme_data, bob, page_as, https_sink
):
    destination = acme_data.destination
    Destination.objects.filter(pk=destination.pk).update(url=https_sink.url("/in"), signature="both")
    page_as(bob).post(f"/destinations/{destination.pk}/test/")
    good, wrong = https_sink.wait_for(2)
    html = page_as(bob).get(f"/destinations/{destination.pk}/").content.decode()
    harness = (
        "\nprocess.stdout.write(String(isFromPortal("
        "Buffer.from(process.env.BODY_B64, 'base64'), JSON.parse(process.env.HEADERS_JSON))));"
    )
    for name in ("things-node", "swh-node"):
        for recorded, expected in ((good, "true"), (wrong, "false")):
            done = subprocess.run(
                [shutil.which("node"), "-e", _snippet(html, name) + harness],
                env={
                    "PORTAL_DESTINATION_SECRET": STRONG_SECRET,
                    "BODY_B64": base64.b64encode(recorded.body).decode(),
                    "HEADERS_JSON": json.dumps(recorded.header_map),  # Node gives header names in lower case
                },
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.stdout == expected, (name, done.stderr)
