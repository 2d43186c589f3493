"""Resource identifiers in Twilio's shapes.

Comms ids are a prefix plus a ULID in lower-case Crockford base32 (26 characters, the first
one 0-7), which is what the spec's patterns accept. ULIDs sort by creation time, so keyset
pagination over ids is ordered by age.
"""

import os
import secrets
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

OPERATION_PREFIX = "comms_operation_"
MESSAGE_PREFIX = "comms_message_"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid(timestamp_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return _encode(ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)


def ulids(count: int) -> list[str]:
    """Many ULIDs at once, strictly increasing, so rows of one request keep their order."""
    ms_part = _encode(int(time.time() * 1000), 10)
    base = int.from_bytes(os.urandom(10), "big") >> 20  # headroom so the counter never wraps
    return [ms_part + _encode(base + i, 16) for i in range(count)]


def operation_id() -> str:
    return OPERATION_PREFIX + ulid()


def account_sid() -> str:
    return "AC" + secrets.token_hex(16)


def api_key_sid() -> str:
    return "SK" + secrets.token_hex(16)


def new_secret() -> str:
    """A 32-hex secret: auth tokens and API key secrets look like Twilio's."""
    return secrets.token_hex(16)
