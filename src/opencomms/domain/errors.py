"""The one exception tree of the domain, and the error codes OpenComms answers with.

Codes are Twilio's where Twilio has one for the case. Generic HTTP-level failures use the
20000 + status pattern Twilio follows itself (20404, 20422, 20429, 20500...).
"""

from dataclasses import dataclass

INFO_URL = "https://www.twilio.com/docs/api/errors/{code}"

MALFORMED_REQUEST = 20400
UNKNOWN_PARAMETER = 20001
AUTHENTICATION_FAILED = 20003
METHOD_NOT_ALLOWED = 20004
NOT_FOUND = 20404
CONFLICT = 20409
PAYLOAD_TOO_LARGE = 20413
TOO_MANY_REQUESTS = 20429
UNSUPPORTED_MEDIA_TYPE = 20415
INVALID_PARAMETER = 20422
INTERNAL_ERROR = 20500
SERVICE_UNAVAILABLE = 20503
INVALID_TO_NUMBER = 21211
INVALID_FROM = 21212  # `from` names no usable sender of the caller's account
SENDER_BACKLOG_FULL = 21611  # the sender's queue would outlast the validity period
CANNOT_ROUTE = 21612
OPTED_OUT = 21610
NOT_A_MOBILE_NUMBER = 21614
BODY_TOO_LONG = 21617
INVALID_MEDIA_URL = 21620
INVALID_SCHEDULE = 35114
UNREACHABLE_HANDSET = 30003
UNKNOWN_DESTINATION = 30005
MESSAGE_FILTERED = 30007
QUEUE_OVERFLOW = 30001
VALIDITY_EXPIRED = 30036
RENDER_FAILED = 30410
RENDER_LIMIT = 30411  # a render past its budget (time, loops, value sizes)
# A message whose batch kept dying with it in hand (a worker crash or hang, every time).
POISON_MESSAGE = 30412
RCS_NOT_ENABLED = 61337


NO_ROUTE_MESSAGE = "No sender and channel can reach this recipient"


def info_url(code: int) -> str:
    return INFO_URL.format(code=code)


@dataclass(frozen=True)
class Problem:
    """One entry of an error answer: what is wrong and where (a JSON path or None)."""

    code: int
    message: str
    context: str | None = None


class OpenCommsError(Exception):
    """Root of every error the domain raises on purpose."""


class ValidationFailed(OpenCommsError):
    """The request breaks the contract; every problem found is listed."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class NotFound(OpenCommsError):
    """The resource does not exist, or belongs to another account."""

    def __init__(self, what: str) -> None:
        super().__init__(f"The requested resource {what} was not found")
