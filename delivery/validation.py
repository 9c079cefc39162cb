"""The rules a destination's fields must meet when saved (SPEC section 7), one function
per rule, each answering sentences a user can act on. The API serializer, the admin
form and the portal's forms all use these; the engine checks the URL again at send
time (delivery/http.py), since dynamic fields and DNS can change what a URL means.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from django.conf import settings

from delivery.dynamic_fields import fields_fill_sample, unknown_placeholders
from delivery.http import address_refusal
from delivery.models import Destination

MAX_HEADERS = 20
# RFC 9110 section 5.6.2: token = 1*tchar.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Headers the portal sets itself; a static header may not replace them.
RESERVED_HEADERS = {
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "user-agent",
    "things-message-token",
    "things-plug-uuid",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}
# What each auth type needs: the start of its sentence, then each field and how it is called.
AUTH_NEEDS = {
    Destination.AuthType.BASIC: (
        "Basic auth needs",
        (("auth_username", "a user name"), ("auth_password", "a password")),
    ),
    Destination.AuthType.OAUTH2: (
        "OAuth2 client credentials need",
        (
            ("oauth2_token_url", "a token URL"),
            ("oauth2_client_id", "a client id"),
            ("oauth2_client_secret", "a client secret"),
        ),
    ),
}
AUTH_FIELDS = tuple(name for _, needs in AUTH_NEEDS.values() for name, _ in needs)


def _numeric_host_refusal(host: str) -> str | None:
    """Refuse hosts written as numbers other than the plain dotted or IPv6 forms."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None:
        try:
            socket.inet_aton(host)
        except OSError:
            return None
        return "write an IPv4 address in its dotted decimal form (a.b.c.d)"
    if settings.DESTINATION_ALLOW_PRIVATE:
        return None
    reason = address_refusal(str(ip))
    return f"{host} is {reason}; destinations must be public" if reason else None


def url_errors(url: str, *, what: str = "URL") -> list[str]:
    """What is wrong with a destination (or token endpoint) URL, dynamic fields allowed."""
    errors = []
    unknown = unknown_placeholders(url)
    if unknown:
        errors.append("unknown dynamic field " + ", ".join(f"[{u}]" for u in unknown))
    if any(c in url for c in "\r\n\t ") or any(ord(c) < 32 for c in url):
        return [*errors, f"the {what} may not hold white space or control characters"]
    filled = fields_fill_sample(url, url=True)
    parts = urlsplit(filled)
    if parts.scheme.lower() != "https":
        return [*errors, f"the {what} must start with https://"]
    if parts.username is not None or parts.password is not None:
        errors.append("put credentials in basic auth, not in the URL")
    try:
        port = parts.port or 443
    except ValueError:
        return [*errors, "the port must be a number"]
    if port not in settings.DESTINATION_ALLOWED_PORTS:
        allowed = ", ".join(str(p) for p in settings.DESTINATION_ALLOWED_PORTS)
        errors.append(f"port {port} is not allowed (allowed: {allowed})")
    host = parts.hostname or ""
    if not host:
        return [*errors, f"the {what} has no host"]
    if parts.fragment:
        errors.append(f"the {what} may not have a #fragment")
    refusal = _numeric_host_refusal(host)
    # A trailing dot names the same host (the absolute DNS form): "localhost." is localhost.
    bare = host.rstrip(".")
    if refusal:
        errors.append(refusal)
    elif not settings.DESTINATION_ALLOW_PRIVATE and (bare == "localhost" or bare.endswith(".localhost")):
        errors.append(f"{host} is a loopback address; destinations must be public")
    return errors


def header_errors(headers) -> dict[str, list[str]] | list[str]:
    """Errors per header name (or overall) for a headers object."""
    if not isinstance(headers, dict):
        return ["headers must be an object of name: value"]
    if len(headers) > MAX_HEADERS:
        return [f"at most {MAX_HEADERS} headers (there are {len(headers)})"]
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        problems = []
        if not TOKEN.match(name):
            problems.append("a header name is an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~, no white space")
        if name.lower() in RESERVED_HEADERS:
            problems.append("the portal sets this header itself")
        if name.lower() in seen:
            problems.append("the same header name twice (names are case-insensitive)")
        seen.add(name.lower())
        if not isinstance(value, str):
            problems.append("the value must be a string")
        else:
            if any(c in value for c in "\r\n\x00"):
                problems.append("the value may not hold CR, LF or NUL")
            unknown = unknown_placeholders(value)
            if unknown:
                problems.append("unknown dynamic field " + ", ".join(f"[{u}]" for u in unknown))
            if len(value) > 2000:
                problems.append("at most 2000 characters")
        if problems:
            errors[name] = problems
    return errors


def auth_errors(*, auth_type: str | None, values: Mapping[str, object]) -> dict[str, list[str]]:
    """Errors per field when the auth type lacks what it needs.

    `values` holds what each of AUTH_FIELDS will be once saved (a write-only secret
    already stored counts); an empty or missing value is lacking.
    """
    if auth_type not in AUTH_NEEDS:
        return {}
    lead, needs = AUTH_NEEDS[auth_type]
    return {name: [f"{lead} {what}."] for name, what in needs if not values.get(name)}


def authorization_header_errors(*, auth_type: str | None, header_names: Iterable[str]) -> list[str]:
    """A static Authorization header would clash with the one an auth type sets."""
    if auth_type and auth_type != Destination.AuthType.NONE and any(n.lower() == "authorization" for n in header_names):
        return ["Authorization is set by the auth type; remove it from the headers."]
    return []
