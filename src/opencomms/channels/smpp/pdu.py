"""SMPP 3.4 PDUs: the header, the bodies an ESME sends and reads, and TLVs.

Struct-based and allocation-light, since a route's throughput is bounded by how fast its PDUs
are built and read: a submit_sm is a handful of byte strings joined once, a deliver_sm is read
with `bytes.index` for its C-strings and one struct per TLV.
"""

import struct
from dataclasses import dataclass, field
from typing import Final

HEADER: Final = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence
HEADER_SIZE: Final = 16
MAX_PDU: Final = 65536  # far above any PDU we take; a longer length means a broken stream
_TLV_HEAD: Final = struct.Struct(">HH")

RESPONSE: Final = 0x80000000
GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
QUERY_SM: Final = 0x00000003
SUBMIT_SM: Final = 0x00000004
DELIVER_SM: Final = 0x00000005
UNBIND: Final = 0x00000006
BIND_TRANSCEIVER: Final = 0x00000009
OUTBIND: Final = 0x0000000B
ENQUIRE_LINK: Final = 0x00000015
DATA_SM: Final = 0x00000103

SUBMIT_SM_RESP: Final = SUBMIT_SM | RESPONSE
DELIVER_SM_RESP: Final = DELIVER_SM | RESPONSE
UNBIND_RESP: Final = UNBIND | RESPONSE
ENQUIRE_LINK_RESP: Final = ENQUIRE_LINK | RESPONSE
DATA_SM_RESP: Final = DATA_SM | RESPONSE

COMMAND_NAMES: Final = {
    GENERIC_NACK: "generic_nack",
    BIND_RECEIVER: "bind_receiver",
    BIND_TRANSMITTER: "bind_transmitter",
    QUERY_SM: "query_sm",
    SUBMIT_SM: "submit_sm",
    DELIVER_SM: "deliver_sm",
    UNBIND: "unbind",
    BIND_TRANSCEIVER: "bind_transceiver",
    OUTBIND: "outbind",
    ENQUIRE_LINK: "enquire_link",
    DATA_SM: "data_sm",
}

INTERFACE_VERSION: Final = 0x34

# esm_class bits
ESM_UDHI: Final = 0x40
ESM_TYPE_MASK: Final = 0x3C
ESM_DELIVERY_RECEIPT: Final = 0x04
ESM_INTERMEDIATE_NOTIFICATION: Final = 0x20

# TLV tags used here
TLV_USER_MESSAGE_REFERENCE: Final = 0x0204
TLV_SAR_MSG_REF_NUM: Final = 0x020C
TLV_SAR_TOTAL_SEGMENTS: Final = 0x020E
TLV_SAR_SEGMENT_SEQNUM: Final = 0x020F
TLV_SC_INTERFACE_VERSION: Final = 0x0210
TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_MESSAGE_PAYLOAD: Final = 0x0424
TLV_MESSAGE_STATE: Final = 0x0427


class PduError(ValueError):
    """A PDU that does not parse: answered with generic_nack, never fatal to the session."""


