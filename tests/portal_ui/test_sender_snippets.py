"""The sender snippets on a connection's page, run as they are shown, against the live server.

Each snippet is taken from the rendered page and run in a new Python (or Node.js)
process with the connection's secret in the environment: the ingest endpoint must
verify its request and store the message. A snippet that signs wrongly fails here.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess
import sys

import pytest
from django.test import Client

from devices.models import Device
from ingest.models import AuthMode, Connection, ConnectionKind, Message
from portal.secrets import Actor, secret_set
from tests.portal_ui.conftest import STRONG_SECRET

NODE = shutil.which("node")


def _snippets(client: Client, connection: Connection) -> dict[str, str]:
    page = client.get(f"/connections/{connection.pk}/").content.decode()
    found = re.findall(r"<summary>(Python|Node\.js)</summary><pre><code>(.*?)</code></pre>", page, re.S)
    return {language: html_lib.unescape(code) for language, code in found}


def _run(language: str, code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code] if language == "Python" else [NODE, "-e", code]
    return subprocess.run(command, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60)


def _connection(tenant, kind: str, **fields) -> Connection:
    connection = Connection.objects.create(tenant=tenant, name=f"{kind} sender", kind=kind, **fields)
    secret_set(obj=connection, field="secret", value=STRONG_SECRET, actor=Actor())
    return connection


@pytest.fixture
def live_portal(live_server, settings):
    settings.PORTAL_BASE_URL = live_server.url
    return live_server


LANGUAGES = ["Python", pytest.param("Node.js", marks=pytest.mark.skipif(NODE is None, reason="no node"))]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", [ConnectionKind.KPN_THINGS, ConnectionKind.STANDARD_WEBHOOKS])
def test_the_signed_sender_snippet_is_accepted_by_the_ingest_endpoint(kind, language, acme, bob, live_portal):
    connection = _connection(acme, kind)
    client = Client()
    client.force_login(bob)
    code = _snippets(client, connection)[language]
    done = _run(language, code, {"PORTAL_CONNECTION_SECRET": STRONG_SECRET})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("200"), done.stdout
    message = Message.objects.get(connection=connection)
    assert message.status == Message.Status.ACCEPTED and message.readings_count == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_sender_snippet_with_a_wrong_secret_is_refused(language, acme, bob, live_portal):
    connection = _connection(acme, ConnectionKind.KPN_THINGS)
    client = Client()
    client.force_login(bob)
    done = _run(
        language, _snippets(client, connection)[language], {"PORTAL_CONNECTION_SECRET": "Wrong-" + STRONG_SECRET}
    )
    assert done.returncode != 0 or done.stdout.startswith("401")
    assert not Message.objects.filter(connection=connection).exists()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_digital_matter_snippets_are_accepted(language, acme, bob, live_portal):
    basic = _connection(acme, ConnectionKind.DIGITAL_MATTER, username="oem", auth_mode=AuthMode.BASIC)
    keyed = Connection.objects.create(
        tenant=acme, name="dm keys", kind=ConnectionKind.DIGITAL_MATTER, auth_mode=AuthMode.DEVICE_KEY
    )
    device = Device.objects.create(tenant=acme, serial="123456", urn="urn:dev:SERIAL:123456:")
    secret_set(obj=device, field="auth_key", value="device-key-0123456789", actor=Actor())
    client = Client()
    client.force_login(bob)
    done = _run(language, _snippets(client, basic)[language], {"PORTAL_CONNECTION_SECRET": STRONG_SECRET})
    assert done.stdout.startswith("200"), done.stdout + done.stderr
    done = _run(language, _snippets(client, keyed)[language], {"PORTAL_DEVICE_KEY": "device-key-0123456789"})
    assert done.stdout.startswith("200"), done.stdout + done.stderr
    assert Message.objects.filter(connection__in=[basic, keyed], status=Message.Status.ACCEPTED).count() == 2
