"""Writing an email as MIME bytes, ready for DATA (CRLF line ends, 7-bit clean).

The standard library's `email` package builds the same structure at about 2.4 ms an email,
which alone would cap a route near 400 emails/s; this writer produces the parts directly
(tens of microseconds) and keeps to the RFCs it needs: 5322 (header fields, line lengths),
2045-2047 (MIME, transfer encodings, encoded words for UTF-8 headers), 2231 (non-ASCII file
names), 2387 (multipart/related for inline images) and 8058 (one-click unsubscribe). Tests
parse what it writes back with the standard library and compare every part.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from urllib.parse import quote

_LINE = 78  # recommended maximum (RFC 5322 2.1.1); 998 is the hard limit
_WORD_BYTES = 45  # raw bytes per encoded word: 60 base64 characters, 75 with the wrapper
_SPECIALS = frozenset('()<>[]:;@\\,."')
_CONTROL = {i: " " for i in (*range(32), 127)}  # CR, LF, TAB... never reach a header raw


@dataclass(frozen=True, slots=True)
class Mailbox:
    address: str  # ASCII: the domain already IDNA-encoded
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None  # set: an inline part the HTML refers to as cid:...


@dataclass(frozen=True, slots=True)
class Email:
    sender: Mailbox
    to: Mailbox
    subject: str
    html: str
    text: str
    message_id: str  # without the angle brackets
    date: str  # RFC 5322 date-time
    attachments: tuple[Attachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # custom headers, already checked
    list_unsubscribe: str | None = None


def clean(value: str) -> str:
    """A header value on one line: control characters (CR, LF above all) become spaces."""
    return value.translate(_CONTROL) if not value.isprintable() else value


def encoded_words(value: str, first: int = _WORD_BYTES) -> list[str]:
    """RFC 2047 `B` encoded words of whole characters, at most 45 UTF-8 bytes each (the
    first at most `first`, to fit beside its header's name within 76 characters)."""
    words: list[str] = []
    chunk = bytearray()
    limit = first
    for char in value:
        raw = char.encode()
        if chunk and len(chunk) + len(raw) > limit:
            words.append(_word(bytes(chunk)))
            chunk.clear()
            limit = _WORD_BYTES
        chunk += raw
    if chunk:
        words.append(_word(bytes(chunk)))
    return words


def _word(raw: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(raw).decode("ascii") + "?="


def _first_room(name: str) -> int:
    """Raw bytes the first encoded word may hold on the `Name: ` line (76 at most)."""
    return max(3, (76 - len(name) - 2 - 12) // 4 * 3)


def _fold(name: str, words: list[str]) -> str:
    """`Name: value` folded at word boundaries into lines of about 78 characters."""
    lines: list[str] = []
    line = name + ":"
    for word in words:
        if len(line) + 1 + len(word) > _LINE and line != name + ":":
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def text_header(name: str, value: str) -> str:
    """An unstructured header (Subject, custom ones): ASCII as is, anything else encoded."""
    value = clean(value)
    if value.isascii():
        return _fold(name, value.split(" ") if value else [""])
    return _fold(name, encoded_words(value, _first_room(name)))


def _phrase(name: str, header: str) -> list[str]:
    name = clean(name).strip()
    if not name.isascii():
        return encoded_words(name, _first_room(header))
    if _SPECIALS.isdisjoint(name):
        return name.split()
    return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']


def mailbox_header(name: str, mailbox: Mailbox) -> str:
    words = _phrase(mailbox.name, name) if mailbox.name else []
    return _fold(name, [*words, f"<{mailbox.address}>"] if words else [mailbox.address])


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode()


def _text_part(subtype: str, text: str) -> bytes:
    """A text part in the lightest encoding that keeps it 7-bit and lines under 998."""
    data = _crlf(text)
    head = f"Content-Type: text/{subtype}; charset=utf-8\r\n"
    if data.isascii() and all(len(line) <= 998 for line in data.split(b"\r\n")):
        return (head + "Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + data
    if sum(byte > 127 for byte in data) * 3 > len(data):
        # Mostly non-Latin text: base64 is a third larger, quoted-printable three times.
        return (head + "Content-Transfer-Encoding: base64\r\n\r\n").encode() + _base64(data)
    # Soft line breaks come out as bare LF when the text has no line end of its own.
    encoded = binascii.b2a_qp(data, istext=True).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return (head + "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + encoded


def _base64(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _param(name: str, value: str) -> str:
    value = clean(value)
    if value.isascii():
        return f'{name}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name}*=utf-8''{quote(value, safe='')}"  # RFC 2231


def _attachment_part(attachment: Attachment) -> bytes:
    disposition = "inline" if attachment.content_id else "attachment"
    head = (
        f"Content-Type: {attachment.content_type}; {_param('name', attachment.filename)}\r\n"
        f"Content-Disposition: {disposition}; {_param('filename', attachment.filename)}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
    )
    if attachment.content_id:
        head += f"Content-ID: <{clean(attachment.content_id)}>\r\n"
    return (head + "\r\n").encode() + _base64(attachment.data)


def _boundary(seed: str, parts: list[bytes]) -> str:
    """A boundary derived from the Message-ID and the part's place, so one email is written
    the same bytes every time (the sandbox's raw copy is what a route sends); one that a
    part happens to contain is derived again."""
    for salt in range(100):
        digest = hashlib.blake2b(f"{seed}/{salt}".encode(), digest_size=12).hexdigest()
        boundary = "=_oc_" + digest  # "=_" never starts a line of base64 or qp text
        needle = boundary.encode()
        if not any(needle in part for part in parts):
            return boundary
    raise ValueError("no boundary found outside the parts")  # pragma: no cover


def _multipart(subtype: str, parts: list[bytes], seed: str) -> bytes:
    boundary = _boundary(f"{seed}/{subtype}", parts)
    delimiter = f"\r\n--{boundary}\r\n".encode()
    body = delimiter.join(parts)
    return (
        (
            f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'
        ).encode()
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )


def body(email: Email) -> bytes:
    """The MIME entity under the top-level headers: its own Content-* headers first."""
    seed = email.message_id
    entity = _multipart(
        "alternative", [_text_part("plain", email.text), _text_part("html", email.html)], seed
    )
    inline = [_attachment_part(a) for a in email.attachments if a.content_id]
    if inline:
        entity = _multipart("related", [entity, *inline], seed)
    attached = [_attachment_part(a) for a in email.attachments if not a.content_id]
    if attached:
        entity = _multipart("mixed", [entity, *attached], seed)
    return entity


def render(email: Email) -> bytes:
    """The whole message: top-level headers, then the MIME body."""
    head = [
        f"Date: {email.date}\r\n",
        mailbox_header("From", email.sender),
        mailbox_header("To", email.to),
        text_header("Subject", email.subject),
        f"Message-ID: <{email.message_id}>\r\n",
        "MIME-Version: 1.0\r\n",
    ]
    if email.list_unsubscribe:
        head.append(f"List-Unsubscribe: <{clean(email.list_unsubscribe)}>\r\n")
        if email.list_unsubscribe.startswith("https://"):
            head.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    head += [text_header(name, value) for name, value in email.headers]
    return "".join(head).encode("ascii") + body(email)
