"""Records to wire models: what every Message and Operation answer looks like."""

from typing import Any

from opencomms.api import wire
from opencomms.clock import rfc3339
from opencomms.domain import errors
from opencomms.domain.records import AttemptRecord, MessageRecord, OperationRecord, OperationStats
from opencomms.domain.resolve import Pairing
from opencomms.domain.sender_pools import PoolOperationRecord, SenderPoolRecord
from opencomms.domain.senders import SenderRecord


def _to(recipient: dict[str, Any]) -> list[dict[str, Any]]:
    if "addresses" in recipient:
        return list(recipient["addresses"])
    if "address" in recipient:
        return [recipient]
    # A profile recipient's address is unknown until a profile store resolves it.
    return []


def operation_uri(base: str, operation_id: str) -> str:
    return f"{base}/Messages/Operations/{operation_id}"


def session_uri(base: str, session_id: str) -> str:
    return f"{base}/Messages?sessionId={session_id}"


def seek_uri(base: str, identifier: str) -> str:
    return f"{base}/Messages/Seek/{identifier}"


def _related(record: MessageRecord, base: str) -> list[wire.Related]:
    related = []
    if record.operation_id:  # inbound messages belong to no operation
        uri = operation_uri(base, record.operation_id)
        related.append(wire.Related(name="OPERATION", id=record.operation_id, uri=uri))
    if record.session_id:
        uri = session_uri(base, record.session_id)
        related.append(wire.Related(name="SESSION", id=record.session_id, uri=uri))
    return related


def message_metadata(record: MessageRecord, base: str) -> wire.MessageMetadata:
    return wire.MessageMetadata(
        id=record.id,
        from_=record.sender or {},
        to=_to(record.recipient),
        status=record.status,
        related=_related(record, base),
        tags=record.tags,
        scheduled_for=rfc3339(record.send_at),
        created_at=rfc3339(record.created_at) or "",
        updated_at=rfc3339(record.updated_at) or "",
        deleted_at=rfc3339(record.deleted_at),
    )


def _attempt(attempt: AttemptRecord, message_url: str, base: str) -> wire.Attempt:
    """An attempt; `identifier` (an extension) and `infoUrl` make it seekable."""
    error = None
    if attempt.error_code is not None:
        error = wire.TwilioErrorNullable(
            code=attempt.error_code,
            message=attempt.error_message or "",
            info_url=errors.info_url(attempt.error_code),
        )
    return wire.Attempt(
        from_=attempt.sender,
        to=attempt.recipient,
        status=attempt.status,
        attempted_at=rfc3339(attempt.attempted_at) or "",
        info_url=seek_uri(base, attempt.external_id) if attempt.external_id else message_url,
        error=error,
        identifier=attempt.external_id,
    )


def message_from_parts(
    record: MessageRecord, content: dict[str, Any], attempts: list[AttemptRecord], base: str
) -> wire.Message:
    """A Message answer from a record, its rendered content and its attempts."""
    metadata = message_metadata(record, base)
    message_url = f"{base}/Messages/{record.id}"
    return wire.Message(
        **metadata.model_dump(by_alias=True),
        content=content,
        attempts=[_attempt(a, message_url, base) for a in attempts],
    )


def operation(record: OperationRecord, stats: OperationStats) -> wire.Operation:
    return wire.Operation(
        id=record.id,
        status=record.status,
        stats=wire.OperationStats(
            total=stats.total,
            recipients=stats.recipients,
            attempts=stats.attempts,
            unaddressable=stats.unaddressable,
            queued=stats.count("QUEUED"),
            sent=stats.count("SENT"),
            scheduled=stats.count("SCHEDULED"),
            delivered=stats.count("DELIVERED"),
            read=stats.count("READ"),
            undelivered=stats.count("UNDELIVERED"),
            failed=stats.count("FAILED"),
            canceled=stats.count("CANCELED"),
        ),
        created_at=rfc3339(record.created_at) or "",
        updated_at=rfc3339(record.updated_at) or "",
    )


def sender(record: SenderRecord) -> wire.Sender:
    return wire.Sender(
        id=record.id,
        display_name=record.display_name,
        address=record.address,
        channel=record.channel.value,
        status=record.status.value,
        tags=record.tags,
        created_at=rfc3339(record.created_at) or "",
        updated_at=rfc3339(record.updated_at) or "",
    )


def pairing(found: Pairing) -> wire.ResolvedPair:
    return wire.ResolvedPair(
        from_=wire.ResolvedFrom(
            sender_id=found.sender.id,
            display_name=found.sender.display_name,
            address=found.sender.address,
            channel=found.sender.channel.value,
        ),
        to=wire.ResolvedTo(address=found.to.address, channel=found.to.channel),
        priority=found.priority,
    )


def sender_pool(record: SenderPoolRecord) -> wire.SenderPool:
    return wire.SenderPool(
        id=record.id,
        name=record.name,
        tags=record.tags,
        created_at=rfc3339(record.created_at) or "",
        updated_at=rfc3339(record.updated_at) or "",
    )


def sender_pool_operation(record: PoolOperationRecord) -> wire.SenderPoolOperation:
    return wire.SenderPoolOperation(
        id=record.id,
        status=record.status,
        stats=wire.SenderPoolOperationStats(
            total=record.total, queued=record.queued, created=record.created, failed=record.failed
        ),
        created_at=rfc3339(record.created_at) or "",
        updated_at=rfc3339(record.updated_at) or "",
    )
