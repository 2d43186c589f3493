"""Delivery receipts carried by deliver_sm: from TLVs or the classic `id:… stat:… err:…` text.

The TLVs (`receipted_message_id`, `message_state`, `network_error_code`) win over the text
when both are there; the text is what most SMSCs send, and its `err` field is usually the GSM
MAP error that failed the delivery, which picks the Twilio-style code.
"""

import re
from dataclasses import dataclass
from typing import Final

from opencomms.channels.base import Receipt
from opencomms.channels.smpp import pdu
from opencomms.channels.smpp.status import (
    LANDLINE_OR_UNREACHABLE_CARRIER,
    MESSAGE_BLOCKED,
    MESSAGE_FILTERED,
    UNKNOWN_ERROR,
)
from opencomms.domain import errors

_TEXT = re.compile(
    rb"id:(?P<id>\S+).*?stat:(?P<stat>[A-Za-z]+)(?:.*?err:(?P<err>[0-9A-Fa-f]+))?", re.DOTALL
)

# message_state values (SMPP 3.4 §5.2.28) as the stat words of the text form
_STATES: Final = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}

# stat -> (status, default code); None is "no change" (the message stays SENT)
_OUTCOMES: Final[dict[str, tuple[str, int] | None]] = {
    "DELIVRD": ("DELIVERED", 0),
    "UNDELIV": ("UNDELIVERED", errors.UNREACHABLE_HANDSET),
    "EXPIRED": ("UNDELIVERED", errors.UNREACHABLE_HANDSET),
    "REJECTD": ("UNDELIVERED", MESSAGE_FILTERED),
    "DELETED": ("UNDELIVERED", UNKNOWN_ERROR),
    "ACCEPTD": None,
    "ENROUTE": None,
    "UNKNOWN": None,
}

# GSM MAP errors (3GPP TS 29.002) commonly found in `err:` of an UNDELIV receipt
_MAP_ERRORS: Final = {
    1: errors.UNKNOWN_DESTINATION,  # unknown subscriber
    5: errors.UNKNOWN_DESTINATION,  # unidentified subscriber
    9: LANDLINE_OR_UNREACHABLE_CARRIER,  # illegal subscriber
    11: LANDLINE_OR_UNREACHABLE_CARRIER,  # teleservice not provisioned
    13: MESSAGE_BLOCKED,  # call barred
    27: errors.UNREACHABLE_HANDSET,  # absent subscriber
    31: errors.UNREACHABLE_HANDSET,  # subscriber busy for MT SMS
    32: errors.UNREACHABLE_HANDSET,  # SM delivery failure (memory full, etc.)
}

_MESSAGES: Final = {
    errors.UNREACHABLE_HANDSET: "Unreachable destination handset",
    errors.UNKNOWN_DESTINATION: "Unknown destination handset",
    LANDLINE_OR_UNREACHABLE_CARRIER: "Landline or unreachable carrier",
    MESSAGE_BLOCKED: "Message blocked",
    MESSAGE_FILTERED: "Message filtered (rejected by the SMSC)",
    UNKNOWN_ERROR: "Unknown error",
}


@dataclass(frozen=True, slots=True)
class ParsedReceipt:
    message_id: str
    stat: str  # DELIVRD, UNDELIV, ... (from message_state when the TLV is there)
    err: int | None


def is_receipt(esm_class: int) -> bool:
    kind = esm_class & pdu.ESM_TYPE_MASK
    return kind in (pdu.ESM_DELIVERY_RECEIPT, pdu.ESM_INTERMEDIATE_NOTIFICATION)


def parse(sm: pdu.ShortMessage) -> ParsedReceipt | None:
    """What a receipt deliver_sm says, or None when it names no message."""
    found = _TEXT.search(sm.payload())
    message_id = pdu.tlv_str(sm.tlvs, pdu.TLV_RECEIPTED_MESSAGE_ID) or (
        found["id"].decode("latin-1") if found else None
    )
    if not message_id:
        return None
    state = pdu.tlv_int(sm.tlvs, pdu.TLV_MESSAGE_STATE)
    if state is not None:
        stat = _STATES.get(state, "UNKNOWN")
    elif found:
        stat = found["stat"].decode("latin-1").upper()
    else:
        stat = "UNKNOWN"
    err = _err(sm, found)
    return ParsedReceipt(message_id, stat, err)


def _err(sm: pdu.ShortMessage, found: re.Match[bytes] | None) -> int | None:
    network = sm.tlvs.get(pdu.TLV_NETWORK_ERROR_CODE)
    if network is not None and len(network) == 3:
        return int.from_bytes(network[1:], "big")  # network type, then a 2-octet error
    if found and found["err"]:
        # Most SMSCs write it in decimal; a hex one ("0x1B" style) has letters and says so.
        text = found["err"].decode("latin-1")
        return int(text) if text.isdigit() else int(text, 16)
    return None


def to_receipt(parsed: ParsedReceipt) -> Receipt | None:
    """The channel receipt, or None for states that change nothing (ACCEPTD, ENROUTE)."""
    outcome = _OUTCOMES.get(parsed.stat)
    if outcome is None:
        return None
    status, code = outcome
    if status == "DELIVERED":
        return Receipt(parsed.message_id, status)
    if parsed.stat == "UNDELIV" and parsed.err in _MAP_ERRORS:
        code = _MAP_ERRORS[parsed.err]
    detail = f"SMSC stat {parsed.stat}" + (f", err {parsed.err}" if parsed.err else "")
    return Receipt(parsed.message_id, status, code, f"{_MESSAGES[code]} ({detail})")
