"""A real SMTP server process per test module, a self-signed certificate and a DKIM key."""

import base64
import datetime
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).parents[3]


@dataclass
class SmtpServer:
    port: int
    spool: Path

    def received(self) -> list[dict[str, Any]]:
        if not self.spool.exists():
            return []
        records = [json.loads(line) for line in self.spool.read_text().splitlines()]
        for record in records:
            record["data"] = base64.b64decode(record["data"])
        return records


@contextmanager
def smtp_server(spool: Path, *args: str) -> Iterator[SmtpServer]:
    """Runs tests/channels/smtp/server.py in its own process until the block ends."""
    command = [sys.executable, "-m", "tests.channels.smtp.server", "--spool", str(spool), *args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("READY "), f"the SMTP server did not start: {line!r}"
        yield SmtpServer(int(line.split()[1]), spool)
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    folder = tmp_path_factory.mktemp("tls")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass(frozen=True)
class DkimPair:
    private_key_path: Path
    dns_record: bytes  # the TXT record a receiver would look up


@pytest.fixture(scope="session")
def dkim_pair(tmp_path_factory: pytest.TempPathFactory) -> DkimPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "example.com.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimPair(path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))
