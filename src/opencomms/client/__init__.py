"""The OpenComms Python SDK: Twilio's Communications API v1 (and the sandbox extensions).

    from opencomms.client import Client

    with Client("AC...", "token", base_url="http://127.0.0.1:8080") as client:
        accepted = client.send_messages(["+14155550100"], text="Hello!")
        operation = client.wait_for_operation(accepted.operation_id)

It talks HTTP only (httpx) and imports nothing from the server, so it works against any
deployment of the API.

Each name loads its module on first use: the command line imports this package for its
types and errors, and `opencomms serve` must not pay for httpx and the models it never uses.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opencomms.client._async import AsyncClient
    from opencomms.client._calls import (
        MessageFilters,
        OperationFilters,
        SandboxFilters,
    )
    from opencomms.client._config import DEFAULT_BASE_URL, ConfigurationError
    from opencomms.client._errors import (
        ApiError,
        AuthenticationError,
        ConflictError,
        ConnectError,
        ErrorDetail,
        MethodNotAllowedError,
        NotFoundError,
        OpenCommsError,
        PayloadTooLargeError,
        PermissionDeniedError,
        ProtocolError,
        RateLimitError,
        RequestTimeout,
        ServerError,
        ServiceUnavailableError,
        TransportError,
        UnprocessableEntityError,
        UnsupportedMediaTypeError,
        ValidationError,
        WaitTimeout,
    )
    from opencomms.client._inputs import Recipient
    from opencomms.client._models import (
        FINAL_MESSAGE_STATUSES,
        FINAL_OPERATION_STATUSES,
        Accepted,
        Address,
        Attempt,
        AttemptError,
        Message,
        MessageContent,
        MessageOperation,
        MessageStatus,
        MessageSummary,
        OperationStats,
        OperationStatus,
        Page,
        Related,
        SandboxMessage,
    )
    from opencomms.client._retry import NO_RETRIES, RetryPolicy
    from opencomms.client._sync import Client

__all__ = [
    "DEFAULT_BASE_URL",
    "FINAL_MESSAGE_STATUSES",
    "FINAL_OPERATION_STATUSES",
    "NO_RETRIES",
    "Accepted",
    "Address",
    "ApiError",
    "AsyncClient",
    "Attempt",
    "AttemptError",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ErrorDetail",
    "Message",
    "MessageContent",
    "MessageFilters",
    "MessageOperation",
    "MessageStatus",
    "MessageSummary",
    "MethodNotAllowedError",
    "NotFoundError",
    "OpenCommsError",
    "OperationFilters",
    "OperationStats",
    "OperationStatus",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "Recipient",
    "Related",
    "RequestTimeout",
    "RetryPolicy",
    "SandboxFilters",
    "SandboxMessage",
    "ServerError",
    "ServiceUnavailableError",
    "TransportError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "WaitTimeout",
]

_HOMES = {
    "AsyncClient": "_async",
    "MessageFilters": "_calls",
    "OperationFilters": "_calls",
    "SandboxFilters": "_calls",
    "DEFAULT_BASE_URL": "_config",
    "ConfigurationError": "_config",
    "ApiError": "_errors",
    "AuthenticationError": "_errors",
    "ConflictError": "_errors",
    "ConnectError": "_errors",
    "ErrorDetail": "_errors",
    "MethodNotAllowedError": "_errors",
    "NotFoundError": "_errors",
    "OpenCommsError": "_errors",
    "PayloadTooLargeError": "_errors",
    "PermissionDeniedError": "_errors",
    "ProtocolError": "_errors",
    "RateLimitError": "_errors",
    "RequestTimeout": "_errors",
    "ServerError": "_errors",
    "ServiceUnavailableError": "_errors",
    "TransportError": "_errors",
    "UnprocessableEntityError": "_errors",
    "UnsupportedMediaTypeError": "_errors",
    "ValidationError": "_errors",
    "WaitTimeout": "_errors",
    "Recipient": "_inputs",
    "FINAL_MESSAGE_STATUSES": "_models",
    "FINAL_OPERATION_STATUSES": "_models",
    "Accepted": "_models",
    "Address": "_models",
    "Attempt": "_models",
    "AttemptError": "_models",
    "Message": "_models",
    "MessageContent": "_models",
    "MessageOperation": "_models",
    "MessageStatus": "_models",
    "MessageSummary": "_models",
    "OperationStats": "_models",
    "OperationStatus": "_models",
    "Page": "_models",
    "Related": "_models",
    "SandboxMessage": "_models",
    "NO_RETRIES": "_retry",
    "RetryPolicy": "_retry",
    "Client": "_sync",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found here from now on, without this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
