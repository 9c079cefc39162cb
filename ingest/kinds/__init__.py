"""The registry of connection kinds: adding a kind is one module and one line here."""

from __future__ import annotations

from ingest.kinds.base import Inbound, Kind, Verified, decode_json
from ingest.kinds.digital_matter import DigitalMatter
from ingest.kinds.kpn_things import KpnThings
from ingest.kinds.standard_webhooks import StandardWebhooks

KINDS: dict[str, Kind] = {kind.slug: kind for kind in (KpnThings(), DigitalMatter(), StandardWebhooks())}


def kind_for(connection) -> Kind:
    return KINDS[connection.kind]


__all__ = ["KINDS", "Inbound", "Kind", "Verified", "decode_json", "kind_for"]
