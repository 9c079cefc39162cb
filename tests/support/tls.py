"""A test PKI made with `cryptography`: a CA and the server certificates tests need.

`TestPki.create(directory)` writes a CA and these server certificates (each a
`ServerCert` with `cert_path` and `key_path`):

- `valid`: signed by the CA, for 127.0.0.1, ::1 and localhost;
- `self_signed`: the same names, signed by its own key (no CA trusts it);
- `expired`: signed by the CA, valid names, expired yesterday;
- `wrong_host`: signed by the CA, for `wrong.example` only.

`ca_path` is the PEM file to trust (DESTINATION_CA_BUNDLE in tests). Keys are EC P-256
so they are fast to make; `issue()` makes any other certificate a test needs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_NAMES = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServerCert:
    cert_path: Path
    key_path: Path
    subject_cn: str


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portal Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass
class TestPki:
    directory: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    ca_path: Path
    valid: ServerCert
    self_signed: ServerCert
    expired: ServerCert
    wrong_host: ServerCert

    __test__ = False  # not a pytest test class

    @classmethod
    def create(cls, directory: Path) -> TestPki:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Portal Test CA"))
            .issuer_name(_name("Portal Test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        ca_path = directory / "ca.pem"
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        pki = cls.__new__(cls)
        pki.directory, pki.ca_key, pki.ca_cert, pki.ca_path = directory, ca_key, ca_cert, ca_path
        pki.valid = pki.issue("valid", LOCAL_NAMES)
        pki.self_signed = pki.issue("self-signed", LOCAL_NAMES, self_signed=True)
        pki.expired = pki.issue(
            "expired", LOCAL_NAMES, not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1)
        )
        pki.wrong_host = pki.issue("wrong-host", ("wrong.example",))
        return pki

    def issue(
        self,
        label: str,
        names: tuple[str, ...],
        *,
        self_signed: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> ServerCert:
        """A server certificate for `names`, signed by the CA (or by itself), written to files."""
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(names[0])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(hours=1))
            .not_valid_after(not_after or now + dt.timedelta(days=7))
            .add_extension(_san(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False
            )
        cert = builder.sign(key if self_signed else self.ca_key, hashes.SHA256())
        cert_path = self.directory / f"{label}.pem"
        key_path = self.directory / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return ServerCert(cert_path=cert_path, key_path=key_path, subject_cn=names[0])
