"""The rules a connection's fields must meet when saved, each answering sentences a user
can act on. The API serializer, the portal's connection form and the admin form call
these, so a rule and its wording live in one place.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from ingest.kinds import KINDS
from ingest.models import AuthMode, ConnectionKind
from portal.secrets import validate_secret_strength

# RFC 9110 token: what a header name may be.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def device_key_header_errors(value: str) -> list[str]:
    """What is wrong with the name of the header that carries a device's key."""
    if HEADER_NAME.match(value):
        return []
    return ["Must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)."]


def connection_secret_errors(*, kind: str, secret: str) -> list[str]:
    """What is wrong with a new shared secret; a Standard Webhooks connection also takes a whsec_ key."""
    try:
        validate_secret_strength(secret, allow_whsec=KINDS[kind].accepts_whsec)
    except ValidationError as exc:
        return exc.messages
    return []


def connection_errors(
    *, kind: str | None, auth_mode: str | None, username: str | None, plug_uuid: object, secret: str | None = None
) -> dict[str, list[str]]:
    """Errors per field of a connection's settings taken together (the values it will have once saved).

    A `kind` that is not valid itself (the caller reports that) checks nothing, since
    every rule here depends on it.
    """
    if kind not in KINDS:
        return {}
    errors: dict[str, list[str]] = {}
    if secret:
        problems = connection_secret_errors(kind=kind, secret=secret)
        if problems:
            errors["secret"] = problems
    if kind == ConnectionKind.DIGITAL_MATTER and auth_mode == AuthMode.BASIC and not username:
        errors["username"] = ["Required for HTTP Basic: the user name the sender sends."]
    if kind != ConnectionKind.KPN_THINGS and plug_uuid:
        errors["plug_uuid"] = ["Only KPN Things connections check Things-Plug-UUID."]
    return errors
