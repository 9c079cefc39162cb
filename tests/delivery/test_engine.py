"""The engine against a real local HTTPS sink (test CA): what receivers get, retries,
failures, auth, TLS and the URL guard. The engine runs in this process here; the
Celery worker tests run it in a real worker."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import ssl
import threading
import uuid

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from delivery.engine import Outcome
from delivery.models import Delivery, DeliveryAttempt, Destination
from delivery.pump import RETRY_WAITS, DestinationAllowance, deliveries_claim
from delivery.request import user_agent
from portal.fields import SealedSecret
from portal.secrets import Actor, secret_rotate, whsec_form
from tests.delivery.conftest import SECRET, make_due, run_engine
from tests.support.sink import Answer

pytestmark = pytest.mark.django_db


def only_delivery() -> Delivery:
    return Delivery.objects.get()


# -- what a receiver gets --------------------------------------------------------------


def test_receiver_gets_compact_senml_with_a_token_it_can_recompute(https_sink, make_destination, make_message, device):
    destination = make_destination(https_sink.url("/things?site=[CUSTOM1]"), headers={"X-Device": "[SERIAL]"})
    message = make_message()

    run_engine()

    [got] = https_sink.wait_for(1)
    assert (got.method, got.path) == ("POST", "/things")
    assert got.query_params == {"site": ["site 7/β"]} and "site%207%2F%CE%B2" in got.query
    assert got.header("Things-Message-Token") == hashlib.sha256(got.body + SECRET.encode()).hexdigest()
    assert got.header("Things-Plug-UUID") == str(destination.id)
    assert got.header("Content-Type") == "application/json"
    assert got.header("User-Agent") == user_agent()
    assert got.header("X-Device") == "SN-001"
    assert got.header("webhook-signature") is None  # things-token only
    pack = json.loads(got.body)
    assert b" " not in got.body
    assert pack[0]["bn"] == device.urn and "bt" in pack[0]
    assert [(r["n"], r["v"]) for r in pack] == [("temperature", 21.5), ("humidity", 40)]
    delivery = only_delivery()
    assert (delivery.message_id, delivery.status, delivery.attempts_count) == (message.id, "succeeded", 1)
    [attempt] = delivery.attempts.all()
    assert (attempt.number, attempt.status_code, attempt.success, attempt.response_body) == (1, 200, True, "ok")


def test_json_format_sent_with_get_carries_the_same_body(https_sink, make_destination, make_message, device):
    make_destination(https_sink.url("/j"), method="GET", payload_format="json")
    message = make_message()

    run_engine()

    [got] = https_sink.wait_for(1)
    assert got.method == "GET"
    document = json.loads(got.body)
    assert document["message_id"] == str(message.id)
    assert document["device"]["serial"] == "SN-001" and document["device"]["id"] == device.id
    assert [r["name"] for r in document["readings"]] == ["temperature", "humidity"]


def test_standard_webhooks_signatures_verify_with_the_standard_library(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/sw"), signature="standard-webhooks")
    make_message()

    run_engine()

    [got] = https_sink.wait_for(1)
    assert got.header("webhook-id") == only_delivery().webhook_id
    Webhook(whsec_form(SECRET)).verify(got.body, got.header_map)
    assert got.header("Things-Message-Token") is None


def test_during_rotation_grace_both_secrets_sign(https_sink, make_destination, make_message):
    destination = make_destination(https_sink.url("/sw"), signature="both")
    new_secret = "N3w-Destination-Secret-0123456789!#"
    secret_rotate(obj=destination, new_secret=new_secret, grace_seconds=600, actor=Actor(label="t"))
    make_message()

    run_engine()

    [got] = https_sink.wait_for(1)
    assert len(got.header("webhook-signature").split(" ")) == 2
    Webhook(whsec_form(new_secret)).verify(got.body, got.header_map)
    Webhook(whsec_form(SECRET)).verify(got.body, got.header_map)
    assert got.header("Things-Message-Token") == hashlib.sha256(got.body + new_secret.encode()).hexdigest()


# -- retries -------------------------------------------------------------------------------


def test_500_then_200_is_retried_with_the_same_webhook_id_after_the_pinned_wait(
    https_sink, make_destination, make_message
):
    make_destination(https_sink.url("/r"), signature="both", timeout_seconds=2)
    https_sink.script(Answer(500, body=b"boom"), Answer(200))
    make_message()

    before = timezone.now()
    run_engine()
    delivery = only_delivery()
    assert (delivery.status, delivery.attempts_count, delivery.last_status_code) == ("pending", 1, 500)
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert RETRY_WAITS[0] * 0.9 <= wait <= RETRY_WAITS[0] * 1.1 + 2
    make_due(delivery)
    run_engine()

    first, second = https_sink.wait_for(2)
    assert first.header("webhook-id") == second.header("webhook-id") == delivery.webhook_id
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts_count) == ("succeeded", 2)
    attempts = list(delivery.attempts.values_list("number", "status_code", "success", "response_body"))
    assert attempts == [(1, 500, False, "boom"), (2, 200, True, "ok")]


def test_a_cookie_a_destination_sets_is_never_sent_back(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/c"))
    https_sink.script(Answer(200, headers={"Set-Cookie": "session=abc123; Path=/"}), Answer(200))

    make_message()
    run_engine()
    make_message()
    run_engine()

    first, second = https_sink.wait_for(2)
    assert first.header("cookie") is None and second.header("cookie") is None
    assert Delivery.objects.filter(status="succeeded").count() == 2


def test_after_max_attempts_the_delivery_is_failed_and_kept(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/r"), max_attempts=2)
    https_sink.default = Answer(502)
    make_message()

    run_engine()
    make_due(only_delivery())
    run_engine()

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts_count, delivery.next_attempt_at) == ("failed", 2, None)
    assert delivery.last_error == "answered 502"
    assert delivery.attempts.count() == 2


def test_retry_after_of_a_503_is_waited_at_least(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/r"))
    https_sink.script(Answer(503, headers={"Retry-After": "7200"}))
    make_message()

    before = timezone.now()
    run_engine()

    delivery = only_delivery()
    assert delivery.status == "pending"
    assert (delivery.next_attempt_at - before).total_seconds() >= 7200


def test_a_redirect_is_a_failure_and_is_not_followed(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/old"), max_attempts=1)
    https_sink.script(Answer(302, headers={"Location": https_sink.url("/new")}), path="/old")
    make_message()

    run_engine()

    delivery = only_delivery()
    assert delivery.status == "failed"
    assert "redirects are not followed" in delivery.last_error
    assert [r.path for r in https_sink.requests] == ["/old"]


def test_expected_response_code_makes_other_2xx_a_failure(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/e"), expected_response_code=201, max_attempts=1)
    make_message()

    run_engine()

    delivery = only_delivery()
    assert (delivery.status, delivery.last_error) == ("failed", "answered 200, expected 201")


def test_a_timeout_fails_the_attempt_and_the_next_one_waits_longer(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/slow"), timeout_seconds=1)
    https_sink.default = Answer(hang=True)
    make_message()

    run_engine()

    delivery = only_delivery()
    [attempt] = delivery.attempts.all()
    assert attempt.error_class == "timeout" and "within 1 s" in attempt.error
    assert delivery.status == "pending"
    # The claim query computes attempt 2's timeout as timeout_seconds * 2.
    from delivery.pump import attempt_timeout

    assert attempt_timeout(timeout_seconds=1, attempt=2) == 2
    assert attempt_timeout(timeout_seconds=20, attempt=3) == 30


# -- failures that stop a delivery or a destination -----------------------------------------


def test_an_empty_dynamic_field_fails_at_once_and_sends_nothing(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/d/[CUSTOM2]"))
    make_message()

    run_engine()

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts_count) == ("failed", 0)
    assert "[CUSTOM2]" in delivery.last_error
    assert https_sink.requests == []


def test_410_disables_the_destination_and_emails_the_tenant_admins(
    https_sink, make_destination, make_message, alice, bob, mailoutbox, django_capture_on_commit_callbacks
):
    destination = make_destination(https_sink.url("/gone"))
    https_sink.default = Answer(410)
    make_message()

    with django_capture_on_commit_callbacks(execute=True):
        run_engine()

    destination.refresh_from_db()
    assert destination.enabled is False and "410" in destination.disabled_reason
    [mail] = mailoutbox
    assert mail.to == [alice.email]  # admins only
    assert "410" in mail.body and destination.name in mail.subject
    assert SECRET not in mail.body


def test_a_day_of_failures_disables_the_destination(https_sink, make_destination, make_message):
    destination = make_destination(https_sink.url("/down"))
    Destination.objects.filter(pk=destination.pk).update(failing_since=timezone.now() - dt.timedelta(hours=25))
    https_sink.default = Answer(500)
    make_message()

    run_engine()

    destination.refresh_from_db()
    assert destination.enabled is False and "every attempt failed for 24 h" in destination.disabled_reason
    assert only_delivery().status == "pending"  # it waits for the destination to come back


def test_a_success_ends_a_run_of_failures(https_sink, make_destination, make_message):
    destination = make_destination(https_sink.url("/ok"))
    Destination.objects.filter(pk=destination.pk).update(failing_since=timezone.now() - dt.timedelta(hours=2))
    make_message()

    run_engine()

    destination.refresh_from_db()
    assert destination.failing_since is None and destination.enabled


def test_a_secret_no_key_decrypts_stops_deliveries_with_a_clear_reason(https_sink, make_destination, make_message):
    destination = make_destination(https_sink.url("/s"))
    Destination.objects.filter(pk=destination.pk).update(secret=SealedSecret("gAAAAAnot-a-valid-token"))
    make_message()

    run_engine()

    destination.refresh_from_db()
    assert destination.enabled is False and "cannot be decrypted" in destination.disabled_reason
    assert only_delivery().status == "pending" and only_delivery().attempts_count == 0
    assert https_sink.requests == []


# -- auth --------------------------------------------------------------------------------


def test_basic_auth_sends_the_credentials(https_sink, make_destination, make_message):
    make_destination(https_sink.url("/b"), auth_type="basic", auth_username="acme", auth_password="Pw-of-acme-1!")
    make_message()

    run_engine()

    [got] = https_sink.wait_for(1)
    import base64

    assert got.header("Authorization") == "Basic " + base64.b64encode(b"acme:Pw-of-acme-1!").decode()


def oauth2_server(sink, *, valid: set[str]):
    """The sink's /token endpoint issues numbered tokens; /api accepts only tokens in `valid`."""
    issued: list[str] = []

    def respond(recorded):
        if recorded.path == "/token":
            import base64

            expected = "Basic " + base64.b64encode(b"client-1:Client-Secret-1!").decode()
            if recorded.header("Authorization") != expected or b"grant_type=client_credentials" not in recorded.body:
                return Answer(401)
            token = f"tok{len(issued) + 1}"
            issued.append(token)
            return Answer(200, body=json.dumps({"access_token": token, "expires_in": 3600}).encode())
        if recorded.header("Authorization") not in {f"Bearer {t}" for t in valid}:
            return Answer(401)
        return Answer(200)

    sink.responder = respond
    return issued


