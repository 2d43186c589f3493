"""Records to the Emails wire models."""

import base64
import binascii
from typing import Any

from opencomms.api import email_wire, wire
from opencomms.clock import rfc3339
from opencomms.domain.emails import templated
from opencomms.domain.html_text import html_to_text
from opencomms.domain.records import MessageRecord, OperationRecord, OperationStats
from opencomms.domain.send import render_content
from opencomms.domain.status import MessageStatus

# Our statuses in the Emails API's words: a read email is an opened one.
_STATUS = {MessageStatus.READ.value: "OPENED"}


def operation_uri(base: str, operation_id: str) -> str:
    return f"{base}/Emails/Operations/{operation_id}"


def email_uri(base: str, email_id: str) -> str:
    return f"{base}/Emails/{email_id}"


def _address(item: dict[str, Any]) -> dict[str, str]:
    """The spec's EmailAddress: only `address` and `name` (additionalProperties: false)."""
    out = {"address": str(item.get("address", ""))}
    if item.get("name"):
        out["name"] = str(item["name"])
    return out


def email_metadata(
    record: MessageRecord, sender: dict[str, Any], base: str
) -> email_wire.EmailMetadata:
    to = [_address(record.recipient)] if "address" in record.recipient else []
    return email_wire.EmailMetadata(
        id=record.id,
        from_=_address(sender),
        to=to,
        status=_STATUS.get(record.status, record.status),
        related=[
            wire.Related(
                name="OPERATION",
                id=record.operation_id,
                uri=operation_uri(base, record.operation_id),
            )
        ],
        tags=record.tags,
        scheduled_for=rfc3339(record.send_at),
        created_at=rfc3339(record.created_at) or "",
        updated_at=rfc3339(record.updated_at) or "",
        deleted_at=rfc3339(record.deleted_at),
    )


def _media(item: dict[str, Any], data: Any, at: str) -> dict[str, Any]:
    """An attachment as the spec's Media: its rendered name and type, its stored size."""
    try:
        size = len(base64.b64decode(str(data.get("content", "")), validate=True))
    except (AttributeError, binascii.Error, ValueError):
        size = 0
    return {
        "fileName": str(item.get("filename", "")),
        "fileSize": size,
        "mimeType": str(item.get("contentType", "application/octet-stream")),
        "contentReference": {},  # OpenComms keeps no downloadable copy of attachments
        "createdAt": at,
        "updatedAt": at,
        "deletedAt": None,
    }


def resolved_content(record: MessageRecord, operation: OperationRecord) -> dict[str, Any]:
    """The content as this recipient gets it: rendered, with the text part it is sent."""
    rendered = record.content or render_content(templated(operation.content), record.variables)
    html = str(rendered.get("html", ""))
    text = rendered.get("text")
    at = rfc3339(record.created_at) or ""
    shown, stored = rendered.get("attachments"), operation.content.get("attachments")
    pairs = zip(shown, stored, strict=False) if isinstance(shown, list) and stored else []
    return {
        "subject": str(rendered.get("subject", "")),
        "text": text if isinstance(text, str) else html_to_text(html),
        "html": html,
        "attachments": [_media(item, data, at) for item, data in pairs],
    }


def display_sender(sender: Any) -> dict[str, Any]:
    """The `from` of an email operation's content (its name is stored Liquid-escaped)."""
    return render_content(sender, {}) if isinstance(sender, dict) else {}


def email(record: MessageRecord, operation: OperationRecord, base: str) -> email_wire.Email:
    sender = display_sender(operation.content.get("from"))
    metadata = email_metadata(record, sender, base)
    return email_wire.Email(
        **metadata.model_dump(by_alias=True), content=resolved_content(record, operation)
    )


def email_operation(record: OperationRecord, stats: OperationStats) -> email_wire.EmailOperation:
    return email_wire.EmailOperation(
        id=record.id,
        status=record.status,
        stats=email_wire.EmailOperationStats(
            total=stats.total,
            recipients=stats.recipients,
            attempts=stats.attempts,
            queued=stats.count("QUEUED"),
            sent=stats.count("SENT"),
            scheduled=stats.count("SCHEDULED"),
            delivered=stats.count("DELIVERED"),
            opened=stats.count("READ"),
            undelivered=stats.count("UNDELIVERED"),
            # Recipients no route can reach (profiles, today) failed as far as emails go.
            failed=stats.count("FAILED") + stats.unaddressable,
            canceled=stats.count("CANCELED"),
        ),
        created_at=rfc3339(record.created_at) or "",
        updated_at=rfc3339(record.updated_at) or "",
    )
