"""Per-sender pacing in the claim transaction (the schedule itself: domain/pacing.py), and
the slots of routes with a rate of their own (an SMTP route's `mps`).

The `sender_pacing` row of each paced sender is read under a row lock (PostgreSQL; SQLite
holds the write lock already) in the transaction that claims its messages, so every worker
process takes slots from the one schedule. Rows are locked in sender id order, so two workers
never wait on each other in a cycle.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.pacing import Schedule
from opencomms.domain.status import MessageStatus
from opencomms.store.queue import Claim, update_from
from opencomms.store.tables import sender_pacing, senders

_SENDING = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)


@dataclass(frozen=True, slots=True)
class _Deferral:
    id: str
    token: int
    slot: int
    next_at: int


@dataclass
class Rates:
    """Each sender's mps as recently read: most batches have no paced sender at all, and
    then the claim costs no extra statement. A changed rate is seen within `ttl_ms`."""

    ttl_ms: int = 5000
    _known: dict[str, tuple[float, int]] = field(default_factory=dict)

    async def of(self, conn: AsyncConnection, sender_ids: list[str], now: int) -> dict[str, float]:
        stale = [s for s in sender_ids if s not in self._known or self._known[s][1] < now]
        if stale:
            found = await conn.execute(
                select(senders.c.id, senders.c.mps).where(senders.c.id.in_(stale))
            )
            rates = {row.id: float(row.mps) for row in found}
            for sender_id in stale:
                self._known[sender_id] = (rates.get(sender_id, 0.0), now + self.ttl_ms)
        return {s: self._known[s][0] for s in sender_ids if self._known[s][0] > 0}


ROUTE_KEY_PREFIX = "route:"  # a route's own schedule shares the table with senders'


def route_key(route: str) -> str:
    """The `sender_pacing` key of a route's own rate (sender ids never start `route:`)."""
    return (ROUTE_KEY_PREFIX + route)[:64]


async def reserve_slots(
    conn: AsyncConnection, key: str, mps: float, count: int, now: int
) -> list[int]:
    """Takes the next `count` slots (epoch ms) of the schedule `key`, as a claim takes a
    paced sender's: each `max(next_slot, now)`, one interval after the one before. The row
    is locked (PostgreSQL) or written under the write lock (SQLite) until the transaction
    ends, so two processes never take the same slot."""
    schedule = (await _schedules(conn, {key: mps}))[key]
    slots = [schedule.place(None, now, 0).slot for _ in range(count)]
    await conn.execute(
        update(sender_pacing)
        .where(sender_pacing.c.sender_id == key)
        .values(next_slot=schedule.next_slot)
    )
    return slots


async def _schedules(conn: AsyncConnection, mps: dict[str, float]) -> dict[str, Schedule]:
    paced = sorted(mps)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        insert(sender_pacing)
        .values([{"sender_id": sender_id, "next_slot": 0.0} for sender_id in paced])
        .on_conflict_do_nothing(index_elements=["sender_id"])
    )
    query = (
        select(sender_pacing.c.sender_id, sender_pacing.c.next_slot)
        .where(sender_pacing.c.sender_id.in_(paced))
        .order_by(sender_pacing.c.sender_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = (await conn.execute(query)).all()
    return {row.sender_id: Schedule(mps[row.sender_id], float(row.next_slot)) for row in rows}


async def pace(
    conn: AsyncConnection,
    claims: Sequence[Claim],
    now: int,
    horizon_ms: int,
    lead_ms: int,
    rates: Rates,
) -> tuple[list[Claim], int]:
    """Gives each claimed message of a paced sender its slot: those due within the horizon
    are returned with `slot` set, the others released to come back just before their slot.
    Returns the claims to handle now and how many were deferred."""
    by_sender: dict[str, list[int]] = defaultdict(list)
    for index, claim in enumerate(claims):
        if claim.sender_id is not None and claim.status in _SENDING:
            by_sender[claim.sender_id].append(index)
    if not by_sender:
        return list(claims), 0
    paced = await rates.of(conn, sorted(by_sender), now)
    if not paced:
        return list(claims), 0
    schedules = await _schedules(conn, paced)
    if not schedules:
        return list(claims), 0
    kept = list(claims)
    deferred: list[_Deferral] = []
    for sender_id, schedule in schedules.items():
        # Reservations first, then the rest in their queue order (oldest due first).
        for index in sorted(by_sender[sender_id], key=lambda i: claims[i].paced_at or now):
            claim = claims[index]
            decision = schedule.place(claim.paced_at, now, horizon_ms)
            if decision.keep:
                kept[index] = replace(claim, slot=decision.slot)
            else:
                next_at = max(decision.slot - lead_ms, now)
                deferred.append(_Deferral(claim.id, claim.lease_token, decision.slot, next_at))
        await conn.execute(
            update(sender_pacing)
            .where(sender_pacing.c.sender_id == sender_id)
            .values(next_slot=schedule.next_slot)
        )
    await _release(conn, deferred)
    gone = {d.id for d in deferred}
    return [c for c in kept if c.id not in gone], len(deferred)


async def _release(conn: AsyncConnection, rows: list[_Deferral]) -> None:
    """Back to the queue with the slot reserved: no attempt used, no status change."""
    sql = (
        "UPDATE messages SET next_attempt_at = v.next_at, paced_at = v.slot,"
        " lease_owner = NULL, lease_expires_at = NULL FROM {rows}"
        " WHERE messages.id = v.id AND messages.lease_token = v.token RETURNING messages.id"
    )
    columns = (("id", "text"), ("token", "int"), ("slot", "int"), ("next_at", "int"))
    await update_from(conn, sql, columns, rows)
