"""Reading messages, attempts and operations; every query is scoped to one account."""

from typing import Any

from sqlalchemy import Row, Select, and_, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from opencomms import ids
from opencomms.domain.records import (
    AttemptRecord,
    MessageFilter,
    MessageRecord,
    OperationFilter,
    OperationKind,
    OperationRecord,
    OperationStats,
)
from opencomms.store import operation_status
from opencomms.store.codec import dumps, loads
from opencomms.store.tables import attempt_parts, attempts, messages, operations


def message_record(row: Row[Any]) -> MessageRecord:
    m = row._mapping
    return MessageRecord(
        id=m["id"],
        operation_id=m["operation_id"],
        status=m["status"],
        recipient=loads(m["recipient"]),
        variables=loads(m["variables"]) or {},
        tags=loads(m["tags"]),
        send_at=m["send_at"],
        unaddressable=bool(m["unaddressable"]),
        channel=m["channel"],
        sender=loads(m["sender"]),
        content=loads(m["content"]),
        error_code=m["error_code"],
        error_message=m["error_message"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        deleted_at=m["deleted_at"],
        session_id=m["session_id"],
    )


def _tag_clause(dialect: str, index: int, key: str, value: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        name = f"tag_{index}"
        clause = text(f"CAST(messages.tags AS jsonb) @> CAST(:{name} AS jsonb)")
        return clause.bindparams(**{name: dumps({key: value})})  # type: ignore[return-value]
    return func.json_extract(messages.c.tags, literal(f'$."{key}"')) == value


def _message_where(account_sid: str, f: MessageFilter, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        messages.c.account_sid == account_sid,
        messages.c.deleted_at.is_(None),
    ]
    if f.operation_id:
        where.append(messages.c.operation_id == f.operation_id)
    if f.session_id:
        where.append(messages.c.session_id == f.session_id)
    if f.start is not None:
        where.append(messages.c.created_at >= f.start)
    if f.end is not None:
        where.append(messages.c.created_at <= f.end)
    if f.profile_id:
        where.append(messages.c.profile_id == f.profile_id)
    if f.channel:
        where.append(messages.c.channel == f.channel)
    if f.status:
        where.append(messages.c.status == f.status)
    for index, (key, value) in enumerate(f.tags.items()):
        where.append(_tag_clause(dialect, index, key, value))
    return where


def list_query(
    dialect: str,
    account_sid: str,
    f: MessageFilter,
    *,
    before_id: str | None,
    limit: int,
    prefix: str = ids.MESSAGE_PREFIX,
) -> Select[Any]:
    """Newest first; `before_id` is the keyset position (ids sort by creation time)."""
    where = _message_where(account_sid, f, dialect)
    # Emails share the table: only ids with the prefix are of the resource listed.
    low, high = ids.prefix_range(prefix)
    where += [messages.c.id >= low, messages.c.id < high]
    if before_id is not None:
        where.append(messages.c.id < before_id)
    return select(messages).where(and_(*where)).order_by(messages.c.id.desc()).limit(limit)


async def list_messages(
    conn: AsyncConnection,
    account_sid: str,
    f: MessageFilter,
    *,
    before_id: str | None,
    limit: int,
    prefix: str = ids.MESSAGE_PREFIX,
) -> list[MessageRecord]:
    query = list_query(
        conn.dialect.name, account_sid, f, before_id=before_id, limit=limit, prefix=prefix
    )
    return [message_record(row) for row in await conn.execute(query)]


async def get_message(
    conn: AsyncConnection, account_sid: str, message_id: str
) -> MessageRecord | None:
    query = select(messages).where(
        messages.c.id == message_id,
        messages.c.account_sid == account_sid,
        messages.c.deleted_at.is_(None),
    )
    row = (await conn.execute(query)).first()
    return message_record(row) if row else None


async def list_attempts(conn: AsyncConnection, message_id: str) -> list[AttemptRecord]:
    query = select(attempts).where(attempts.c.message_id == message_id).order_by(attempts.c.number)
    return [
        AttemptRecord(
            number=r.number,
            channel=r.channel,
            sender=loads(r.sender),
            recipient=loads(r.recipient),
            status=r.status,
            attempted_at=r.attempted_at,
            error_code=r.error_code,
            error_message=r.error_message,
            external_id=r.external_id,
        )
        for r in await conn.execute(query)
    ]


def operation_record(row: Row[Any]) -> OperationRecord:
    m = row._mapping
    return OperationRecord(
        id=m["id"],
        status=m["status"],
        content=loads(m["content"]),
        sender=loads(m["sender"]),
        send_at=m["send_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        kind=m["kind"],
    )


async def get_operation(
    conn: AsyncConnection, account_sid: str, operation_id: str
) -> OperationRecord | None:
    query = select(operations).where(
        operations.c.id == operation_id, operations.c.account_sid == account_sid
    )
    row = (await conn.execute(query)).first()
    return operation_record(row) if row else None


async def list_operations(
    conn: AsyncConnection,
    account_sid: str,
    f: OperationFilter,
    *,
    before_id: str | None,
    limit: int,
    kind: str = OperationKind.MESSAGES,
) -> list[OperationRecord]:
    where = [operations.c.account_sid == account_sid, operations.c.kind == kind]
    if f.start is not None:
        where.append(operations.c.created_at >= f.start)
    if f.end is not None:
        where.append(operations.c.created_at <= f.end)
    if f.status:
        where.append(operations.c.status == f.status)
    if before_id is not None:
        where.append(operations.c.id < before_id)
    query = select(operations).where(and_(*where)).order_by(operations.c.id.desc()).limit(limit)
    return [operation_record(row) for row in await conn.execute(query)]


def stats_queries(operation_ids: list[str]) -> tuple[Select[Any], Select[Any]]:
    """Messages by status and attempts, per operation: what the stats counters count
    (store/operation_status.aggregate_stats checks them against it)."""
    counts = (
        select(messages.c.operation_id, messages.c.status, messages.c.unaddressable, func.count())
        .where(messages.c.operation_id.in_(operation_ids))
        .group_by(messages.c.operation_id, messages.c.status, messages.c.unaddressable)
    )
    tries = (
        select(attempts.c.operation_id, func.count())
        .where(attempts.c.operation_id.in_(operation_ids))
        .group_by(attempts.c.operation_id)
    )
    return counts, tries


async def operation_stats(
    conn: AsyncConnection, operation_ids: list[str]
) -> dict[str, OperationStats]:
    """Stats for several operations: their counters, read from the operations rows alone
    (store/operation_status.py keeps them with the statuses they count)."""
    return await operation_status.operation_stats(conn, operation_ids)


async def find_by_external_id(
    conn: AsyncConnection, account_sid: str, identifier: str
) -> str | None:
    # A later part of a long SMS names its attempt through the attempt's first part.
    heads = select(attempt_parts.c.primary_id).where(attempt_parts.c.external_id == identifier)
    query = (
        select(attempts.c.message_id)
        .where(
            or_(attempts.c.external_id == identifier, attempts.c.external_id.in_(heads)),
            attempts.c.account_sid == account_sid,
        )
        .limit(1)
    )
    return (await conn.execute(query)).scalar_one_or_none()
