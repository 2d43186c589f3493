"""When to try a request again, and how long to wait first.

Only requests that cannot do their work twice are retried: idempotent methods, and POSTs
carrying an `Idempotency-Key` (the SDK generates one for every POST it sends). The server's
`Retry-After` wins over the client's own backoff; a wait longer than `max_retry_after` is not
worth blocking for, so the error is raised instead.
"""

import logging
import random
from dataclasses import dataclass
from typing import Any

import httpx

from opencomms.client._calls import Call
from opencomms.client._errors import ConnectError, RequestTimeout, TransportError
from opencomms.client._headers import parse_retry_after

# Failures after which the server has certainly not finished the work, or a retry is harmless.
_RETRYABLE_TRANSPORT = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a client retries (`max_retries=0` turns retries off)."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({429, 503})

    def backoff(self, retry: int) -> float:
        """Exponential with jitter, so many clients refused at once do not return at once."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (retry - 1))
        jitter: float = random.uniform(0.5, 1.0)
        return ceiling * jitter


NO_RETRIES = RetryPolicy(max_retries=0)

log = logging.getLogger("opencomms.client")


def log_retry(call: Call[Any], delay: float, why: str) -> None:
    log.info("retrying %s %s in %.2fs after %s", call.method, call.path, delay, why)


def delay_after_response(
    policy: RetryPolicy, call: Call[Any], response: httpx.Response, retry: int
) -> float | None:
    """Seconds to wait before retry number `retry` (1-based), or None to take this answer."""
    if response.status_code not in policy.statuses or not call.retry_safe:
        return None
    if retry > policy.max_retries:
        return None
    advised = parse_retry_after(response.headers.get("retry-after"))
    if advised is None:
        return policy.backoff(retry)
    return advised if advised <= policy.max_retry_after else None


def delay_after_error(
    policy: RetryPolicy, call: Call[Any], error: httpx.HTTPError, retry: int
) -> float | None:
    if not isinstance(error, _RETRYABLE_TRANSPORT) or not call.retry_safe:
        return None
    return policy.backoff(retry) if retry <= policy.max_retries else None


def translate(error: httpx.HTTPError, call: Call[Any]) -> TransportError:
    """httpx's exception as one of ours, so callers handle one exception tree."""
    where = f"{call.method} {call.path}"
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectError(f"{where}: cannot connect: {error}")
    if isinstance(error, httpx.TimeoutException):
        return RequestTimeout(f"{where}: timed out: {error}")
    return TransportError(f"{where}: {type(error).__name__}: {error}")
