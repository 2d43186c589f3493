"""From a hand-off to the email it stands for: addresses, names, parts and headers.

The content of an EMAIL hand-off is the Emails API's, rendered for its recipient: `subject`,
`html`, `text` (derived from the HTML when absent), `attachments`, `headers`, and the display
names as `from` / `to` objects (`{"address", "name"}`) when the send had them.
"""

import base64
import binascii
import re
from typing import Any

from opencomms.channels.base import OutboundMessage
from opencomms.channels.smtp.config import SmtpRouteConfig
from opencomms.channels.smtp.mime import Attachment, Email, Mailbox
from opencomms.domain.email_rules import RESERVED_HEADERS, is_header_name
from opencomms.domain.html_text import html_to_text

_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


def ascii_address(address: str) -> str:
    """The address as SMTP without SMTPUTF8 takes it: the domain IDNA-encoded."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _name(content: dict[str, Any], key: str) -> str | None:
    value = content.get(key)
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"]) or None
    return None


def _attachments(items: Any) -> tuple[Attachment, ...]:
    found = []
    for item in items if isinstance(items, list) else []:
        try:
            data = base64.b64decode(item["content"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue  # checked at accept; a row written otherwise loses only the part
        content_type = str(item.get("contentType", ""))
        found.append(
            Attachment(
                filename=str(item.get("filename") or "attachment"),
                content_type=content_type
                if _CONTENT_TYPE.match(content_type)
                else "application/octet-stream",
                data=data,
                content_id=item.get("cid") or None,
            )
        )
    return tuple(found)


def _headers(items: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, dict):
        return ()
    return tuple(
        (name, str(value))
        for name, value in items.items()
        if is_header_name(name) and name.lower() not in RESERVED_HEADERS
    )


def message_id(message: OutboundMessage, config: SmtpRouteConfig) -> str:
    """Ours, one per email (every attempt shares it), kept as the hand-off's identifier."""
    domain = config.message_id_domain or ascii_address(message.sender).rpartition("@")[2]
    return f"{message.message_id}@{domain}"[:128]


def email_of(message: OutboundMessage, date: str, config: SmtpRouteConfig) -> Email:
    content = message.content
    html = str(content.get("html") or "")
    text = content.get("text")
    headers = _headers(content.get("headers"))
    # A send's own List-Unsubscribe (per recipient, say) wins over the route's.
    own_unsubscribe = any(name.lower() == "list-unsubscribe" for name, _ in headers)
    return Email(
        sender=Mailbox(ascii_address(message.sender), _name(content, "from")),
        to=Mailbox(ascii_address(message.to), _name(content, "to")),
        subject=str(content.get("subject") or ""),
        html=html,
        text=str(text) if isinstance(text, str) else html_to_text(html),
        message_id=message_id(message, config),
        date=date,
        attachments=_attachments(content.get("attachments")),
        headers=headers,
        list_unsubscribe=None if own_unsubscribe else config.list_unsubscribe,
    )