def test_oauth2_token_is_fetched_once_and_reused(https_sink, make_destination, make_message):
    issued = oauth2_server(https_sink, valid={"tok1"})
    make_destination(
        https_sink.url("/api"),
        auth_type="oauth2",
        oauth2_token_url=https_sink.url("/token"),
        oauth2_client_id="client-1",
        oauth2_client_secret="Client-Secret-1!",
        oauth2_scope="write",
    )
    make_message()
    make_message()

    run_engine()

    assert issued == ["tok1"]
    assert {r.header("Authorization") for r in https_sink.requests if r.path == "/api"} == {"Bearer tok1"}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    token_request = next(r for r in https_sink.requests if r.path == "/token")
    assert b"scope=write" in token_request.body


def test_oauth2_token_refused_with_401_is_refreshed_once(https_sink, make_destination, make_message):
    issued = oauth2_server(https_sink, valid={"tok2"})
    make_destination(
        https_sink.url("/api"),
        auth_type="oauth2",
        oauth2_token_url=https_sink.url("/token"),
        oauth2_client_id="client-1",
        oauth2_client_secret="Client-Secret-1!",
    )
    make_message()

    run_engine()

    assert issued == ["tok1", "tok2"]
    assert [r.header("Authorization") for r in https_sink.requests if r.path == "/api"] == [
        "Bearer tok1",
        "Bearer tok2",
    ]
    assert only_delivery().status == "succeeded"
    assert only_delivery().attempts_count == 1


