"""The conventions of Twilio's classic REST APIs (Event Streams): form-encoded bodies,
PascalCase parameters, snake_case answers, second-precision dates and page metadata."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request

from opencomms.domain import errors
from opencomms.domain.errors import Problem, ValidationFailed

FORM = "application/x-www-form-urlencoded"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid(message: str, parameter: str) -> ValidationFailed:
    return ValidationFailed([Problem(errors.INVALID_PARAMETER, message, f"$.{parameter}")])


async def form(request: Request) -> dict[str, list[str]]:
    """The form parameters of a write (an empty body is an empty form)."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != FORM:
        raise HTTPException(415, "Send the parameters form-encoded (" + FORM + ")")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as error:
        raise invalid("the body is not UTF-8", "body") from error


def one(values: dict[str, list[str]], name: str, *, required: bool = False) -> str | None:
    found = values.get(name)
    if not found:
        if required:
            raise invalid(f"{name} is required", name)
        return None
    return found[-1]


def required(values: dict[str, list[str]], name: str) -> str:
    value = one(values, name, required=True)
    assert value is not None
    return value


def page_window(page: int | None, page_size: int | None) -> tuple[int, int]:
    size = page_size or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid(f"PageSize must be between 1 and {MAX_PAGE_SIZE}", "PageSize")
    number = page or 0
    if number < 0:
        raise invalid("Page must not be negative", "Page")
    if number * size > MAX_OFFSET:  # the database's OFFSET is a 64-bit integer
        raise invalid(f"Page must be at most {MAX_OFFSET // size} at this PageSize", "Page")
    return number, size


MAX_OFFSET = 2**31  # rows skipped by a page, at most


def listing(
    key: str,
    items: list[dict[str, Any]],
    url: str,
    page: int,
    size: int,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A page of `items` fetched with one extra row, and its meta (page URLs the SDK follows)."""
    extra = dict(query or {})

    def at(number: int) -> str:
        return f"{url}?{urlencode({**extra, 'PageSize': size, 'Page': number})}"

    more = len(items) > size
    return {
        key: items[:size],
        "meta": {
            "page": page,
            "page_size": size,
            "first_page_url": at(0),
            "previous_page_url": at(page - 1) if page > 0 else None,
            "url": at(page),
            "next_page_url": at(page + 1) if more else None,
            "key": key,
        },
    }
