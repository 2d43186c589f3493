"""What callers pass to `send_messages`, turned into the SendMessages body.

Shorthands only: anything the API accepts may also be passed as the wire dict itself, and the
server, not the SDK, judges whether it is valid (so its error list is the one authority).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SENDER_ID_PREFIX = "comms_sender_"
SENDER_POOL_ID_PREFIX = "comms_senderpool_"


@dataclass(frozen=True)
class Recipient:
    """One recipient with its personalization variables."""

    address: str
    channel: str = "PHONE"
    variables: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"address": self.address, "channel": self.channel}
        if self.variables:
            body["variables"] = dict(self.variables)
        return body


RecipientLike = str | Recipient | Mapping[str, Any]
SenderLike = str | Mapping[str, Any]


def recipient_body(item: RecipientLike) -> dict[str, Any]:
    """A phone number string, a `Recipient`, or a wire recipient dict as given."""
    if isinstance(item, str):
        return {"address": item, "channel": "PHONE"}
    if isinstance(item, Recipient):
        return item.to_wire()
    return dict(item)


def sender_body(value: SenderLike) -> dict[str, Any]:
    """A sender id, a sender pool id, an SMS address, or a wire `from` dict as given."""
    if not isinstance(value, str):
        return dict(value)
    if value.startswith(SENDER_POOL_ID_PREFIX):
        return {"senderPoolId": value}
    if value.startswith(SENDER_ID_PREFIX):
        return {"senderId": value}
    return {"address": value, "channel": "SMS"}


def send_at_value(value: datetime | str) -> str:
    """RFC 3339; a naive datetime stays without offset, meaning each recipient's local time."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def send_body(
    to: Iterable[RecipientLike],
    *,
    text: str | None,
    content: Mapping[str, Any] | None,
    media: Iterable[str] | None,
    from_: SenderLike | None,
    send_at: datetime | str | None,
    tags: Mapping[str, str] | None,
) -> dict[str, Any]:
    if (text is None) == (content is None):
        raise ValueError("pass exactly one of text= or content=")
    if content is not None and media is not None:
        raise ValueError("media= goes with text=; put media inside content= instead")
    body: dict[str, Any] = {"to": [recipient_body(item) for item in to]}
    if content is not None:
        body["content"] = dict(content)
    else:
        body["content"] = {"text": text}
        if media is not None:
            body["content"]["media"] = [{"url": url} for url in media]
    if from_ is not None:
        body["from"] = sender_body(from_)
    if send_at is not None:
        body["schedule"] = {"sendAt": [send_at_value(send_at)]}
    if tags:
        body["tags"] = dict(tags)
    return body
