"""The bench sink's certificate authority and loopback server certificate.

Made by the same test PKI the suite uses (tests/support/tls.py), so there is one way
this project makes throwaway certificates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.tls import TestPki


@dataclass(frozen=True)
class BenchTls:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def bench_tls_create(*, directory: Path) -> BenchTls:
    """A CA (ca.pem) and a server certificate for 127.0.0.1, ::1 and localhost signed by it."""
    pki = TestPki.create(directory)
    return BenchTls(ca_pem=pki.ca_path, cert_pem=pki.valid.cert_path, key_pem=pki.valid.key_path)
