"""Sending through the API and letting an in-process worker deliver, for sandbox tests."""

from typing import Any

import httpx
from sqlalchemy import select, update

from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import SenderRecord, SenderStatus, sender_id
from opencomms.store import senders, tables
from opencomms.store.db import Database
from tests.dispatch.helpers import FakeClock, dispatcher, drain

SMS_SENDER = "+15005550006"
RCS_AGENT = "opencomms_sandbox_agent"


DEFAULT_SENDERS = (
    (ChannelType.SMS, SMS_SENDER),
    (ChannelType.WHATSAPP, SMS_SENDER),
    (ChannelType.RCS, RCS_AGENT),
)


async def declare_senders(
    db: Database,
    account_sid: str,
    pairs: tuple[tuple[ChannelType, str], ...] = DEFAULT_SENDERS,
) -> list[SenderRecord]:
    """Declares senders for one account (by default the sandbox's: SMS and WhatsApp number,
    RCS agent), as the config sync would."""
    declared = [
        SenderRecord(sender_id(account_sid, c.value, a), account_sid, c, a, "sandbox")
        for c, a in pairs
    ]
    async with db.write() as conn:
        # sync_declared deactivates every sender not listed: keep the other accounts' ones.
        rows = (await conn.execute(select(tables.senders))).all()
        others = [senders.record_of(r) for r in rows if r.account_sid != account_sid]
        active = [s for s in others if s.status == SenderStatus.ACTIVATED]
        await senders.sync_declared(conn, active + declared, 0)
    return declared


async def send(client: httpx.AsyncClient, *addresses: str, text: str = "Hi", **extra: Any) -> str:
    body = {
        "to": [{"address": a, "channel": "PHONE"} for a in addresses],
        "content": {"text": text},
    }
    response = await client.post("/v1/Messages", json={**body, **extra})
    assert response.status_code == 202, response.text
    operation_id: str = response.json()["operationId"]
    return operation_id


async def deliver(db: Database, *account_sids: str) -> None:
    """Runs a worker until nothing of these accounts is left to do (the sandbox answers at
    once). PostgreSQL's database is shared by a session's tests, and a worker claims any
    account's messages: what earlier tests left mid-flight on purpose (lost workers, fenced
    writes) is parked first, so it is theirs to reason about, not this test's."""
    async with db.write() as conn:
        await conn.execute(
            update(tables.messages)
            .where(
                tables.messages.c.account_sid.not_in(account_sids),
                tables.messages.c.next_attempt_at.is_not(None),
            )
            .values(next_attempt_at=None)
        )
    clock = FakeClock()
    async with dispatcher(db, clock) as worker:
        await drain(worker)
