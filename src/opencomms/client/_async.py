"""`AsyncClient`: the API over asyncio HTTP, method for method like `Client`."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from opencomms.client import _calls as calls
from opencomms.client import _core as core
from opencomms.client._calls import Call
from opencomms.client._config import ClientConfig
from opencomms.client._inputs import RecipientLike, SenderLike, send_body
from opencomms.client._models import (
    Accepted,
    Message,
    MessageOperation,
    MessageSummary,
    Page,
    SandboxMessage,
)
from opencomms.client._retry import RetryPolicy

T = TypeVar("T")


class AsyncClient:
    """The OpenComms (Twilio Communications API v1) client for asyncio.

    Credentials are an Account SID and auth token, or an API key SID and secret; without
    arguments they come from OPENCOMMS_ACCOUNT_SID and OPENCOMMS_AUTH_TOKEN, and the server
    from OPENCOMMS_URL (default http://127.0.0.1:8080).
    """

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        config = ClientConfig.resolve(account_sid, auth_token, base_url)
        self.base_url = config.api_url
        self.retry = retry or RetryPolicy()
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._http = httpx.AsyncClient(
            transport=transport, **core.http_options(config, timeout, headers)
        )

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, call: Call[T]) -> T:
        exchange = core.Exchange(self.retry, call)
        while True:
            try:
                response = await self._http.request(**exchange.request())
            except httpx.HTTPError as error:
                delay = exchange.failed(error)
            else:
                answered = exchange.answered(response)
                if answered is None:
                    return exchange.result(response)
                delay = answered
            await self._sleep(delay)

    async def _paginate(
        self, page_call: Callable[[str | None], Call[Page[T]]], limit: int | None
    ) -> AsyncIterator[T]:
        pager = core.Pager(page_call, limit)
        while (call := pager.next_call()) is not None:
            for item in pager.take(await self._call(call)):
                yield item

    # Messages

    async def send_messages(
        self,
        to: Iterable[RecipientLike],
        *,
        text: str | None = None,
        content: Mapping[str, Any] | None = None,
        media: Iterable[str] | None = None,
        from_: SenderLike | None = None,
        send_at: datetime | str | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        """Send a message to up to 10,000 recipients; returns the operation to follow."""
        body = send_body(
            to, text=text, content=content, media=media, from_=from_, send_at=send_at, tags=tags
        )
        return await self._call(calls.send(body, core.idempotency_key(idempotency_key)))

    async def list_messages(self, **args: Unpack[calls.MessageListArgs]) -> Page[MessageSummary]:
        """One page of messages, newest first."""
        return await self._call(calls.list_messages(**args))

    def iter_messages(
        self, *, limit: int | None = None, **args: Unpack[calls.MessageIterArgs]
    ) -> AsyncIterator[MessageSummary]:
        """Every message matching the filters, following pagination (at most `limit`)."""
        return self._paginate(lambda token: calls.list_messages(**args, page_token=token), limit)

    async def get_message(self, message_id: str) -> Message:
        """A message with its rendered content and attempts."""
        return await self._call(calls.get_message(message_id))

    async def seek_message(self, identifier: str) -> Message:
        """The message whose attempt a channel gave this identifier."""
        return await self.get_message(await self._call(calls.seek(identifier)))

    # Operations

    async def list_operations(
        self, **args: Unpack[calls.OperationListArgs]
    ) -> Page[MessageOperation]:
        return await self._call(calls.list_operations(**args))

    def iter_operations(
        self, *, limit: int | None = None, **args: Unpack[calls.OperationIterArgs]
    ) -> AsyncIterator[MessageOperation]:
        return self._paginate(lambda token: calls.list_operations(**args, page_token=token), limit)

    async def get_operation(self, operation_id: str) -> MessageOperation:
        return await self._call(calls.get_operation(operation_id))

    async def cancel_operation(self, operation_id: str) -> Accepted:
        """Cancel what of the operation no channel has taken yet."""
        return await self._call(calls.cancel(operation_id, core.idempotency_key(None)))

    async def watch_operation(
        self,
        operation_id: str,
        *,
        interval: float = 0.5,
        timeout: float | None = None,  # noqa: ASYNC109 (the same signature as Client's)
    ) -> AsyncIterator[MessageOperation]:
        """The operation as it progresses, fetched every `interval` s, ending once it is final."""
        watch = core.Watch(operation_id, interval, timeout)
        while True:
            operation = await self.get_operation(operation_id)
            yield operation
            if watch.over(operation):
                return
            await self._sleep(interval)

    async def wait_for_operation(
        self,
        operation_id: str,
        *,
        interval: float = 0.5,
        timeout: float | None = None,  # noqa: ASYNC109 (the same signature as Client's)
    ) -> MessageOperation:
        """The operation once every message in it is final."""
        async for operation in self.watch_operation(
            operation_id, interval=interval, timeout=timeout
        ):
            last = operation
        return last

    # Sandbox extensions

    async def list_sandbox_messages(
        self, **args: Unpack[calls.SandboxListArgs]
    ) -> Page[SandboxMessage]:
        """One page of what the sandbox delivered, newest first."""
        return await self._call(calls.list_sandbox_messages(**args))

    def iter_sandbox_messages(
        self, *, limit: int | None = None, **args: Unpack[calls.SandboxIterArgs]
    ) -> AsyncIterator[SandboxMessage]:
        return self._paginate(
            lambda token: calls.list_sandbox_messages(**args, page_token=token), limit
        )

    async def clear_sandbox_messages(
        self, *, to: str | None = None, operation_id: str | None = None
    ) -> None:
        """Empty the sandbox inbox, or the part of it for one recipient or operation."""
        await self._call(calls.clear_sandbox_messages(to=to, operation_id=operation_id))

    async def send_inbound(
        self,
        *,
        from_: str,
        to: str,
        text: str,
        channel: str = "SMS",
        idempotency_key: str | None = None,
    ) -> Message:
        """A phone texts one of the account's senders; returns the stored INBOUND message."""
        call = calls.inbound(
            from_=from_,
            to=to,
            text=text,
            channel=channel,
            idempotency_key=core.idempotency_key(idempotency_key),
        )
        return await self._call(call)
