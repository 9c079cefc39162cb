"""The shared test helpers themselves: the test PKI and the recording HTTPS sink."""

import ssl

import httpx
import pytest

from tests.support.sink import Answer


def test_sink_records_a_request_and_answers_as_scripted(https_sink, test_pki):
    https_sink.script(Answer(503, headers={"Retry-After": "7"}), Answer(201))
    with httpx.Client(verify=ssl.create_default_context(cafile=str(test_pki.ca_path))) as client:
        first = client.post(https_sink.url("/hook?a=1"), content=b'{"x":1}', headers={"X-Test": "yes"})
        second = client.get(https_sink.url("/hook"))
        third = client.get(https_sink.url("/hook"))
    assert (first.status_code, first.headers["retry-after"]) == (503, "7")
    assert (second.status_code, third.status_code) == (201, 200)
    recorded = https_sink.wait_for(3)[0]
    assert (recorded.method, recorded.path, recorded.query, recorded.body) == ("POST", "/hook", "a=1", b'{"x":1}')
    assert recorded.header("x-test") == "yes"
    assert https_sink.connections_opened == 1  # keep-alive


def test_self_signed_certificate_is_not_trusted_by_the_test_ca(sink_factory, test_pki):
    sink = sink_factory(cert="self_signed")
    with (
        httpx.Client(verify=ssl.create_default_context(cafile=str(test_pki.ca_path))) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(sink.url())
