"""A declared sender inventory for the Senders and SenderPools tests."""

from typing import Any

from opencomms.api import spec
from opencomms.clock import now_ms
from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import DEFAULT_SENDERS, SenderRecord, sender_id
from opencomms.store import senders, tables
from opencomms.store.db import Database

# The spec's own example ids, so its request examples name senders that exist.
EXAMPLE_IDS = (
    "comms_sender_01h9krwprkeee8fzqspvwy6nq8",
    "comms_sender_01h9krwprkeee8fzqspvwy6nq7",
    "comms_sender_01h9krwprkeee8fzqspvwy6nq6",
)
INVENTORY = (
    (ChannelType.SMS, "+14153902337", "Cool Support"),
    (ChannelType.SMS, "+447700900123", "UK Support"),
    (ChannelType.RCS, "coolsupport_abc123_agent", "Cool Support"),
    (ChannelType.WHATSAPP, "+15264013448", "Cool VIP Support"),
    (ChannelType.EMAIL, "support@example.com", None),
)


def declared(account_sid: str, *, examples: bool = False) -> list[SenderRecord]:
    """The test inventory of one account; with `examples`, its first senders carry the
    spec's example ids."""
    records = []
    for i, (channel, address, name) in enumerate(INVENTORY):
        ident = EXAMPLE_IDS[i] if examples and i < len(EXAMPLE_IDS) else None
        records.append(
            SenderRecord(
                id=ident or sender_id(account_sid, channel, address),
                account_sid=account_sid,
                channel=channel,
                address=address,
                route="sandbox",
                display_name=name,
                tags={"team": "support"},
            )
        )
    return records


async def declare(db: Database, records: list[SenderRecord]) -> None:
    async with db.write() as conn:
        # The spec's example ids are not derived from an account: on the PostgreSQL database
        # a test session shares, an earlier test's account may hold them.
        taken = [r.id for r in records if r.id in EXAMPLE_IDS]
        await conn.execute(
            tables.senders.delete().where(
                tables.senders.c.id.in_(taken),
                tables.senders.c.account_sid.not_in({r.account_sid for r in records}),
            )
        )
        # A declared inventory replaces the default sandbox senders an account starts with.
        defaults = [d.record(r.account_sid).id for r in records for d in DEFAULT_SENDERS]
        await conn.execute(tables.senders.delete().where(tables.senders.c.id.in_(defaults)))
        await senders.sync_declared(conn, records, now_ms())


def request_examples(path: str, method: str) -> dict[str, Any]:
    operation = spec.document()["paths"][path][method]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    return {name: example["value"] for name, example in examples.items()}


async def insert_many(db: Database, records: list[SenderRecord]) -> None:
    """Many senders in one statement (the config sync writes them one by one)."""
    now = now_ms()
    rows = [
        {
            "id": r.id,
            "account_sid": r.account_sid,
            "channel": r.channel.value,
            "address": r.address,
            "route": r.route,
            "mps": r.mps,
            "display_name": r.display_name,
            "status": r.status.value,
            "tags": "{}",
            "created_at": now,
            "updated_at": now,
        }
        for r in records
    ]
    async with db.write() as conn:
        await conn.execute(tables.senders.insert(), rows)
