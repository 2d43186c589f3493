"""Webhook signatures: Standard Webhooks (per-sink secrets) and Twilio's X-Twilio-Signature
(the account's auth token)."""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from opencomms.events.sinks import SECRET_PREFIX


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """One signature per live secret, space-separated: during a rotation's overlap a
    receiver holding either secret verifies."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(s, msg_id, timestamp, body) for s in secrets
        ),
    }


def twilio_signed_url(url: str, body: bytes) -> str:
    """The URL Twilio posts a JSON body to: with `bodySHA256` of the body in its query."""
    parts = urlsplit(url)
    digest = hashlib.sha256(body).hexdigest()
    query = f"{parts.query}&bodySHA256={digest}" if parts.query else f"bodySHA256={digest}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def twilio_signature(auth_token: str, signed_url: str) -> str:
    """HMAC-SHA1 of the full URL with the auth token, base64: what X-Twilio-Signature holds
    for a JSON body (no form parameters to append)."""
    digest = hmac.new(auth_token.encode(), signed_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
