"""Text to SMS parts: GSM 03.38 (with its extension table) when the text fits, UCS-2 otherwise.

SMPP carries GSM text unpacked, one septet per octet (data_coding 0); `pack_septets` is there
for SMSCs that want it packed. Every function here runs on the hot path of a send, so the work
is done by `str.translate`, regular expressions and big-int arithmetic, never a Python loop per
character.
"""

import random
import re
from dataclasses import dataclass
from itertools import count
from typing import Final

DC_DEFAULT: Final = 0x00  # the SMSC default alphabet: GSM 03.38 here
DC_IA5: Final = 0x01
DC_LATIN1: Final = 0x03
DC_BINARY: Final = 0x04
DC_UCS2: Final = 0x08

ESCAPE: Final = 0x1B

# Positions 0x00-0x7F of the basic table; 0x1B is the escape to the extension table.
BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION: Final = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

SINGLE_SEPTETS: Final = 160
PART_SEPTETS: Final = 153  # 160 less the 6-octet concatenation UDH (7 septets)
SINGLE_UCS2: Final = 70
PART_UCS2: Final = 67  # 140 octets less the 6-octet UDH, in 16-bit units

_ENCODE: dict[int, str] = {ord(ch): chr(code) for code, ch in enumerate(BASIC) if code != ESCAPE}
_ENCODE.update({ord(ch): chr(ESCAPE) + chr(code) for ch, code in EXTENSION.items()})
_DECODE: dict[int, str] = {code: ch for code, ch in enumerate(BASIC) if code != ESCAPE}
_DECODE.update({code: "?" for code in range(128, 256)})
_DECODE[ESCAPE] = " "  # a trailing escape with nothing after it
_EXT_DECODE: dict[int, str] = {code: ch for ch, code in EXTENSION.items()}
_NOT_GSM = re.compile(
    "[^"
    + re.escape("".join(ch for ch in BASIC if ch != "\x1b"))
    + re.escape("".join(EXTENSION))
    + "]"
)
_ESCAPED = re.compile(b"\x1b(.)", re.DOTALL)
_BITS7: Final = tuple(format(value, "07b") for value in range(128))


def fits_gsm(text: str) -> bool:
    return _NOT_GSM.search(text) is None


def encode_gsm(text: str) -> bytes:
    """Unpacked septets; the caller has checked `fits_gsm` (other characters become '?')."""
    return text.translate(_ENCODE).encode("latin-1", "replace")


def decode_gsm(data: bytes) -> str:
    # split() alternates plain runs with the code after each escape: a loop per escape only.
    pieces = _ESCAPED.split(data)
    out = [pieces[0].decode("latin-1").translate(_DECODE)]
    for index in range(1, len(pieces), 2):
        code = pieces[index][0]
        # An escape before an unknown code shows the basic character, as handsets do.
        out.append(_EXT_DECODE.get(code) or _DECODE.get(code, " "))
        out.append(pieces[index + 1].decode("latin-1").translate(_DECODE))
    return "".join(out)


def pack_septets(septets: bytes) -> bytes:
    """GSM 7-bit packing (3GPP TS 23.038 §6.1.2.1): septet i takes bits 7i..7i+6, LSB first."""
    if not septets:
        return b""
    bits = "".join(map(_BITS7.__getitem__, reversed(septets)))
    return int(bits, 2).to_bytes((len(septets) * 7 + 7) // 8, "little")


def unpack_septets(packed: bytes, septets: int) -> bytes:
    """The inverse of `pack_septets`; `septets` tells a trailing fill of 7 zero bits from '@'."""
    value = int.from_bytes(packed, "little")
    return bytes((value >> (7 * index)) & 0x7F for index in range(septets))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A text made ready for submit_sm: its data_coding and the payload of every part."""

    data_coding: int
    parts: tuple[bytes, ...]  # each part's short_message without the UDH


def encode_text(text: str, *, force_ucs2: bool = False) -> Encoded:
    if not force_ucs2 and fits_gsm(text):
        septets = encode_gsm(text)
        if len(septets) <= SINGLE_SEPTETS:
            return Encoded(DC_DEFAULT, (septets,))
        return Encoded(DC_DEFAULT, tuple(_split_gsm(septets)))
    units = text.encode("utf-16-be")
    if len(units) <= SINGLE_UCS2 * 2:
        return Encoded(DC_UCS2, (units,))
    return Encoded(DC_UCS2, tuple(_split_ucs2(units)))


def _split_gsm(septets: bytes) -> list[bytes]:
    parts = []
    start = 0
    while start < len(septets):
        end = min(start + PART_SEPTETS, len(septets))
        # An escape always opens a pair here (no code of ours is 0x1B): keep the pair together.
        if end < len(septets) and septets[end - 1] == ESCAPE:
            end -= 1
        parts.append(septets[start:end])
        start = end
    return parts


def _split_ucs2(units: bytes) -> list[bytes]:
    parts = []
    step = PART_UCS2 * 2
    start = 0
    while start < len(units):
        end = min(start + step, len(units))
        # A surrogate pair (a character outside the BMP) stays in one part.
        if end < len(units) and 0xD8 <= units[end - 2] <= 0xDB:
            end -= 2
        parts.append(units[start:end])
        start = end
    return parts


def decode_text(data: bytes, data_coding: int) -> str:
    """The text of a deliver_sm payload (the UDH already removed)."""
    scheme = data_coding & 0x0F if data_coding < 0xC0 else data_coding
    if data_coding & 0xF0 == 0xF0:  # message class coding: bit 2 says 8-bit, else GSM
        return data.decode("latin-1") if data_coding & 0x04 else decode_gsm(data)
    if scheme == DC_UCS2:
        return data[: len(data) & ~1].decode("utf-16-be", "replace")
    if scheme in (DC_LATIN1, DC_BINARY):
        return data.decode("latin-1")
    if scheme == DC_IA5:
        return data.decode("ascii", "replace")
    return decode_gsm(data)


def udh_concat(reference: int, total: int, sequence: int) -> bytes:
    """The 6-octet concatenation UDH (IEI 0x00, 8-bit reference)."""
    return bytes((5, 0, 3, reference & 0xFF, total, sequence))


def payloads(
    encoded: Encoded, *, packed: bool = False, udh_reference: int | None = None
) -> list[bytes]:
    """Each part's short_message, led by its concatenation UDH when `udh_reference` is given.

    Packed GSM text after a UDH starts on a septet boundary: the 6 UDH octets take 48 bits,
    so one fill bit comes before the first septet (7 zero septets packed, less their 6 octets).
    """
    parts = encoded.parts
    pack = packed and encoded.data_coding == DC_DEFAULT
    if udh_reference is None:
        return [pack_septets(part) for part in parts] if pack else list(parts)
    total = len(parts)
    return [
        udh_concat(udh_reference, total, index)
        + (pack_septets(b"\0" * 7 + part)[6:] if pack else part)
        for index, part in enumerate(parts, start=1)
    ]


class References:
    """Concatenation references, one counter per channel (wrapping at 256 as the IEI allows)."""

    def __init__(self) -> None:
        # A random start: workers restarted together should not reuse the same references.
        self._counter = count(random.randrange(256))

    def next(self) -> int:
        return next(self._counter) & 0xFF
