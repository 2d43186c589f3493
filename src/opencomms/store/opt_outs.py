"""Opt-outs: which numbers told which sender STOP (and have not said START since)."""

from collections.abc import Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.sessions import Consent, bare_number
from opencomms.store.tables import opt_outs

# Pairs are looked up in slices, so a 10,000-recipient batch never builds one huge statement.
_LOOKUP_SLICE = 500


async def record(
    conn: AsyncConnection,
    account_sid: str,
    sender_address: str,
    address: str,
    consent: Consent,
    keyword: str,
    now: int,
) -> None:
    """Keeps the latest consent a number gave a sender."""
    values = {
        "account_sid": account_sid,
        "sender_address": sender_address,
        "address": bare_number(address),
        "opted_out": consent == Consent.OPT_OUT,
        "keyword": keyword,
        "updated_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(opt_outs).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_sid", "sender_address", "address"],
        set_={
            "opted_out": stmt.excluded.opted_out,
            "keyword": stmt.excluded.keyword,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await conn.execute(stmt)


async def opted_out(
    conn: AsyncConnection, account_sid: str, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (sender address, recipient address) pairs are opted out right now.

    Recipient addresses are compared without a `whatsapp:` prefix; the pairs come back as
    they were given, so the caller can look its own values up.
    """
    wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for sender_address, address in pairs:
        wanted.setdefault((sender_address, bare_number(address)), []).append(
            (sender_address, address)
        )
    keys = list(wanted)
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _LOOKUP_SLICE):
        chunk = keys[start : start + _LOOKUP_SLICE]
        match = or_(
            *(and_(opt_outs.c.sender_address == s, opt_outs.c.address == a) for s, a in chunk)
        )
        query = select(opt_outs.c.sender_address, opt_outs.c.address).where(
            opt_outs.c.account_sid == account_sid, opt_outs.c.opted_out, match
        )
        for row in await conn.execute(query):
            found.update(wanted[(row.sender_address, row.address)])
    return found


async def accounts_with_opt_outs(conn: AsyncConnection, account_sids: Iterable[str]) -> set[str]:
    """Which of these accounts have any number opted out: the pair lookup is skipped for
    the others (most batches), so enforcing opt-outs costs one small query per batch."""
    wanted = list(account_sids)
    if not wanted:
        return set()
    query = (
        select(opt_outs.c.account_sid)
        .where(opt_outs.c.account_sid.in_(wanted), opt_outs.c.opted_out)
        .distinct()
    )
    return {row.account_sid for row in await conn.execute(query)}
