"""Every API call as data: what to send and how to read the answer.

`Client` and `AsyncClient` share these, so the two differ only in how they wait for I/O.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar, Unpack
from urllib.parse import quote, urlsplit

import httpx
import pydantic

from opencomms.client._errors import ErrorDetail, ProtocolError, error_class
from opencomms.client._models import (
    Accepted,
    Message,
    MessageOperation,
    MessageSummary,
    Model,
    Page,
    SandboxMessage,
)

T = TypeVar("T")
M = TypeVar("M", bound=Model)

# Methods a server may receive twice without harm (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    expect: int = 200
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def retry_safe(self) -> bool:
        """Whether sending this request twice cannot do the work twice."""
        return self.method in IDEMPOTENT_METHODS or IDEMPOTENCY_HEADER in self.headers


def raise_for_status(response: httpx.Response, expect: int) -> None:
    if response.status_code == expect:
        return
    request = response.request
    raise error_class(response.status_code)(
        response.status_code,
        _error_list(response),
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def _error_list(response: httpx.Response) -> list[ErrorDetail]:
    try:
        body = response.json()
    except ValueError:
        return []
    items = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return []
    return [ErrorDetail.from_wire(item) for item in items if isinstance(item, dict)]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise ProtocolError(f"the answer to {response.request.url} is not JSON") from error


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.from_wire(data)
    except pydantic.ValidationError as error:
        raise ProtocolError(f"the answer is not a {model.__name__}: {error}") from error


def _one(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: _validate(model, _json(response))


def _page(key: str, model: type[M], token: str | None) -> Callable[[httpx.Response], Page[M]]:
    def read(response: httpx.Response) -> Page[M]:
        body = _json(response)
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise ProtocolError(f"the answer has no '{key}' list")
        pagination = body.get("pagination") or {}
        return Page(
            items=[_validate(model, item) for item in body[key]],
            next_page_token=pagination.get("next"),
            page_token=token,
        )

    return read


def _nothing(_response: httpx.Response) -> None:
    return None


def _location_id(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise ProtocolError("the seek answer has no Location")
    return str(urlsplit(location).path).rstrip("/").rsplit("/", 1)[-1]


def _segment(value: str) -> str:
    return quote(value, safe="")


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def tags_filter(tags: Mapping[str, str] | str | None) -> str | None:
    """The spec's `key:value;key2:value2;` form of a tags filter."""
    if tags is None or isinstance(tags, str):
        return tags
    return "".join(f"{key}:{value};" for key, value in tags.items())


class MessageFilters(TypedDict, total=False):
    """The filters of ListMessages (None leaves one out); dates are datetimes or RFC 3339."""

    operation_id: str | None
    session_id: str | None
    start_date: datetime | str | None
    end_date: datetime | str | None
    profile: str | None
    channel: str | None
    status: str | None
    tags: Mapping[str, str] | str | None


class OperationFilters(TypedDict, total=False):
    """The filters of ListMessageOperations."""

    start_date: datetime | str | None
    end_date: datetime | str | None
    status: str | None


class SandboxFilters(TypedDict, total=False):
    """The filters of the sandbox inbox: a recipient's address, an operation, a channel."""

    to: str | None
    operation_id: str | None
    channel: str | None


class MessageIterArgs(MessageFilters, total=False):
    page_size: int | None


class MessageListArgs(MessageIterArgs, total=False):
    page_token: str | None


class OperationIterArgs(OperationFilters, total=False):
    page_size: int | None


class OperationListArgs(OperationIterArgs, total=False):
    page_token: str | None


class SandboxIterArgs(SandboxFilters, total=False):
    page_size: int | None


class SandboxListArgs(SandboxIterArgs, total=False):
    page_token: str | None


def _params(**values: object) -> dict[str, str]:
    return {key: str(value) for key, value in values.items() if value is not None}


def send(body: dict[str, Any], idempotency_key: str) -> Call[Accepted]:
    headers = {IDEMPOTENCY_HEADER: idempotency_key}
    return Call("POST", "/Messages", _one(Accepted), 202, json=body, headers=headers)


def list_messages(**args: Unpack[MessageListArgs]) -> Call[Page[MessageSummary]]:
    token = args.get("page_token")
    params = _params(
        operationId=args.get("operation_id"),
        sessionId=args.get("session_id"),
        startDate=_time(args.get("start_date")),
        endDate=_time(args.get("end_date")),
        profile=args.get("profile"),
        channel=args.get("channel"),
        status=args.get("status"),
        tags=tags_filter(args.get("tags")),
        pageSize=args.get("page_size"),
        pageToken=token,
    )
    return Call("GET", "/Messages", _page("messages", MessageSummary, token), params=params)


def get_message(message_id: str) -> Call[Message]:
    return Call("GET", f"/Messages/{_segment(message_id)}", _one(Message))


def seek(identifier: str) -> Call[str]:
    return Call("GET", f"/Messages/Seek/{_segment(identifier)}", _location_id, 301)


def list_operations(**args: Unpack[OperationListArgs]) -> Call[Page[MessageOperation]]:
    token = args.get("page_token")
    params = _params(
        startDate=_time(args.get("start_date")),
        endDate=_time(args.get("end_date")),
        status=args.get("status"),
        pageSize=args.get("page_size"),
        pageToken=token,
    )
    read = _page("operations", MessageOperation, token)
    return Call("GET", "/Messages/Operations", read, params=params)


def get_operation(operation_id: str) -> Call[MessageOperation]:
    return Call("GET", f"/Messages/Operations/{_segment(operation_id)}", _one(MessageOperation))


def cancel(operation_id: str, idempotency_key: str) -> Call[Accepted]:
    path = f"/Messages/Operations/{_segment(operation_id)}/Cancel"
    headers = {IDEMPOTENCY_HEADER: idempotency_key}
    return Call("POST", path, _one(Accepted), 202, headers=headers)


def list_sandbox_messages(**args: Unpack[SandboxListArgs]) -> Call[Page[SandboxMessage]]:
    token = args.get("page_token")
    params = _params(
        to=args.get("to"),
        operationId=args.get("operation_id"),
        channel=args.get("channel"),
        pageSize=args.get("page_size"),
        pageToken=token,
    )
    read = _page("messages", SandboxMessage, token)
    return Call("GET", "/Sandbox/Messages", read, params=params)


def clear_sandbox_messages(*, to: str | None = None, operation_id: str | None = None) -> Call[None]:
    params = _params(to=to, operationId=operation_id)
    return Call("DELETE", "/Sandbox/Messages", _nothing, 204, params=params)


def inbound(*, from_: str, to: str, text: str, channel: str, idempotency_key: str) -> Call[Message]:
    body = {
        "from": {"address": from_, "channel": "PHONE"},
        "to": {"address": to, "channel": channel},
        "content": {"text": text},
    }
    headers = {IDEMPOTENCY_HEADER: idempotency_key}
    return Call("POST", "/Sandbox/Inbound", _one(Message), 201, json=body, headers=headers)
