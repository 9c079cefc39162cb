"""Structured logs: one JSON object a line, with the context of the work being done.

Every line carries the context bound for the current request or task (`request_id`,
`tenant_id`, `connection_id`, `destination_id`, `delivery_id`, `message_id`), so one
message can be followed from its ingest request to each of its deliveries.

Nothing secret is written: fields whose names look like secrets, tokens, credentials
or bodies are replaced by "[redacted]", whatever a caller passes in `extra=`.

This module imports nothing from Django at import time: gunicorn's master and the
logging configuration load it before Django is set up.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

# The context fields, in the order they appear in a line.
CONTEXT_FIELDS = ("request_id", "tenant_id", "connection_id", "destination_id", "delivery_id", "message_id")

# Never mutated in place: every change sets a new dict, so copies made by asyncio tasks stay apart.
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("portal_log_context", default=None)

# Attributes every LogRecord has; anything else was passed in `extra=` and is kept.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

# Names of `extra=` fields that must never reach a log line, whatever their value.
_SECRET_NAME = re.compile(
    r"secret|token|passw|authori[sz]ation|credential|cookie|signature|^key$|_key$|^body$|_body$|^payload$|^headers$",
    re.IGNORECASE,
)
# A request id we accept from outside: short, and only characters that are safe in a log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

REDACTED = "[redacted]"


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_clean(value: str | None) -> str | None:
    """The caller's X-Request-ID when it is safe to keep, else None."""
    if value and _REQUEST_ID.match(value):
        return value
    return None


def context_get() -> dict[str, str]:
    return dict(_context.get() or {})


def context_bind(**fields: object) -> None:
    """Add fields to the context of the current request or task (None removes one)."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context fields: {sorted(unknown)}")
    current = dict(_context.get() or {})
    for name, value in fields.items():
        if value is None or value == "":
            current.pop(name, None)
        else:
            current[name] = str(value)
    _context.set(current)


def context_clear() -> None:
    _context.set({})


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind fields for the duration of a block, then put the previous context back."""
    token = _context.set(dict(_context.get() or {}))
    try:
        context_bind(**fields)
        yield
    finally:
        _context.reset(token)


def _scrub(name: str, value: object) -> object:
    if _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): _scrub(str(k), v) for k, v in value.items()}
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get() or {}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value:
                entry[name] = value
        for key, value in vars(record).items():
            if key in entry or key in CONTEXT_FIELDS or key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            if key == "request":
                # Django's request loggers pass the HttpRequest: its method and path only.
                entry["method"] = getattr(value, "method", None)
                entry["path"] = getattr(value, "path", None)
                # Django logs 4xx/5xx answers after the middleware has left: the id is on the request.
                if getattr(value, "request_id", None):
                    entry.setdefault("request_id", value.request_id)
                continue
            entry[key] = _scrub(key, value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The development format, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or (_context.get() or {}).get("request_id")
        return f"{line} [{request_id}]" if request_id else line
