"""One exception tree: everything the SDK raises is an `OpenCommsError`.

`ApiError` and its subclasses carry the API's error list as the server sent it; transport
failures (httpx's own exceptions) are translated at the boundary, so callers never need to
import httpx to handle them.
"""

from dataclasses import dataclass
from typing import Any

from opencomms.client._headers import parse_retry_after


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the API's `errors` list."""

    code: int
    message: str
    info_url: str
    context: str | None

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> "ErrorDetail":
        code = item.get("code")
        return cls(
            code=code if isinstance(code, int) else 0,
            message=str(item.get("message") or ""),
            info_url=str(item.get("infoUrl") or ""),
            context=item.get("context") if isinstance(item.get("context"), str) else None,
        )


class OpenCommsError(Exception):
    """The root of every exception this SDK raises."""


class TransportError(OpenCommsError):
    """The request did not get an HTTP answer (connection refused, reset, timed out)."""


class ConnectError(TransportError):
    """No connection could be made: the request was never sent."""


class RequestTimeout(TransportError):
    """The server did not answer within the client's timeout."""


class ProtocolError(OpenCommsError):
    """The server answered, but not with what the API promises (e.g. a body that is not JSON)."""


class WaitTimeout(OpenCommsError):
    """An operation did not reach a final status within the time given to wait for it."""


class ApiError(OpenCommsError):
    """The API answered with an error status; `errors` is its list of problems."""

    def __init__(
        self,
        status_code: int,
        errors: list[ErrorDetail],
        *,
        method: str = "",
        url: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = errors
        self.method = method
        self.url = url
        self.headers = headers or {}
        super().__init__(self._summary())

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait before trying again (`Retry-After`), if it did."""
        return parse_retry_after(self.headers.get("retry-after"))

    @property
    def code(self) -> int | None:
        """The first error's code (most answers hold exactly one)."""
        return self.errors[0].code if self.errors else None

    def _summary(self) -> str:
        where = f"{self.method} {self.url}: " if self.method else ""
        if not self.errors:
            return f"{where}HTTP {self.status_code}"
        parts = [
            f"{e.code} {e.message}" + (f" ({e.context})" if e.context else "") for e in self.errors
        ]
        more = f" (+{len(parts) - 3} more)" if len(parts) > 3 else ""
        return f"{where}HTTP {self.status_code}: " + "; ".join(parts[:3]) + more


class ValidationError(ApiError):
    """400: the request broke the contract; `errors` names every field (`context`)."""


class AuthenticationError(ApiError):
    """401: missing or wrong credentials."""


class PermissionDeniedError(ApiError):
    """403: the credentials may not do this."""


class NotFoundError(ApiError):
    """404: no such resource for this account."""


class MethodNotAllowedError(ApiError):
    """405: the path does not serve this method."""


class ConflictError(ApiError):
    """409: e.g. a request with the same Idempotency-Key is still in flight."""


class PayloadTooLargeError(ApiError):
    """413: the body is over the server's limit."""


class UnsupportedMediaTypeError(ApiError):
    """415: the body is not JSON."""


class UnprocessableEntityError(ApiError):
    """422: e.g. an Idempotency-Key reused with a different body."""


class RateLimitError(ApiError):
    """429: too many requests; `retry_after` is the server's advice in seconds, if any."""


class ServerError(ApiError):
    """5xx: the server failed."""


class ServiceUnavailableError(ServerError):
    """503: the server cannot serve now (starting, overloaded, database unreachable)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_class(status_code: int) -> type[ApiError]:
    """The most specific exception for an HTTP error status."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return ServerError if status_code >= 500 else ApiError
