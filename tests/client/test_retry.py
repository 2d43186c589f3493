"""Retries: which requests, how often, and how long the client waits (Retry-After first)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from opencomms.client import (
    NO_RETRIES,
    AsyncClient,
    Client,
    ConnectError,
    ProtocolError,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from opencomms.client._calls import Call
from opencomms.client._headers import parse_retry_after
from opencomms.client._retry import delay_after_response
from tests.client.scripted import Answer, scripted_server

SID, TOKEN = "AC" + "1" * 32, "secret"
OPERATION = {
    "id": "comms_operation_01h9krwprkeee8fzqspvwy6nq8",
    "status": "COMPLETED",
    "stats": {"total": 1, "recipients": 1, "attempts": 1, "delivered": 1},
    "createdAt": "2025-06-18T12:00:00Z",
    "updatedAt": "2025-06-18T12:00:01Z",
}
ACCEPTED = {"operationId": OPERATION["id"], "operationLocation": "http://x/v1/Messages/Operations"}
UNAVAILABLE = {"errors": [{"code": 20503, "message": "busy", "infoUrl": "u", "context": None}]}


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], retry: RetryPolicy | None = None
) -> tuple[Client, list[float]]:
    client = Client(
        SID, TOKEN, base_url="http://sdk.test", transport=httpx.MockTransport(handler), retry=retry
    )
    sleeps: list[float] = []
    client._sleep = sleeps.append
    return client, sleeps


def test_a_503_is_retried_after_the_servers_retry_after() -> None:
    busy, ok = Answer(503, UNAVAILABLE, {"Retry-After": "1"}), Answer(200, OPERATION)
    with scripted_server(busy, ok) as (url, script), Client(SID, TOKEN, base_url=url) as client:
        operation = client.get_operation(OPERATION["id"])
    assert operation.status == "COMPLETED"
    first, second = script.seen
    assert second.at - first.at >= 0.95
    assert first.path == second.path == f"/v1/Messages/Operations/{OPERATION['id']}"


async def test_a_429_on_a_send_is_retried_with_the_same_idempotency_key() -> None:
    with scripted_server(
        Answer(429, {"errors": []}, {"Retry-After": "1"}), Answer(202, ACCEPTED)
    ) as (url, script):
        async with AsyncClient(SID, TOKEN, base_url=url) as client:
            accepted = await client.send_messages(["+14155550100"], text="Hi")
    assert accepted.operation_id == OPERATION["id"]
    first, second = script.seen
    assert second.at - first.at >= 0.95
    key = first.headers["idempotency-key"]
    assert len(key) == 36 and second.headers["idempotency-key"] == key


def test_retries_are_bounded_and_then_the_error_carries_the_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[httpx.Request] = []

    def always_busy(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json=UNAVAILABLE)

    caplog.set_level("INFO", logger="opencomms.client")
    client, sleeps = mock_client(always_busy, RetryPolicy(max_retries=2, backoff_base=0.2))
    with pytest.raises(ServiceUnavailableError) as raised:
        client.get_operation(OPERATION["id"])
    assert len(calls) == 3
    assert 0.1 <= sleeps[0] <= 0.2 and 0.2 <= sleeps[1] <= 0.4  # doubling, with jitter
    assert raised.value.status_code == 503
    assert [(e.code, e.message) for e in raised.value.errors] == [(20503, "busy")]
    retried = [r.getMessage() for r in caplog.records if r.name == "opencomms.client"]
    assert len(retried) == 2 and "after HTTP 503" in retried[0]


def test_a_retry_after_beyond_the_bound_is_raised_at_once() -> None:
    calls: list[httpx.Request] = []

    def slow_down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, json={"errors": []}, headers={"Retry-After": "120"})

    client, sleeps = mock_client(slow_down, RetryPolicy(max_retry_after=30))
    with pytest.raises(RateLimitError) as raised:
        client.list_messages()
    assert len(calls) == 1 and sleeps == []
    assert raised.value.retry_after == 120


def test_errors_other_than_429_and_503_are_not_retried() -> None:
    calls: list[httpx.Request] = []
    body = {
        "errors": [
            {"code": 20422, "message": "bad size", "infoUrl": "u", "context": "$.pageSize"},
            {"code": 20422, "message": "bad date", "infoUrl": "u", "context": "$.startDate"},
        ]
    }

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json=body)

    client, _ = mock_client(refuse)
    with pytest.raises(ValidationError) as raised:
        client.list_messages(page_size=0)
    assert len(calls) == 1
    assert [e.context for e in raised.value.errors] == ["$.pageSize", "$.startDate"]
    assert "bad size ($.pageSize)" in str(raised.value)


def test_connection_errors_are_retried_then_translated() -> None:
    calls: list[httpx.Request] = []

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    client, sleeps = mock_client(refused, RetryPolicy(max_retries=2))
    with pytest.raises(ConnectError) as raised:
        client.send_messages(["+14155550100"], text="Hi")
    assert len(calls) == 3 and len(sleeps) == 2
    assert len({r.headers["idempotency-key"] for r in calls}) == 1
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_a_closed_port_is_a_connect_error() -> None:
    with scripted_server() as (url, _script):
        pass  # the server is gone: its port now refuses connections
    with Client(SID, TOKEN, base_url=url, retry=NO_RETRIES) as client, pytest.raises(ConnectError):
        client.list_operations()


def test_a_timeout_is_a_request_timeout() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = mock_client(hang, NO_RETRIES)
    with pytest.raises(RequestTimeout):
        client.get_message("comms_message_01h9krwprkeee8fzqspvwy6nq8")


def test_a_post_without_an_idempotency_key_is_never_retried() -> None:
    busy = httpx.Response(503, headers={"Retry-After": "0"})
    bare: Call[Any] = Call("POST", "/Messages", lambda r: r, 202)
    keyed: Call[Any] = Call("POST", "/Messages", lambda r: r, 202, headers={"Idempotency-Key": "k"})
    assert delay_after_response(RetryPolicy(), bare, busy, 1) is None
    assert delay_after_response(RetryPolicy(), keyed, busy, 1) == 0


def test_answers_that_break_the_contract() -> None:
    def proxy_page(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("Operations"):
            return httpx.Response(502, text="<html>bad gateway</html>")
        return httpx.Response(200, text="not json")

    client, _ = mock_client(proxy_page)
    with pytest.raises(ServerError) as raised:
        client.list_operations()
    assert raised.value.errors == [] and "HTTP 502" in str(raised.value)
    with pytest.raises(ProtocolError):
        client.get_operation(OPERATION["id"])


def test_retry_after_forms() -> None:
    now = datetime(2025, 6, 18, 12, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3
    assert parse_retry_after(" 0 ") == 0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


async def test_async_retries_use_the_same_policy() -> None:
    calls: list[httpx.Request] = []

    def busy_then_ok(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(503, headers={"Retry-After": "0"})
        return httpx.Response(200, json=OPERATION)

    client = AsyncClient(
        SID, TOKEN, base_url="http://sdk.test", transport=httpx.MockTransport(busy_then_ok)
    )
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    client._sleep = record
    async with client:
        operation = await client.get_operation(OPERATION["id"])
    assert operation.stats.delivered == 1 and slept == [0, 0] and len(calls) == 3
