"""DKIM signatures (RFC 6376) for the domains a route has keys for, with dkimpy."""

from dataclasses import dataclass
from pathlib import Path

import dkim

from opencomms.channels.smtp.config import DkimKey

# What the signature covers: the headers a forger would change. Each is signed even when
# absent, so one cannot be added later without breaking the signature.
SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post", b"reply-to", b"cc",
)  # fmt: skip


class DkimKeyError(ValueError):
    """A configured key file is missing or is not a PEM private key."""


@dataclass(frozen=True)
class Signer:
    domain: str
    selector: str
    private_key: bytes

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header in front."""
        header: bytes = dkim.sign(
            message,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return header + message


def load_signers(keys: dict[str, DkimKey]) -> dict[str, Signer]:
    """One signer per sender domain (lower case), keys read once at start."""
    signers = {}
    for domain, key in keys.items():
        signers[domain.lower()] = Signer(domain.lower(), key.selector, _read(key.private_key_path))
    return signers


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DkimKeyError(f"cannot read the DKIM key {path}: {error}") from error
    if b"PRIVATE KEY-----" not in data:
        raise DkimKeyError(f"{path} is not a PEM private key")
    return data