def pack(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return HEADER.pack(HEADER_SIZE + len(body), command_id, status, sequence) + body


def cstring(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def tlv(tag: int, value: bytes) -> bytes:
    return _TLV_HEAD.pack(tag, len(value)) + value


def tlv_u8(tag: int, value: int) -> bytes:
    return _TLV_HEAD.pack(tag, 1) + bytes((value,))


def tlv_u16(tag: int, value: int) -> bytes:
    return _TLV_HEAD.pack(tag, 2) + value.to_bytes(2, "big")


def sar_tlvs(reference: int, total: int, sequence: int) -> bytes:
    return (
        tlv_u16(TLV_SAR_MSG_REF_NUM, reference)
        + tlv_u8(TLV_SAR_TOTAL_SEGMENTS, total)
        + tlv_u8(TLV_SAR_SEGMENT_SEQNUM, sequence)
    )


def bind_body(
    system_id: str,
    password: str,
    system_type: str = "",
    *,
    addr_ton: int = 0,
    addr_npi: int = 0,
    address_range: str = "",
) -> bytes:
    return b"".join(
        (
            cstring(system_id),
            cstring(password),
            cstring(system_type),
            bytes((INTERFACE_VERSION, addr_ton, addr_npi)),
            cstring(address_range),
        )
    )


@dataclass(slots=True)
class ShortMessage:
    """The common body of submit_sm and deliver_sm (SMPP 3.4 §4.4.1 and §4.6.1)."""

    source_addr: str
    destination_addr: str
    short_message: bytes = b""
    service_type: str = ""
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 0
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        return b"".join(
            (
                cstring(self.service_type),
                bytes((self.source_ton, self.source_npi)),
                cstring(self.source_addr),
                bytes((self.dest_ton, self.dest_npi)),
                cstring(self.destination_addr),
                bytes((self.esm_class, self.protocol_id, self.priority_flag)),
                cstring(self.schedule_delivery_time),
                cstring(self.validity_period),
                bytes(
                    (
                        self.registered_delivery,
                        self.replace_if_present,
                        self.data_coding,
                        self.sm_default_msg_id,
                        len(self.short_message),
                    )
                ),
                self.short_message,
                *(tlv(tag, value) for tag, value in self.tlvs.items()),
            )
        )

    def payload(self) -> bytes:
        """The user data: short_message, or message_payload when the SMSC used that instead."""
        return self.short_message or self.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")


def decode_sm(body: bytes) -> ShortMessage:
    """Reads a submit_sm or deliver_sm body; raises PduError when it is malformed."""
    # Inlined C-string reads: this runs once per receipt, the busiest inbound path.
    index = body.index
    try:
        end = index(0)
        service_type = body[:end].decode("latin-1")
        source_ton, source_npi = body[end + 1], body[end + 2]
        at = end + 3
        end = index(0, at)
        source_addr = body[at:end].decode("latin-1")
        dest_ton, dest_npi = body[end + 1], body[end + 2]
        at = end + 3
        end = index(0, at)
        destination_addr = body[at:end].decode("latin-1")
        esm_class, protocol_id, priority_flag = body[end + 1], body[end + 2], body[end + 3]
        at = end + 4
        end = index(0, at)
        schedule = body[at:end].decode("latin-1")
        at = end + 1
        end = index(0, at)
        validity = body[at:end].decode("latin-1")
        at = end + 1
        registered, replace, data_coding, default_msg_id, length = body[at : at + 5]
        at += 5
        short_message = body[at : at + length]
        if len(short_message) != length:
            raise PduError("short_message runs past the end of the PDU")
        tlvs = decode_tlvs(body, at + length) if at + length < len(body) else {}
    except (ValueError, IndexError) as exc:
        if isinstance(exc, PduError):
            raise
        raise PduError(f"malformed short message PDU: {exc}") from exc
    return ShortMessage(
        source_addr,
        destination_addr,
        short_message,
        service_type,
        source_ton,
        source_npi,
        dest_ton,
        dest_npi,
        esm_class,
        protocol_id,
        priority_flag,
        schedule,
        validity,
        registered,
        replace,
        data_coding,
        default_msg_id,
        tlvs,
    )


def decode_tlvs(body: bytes, offset: int) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    end = len(body)
    while offset < end:
        if offset + 4 > end:
            raise PduError("truncated TLV header")
        tag, length = _TLV_HEAD.unpack_from(body, offset)
        offset += 4
        if offset + length > end:
            raise PduError(f"TLV 0x{tag:04X} runs past the end of the PDU")
        tlvs[tag] = body[offset : offset + length]
        offset += length
    return tlvs


def tlv_int(tlvs: dict[int, bytes], tag: int) -> int | None:
    value = tlvs.get(tag)
    return int.from_bytes(value, "big") if value else None


def tlv_str(tlvs: dict[int, bytes], tag: int) -> str | None:
    value = tlvs.get(tag)
    return value.rstrip(b"\0").decode("latin-1") if value is not None else None


def decode_message_id(body: bytes) -> str:
    """The message_id of a submit_sm_resp (or the system_id of a bind_resp)."""
    end = body.find(0)
    return (body if end < 0 else body[:end]).decode("latin-1")


class SubmitTemplate:
    """Builds submit_sm bodies for one route: what is fixed per route is encoded once."""

    __slots__ = ("_dest", "_service", "_tail")

    def __init__(
        self,
        *,
        service_type: str = "",
        dest_ton: int = 1,
        dest_npi: int = 1,
        registered_delivery: int = 1,
        protocol_id: int = 0,
        priority_flag: int = 0,
        validity_period: str = "",
    ) -> None:
        self._service = cstring(service_type)
        self._dest = bytes((dest_ton, dest_npi))
        self._tail = (
            bytes((protocol_id, priority_flag)) + b"\0" + cstring(validity_period),
            registered_delivery,
        )

    def body(
        self,
        source: bytes,
        source_ton: int,
        source_npi: int,
        dest: bytes,
        data_coding: int,
        short_message: bytes,
        *,
        esm_class: int = 0,
        tlvs: bytes = b"",
    ) -> bytes:
        """`source` and `dest` are latin-1 address bytes without their NUL."""
        middle, registered = self._tail
        return b"".join(
            (
                self._service,
                bytes((source_ton, source_npi)),
                source,
                b"\0",
                self._dest,
                dest,
                b"\0",
                bytes((esm_class,)),
                middle,
                bytes((registered, 0, data_coding, 0, len(short_message))),
                short_message,
                tlvs,
            )
        )


def split_frames(buffer: bytearray) -> tuple[list[tuple[int, int, int, bytes]], int]:
    """Complete PDUs at the head of `buffer` as (command_id, status, sequence, body), and how
    many bytes they took. Raises PduError on an impossible command_length."""
    frames = []
    offset = 0
    size = len(buffer)
    unpack = HEADER.unpack_from
    while size - offset >= HEADER_SIZE:
        length, command_id, status, sequence = unpack(buffer, offset)
        if length < HEADER_SIZE or length > MAX_PDU:
            raise PduError(f"impossible command_length {length}")
        if size - offset < length:
            break
        frames.append((command_id, status, sequence, bytes(buffer[offset + 16 : offset + length])))
        offset += length
    return frames, offset
