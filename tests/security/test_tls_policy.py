"""TLS policy: old protocols, bad certificates and weak suites are refused on every
outbound path; TLS 1.2 (safe suites) and TLS 1.3 are accepted.

Each server is a local sink with the test PKI (tests/support/tls.py; an RSA leaf for the
RSA key exchange case). Before judging the portal, a client that accepts anything
connects to the server to show it really offers what the case says (version or
suite), so a refusal is for the stated reason and not because the server is broken.
The three paths are a delivery by the engine, the test send and the TLS check: they
must agree.
"""

from __future__ import annotations

import ssl

import pytest

from delivery.models import Delivery
from delivery.pump import deliveries_run
from portal.models import Role
from tests.reliability.factories import destination_make, messages_make
from tests.support.faults import rsa_server_cert, tls_negotiated

pytestmark = pytest.mark.django_db

REFUSED = {
    "tls1.0-only": (
        {"tls_max_version": ssl.TLSVersion.TLSv1},
        ("TLSv1", None),
        "does not offer TLS 1.2 or higher",
    ),
    "tls1.1-only": (
        {"tls_min_version": ssl.TLSVersion.TLSv1_1, "tls_max_version": ssl.TLSVersion.TLSv1_1},
        ("TLSv1.1", None),
        "does not offer TLS 1.2 or higher",
    ),
    "self-signed": ({"cert": "self_signed"}, (None, None), "self-signed certificates are not accepted"),
    "expired": ({"cert": "expired"}, (None, None), "certificate has expired"),
    "wrong-host": ({"cert": "wrong_host"}, (None, None), "certificate is not valid for"),
    "aes-cbc-sha1-only": (
        {"tls_max_version": ssl.TLSVersion.TLSv1_2, "ciphers": "ECDHE-ECDSA-AES128-SHA"},
        ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA"),
        "none of the safe cipher suites",
    ),
    "rsa-key-exchange-only": (
        {"cert": "rsa", "tls_max_version": ssl.TLSVersion.TLSv1_2, "ciphers": "AES128-GCM-SHA256"},
        ("TLSv1.2", "AES128-GCM-SHA256"),
        "none of the safe cipher suites",
    ),
}
ACCEPTED = {
    "tls1.2-ecdhe-aes-gcm": (
        {"tls_max_version": ssl.TLSVersion.TLSv1_2, "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256"},
        "TLSv1.2",
    ),
    "tls1.3": ({"tls_min_version": ssl.TLSVersion.TLSv1_3}, "TLSv1.3"),
}


@pytest.fixture
def server(sink_factory, test_pki):
    def make(options: dict):
        options = dict(options)
        if options.get("cert") == "rsa":
            options["cert"] = rsa_server_cert(test_pki)
        return sink_factory(**options)

    return make


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_a_server_outside_the_policy_is_refused_by_delivery_test_send_and_tls_check_alike(
    case, server, acme, key_client
):
    """Pass: the server really offers what the case names; the delivery attempt fails as
    `tls` with the reason, the test send reports the same reason, the TLS check does not
    accept it and says why; the server never receives an HTTP request."""
    options, (version, cipher), reason = REFUSED[case]
    sink = server(options)
    offered = tls_negotiated(sink.host, sink.port)
    assert version is None or offered[0] == version, f"the server offers {offered}, not {version}"
    assert cipher is None or offered[1] == cipher, f"the server offers {offered}, not {cipher}"
    destination = destination_make(acme, sink.url("/tls"), max_attempts=1)
    messages_make(acme, 1, destinations=[destination])
    client = key_client(acme, Role.EDITOR)

    deliveries_run(seconds=15, idle_seconds=0.2)
    sent = client.post(f"/api/v1/destinations/{destination.pk}/test/").json()
    checked = client.post(f"/api/v1/destinations/{destination.pk}/tls-check/").json()

    [attempt] = Delivery.objects.get().attempts.all()
    assert attempt.error_class == "tls" and reason in attempt.error, attempt.error
    assert sent["ok"] is False and reason in sent["sample"]["error"], sent
    assert checked["accepted"] is False and reason in checked["reason"], checked
    assert sink.requests == []


@pytest.mark.parametrize("case", list(ACCEPTED), ids=list(ACCEPTED))
def test_tls_1_2_with_a_safe_suite_and_tls_1_3_are_accepted_on_every_path(case, server, acme, key_client):
    """Pass: the delivery succeeds, the test send is ok, the TLS check accepts and reports
    the version the server speaks."""
    options, version = ACCEPTED[case]
    sink = server(options)
    destination = destination_make(acme, sink.url("/tls"), max_attempts=1)
    messages_make(acme, 1, destinations=[destination])
    client = key_client(acme, Role.EDITOR)

    deliveries_run(seconds=15, idle_seconds=0.2)
    sent = client.post(f"/api/v1/destinations/{destination.pk}/test/").json()
    checked = client.post(f"/api/v1/destinations/{destination.pk}/tls-check/").json()

    assert Delivery.objects.get().status == "succeeded"
    assert sent["ok"] is True, sent
    assert checked["accepted"] is True and checked["tls_version"] == version, checked
    assert tls_negotiated(sink.host, sink.port)[0] == version
