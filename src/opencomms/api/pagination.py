"""Opaque keyset page tokens (decision 3): a token names the position a page starts at."""

import base64
import binascii
import re

import orjson

from opencomms.domain import errors
from opencomms.domain.errors import Problem, ValidationFailed

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_ID = re.compile(r"[A-Za-z0-9_]{1,64}")  # every id this API issues; nothing else reaches SQL


def encode(before_id: str | None) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": before_id})).decode().rstrip("=")


def decode(token: str | None) -> str | None:
    """The id a page starts after (newest first), or None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded))
        before = value["before"]
        if before is None or (isinstance(before, str) and _ID.fullmatch(before)):
            return before
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise ValidationFailed(
        [
            Problem(
                errors.INVALID_PARAMETER, "pageToken is not a token this API issued", "$.pageToken"
            )
        ]
    )


def page(before_id: str | None, ids: list[str], page_size: int) -> tuple[str, str | None]:
    """The `self` and `next` tokens of a page fetched with one extra row to see if more follow."""
    next_token = encode(ids[page_size - 1]) if len(ids) > page_size else None
    return encode(before_id), next_token
