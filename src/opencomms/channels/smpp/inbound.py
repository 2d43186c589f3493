"""Inbound (mobile-originated) messages: their addresses, text, and multipart reassembly.

A part of a long message is not acknowledged when it arrives: its deliver_sm_resp waits until
every part is there and the whole message has reached the inbound sink, so a crash between
parts loses nothing (the SMSC delivers the unanswered parts again).
"""

from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from opencomms.channels.smpp import gsm, pdu

TON_INTERNATIONAL: Final = 1
_IEI_CONCAT_8: Final = 0x00
_IEI_CONCAT_16: Final = 0x08

Ack = TypeVar("Ack")


@dataclass(frozen=True, slots=True)
class Segment:
    reference: int
    total: int
    sequence: int


def address(value: str, ton: int) -> str:
    return f"+{value}" if ton == TON_INTERNATIONAL and value.isdigit() else value


def split_udh(sm: pdu.ShortMessage) -> tuple[bytes, Segment | None]:
    """The user data without its UDH, and the concatenation it announces (UDH or sar TLVs)."""
    data = sm.payload()
    segment = None
    if sm.esm_class & pdu.ESM_UDHI and data:
        header_length = data[0] + 1
        segment = _concat_ie(data[1:header_length])
        data = data[header_length:]
    if segment is None and pdu.TLV_SAR_MSG_REF_NUM in sm.tlvs:
        reference = pdu.tlv_int(sm.tlvs, pdu.TLV_SAR_MSG_REF_NUM) or 0
        total = pdu.tlv_int(sm.tlvs, pdu.TLV_SAR_TOTAL_SEGMENTS) or 1
        sequence = pdu.tlv_int(sm.tlvs, pdu.TLV_SAR_SEGMENT_SEQNUM) or 1
        segment = Segment(reference, total, sequence)
    if segment is not None and segment.total <= 1:
        segment = None
    return data, segment


def _concat_ie(udh: bytes) -> Segment | None:
    at = 0
    while at + 2 <= len(udh):
        iei, length = udh[at], udh[at + 1]
        value = udh[at + 2 : at + 2 + length]
        if iei == _IEI_CONCAT_8 and length == 3:
            return Segment(value[0], value[1], value[2])
        if iei == _IEI_CONCAT_16 and length == 4:
            return Segment(int.from_bytes(value[:2], "big"), value[2], value[3])
        at += 2 + length
    return None


@dataclass
class _Partial(Generic[Ack]):
    started: float
    data_coding: int
    parts: dict[int, bytes] = field(default_factory=dict)
    acks: list[Ack] = field(default_factory=list)


class Reassembler(Generic[Ack]):
    """Parts held until their message is complete, with who is waiting for each part's answer.

    `Ack` values are opaque to it (the channel passes its session and sequence number).
    """

    def __init__(self) -> None:
        self._partials: dict[tuple[str, str, int, int], _Partial[Ack]] = {}

    def add(
        self,
        sender: str,
        to: str,
        segment: Segment,
        data: bytes,
        data_coding: int,
        ack: Ack,
        now: float,
    ) -> tuple[str, list[Ack]] | None:
        """The whole text and every held ack once the last part arrived, else None."""
        key = (sender, to, segment.reference, segment.total)
        partial = self._partials.get(key)
        if partial is None:
            partial = self._partials[key] = _Partial[Ack](now, data_coding)
        partial.parts[segment.sequence] = data  # a part delivered again replaces itself
        partial.acks.append(ack)
        if len(partial.parts) < segment.total:
            return None
        del self._partials[key]
        # Joined before decoding: a UCS-2 pair or a GSM escape may straddle two parts.
        joined = b"".join(partial.parts[index] for index in sorted(partial.parts))
        return gsm.decode_text(joined, partial.data_coding), partial.acks

    def expire(self, older_than: float) -> list[Ack]:
        """The acks of messages whose first part is older than `older_than`, forgotten."""
        stale = [key for key, partial in self._partials.items() if partial.started < older_than]
        acks: list[Ack] = []
        for key in stale:
            acks.extend(self._partials.pop(key).acks)
        return acks

    def __len__(self) -> int:
        return len(self._partials)
