"""delivery/validation.py's auth rules: one set, answered alike by the API and the portal form."""

from __future__ import annotations

import pytest
from django.test import Client

from delivery.validation import AUTH_FIELDS, auth_errors, authorization_header_errors
from tests.delivery.conftest import SECRET

NOTHING = dict.fromkeys(AUTH_FIELDS, "")


def test_basic_auth_needs_a_user_name_and_a_password():
    assert auth_errors(auth_type="basic", values=NOTHING) == {
        "auth_username": ["Basic auth needs a user name."],
        "auth_password": ["Basic auth needs a password."],
    }
    assert auth_errors(auth_type="basic", values={**NOTHING, "auth_username": "u", "auth_password": True}) == {}


def test_oauth2_needs_a_token_url_a_client_id_and_a_client_secret():
    assert auth_errors(auth_type="oauth2", values={**NOTHING, "oauth2_client_id": "c"}) == {
        "oauth2_token_url": ["OAuth2 client credentials need a token URL."],
        "oauth2_client_secret": ["OAuth2 client credentials need a client secret."],
    }


def test_no_auth_needs_nothing():
    assert auth_errors(auth_type="none", values=NOTHING) == {}
    assert auth_errors(auth_type=None, values=NOTHING) == {}


def test_an_authorization_header_clashes_with_any_auth_type_but_none():
    clash = ["Authorization is set by the auth type; remove it from the headers."]
    assert authorization_header_errors(auth_type="oauth2", header_names=["X-A", "authorization"]) == clash
    assert authorization_header_errors(auth_type="none", header_names=["Authorization"]) == []
    assert authorization_header_errors(auth_type="basic", header_names=["X-Authorization"]) == []


def _portal_form_data(**fields) -> dict:
    return {
        "name": "R",
        "url": "https://receiver.example.com/in",
        "method": "POST",
        "signature": "things-token",
        "payload_format": "senml",
        "max_attempts": "3",
        "timeout_seconds": "5",
        "headers-TOTAL_FORMS": "0",
        "headers-INITIAL_FORMS": "0",
        **fields,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"auth_type": "basic"},
        {"auth_type": "basic", "auth_username": "u"},
        {"auth_type": "oauth2", "oauth2_client_id": "c"},
        {"auth_type": "oauth2", "oauth2_token_url": "https://auth.example.com/token"},
    ],
)
def test_the_api_and_the_portal_form_answer_the_same_words(bob, api_as, fields):
    api = api_as(bob).post(
        "/api/v1/destinations/",
        {"name": "R", "url": "https://receiver.example.com/in", "secret": SECRET, **fields},
        format="json",
    )
    page = Client()
    page.force_login(bob)
    form = page.post("/destinations/new/", _portal_form_data(**fields)).context["form"]
    assert api.status_code == 400
    assert api.json() == {name: list(errors) for name, errors in form.errors.items()}


@pytest.mark.django_db
def test_the_api_and_the_portal_both_refuse_an_authorization_header_beside_basic_auth(bob, api_as):
    auth = {"auth_type": "basic", "auth_username": "u", "auth_password": "p"}
    api = api_as(bob).post(
        "/api/v1/destinations/",
        {"name": "R", "url": "https://receiver.example.com/in", "secret": SECRET, "headers": {"Authorization": "x"}}
        | auth,
        format="json",
    )
    page = Client()
    page.force_login(bob)
    headers = {"headers-TOTAL_FORMS": "1", "headers-0-name": "Authorization", "headers-0-value": "x"}
    formset = page.post("/destinations/new/", _portal_form_data(**auth, **headers)).context["headers"]
    assert api.json() == {"headers": formset.errors[0]["name"]}
