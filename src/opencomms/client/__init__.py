"""The OpenComms Python SDK: Twilio's Communications API v1 (and the sandbox extensions).

    from opencomms.client import Client

    with Client("AC...", "token", base_url="http://127.0.0.1:8080") as client:
        accepted = client.send_messages(["+14155550100"], text="Hello!")
        operation = client.wait_for_operation(accepted.operation_id)

It talks HTTP only (httpx) and imports nothing from the server, so it works against any
deployment of the API.
"""

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
