"""`Client`: the API over blocking HTTP."""

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from opencomms.client import _calls as calls
from opencomms.client._calls import Call
from opencomms.client._config import USER_AGENT, ClientConfig
from opencomms.client._errors import WaitTimeout
from opencomms.client._inputs import RecipientLike, SenderLike, send_body
from opencomms.client._models import (
    Accepted,
    Message,
    MessageOperation,
    MessageSummary,
    Page,
    SandboxMessage,
)
from opencomms.client._retry import (
    RetryPolicy,
    delay_after_error,
    delay_after_response,
    log_retry,
    translate,
)

T = TypeVar("T")


class Client:
    """The OpenComms (Twilio Communications API v1) client.

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
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        config = ClientConfig.resolve(account_sid, auth_token, base_url)
        self.base_url = config.api_url
        self.retry = retry or RetryPolicy()
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(
            base_url=config.api_url,
            auth=(config.username, config.password),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            follow_redirects=False,
        )

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, call: Call[T]) -> T:
        retry = 0
        while True:
            retry += 1
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params or None,
                    json=call.json,
                    headers=call.headers,
                )
            except httpx.HTTPError as error:
                delay = delay_after_error(self.retry, call, error, retry)
                if delay is None:
                    raise translate(error, call) from error
                log_retry(call, delay, type(error).__name__)
            else:
                delay = delay_after_response(self.retry, call, response, retry)
                if delay is None:
                    calls.raise_for_status(response, call.expect)
                    return call.read(response)
                log_retry(call, delay, f"HTTP {response.status_code}")
            self._sleep(delay)

    def _paginate(
        self, first: Callable[[str | None], Call[Page[T]]], limit: int | None
    ) -> Iterator[T]:
        token: str | None = None
        count = 0
        while True:
            page = self._call(first(token))
            for item in page.items:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item
            if page.next_page_token is None or not page.items:
                return
            token = page.next_page_token

    # Messages

    def send_messages(
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
        return self._call(calls.send(body, idempotency_key or str(uuid.uuid4())))

    def list_messages(self, **args: Unpack[calls.MessageListArgs]) -> Page[MessageSummary]:
        """One page of messages, newest first."""
        return self._call(calls.list_messages(**args))

    def iter_messages(
        self, *, limit: int | None = None, **args: Unpack[calls.MessageIterArgs]
    ) -> Iterator[MessageSummary]:
        """Every message matching the filters, following pagination (at most `limit`)."""
        return self._paginate(lambda token: calls.list_messages(**args, page_token=token), limit)

    def get_message(self, message_id: str) -> Message:
        """A message with its rendered content and attempts."""
        return self._call(calls.get_message(message_id))

    def seek_message(self, identifier: str) -> Message:
        """The message whose attempt a channel gave this identifier."""
        return self.get_message(self._call(calls.seek(identifier)))

    # Operations

    def list_operations(self, **args: Unpack[calls.OperationListArgs]) -> Page[MessageOperation]:
        return self._call(calls.list_operations(**args))

    def iter_operations(
        self, *, limit: int | None = None, **args: Unpack[calls.OperationIterArgs]
    ) -> Iterator[MessageOperation]:
        return self._paginate(lambda token: calls.list_operations(**args, page_token=token), limit)

    def get_operation(self, operation_id: str) -> MessageOperation:
        return self._call(calls.get_operation(operation_id))

    def cancel_operation(self, operation_id: str) -> Accepted:
        """Cancel what of the operation no channel has taken yet."""
        return self._call(calls.cancel(operation_id, str(uuid.uuid4())))

    def watch_operation(
        self, operation_id: str, *, interval: float = 0.5, timeout: float | None = None
    ) -> Iterator[MessageOperation]:
        """The operation as it progresses, fetched every `interval` s, ending once it is final."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            operation = self.get_operation(operation_id)
            yield operation
            if operation.is_final:
                return
            if deadline is not None and time.monotonic() + interval > deadline:
                raise WaitTimeout(f"operation {operation_id} is still {operation.status}")
            self._sleep(interval)

    def wait_for_operation(
        self, operation_id: str, *, interval: float = 0.5, timeout: float | None = None
    ) -> MessageOperation:
        """The operation once every message in it is final."""
        for operation in self.watch_operation(operation_id, interval=interval, timeout=timeout):
            last = operation
        return last

    # Sandbox extensions

    def list_sandbox_messages(self, **args: Unpack[calls.SandboxListArgs]) -> Page[SandboxMessage]:
        """One page of what the sandbox delivered, newest first."""
        return self._call(calls.list_sandbox_messages(**args))

    def iter_sandbox_messages(
        self, *, limit: int | None = None, **args: Unpack[calls.SandboxIterArgs]
    ) -> Iterator[SandboxMessage]:
        return self._paginate(
            lambda token: calls.list_sandbox_messages(**args, page_token=token), limit
        )

    def clear_sandbox_messages(
        self, *, to: str | None = None, operation_id: str | None = None
    ) -> None:
        """Empty the sandbox inbox, or the part of it for one recipient or operation."""
        self._call(calls.clear_sandbox_messages(to=to, operation_id=operation_id))

    def send_inbound(
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
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )
        return self._call(call)
