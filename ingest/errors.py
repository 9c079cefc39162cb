"""What can go wrong with an inbound request, each mapped to one answer by the view."""

from __future__ import annotations


class NotAuthentic(Exception):
    """Bad or missing token, signature or credentials (401). Never holds a secret or a token."""


class NotJson(Exception):
    """The body is not JSON (400), or is declared as something else (415)."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


class InvalidPack(ValueError):
    """Authentic JSON that is not a valid pack (422); the message is kept `invalid` with this reason."""


class ConnectionChanged(Exception):
    """The connection's row changed after ingest read it (nothing was stored): read it again and start over."""
