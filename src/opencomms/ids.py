"""Resource identifiers in Twilio's shapes.

Comms ids are a prefix plus a ULID in lower-case Crockford base32 (26 characters, the first
one 0-7), which is what the spec's patterns accept. ULIDs sort by creation time, so keyset
pagination over ids is ordered by age.
"""

import os
import re
import secrets
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# Every pair of characters: 10 bits of a counter in one lookup.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_COUNTER_BITS = 20

OPERATION_PREFIX = "comms_operation_"
MESSAGE_PREFIX = "comms_message_"
EMAIL_PREFIX = "comms_email_"


def prefix_range(prefix: str) -> tuple[str, str]:
    """The ids starting with `prefix` are those in [low, high): an index range, not a LIKE."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


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
    if count > 1 << _COUNTER_BITS:
        raise ValueError(f"at most {1 << _COUNTER_BITS} ids at once")
    # 60 random bits shared by the batch, then a 20-bit counter: 16 characters in all.
    head = _encode(int(time.time() * 1000), 10)
    head += _encode(int.from_bytes(os.urandom(8), "big") >> 4, 12)
    return _counted(head, range(count))


def _counted(head: str, counters: range) -> list[str]:
    """`head` followed by each counter, 4 characters (the tail of every `ulids` id)."""
    return [head + _PAIRS[i >> 10] + _PAIRS[i & 1023] for i in counters]


_PAIR_VALUES = {pair: i for i, pair in enumerate(_PAIRS)}
_COUNTER_CHARS = 4


def _counter(value: str) -> int:
    tail = value[-_COUNTER_CHARS:]
    return _PAIR_VALUES[tail[:2]] << 10 | _PAIR_VALUES[tail[2:]]


def is_run(values: list[str]) -> bool:
    """True when `values` (strictly increasing, as `ulids` makes them, under any one prefix)
    are consecutive ids of one `ulids` batch: `ulid_run(values[0], len(values))` remakes them."""
    if not values:
        return False
    first, last = values[0], values[-1]
    try:
        return (
            len(first) == len(last)
            and first[:-_COUNTER_CHARS] == last[:-_COUNTER_CHARS]
            and _counter(last) - _counter(first) == len(values) - 1
        )
    except KeyError:  # not ids of `ulids`' shape
        return False


def ulid_run(first: str, count: int) -> list[str]:
    """`count` ids of `first`'s `ulids` batch from `first` on: what `is_run` vouched for."""
    start = _counter(first)
    if start + count > 1 << _COUNTER_BITS:
        raise ValueError("the run passes the end of its batch")
    return _counted(first[:-_COUNTER_CHARS], range(start, start + count))


def operation_id() -> str:
    return OPERATION_PREFIX + ulid()


def account_sid() -> str:
    return "AC" + secrets.token_hex(16)


def api_key_sid() -> str:
    return "SK" + secrets.token_hex(16)


def new_secret() -> str:
    """A 32-hex secret: auth tokens and API key secrets look like Twilio's."""
    return secrets.token_hex(16)


def is_well_formed(value: str, prefix: str) -> bool:
    """True for an id of the spec's shape with this prefix, exactly (the spec's own patterns
    are unanchored at the end, so they let any tail through)."""
    return value.startswith(prefix) and _ID_TAIL.fullmatch(value, len(prefix)) is not None


_ID_TAIL = re.compile(r"[0-7][a-hjkmnpqrstv-z0-9]{25,34}")
