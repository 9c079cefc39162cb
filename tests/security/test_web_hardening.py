"""Web-facing hardening: login throttling, CSRF, Content-Security-Policy, self-hosted API docs."""

import re

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client: Client, email: str, password: str):
    return client.post("/accounts/login/", {"username": email, "password": password})


def test_login_is_locked_after_five_failures_even_with_the_right_password(alice, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login(client, alice.email, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    assert _login(client, alice.email, "wrong-password").status_code == 429  # the fifth failure locks
    locked = _login(client, alice.email, PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_correct_login_lands_on_the_dashboard(alice):
    client = Client()
    response = _login(client, alice.email, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_form_post_without_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    response = _login(client, alice.email, PASSWORD)
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def _script_sources(policy: str) -> list[str]:
    match = re.search(r"script-src ([^;]+)", policy)
    assert match, policy
    return match.group(1).split()


@pytest.mark.parametrize("url", ["/accounts/login/", "/api/docs/", "/admin/login/"])
def test_pages_carry_a_csp_without_inline_scripts(client, url):
    response = client.get(url)
    assert response.status_code == 200
    sources = _script_sources(response["Content-Security-Policy"])
    assert "'unsafe-inline'" not in sources
    assert "'unsafe-eval'" not in sources
    assert all(not s.startswith("http") for s in sources)


def test_the_api_docs_page_loads_everything_from_the_portal_itself(client):
    html = client.get("/api/docs/").content.decode()
    assert "<script>" not in html  # the Swagger UI config is a separate same-origin script
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert src.startswith("/"), f"{src} is not served by the portal"
    script_url = re.search(r'<script src="([^"]*\?[^"]*script[^"]*)"', html).group(1).replace("&amp;", "&")
    assert client.get(script_url).status_code == 200


def test_webhook_answers_carry_no_csp_while_pages_do(client):
    # An unknown connection's JSON 404 is enough: every /ingest/ answer is exempt.
    webhook = client.post("/ingest/00000000-0000-0000-0000-000000000000/", b"[]", content_type="application/json")
    assert webhook.status_code == 404
    assert "Content-Security-Policy" not in webhook
    assert "Content-Security-Policy" in client.get("/accounts/login/")


def test_a_report_only_policy_still_reaches_exempt_answers(client, settings):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"]}}
    webhook = client.post("/ingest/00000000-0000-0000-0000-000000000000/", b"[]", content_type="application/json")
    assert "Content-Security-Policy" not in webhook
    assert "default-src 'self'" in webhook["Content-Security-Policy-Report-Only"]
