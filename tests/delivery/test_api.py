"""The destinations/ and deliveries/ API: fields, rules, secrets, actions and tenancy."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from django.utils import timezone

from delivery.models import Delivery, DeliveryAttempt, Destination
from portal.models import SecretAuditLog
from portal.secrets import whsec_form
from tests.delivery.conftest import SECRET, run_engine
from tests.support.sink import Answer

pytestmark = pytest.mark.django_db

URL = "/api/v1/destinations/"


def payload(url: str, **overrides) -> dict:
    data = {
        "name": "Receiver",
        "url": url,
        "secret": SECRET,
        "headers": {"X-Site": "[CUSTOM1]", "X-Static": "v"},
        "signature": "both",
    }
    data.update(overrides)
    return data


def test_create_answers_every_field_and_the_whsec_key_once_but_never_the_secret(api_as, bob, connection, https_sink):
    client = api_as(bob)
    answer = client.post(URL, payload(https_sink.url("/in?x=[SERIAL]"), connections=[str(connection.id)]))
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["whsec"] == whsec_form(SECRET)
    assert "secret" not in body and SECRET not in json.dumps(body)
    assert body["secret_set"] is True and body["secret_rotated_at"]
    assert body["headers"] == {"X-Site": "[CUSTOM1]", "X-Static": "v"}
    assert body["connections"] == [str(connection.id)]
    for name in ["method", "expected_response_code", "auth_type", "payload_format", "max_attempts", "timeout_seconds"]:
        assert name in body
    assert (body["method"], body["max_attempts"], body["timeout_seconds"], body["enabled"]) == ("POST", 3, 5, True)
    again = client.get(f"{URL}{body['id']}/").json()
    assert "whsec" not in again and SECRET not in json.dumps(again)
    assert SecretAuditLog.objects.filter(object_id=body["id"], field="secret").exists()


def test_the_create_answer_says_no_password_or_client_secret_is_set_when_none_was_given(api_as, bob):
    body = api_as(bob).post(URL, payload("https://receiver.example/in")).json()

    assert (body["auth_password_set"], body["oauth2_client_secret_set"]) == (False, False)


def test_the_create_answer_says_a_given_password_is_set(api_as, bob):
    basic = {"auth_type": "basic", "auth_username": "u", "auth_password": "pw"}
    body = api_as(bob).post(URL, payload("https://receiver.example/in", **basic)).json()

    assert body["auth_password_set"] is True


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"url": "http://receiver.example/x"}, "url", "https://"),
        ({"url": "https://receiver.example:8443/x"}, "url", "port 8443 is not allowed"),
        ({"url": "https://receiver.example/[SERIALNO]"}, "url", "unknown dynamic field"),
        ({"headers": {"Bad Name": "v"}}, "headers", "RFC 9110 token"),
        ({"headers": {"X-A\n": "v"}}, "headers", "RFC 9110 token"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "headers", "CR, LF"),
        ({"headers": {f"X-{i}": "v" for i in range(21)}}, "headers", "at most 20 headers"),
        ({"headers": {"Things-Message-Token": "x"}}, "headers", "sets this header itself"),
        ({"expected_response_code": 302}, "expected_response_code", "less than or equal to 299"),
        ({"expected_response_code": 199}, "expected_response_code", "greater than or equal to 200"),
        ({"secret": "short"}, "secret", "at least 32 characters"),
        ({"secret": "alllowercaseandlongenoughbutweak1234"}, "secret", "an upper-case letter"),
        ({"secret": None}, "secret", ""),
        ({"max_attempts": 11}, "max_attempts", "less than or equal to 10"),
        ({"timeout_seconds": 0}, "timeout_seconds", "greater than or equal to 1"),
        ({"method": "PUT"}, "method", "not a valid choice"),
        ({"auth_type": "basic", "auth_username": "u"}, "auth_password", "needs a password"),
        ({"auth_type": "oauth2"}, "oauth2_token_url", "token URL"),
    ],
)
def test_each_rule_answers_an_error_on_its_field(api_as, bob, settings, changes, field, says):
    settings.DESTINATION_ALLOWED_PORTS = [443]
    data = {**payload("https://receiver.example/in"), **changes}
    if data.get("secret") is None:
        data.pop("secret")
    answer = api_as(bob).post(URL, data)
    assert answer.status_code == 400
    errors = answer.json()
    assert field in errors, errors
    assert says in json.dumps(errors[field], ensure_ascii=False)
    assert not Destination.objects.exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "localhost", "2130706433"])
def test_non_public_hosts_are_refused_when_saved(api_as, bob, settings, host):
    settings.DESTINATION_ALLOW_PRIVATE = False
    answer = api_as(bob).post(URL, payload(f"https://{host}/in"))
    assert answer.status_code == 400 and "url" in answer.json()


def test_viewer_reads_but_cannot_write_and_outsiders_get_404(api_as, vera, charlie, make_destination):
    destination = make_destination("https://receiver.example/in")
    assert api_as(vera).get(URL).json()["results"][0]["id"] == str(destination.id)
    assert api_as(vera).post(URL, payload("https://receiver.example/in")).status_code == 403
    assert api_as(charlie).get(f"{URL}{destination.id}/").status_code == 404
    assert api_as(charlie).get(URL).json()["results"] == []
    assert api_as(charlie).post(f"{URL}{destination.id}/test/").status_code == 404


def test_headers_are_replaced_by_an_update(api_as, bob, make_destination):
    destination = make_destination("https://receiver.example/in", headers={"X-Old": "1"})
    answer = api_as(bob).patch(f"{URL}{destination.id}/", {"headers": {"X-New": "[IMEI]"}})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["headers"] == {"X-New": "[IMEI]"}


def test_rotate_secret_answers_the_generated_secret_and_whsec_once(api_as, bob, make_destination):
    destination = make_destination("https://receiver.example/in")
    answer = api_as(bob).post(f"{URL}{destination.id}/rotate-secret/", {"grace_seconds": 60}).json()
    assert answer["whsec"] == whsec_form(answer["secret"])
    destination.refresh_from_db()
    assert destination.secret.reveal() == answer["secret"]
    assert destination.previous_secret.reveal() == SECRET


def test_enabling_a_disabled_destination_releases_what_waited(api_as, bob, make_destination, make_message):
    destination = make_destination("https://receiver.example/in")
    Destination.objects.filter(pk=destination.pk).update(enabled=False, disabled_at=timezone.now(), disabled_reason="x")
    message = make_message()  # still gets a delivery: the engine disabled it, not a user
    Delivery.objects.filter(message=message).update(next_attempt_at=timezone.now() + dt.timedelta(hours=5))

    answer = api_as(bob).patch(f"{URL}{destination.id}/", {"enabled": True})

    assert answer.status_code == 200 and answer.json()["disabled_reason"] == ""
    delivery = Delivery.objects.get(message=message)
    assert delivery.next_attempt_at == delivery.created_at


# -- test send and TLS check -------------------------------------------------------------


def token_checking_receiver(sink):
    def respond(recorded):
        expected = hashlib.sha256(recorded.body + SECRET.encode()).hexdigest()
        return Answer(200) if recorded.header("Things-Message-Token") == expected else Answer(401)

    sink.responder = respond


def test_test_send_reports_that_a_token_checking_receiver_refused_the_wrong_token(
    api_as, bob, make_destination, https_sink
):
    token_checking_receiver(https_sink)
    destination = make_destination(https_sink.url("/in/[SERIAL]"), headers={"X-C1": "[CUSTOM1]"})

    answer = api_as(bob).post(f"{URL}{destination.id}/test/")

    result = answer.json()
    assert answer.status_code == 200
    assert result["ok"] is True and result["sample"]["status_code"] == 200
    assert result["wrong_token"]["status_code"] == 401 and result["wrong_token_rejected"] is True
    right, wrong = https_sink.wait_for(2)
    assert right.path == "/in/SAMPLE-SERIAL" and right.header("X-C1") == "sample-custom1"
    assert right.body == wrong.body and right.header("Things-Message-Token") != wrong.header("Things-Message-Token")
    assert not Delivery.objects.exists()


def test_test_send_reports_a_receiver_that_accepts_any_token(api_as, bob, make_destination, https_sink):
    destination = make_destination(https_sink.url("/in"))
    result = api_as(bob).post(f"{URL}{destination.id}/test/").json()
    assert result["ok"] is True and result["wrong_token_rejected"] is False


def test_tls_check_reports_version_cipher_and_certificate(api_as, bob, make_destination, https_sink, test_pki):
    destination = make_destination(https_sink.url("/in"))
    report = api_as(bob).post(f"{URL}{destination.id}/tls-check/").json()
    assert report["accepted"] is True and report["reason"] == ""
    assert report["tls_version"] in {"TLSv1.2", "TLSv1.3"} and report["cipher"]
    assert "CN=127.0.0.1" in report["subject"] and "CN=Portal Test CA" in report["issuer"]
    assert report["not_after"]


def test_tls_check_of_a_self_signed_server_says_why_and_still_describes_it(api_as, bob, make_destination, sink_factory):
    sink = sink_factory(cert="self_signed")
    destination = make_destination(sink.url("/in"))
    report = api_as(bob).post(f"{URL}{destination.id}/tls-check/").json()
    assert report["accepted"] is False and "self-signed" in report["reason"]
    assert report["subject"] == report["issuer"] and report["tls_version"]


# -- deliveries --------------------------------------------------------------------------


def test_deliveries_list_retrieve_with_attempts_and_filters(api_as, vera, make_destination, make_message, https_sink):
    destination = make_destination(https_sink.url("/in"))
    message = make_message()
    run_engine()
    client = api_as(vera)

    listed = client.get("/api/v1/deliveries/", {"destination": str(destination.id), "status": "succeeded"}).json()
    [row] = listed["results"]
    assert set(row) == {
        "id",
        "message",
        "destination",
        "status",
        "attempts_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    }
    assert row["message"] == str(message.id) and row["attempts_count"] == 1
    detail = client.get(f"/api/v1/deliveries/{row['id']}/").json()
    assert detail["attempts"][0]["status_code"] == 200 and detail["attempts"][0]["number"] == 1
    assert client.get("/api/v1/deliveries/", {"status": "failed"}).json()["results"] == []


def test_replay_reopens_the_same_delivery_and_keeps_its_attempts(
    api_as, bob, make_destination, make_message, https_sink
):
    make_destination(https_sink.url("/in"), max_attempts=1)
    https_sink.script(Answer(500))
    make_message()
    run_engine()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"

    answer = api_as(bob).post(f"/api/v1/deliveries/{delivery.id}/replay/")
    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    run_engine()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts_count) == ("succeeded", 2)
    first, second = https_sink.wait_for(2)
    assert first.header("webhook-id") is None or first.header("webhook-id") == second.header("webhook-id")
    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "success")) == [
        (1, False),
        (2, True),
    ]


def test_bulk_replay_reopens_only_what_the_filter_selects(api_as, bob, make_destination, make_message, https_sink):
    make_destination(https_sink.url("/in"), max_attempts=1, signature="standard-webhooks")
    https_sink.default = Answer(500)
    for _ in range(3):
        make_message()
    run_engine()
    https_sink.default = Answer(200)
    ok = Delivery.objects.first()
    Delivery.objects.filter(pk=ok.pk).update(status="succeeded")

    answer = api_as(bob).post("/api/v1/deliveries/replay/", {"status": "failed"})

    assert answer.json() == {"replayed": 2}
    run_engine()
    assert Delivery.objects.filter(status="succeeded").count() == 3
    ids = {r.header("webhook-id") for r in https_sink.requests}
    assert len(ids) == 3  # two series of the replayed ones share their webhook-id
    assert api_as(bob).post("/api/v1/deliveries/replay/", {}).status_code == 400


def test_backfill_sends_stored_messages_of_a_range_as_ordinary_deliveries(
    api_as, bob, make_destination, make_message, device, https_sink
):
    old = make_message()
    Delivery.objects.all().delete()
    destination = make_destination(https_sink.url("/in"))
    since = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    until = (timezone.now() + dt.timedelta(minutes=1)).isoformat()

    answer = api_as(bob).post(
        f"{URL}{destination.id}/backfill/", {"since": since, "until": until, "devices": [device.id]}
    )

    assert answer.status_code == 202 and answer.json() == {"messages": 1, "created": 1, "existing": 0}
    run_engine()
    assert Delivery.objects.get(message=old, destination=destination).status == "succeeded"
    again = api_as(bob).post(f"{URL}{destination.id}/backfill/", {"since": since, "until": until}).json()
    assert again == {"messages": 1, "created": 0, "existing": 1}
    bad = api_as(bob).post(f"{URL}{destination.id}/backfill/", {"since": until, "until": since})
    assert bad.status_code == 400 and "until" in bad.json()
