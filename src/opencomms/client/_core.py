"""What `Client` and `AsyncClient` do, without doing I/O: the httpx options, one call's way
through its retries, the walk along pages, the wait for an operation. Each client only
sends the request it is told to, sleeps as long as it is told to, and hands back the answer;
so the two cannot drift apart in behaviour.
"""

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import httpx

from opencomms.client import _calls as calls
from opencomms.client._calls import Call
from opencomms.client._config import USER_AGENT, ClientConfig
from opencomms.client._errors import WaitTimeout
from opencomms.client._models import MessageOperation, Page
from opencomms.client._retry import (
    RetryPolicy,
    delay_after_error,
    delay_after_response,
    log_retry,
    translate,
)

T = TypeVar("T")


def http_options(
    config: ClientConfig,
    timeout: float | httpx.Timeout,
    headers: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The keyword arguments of httpx.Client and httpx.AsyncClient alike."""
    return {
        "base_url": config.api_url,
        "auth": (config.username, config.password),
        "timeout": timeout,
        "headers": {"User-Agent": USER_AGENT, **(headers or {})},
        # Seek answers 301: the SDK reads the Location itself rather than follow it.
        "follow_redirects": False,
    }


def idempotency_key(given: str | None) -> str:
    """The caller's key, or a fresh one: the same key goes with every retry of one call."""
    return given or str(uuid.uuid4())


class Exchange(Generic[T]):
    """One call through its retries. For each try: `request()` says what to send; then
    `failed(error)` or `answered(response)` says how long to wait before the next try, or
    (`answered` returning None) that `result(response)` is the answer."""

    def __init__(self, policy: RetryPolicy, call: Call[T]) -> None:
        self.policy = policy
        self.call = call
        self.tries = 0

    def request(self) -> dict[str, Any]:
        """The keyword arguments of httpx's `request` for the next try."""
        self.tries += 1
        call = self.call
        return {
            "method": call.method,
            "url": call.path,
            "params": call.params or None,
            "json": call.json,
            "headers": call.headers,
        }

    def failed(self, error: httpx.HTTPError) -> float:
        """The wait before trying again; raises our TransportError when it is not retried."""
        delay = delay_after_error(self.policy, self.call, error, self.tries)
        if delay is None:
            raise translate(error, self.call) from error
        log_retry(self.call, delay, type(error).__name__)
        return delay

    def answered(self, response: httpx.Response) -> float | None:
        delay = delay_after_response(self.policy, self.call, response, self.tries)
        if delay is not None:
            log_retry(self.call, delay, f"HTTP {response.status_code}")
        return delay

    def result(self, response: httpx.Response) -> T:
        """The answer read, or the API's error raised."""
        calls.raise_for_status(response, self.call.expect)
        return self.call.read(response)


class Pager(Generic[T]):
    """A walk along the pages of a list, stopping after `limit` items."""

    def __init__(self, page_call: Callable[[str | None], Call[Page[T]]], limit: int | None):
        self._page_call = page_call
        self._limit = limit
        self._token: str | None = None
        self._count = 0
        self._done = False

    def next_call(self) -> Call[Page[T]] | None:
        """The request for the next page, or None once the walk is over."""
        return None if self._done else self._page_call(self._token)

    def take(self, page: Page[T]) -> list[T]:
        """The page's items up to the limit; notes where the next page starts."""
        room = len(page.items) if self._limit is None else self._limit - self._count
        items = page.items[: max(room, 0)]
        self._count += len(items)
        self._token = page.next_page_token
        limit_reached = self._limit is not None and self._count >= self._limit
        self._done = limit_reached or self._token is None or not page.items
        return items


class Watch:
    """The wait for an operation to be final, with an optional time limit."""

    def __init__(self, operation_id: str, interval: float, timeout: float | None) -> None:
        self.operation_id = operation_id
        self.interval = interval
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def over(self, operation: MessageOperation) -> bool:
        """Whether the wait ends with this poll; WaitTimeout if the next would be too late."""
        if operation.is_final:
            return True
        if self._deadline is not None and time.monotonic() + self.interval > self._deadline:
            raise WaitTimeout(f"operation {self.operation_id} is still {operation.status}")
        return False
