"""Senders: read the declared inventory, search it, resolve pairings for a person."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.domain import errors
from opencomms.domain.channels import ChannelType
from opencomms.domain.errors import NotFound, Problem, ValidationFailed
from opencomms.domain.records import SenderFilter
from opencomms.domain.resolve import (
    ChannelControl,
    Pairing,
    RecipientAddress,
    recipient_problems,
    resolve,
)
from opencomms.domain.send import MAX_PROBLEMS
from opencomms.domain.senders import (
    SENDER_POOL_PREFIX,
    SENDER_PREFIX,
    SenderRecord,
    SenderStatus,
)
from opencomms.services.sender_pools import live_pool
from opencomms.store import sender_pools, senders
from opencomms.store.db import Database


async def list_senders(
    db: Database,
    account_sid: str,
    f: SenderFilter,
    *,
    before_id: str | None,
    limit: int,
    pool_id: str | None = None,
) -> list[SenderRecord]:
    """A page of the account's senders; of one live pool if `pool_id` is given (NotFound when
    the account has no such pool)."""
    async with db.read() as conn:
        if pool_id is not None:
            await live_pool(conn, account_sid, pool_id)
        return await senders.list_senders(
            conn, account_sid, f, before_id=before_id, limit=limit, pool_id=pool_id
        )


async def get_sender(db: Database, account_sid: str, sender_id: str) -> SenderRecord:
    if ids.is_well_formed(sender_id, SENDER_PREFIX):
        async with db.read() as conn:
            found = await senders.get(conn, account_sid, sender_id)
        if found is not None:
            return found
    raise NotFound(f"Sender {sender_id}")


@dataclass(frozen=True)
class SenderAddress:
    """A request's `senderAddresses`: narrow the pairings to the sender with this address
    (and channel, when given)."""

    address: str
    channel: str | None = None


@dataclass(frozen=True)
class ResolveQuery:
    recipients: list[RecipientAddress]
    pool_id: str | None = None
    sender: SenderAddress | None = None
    control: ChannelControl = field(default_factory=ChannelControl)


async def resolve_senders(
    db: Database, account_sid: str, query: ResolveQuery, *, prior: Sequence[Problem] = ()
) -> list[Pairing]:
    """The best pairings for one person. An unknown pool or sender address is a problem at
    its field (the spec answers Resolve with 400, never 404); `prior` problems (the schema
    check's) are answered together with these."""
    problems = list(prior)
    refused = {p.context for p in prior}
    problems += [
        p
        for p in recipient_problems(query.recipients, "$.recipientAddresses")
        if p.context not in refused
    ]
    async with db.read() as conn:
        if query.pool_id is not None:
            candidates = await _pool_members(conn, account_sid, query.pool_id)
            if candidates is None and "$.senderPoolId" not in refused:
                problems.append(
                    _problem(f"You have no SenderPool {query.pool_id}", "$.senderPoolId")
                )
        else:
            candidates = await senders.for_account(conn, account_sid)
    if query.sender is not None and candidates is not None:
        candidates = [s for s in candidates if _is(s, query.sender)]
        if not candidates and "$.senderAddresses" not in refused:
            problems.append(_no_sender(query.sender))
    if problems:
        raise ValidationFailed(problems[:MAX_PROBLEMS])
    return resolve(candidates or [], query.recipients, query.control)


async def _pool_members(
    conn: AsyncConnection, account_sid: str, pool_id: str
) -> list[SenderRecord] | None:
    """The pool's active senders; None when the account has no such live pool."""
    if not ids.is_well_formed(pool_id, SENDER_POOL_PREFIX):
        return None
    found = await sender_pools.members(conn, account_sid, pool_id)
    return None if found is None else [s for s in found if s.status == SenderStatus.ACTIVATED]


def _is(sender: SenderRecord, wanted: SenderAddress) -> bool:
    if wanted.channel is not None and sender.channel != wanted.channel:
        return False
    if wanted.channel is None and sender.channel != ChannelType.EMAIL:
        return False  # the email form names no channel
    if sender.channel == ChannelType.EMAIL:  # email addresses compare case-insensitively
        return sender.address.lower() == wanted.address.lower()
    return sender.address == wanted.address


def _no_sender(wanted: SenderAddress) -> Problem:
    channel = wanted.channel or ChannelType.EMAIL.value
    return _problem(
        f"You have no active {channel} sender with address '{wanted.address}'", "$.senderAddresses"
    )


def _problem(message: str, context: str) -> Problem:
    return Problem(errors.INVALID_PARAMETER, message, context)
