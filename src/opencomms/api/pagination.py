"""Keyset pages (decision 3): opaque tokens naming the position a page starts at, and the
shape every list answer shares (its items, then `pagination` with `next` and `self`)."""

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol, TypeVar

import orjson
from fastapi import Depends
from pydantic import BaseModel

from opencomms.api import wire
from opencomms.api.responses import JSONResponse
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


def page_size(value: str | None) -> int:
    """The `pageSize` query parameter, checked."""
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            [
                Problem(
                    errors.INVALID_PARAMETER,
                    f"pageSize must be an integer from 1 to {MAX_PAGE_SIZE}",
                    "$.pageSize",
                )
            ]
        )
    return int(value)


class Identified(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=Identified)


@dataclass(frozen=True)
class PageRequest:
    """Which page a list request asks for: the id it starts after, and how many it shows.
    The store is asked for `limit` rows, one more than shown, to see whether more follow."""

    before: str | None = None
    size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def read(cls, token: str | None, size: str | None) -> "PageRequest":
        """From the `pageToken` and `pageSize` query parameters; a 400 for either wrong."""
        return cls(decode(token), page_size(size))

    @property
    def limit(self) -> int:
        return self.size + 1

    def shown(self, records: Sequence[R]) -> Sequence[R]:
        return records[: self.size]

    def links(self, records: Sequence[Identified]) -> wire.Pagination:
        self_token, next_token = page(self.before, [r.id for r in records], self.size)
        return wire.Pagination(next=next_token, self_=self_token)

    def answer(
        self, records: Sequence[R], body: Callable[[Sequence[R], wire.Pagination], BaseModel]
    ) -> JSONResponse:
        """The list answer: `body` makes the resource's list model of the rows shown."""
        return JSONResponse(wire.dump(body(self.shown(records), self.links(records))))


async def _page_query(pageToken: str | None = None, pageSize: str | None = None) -> PageRequest:
    return PageRequest.read(pageToken, pageSize)


# A list route's `pageToken` and `pageSize` query parameters, read and checked.
Paging = Annotated[PageRequest, Depends(_page_query)]
