"""The declared sender inventory made real in the database, for every account.

The config file declares senders (`[[senders]]`); with none declared, every account gets the
default sandbox senders (domain.senders.DEFAULT_SENDERS), accounts created later included.
Several processes may start at once on one PostgreSQL database: a transaction-scoped
advisory lock makes their syncs take turns instead of colliding on the same inserts.
"""

from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.senders import DEFAULT_SENDERS, DeclaredSender, SenderRecord
from opencomms.store import senders
from opencomms.store.tables import accounts
from opencomms.store.tables import senders as senders_table

_SYNC_LOCK = 0x6F70_656E_636F  # any constant shared by every OpenComms process


class NoBootstrapAccount(LookupError):
    """Senders without an `account` were declared, but there is no account to give them."""


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SYNC_LOCK})


async def bootstrap_account(conn: AsyncConnection, configured: str | None) -> str | None:
    """The account senders without `account` belong to: the configured one, or the oldest."""
    if configured:
        return configured
    query = select(accounts.c.sid).order_by(accounts.c.created_at, accounts.c.sid).limit(1)
    sid: str | None = (await conn.execute(query)).scalar_one_or_none()
    return sid


async def declared_records(
    conn: AsyncConnection, declared: Sequence[DeclaredSender], configured: str | None
) -> list[SenderRecord]:
    """The records the declaration stands for: the defaults for every account when nothing
    is declared, else each declared sender under its account."""
    if not declared:
        sids = (await conn.execute(select(accounts.c.sid))).scalars().all()
        return [d.record(sid) for sid in sids for d in DEFAULT_SENDERS]
    bootstrap = await bootstrap_account(conn, configured)
    if bootstrap is None and any(d.account_sid is None for d in declared):
        raise NoBootstrapAccount(
            "senders without `account` need an account: create one first"
            " (opencomms accounts create) or set `account` on each sender"
        )
    return [d.record(d.account_sid or bootstrap or "") for d in declared]


async def sync(
    conn: AsyncConnection,
    declared: Sequence[DeclaredSender],
    now: int,
    *,
    configured_account: str | None = None,
) -> list[SenderRecord]:
    """Makes the senders table match the declaration; returns the active senders."""
    await _lock(conn)
    records = await declared_records(conn, declared, configured_account)
    await senders.sync_declared(conn, records, now)
    return records


async def give_defaults(conn: AsyncConnection, account_sid: str, now: int) -> None:
    """A new account's default senders, when no sender is declared (the caller knows)."""
    await _lock(conn)
    existing = set(
        (
            await conn.execute(
                select(senders_table.c.id).where(senders_table.c.account_sid == account_sid)
            )
        ).scalars()
    )
    for sender in DEFAULT_SENDERS:
        record = sender.record(account_sid)
        if record.id not in existing:
            await conn.execute(
                senders_table.insert().values(
                    id=record.id,
                    account_sid=account_sid,
                    channel=record.channel.value,
                    address=record.address,
                    route=record.route,
                    mps=record.mps,
                    display_name=record.display_name,
                    status=record.status.value,
                    tags="{}",
                    created_at=now,
                    updated_at=now,
                )
            )


async def list_all(conn: AsyncConnection) -> list[SenderRecord]:
    """Every sender of every account, active first, by account, channel and address."""
    query = select(senders_table).order_by(
        senders_table.c.status,
        senders_table.c.account_sid,
        senders_table.c.channel,
        senders_table.c.address,
    )
    return [senders.record_of(row) for row in (await conn.execute(query)).all()]
