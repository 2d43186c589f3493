"""The sandbox inbox: what the sandbox "delivered", read back from the attempt rows.

Nothing is copied when the sandbox takes a message: an attempt row with the sandbox's
identifier plus the message's rendered content already say who got what, so dispatch pays
nothing for the inbox. A clear is one row in `sandbox_clears` that hides what came before it.

Two inboxes share this: the Messages' (hand-offs the sandbox named `SM…`) and the Emails'
(hand-offs it named with a Message-ID `<emailId>@sandbox.opencomms.local`); a clear of one
leaves the other alone.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, cast, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from opencomms.domain.emails import SANDBOX_EMAIL_DOMAIN
from opencomms.store.codec import dumps, loads
from opencomms.store.tables import attempts, messages, sandbox_clears

# The sandbox names its hand-offs like Twilio's message SIDs ("SM" + 32 hex digits); the
# attempts of other routes carry their own channel's ids.
SANDBOX_ID_PREFIX = "SM"
MESSAGES = "MESSAGES"
EMAILS = "EMAILS"


@dataclass(frozen=True, slots=True)
class SandboxFilter:
    to: str | None = None
    operation_id: str | None = None
    channel: str | None = None
    email_id: str | None = None  # the Emails inbox: the deliveries of one email


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the sandbox's phone received it."""

    position: int  # the attempt row's id: newest first, and the page token's keyset
    message_id: str
    operation_id: str
    attempt: int
    channel: str
    sender: str
    to: str
    content: dict[str, Any]
    identifier: str
    delivered_at: int


def _to_address(dialect: str) -> ColumnElement[Any]:
    """The attempt's recipient address (its `to` is a one-element JSON array)."""
    if dialect == "postgresql":
        element = cast(attempts.c.recipient, JSONB).op("->")(literal(0))
        return element.op("->>")(literal("address"))
    return func.json_extract(attempts.c.recipient, literal("$[0].address"))


def _from_address(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(attempts.c.sender, JSONB).op("->>")(literal("address"))
    return func.json_extract(attempts.c.sender, literal("$.address"))


def _taken_by_sandbox(kind: str) -> ColumnElement[bool]:
    """The attempts the sandbox took for this inbox, by the identifier it gave them."""
    if kind == EMAILS:
        return and_(
            attempts.c.channel == "EMAIL",
            attempts.c.external_id.endswith("@" + SANDBOX_EMAIL_DOMAIN, autoescape=True),
        )
    return attempts.c.external_id.like(SANDBOX_ID_PREFIX + "%")


def _visible(
    account_sid: str, f: SandboxFilter, dialect: str, kind: str
) -> list[ColumnElement[bool]]:
    to = _to_address(dialect)
    cleared = exists(
        select(sandbox_clears.c.id).where(
            sandbox_clears.c.account_sid == account_sid,
            attempts.c.id <= sandbox_clears.c.up_to_attempt,
            or_(sandbox_clears.c.kind.is_(None), sandbox_clears.c.kind == kind),
            or_(sandbox_clears.c.to_address.is_(None), sandbox_clears.c.to_address == to),
            or_(
                sandbox_clears.c.operation_id.is_(None),
                sandbox_clears.c.operation_id == attempts.c.operation_id,
            ),
        )
    )
    where: list[ColumnElement[bool]] = [
        attempts.c.account_sid == account_sid,
        _taken_by_sandbox(kind),
        ~cleared,
    ]
    if f.to is not None:
        # A plain substring test first (attempt rows hold compact orjson text), so the JSON
        # is only parsed for the rows that may match, not for every row of the account.
        needle = dumps({"address": f.to})[1:-1]
        where.append(attempts.c.recipient.contains(needle, autoescape=True))
        where.append(to == f.to)
    if f.operation_id is not None:
        where.append(attempts.c.operation_id == f.operation_id)
    if f.channel is not None:
        where.append(attempts.c.channel == f.channel)
    if f.email_id is not None:
        where.append(attempts.c.message_id == f.email_id)
    return where


def _query(
    dialect: str, account_sid: str, f: SandboxFilter, before: int | None, limit: int, kind: str
) -> Select[Any]:
    """The page is cut from the attempt rows first (newest first down their primary key),
    and only its rows are joined to their messages for the content."""
    where = _visible(account_sid, f, dialect, kind)
    if before is not None:
        where.append(attempts.c.id < before)
    page = (
        select(
            attempts.c.id,
            attempts.c.message_id,
            attempts.c.operation_id,
            attempts.c.number,
            attempts.c.channel,
            _from_address(dialect).label("sender_address"),
            _to_address(dialect).label("to_address"),
            attempts.c.external_id,
            attempts.c.attempted_at,
        )
        .where(and_(*where))
        .order_by(attempts.c.id.desc())
        .limit(limit)
        .cte("page")
    )
    return (
        select(page, messages.c.content)
        .join(messages, messages.c.id == page.c.message_id)
        .order_by(page.c.id.desc())
    )


async def list_deliveries(
    conn: AsyncConnection,
    account_sid: str,
    f: SandboxFilter,
    *,
    before: int | None,
    limit: int,
    kind: str = MESSAGES,
) -> list[Delivery]:
    """Newest first; `before` is the keyset position (an attempt row id)."""
    query = _query(conn.dialect.name, account_sid, f, before, limit, kind)
    return [
        Delivery(
            position=int(row.id),
            message_id=row.message_id,
            operation_id=row.operation_id,
            attempt=row.number,
            channel=row.channel,
            sender=row.sender_address,
            to=row.to_address,
            content=loads(row.content) or {},
            identifier=row.external_id,
            delivered_at=row.attempted_at,
        )
        for row in await conn.execute(query)
    ]


_OPERATION_ID_LENGTH = 64  # sandbox_clears.operation_id's, as every id column's


async def clear(
    conn: AsyncConnection,
    account_sid: str,
    *,
    to: str | None,
    operation_id: str | None,
    now: int,
    kind: str = MESSAGES,
) -> None:
    """Hides every delivery of this inbox made so far (to one address, of one operation,
    or all)."""
    if operation_id is not None and len(operation_id) > _OPERATION_ID_LENGTH:
        # Well-formed (the spec's pattern only fixes how an id begins) but longer than any
        # id can be: no delivery is of it, so there is nothing to hide.
        return
    up_to = (await conn.execute(select(func.max(attempts.c.id)))).scalar_one_or_none()
    if up_to is None:
        return
    await conn.execute(
        sandbox_clears.insert().values(
            account_sid=account_sid,
            to_address=to,
            operation_id=operation_id,
            up_to_attempt=up_to,
            created_at=now,
            kind=kind,
        )
    )
