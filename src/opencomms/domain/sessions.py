"""Conversations with a phone: inbound messages, their sessions and the carriers' keywords.

A session is one account's conversation between one of its senders and one remote address.
Its id is derived, not stored: the same three parts always give the same id, so an inbound
reply and the messages sent to that number thread together without a lookup.
"""

from enum import StrEnum

from opencomms.domain.senders import derived_id
from opencomms.domain.status import MessageStatus

SESSION_PREFIX = "comms_session_"
# The status of a message a phone sent us: never claimed, never sent.
INBOUND = MessageStatus.INBOUND.value

# What US carriers (and Twilio's default handling) treat as an opt-out or opt-in, when it is
# the whole message, in any case, surrounded by any whitespace.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})


class Consent(StrEnum):
    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"


def bare_number(address: str) -> str:
    """A phone or WhatsApp address without the classic `whatsapp:` prefix."""
    return address.removeprefix("whatsapp:")


def session_id(account_sid: str, sender_channel: str, sender_address: str, remote: str) -> str:
    """The session of a sender's conversation with a remote address (spec's SessionId)."""
    return derived_id(
        SESSION_PREFIX, account_sid, sender_channel, sender_address, bare_number(remote)
    )


def keyword(text: str) -> tuple[Consent, str] | None:
    """The consent change a message asks for, with the keyword it used, or None."""
    word = text.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return Consent.OPT_OUT, word
    if word in OPT_IN_KEYWORDS:
        return Consent.OPT_IN, word
    return None
