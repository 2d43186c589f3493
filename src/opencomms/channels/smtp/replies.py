"""What an SMTP reply means for the email: delivered, retry later, or never on this route.

4xx replies are transient (RFC 5321 4.2.1): the email is retried with backoff. 5xx replies are
permanent and keep the relay's code and text in the error message, under the Twilio-style
code that best names the reason (the enhanced status code, RFC 3463, when the relay gives
one).
"""

from opencomms.channels.base import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from opencomms.channels.smtp.client import Reply
from opencomms.domain import errors

# Twilio's codes for the reasons a relay gives.
RELAY_UNAVAILABLE = 30017  # try later: the relay is busy, down or refused the session
MAILBOX_UNAVAILABLE = errors.UNREACHABLE_HANDSET  # 30003: full, disabled, over quota
UNKNOWN_MAILBOX = errors.UNKNOWN_DESTINATION  # 30005: no such user or domain
FILTERED = errors.MESSAGE_FILTERED  # 30007: refused by policy: spam, content, sender not allowed
UNKNOWN_ERROR = 30008

_BY_ENHANCED = {"5.1": UNKNOWN_MAILBOX, "5.2": MAILBOX_UNAVAILABLE, "5.7": FILTERED}
_BY_CODE = {
    550: UNKNOWN_MAILBOX,
    551: UNKNOWN_MAILBOX,
    553: UNKNOWN_MAILBOX,
    552: MAILBOX_UNAVAILABLE,
    554: FILTERED,
}


def describe(reply: Reply) -> str:
    text = " ".join(reply.text.split())
    return f"SMTP {reply.code} {text}"[:500]


def error_for(reply: Reply) -> DeliveryError:
    """The delivery error a non-2xx final reply stands for."""
    if 400 <= reply.code < 500:
        return TransientDeliveryError(RELAY_UNAVAILABLE, describe(reply))
    enhanced = reply.text[:3]
    code = _BY_ENHANCED.get(enhanced) or _BY_CODE.get(reply.code, UNKNOWN_ERROR)
    return PermanentDeliveryError(code, describe(reply))
