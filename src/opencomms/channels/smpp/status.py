"""Every SMPP command_status, and what it means for a hand-off or a bind.

One table, read by the ESME and rendered in docs/smpp.md: a submit_sm answer is either taken,
a slow-down (the route pauses and the part is submitted again), a transient failure (dispatch
retries later), a permanent failure with a Twilio-style code, or, for bind answers, the route
down with the status as its reason.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Final

from opencomms.domain import errors


class Outcome(Enum):
    OK = "ok"
    SLOW_DOWN = "slow down and retry"
    TRANSIENT = "transient failure"
    PERMANENT = "permanent failure"
    BIND_REFUSED = "route down"


# Twilio's codes where Twilio has one; 30008 (unknown error) for the protocol faults it has not.
INVALID_FROM_NUMBER: Final = 21212
CARRIER_CONGESTION: Final = 30017
UNKNOWN_ERROR: Final = 30008
MESSAGE_FILTERED: Final = 30007
MESSAGE_BLOCKED: Final = 30004
LANDLINE_OR_UNREACHABLE_CARRIER: Final = 30006


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    outcome: Outcome
    code: int | None  # the Twilio-style error code of a failure
    meaning: str


def _s(name: str, outcome: Outcome, code: int | None, meaning: str) -> Status:
    return Status(name, outcome, code, meaning)


OK, SLOW, TRANS, PERM, BIND = (
    Outcome.OK,
    Outcome.SLOW_DOWN,
    Outcome.TRANSIENT,
    Outcome.PERMANENT,
    Outcome.BIND_REFUSED,
)
INV_TO = errors.INVALID_TO_NUMBER
TOO_LONG = errors.BODY_TOO_LONG

STATUSES: Final[dict[int, Status]] = {
    0x00: _s("ESME_ROK", OK, None, "No error"),
    0x01: _s("ESME_RINVMSGLEN", PERM, TOO_LONG, "Message length is invalid"),
    0x02: _s("ESME_RINVCMDLEN", PERM, UNKNOWN_ERROR, "Command length is invalid"),
    0x03: _s("ESME_RINVCMDID", PERM, UNKNOWN_ERROR, "Invalid command ID"),
    0x04: _s("ESME_RINVBNDSTS", TRANS, UNKNOWN_ERROR, "Incorrect bind status for command"),
    0x05: _s("ESME_RALYBND", BIND, None, "ESME already in bound state"),
    0x06: _s("ESME_RINVPRTFLG", PERM, UNKNOWN_ERROR, "Invalid priority flag"),
    0x07: _s("ESME_RINVREGDLVFLG", PERM, UNKNOWN_ERROR, "Invalid registered delivery flag"),
    0x08: _s("ESME_RSYSERR", TRANS, UNKNOWN_ERROR, "System error"),
    0x0A: _s("ESME_RINVSRCADR", PERM, INVALID_FROM_NUMBER, "Invalid source address"),
    0x0B: _s("ESME_RINVDSTADR", PERM, INV_TO, "Invalid destination address"),
    0x0C: _s("ESME_RINVMSGID", PERM, UNKNOWN_ERROR, "Message ID is invalid"),
    0x0D: _s("ESME_RBINDFAIL", BIND, None, "Bind failed"),
    0x0E: _s("ESME_RINVPASWD", BIND, None, "Invalid password"),
    0x0F: _s("ESME_RINVSYSID", BIND, None, "Invalid system ID"),
    0x11: _s("ESME_RCANCELFAIL", PERM, UNKNOWN_ERROR, "cancel_sm failed"),
    0x13: _s("ESME_RREPLACEFAIL", PERM, UNKNOWN_ERROR, "replace_sm failed"),
    0x14: _s("ESME_RMSGQFUL", SLOW, CARRIER_CONGESTION, "Message queue full"),
    0x15: _s("ESME_RINVSERTYP", PERM, UNKNOWN_ERROR, "Invalid service type"),
    0x33: _s("ESME_RINVNUMDESTS", PERM, UNKNOWN_ERROR, "Invalid number of destinations"),
    0x34: _s("ESME_RINVDLNAME", PERM, UNKNOWN_ERROR, "Invalid distribution list name"),
    0x40: _s("ESME_RINVDESTFLAG", PERM, UNKNOWN_ERROR, "Invalid destination flag"),
    0x42: _s("ESME_RINVSUBREP", PERM, UNKNOWN_ERROR, "Invalid submit with replace request"),
    0x43: _s("ESME_RINVESMCLASS", PERM, UNKNOWN_ERROR, "Invalid esm_class field data"),
    0x44: _s("ESME_RCNTSUBDL", PERM, UNKNOWN_ERROR, "Cannot submit to distribution list"),
    0x45: _s("ESME_RSUBMITFAIL", TRANS, UNKNOWN_ERROR, "submit_sm or submit_multi failed"),
    0x48: _s("ESME_RINVSRCTON", PERM, INVALID_FROM_NUMBER, "Invalid source address TON"),
    0x49: _s("ESME_RINVSRCNPI", PERM, INVALID_FROM_NUMBER, "Invalid source address NPI"),
    0x50: _s("ESME_RINVDSTTON", PERM, INV_TO, "Invalid destination address TON"),
    0x51: _s("ESME_RINVDSTNPI", PERM, INV_TO, "Invalid destination address NPI"),
    0x53: _s("ESME_RINVSYSTYP", BIND, None, "Invalid system_type field"),
    0x54: _s("ESME_RINVREPFLAG", PERM, UNKNOWN_ERROR, "Invalid replace_if_present flag"),
    0x55: _s("ESME_RINVNUMMSGS", PERM, UNKNOWN_ERROR, "Invalid number of messages"),
    0x58: _s("ESME_RTHROTTLED", SLOW, CARRIER_CONGESTION, "Throttling error"),
    0x61: _s("ESME_RINVSCHED", PERM, UNKNOWN_ERROR, "Invalid scheduled delivery time"),
    0x62: _s("ESME_RINVEXPIRY", PERM, UNKNOWN_ERROR, "Invalid validity period"),
    0x63: _s("ESME_RINVDFTMSGID", PERM, UNKNOWN_ERROR, "Predefined message invalid"),
    0x64: _s("ESME_RX_T_APPN", TRANS, UNKNOWN_ERROR, "ESME receiver temporary app error"),
    0x65: _s("ESME_RX_P_APPN", PERM, UNKNOWN_ERROR, "ESME receiver permanent app error"),
    0x66: _s("ESME_RX_R_APPN", PERM, MESSAGE_BLOCKED, "ESME receiver reject message error"),
    0x67: _s("ESME_RQUERYFAIL", PERM, UNKNOWN_ERROR, "query_sm failed"),
    0xC0: _s("ESME_RINVOPTPARSTREAM", PERM, UNKNOWN_ERROR, "Error in the optional part"),
    0xC1: _s("ESME_ROPTPARNOTALLWD", PERM, UNKNOWN_ERROR, "Optional parameter not allowed"),
    0xC2: _s("ESME_RINVPARLEN", PERM, UNKNOWN_ERROR, "Invalid parameter length"),
    0xC3: _s("ESME_RMISSINGOPTPARAM", PERM, UNKNOWN_ERROR, "Expected optional parameter missing"),
    0xC4: _s("ESME_RINVOPTPARAMVAL", PERM, UNKNOWN_ERROR, "Invalid optional parameter value"),
    0xFE: _s("ESME_RDELIVERYFAILURE", PERM, UNKNOWN_ERROR, "Delivery failure"),
    0xFF: _s("ESME_RUNKNOWNERR", TRANS, UNKNOWN_ERROR, "Unknown error"),
}

# Vendor codes (0x400-0x4FF) and anything unlisted: retried, so dispatch's attempt limit
# decides, rather than failing a message for a code nobody documented.
UNLISTED: Final = Status("unlisted", Outcome.TRANSIENT, UNKNOWN_ERROR, "Reserved or vendor code")

ESME_ROK: Final = 0x00
ESME_RINVBNDSTS: Final = 0x04
ESME_RINVCMDID: Final = 0x03
ESME_RTHROTTLED: Final = 0x58
ESME_RMSGQFUL: Final = 0x14
ESME_RX_T_APPN: Final = 0x64
ESME_RX_P_APPN: Final = 0x65
ESME_RSYSERR: Final = 0x08


def status_of(command_status: int) -> Status:
    return STATUSES.get(command_status, UNLISTED)


def describe(command_status: int) -> str:
    """`ESME_RINVPASWD (0x0000000E): Invalid password`, for logs and route states."""
    status = status_of(command_status)
    return f"{status.name} (0x{command_status:08X}): {status.meaning}"