# -- TLS policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sink_options", "reason"),
    [
        ({"cert": "self_signed"}, "self-signed certificates are not accepted"),
        ({"cert": "wrong_host"}, "mismatch, certificate is not valid for"),
        ({"cert": "expired"}, "certificate has expired"),
        ({"tls_max_version": ssl.TLSVersion.TLSv1_1}, "does not offer TLS 1.2 or higher"),
        ({"tls_max_version": ssl.TLSVersion.TLSv1_2, "ciphers": "ECDHE-ECDSA-AES128-SHA"}, "safe cipher suites"),
    ],
    ids=["self-signed", "wrong-host", "expired", "tls1.1-only", "weak-cipher"],
)
def test_tls_policy_refuses_with_a_clear_reason(sink_factory, make_destination, make_message, sink_options, reason):
    sink = sink_factory(**sink_options)
    make_destination(sink.url("/t"), max_attempts=1)
    make_message()

    run_engine()

    delivery = only_delivery()
    [attempt] = delivery.attempts.all()
    assert attempt.error_class == "tls"
    assert reason in attempt.error
    assert sink.requests == []


# -- URL guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("[::1]", "loopback"),
        ("localhost", "loopback"),
        ("2130706433", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("100.64.0.1", "CGNAT"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_url_guard_refuses_non_public_addresses(
    https_sink, make_destination, make_message, destination_settings, host, why
):
    destination_settings.DESTINATION_ALLOW_PRIVATE = False
    make_destination(f"https://{host}:{https_sink.port}/x", max_attempts=1)
    make_message()

    run_engine()

    [attempt] = only_delivery().attempts.all()
    assert attempt.error_class == "url_refused"
    assert why in attempt.error
    assert https_sink.requests == []
    assert https_sink.connections_opened == 0


def test_a_port_that_is_not_allowed_is_refused_at_send_time(https_sink, make_destination, make_message, settings):
    settings.DESTINATION_ALLOWED_PORTS = [443]
    make_destination(https_sink.url("/p"), max_attempts=1)
    make_message()

    run_engine()

    assert "is not allowed" in only_delivery().last_error
    assert https_sink.requests == []


# -- isolation and concurrency -------------------------------------------------------------


def test_a_hanging_destination_does_not_hold_up_another(sink_factory, make_destination, make_message):
    hanging, healthy = sink_factory(), sink_factory()
    hanging.default = Answer(hang=True)
    make_destination(hanging.url("/hang"), timeout_seconds=3)
    make_destination(healthy.url("/ok"))
    for _ in range(5):
        make_message()

    run_engine()

    received = healthy.wait_for(5)
    hung = DeliveryAttempt.objects.filter(delivery__destination__url__contains="/hang")
    assert hung.count() == 5 and all(a.error_class == "timeout" for a in hung)
    # Every healthy receipt came while the hanging requests were still waiting.
    last_healthy = max(r.received_at for r in received)
    first_timeout = min(a.started_at.timestamp() + a.duration_ms / 1000 for a in hung)
    assert last_healthy < first_timeout


def test_a_destination_that_stops_answering_gets_one_request_at_a_time(
    sink_factory, make_destination, make_message, settings
):
    settings.DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION = 4
    hanging = sink_factory()
    hanging.default = Answer(hang=True)
    destination = make_destination(hanging.url("/hang"), timeout_seconds=1)
    for _ in range(12):
        make_message()

    # About 2-3 s: the first four time out after 1 s, then one goes out a second at a time.
    run_engine(seconds=2.5, idle_seconds=0.1)

    assert 5 <= len(hanging.requests) <= 7
    assert Delivery.objects.filter(destination=destination, attempts_count=0).count() >= 5

    # Once it answers again, everything waiting goes out.
    hanging.default = Answer()
    Delivery.objects.filter(destination=destination).update(next_attempt_at=timezone.now())
    run_engine()
    assert Delivery.objects.filter(destination=destination, status="succeeded").count() == 12


def outcome_of(*, status_code: int | None = None, error_class: str = "") -> Outcome:
    return Outcome(
        delivery_id=uuid.uuid4(),
        claim_token=None,
        started_at=timezone.now(),
        duration_ms=1,
        status_code=status_code,
        error_class=error_class,
    )


@pytest.mark.parametrize("error_class", ["timeout", "connection", "tls", "protocol"])
def test_no_answer_narrows_a_destination_to_one_and_each_answer_doubles_it_back(error_class, settings):
    settings.DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION = 16
    allowance, destination = DestinationAllowance(), uuid.uuid4()

    allowance.outcome(destination, outcome_of(error_class=error_class))
    widths = [allowance.narrowed().get(destination)]
    for _ in range(4):
        allowance.outcome(destination, outcome_of(status_code=500, error_class="status"))
        widths.append(allowance.narrowed().get(destination))

    assert widths == [1, 2, 4, 8, None]  # None: back to full width


@pytest.mark.parametrize(
    ("status_code", "error_class"), [(200, ""), (503, "status"), (None, "url_refused"), (None, "auth")]
)
def test_an_answer_or_a_refusal_of_our_own_leaves_the_width_alone(status_code, error_class):
    allowance = DestinationAllowance()

    allowance.outcome(uuid.uuid4(), outcome_of(status_code=status_code, error_class=error_class))

    assert allowance.narrowed() == {}


@pytest.mark.django_db(transaction=True)
def test_two_claimers_never_take_the_same_delivery(make_destination, make_message, https_sink):
    make_destination(https_sink.url("/c"))
    for _ in range(30):
        make_message()
    claims: list[list] = [[], []]
    start = threading.Barrier(2)

    def claim(index: int) -> None:
        from django.db import connection

        start.wait()
        try:
            while batch := deliveries_claim(limit=4):
                claims[index].extend(c.id for c in batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(claims[0]) + len(claims[1]) == 30
    assert not set(claims[0]) & set(claims[1])


def test_a_run_past_its_deadline_keeps_serving_other_destinations_while_a_hanging_one_drains(
    sink_factory, make_destination, make_message
):
    hanging, healthy = sink_factory(), sink_factory()
    hanging.default = Answer(hang=True)
    make_destination(hanging.url("/hang"), timeout_seconds=3)
    later = make_destination(healthy.url("/ok"))
    for _ in range(3):
        make_message()
    # These become due after the run's deadline, while the hanging requests are still out.
    Delivery.objects.filter(destination=later).update(next_attempt_at=timezone.now() + dt.timedelta(seconds=1))

    run_engine(seconds=0.3, idle_seconds=0.1)

    received = healthy.wait_for(3)
    hung = DeliveryAttempt.objects.filter(delivery__destination__url__contains="/hang")
    assert hung.count() == 3
    first_timeout = min(a.started_at.timestamp() + a.duration_ms / 1000 for a in hung)
    assert max(r.received_at for r in received) < first_timeout
    assert Delivery.objects.filter(destination=later, status="succeeded").count() == 3


def test_readings_of_every_kind_reach_the_receiver_as_stored(https_sink, make_destination, make_message, acme, device):
    from devices.models import Reading

    make_destination(https_sink.url("/k"))
    message = make_message(readings=[("temperature", "Cel", 20)])
    at = Reading.objects.get(message=message).time
    for name, kind, value, total in [
        ("status", "string", "ok", None),
        ("door", "boolean", True, None),
        ("raw", "data", "AQID", None),
        ("energy", "", None, 12.5),
    ]:
        Reading.objects.create(
            tenant=acme, device=device, message=message, name=name, kind=kind, value=value, sum=total, time=at
        )

    run_engine()

    [got] = https_sink.wait_for(1)
    pack = json.loads(got.body)
    assert [r.get("vs") or r.get("vb") or r.get("vd") or r.get("v") or r.get("s") for r in pack] == [
        20,
        "ok",
        True,
        "AQID",
        12.5,
    ]
