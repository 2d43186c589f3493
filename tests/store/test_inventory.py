"""The sender inventory synced from the declaration: stable ids, defaults for every account."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from opencomms.cli import runtime
from opencomms.clock import now_ms
from opencomms.config import Settings
from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import DeclaredSender, SenderStatus, sender_id
from opencomms.store import inventory, senders
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database
from tests.conftest import new_account


async def test_declared_senders_keep_their_ids_and_retire_when_gone(
    db: Database, box: SecretBox
) -> None:
    account = await new_account(db, box)
    other = await new_account(db, box)
    declared = [
        DeclaredSender(ChannelType.SMS, "+15550001111", "sandbox", mps=10, account_sid=account.sid),
        DeclaredSender(ChannelType.RCS, "acme_agent", "sandbox", account_sid=account.sid),
        DeclaredSender(ChannelType.SMS, "+15550001111", "sandbox", account_sid=other.sid),
    ]
    async with db.write() as conn:
        await inventory.sync(conn, declared, now_ms())
        first = await senders.for_account(conn, account.sid)
    sms_id = sender_id(account.sid, "SMS", "+15550001111")
    assert [s.id for s in first] == sorted([sms_id, sender_id(account.sid, "RCS", "acme_agent")])
    assert next(s for s in first if s.id == sms_id).mps == 10
    # Restart with the RCS sender dropped and the SMS one slowed down: same ids.
    changed = [
        DeclaredSender(ChannelType.SMS, "+15550001111", "sandbox", mps=2, account_sid=account.sid)
    ]
    async with db.write() as conn:
        await inventory.sync(conn, changed + declared[2:], now_ms())
        active = await senders.for_account(conn, account.sid)
        every = await senders.for_account(conn, account.sid, active_only=False)
        others = await senders.for_account(conn, other.sid)
    assert [(s.id, s.mps) for s in active] == [(sms_id, 2)]
    rcs = next(s for s in every if s.channel == ChannelType.RCS and s.address == "acme_agent")
    assert rcs.status == SenderStatus.DEACTIVATED
    assert {s.status for s in every if s.id != sms_id} == {SenderStatus.DEACTIVATED}
    assert [s.id for s in others] == [sender_id(other.sid, "SMS", "+15550001111")]
    assert sms_id != others[0].id  # two accounts, one address: two senders


async def test_with_nothing_declared_every_account_gets_the_sandbox_senders(
    db: Database, box: SecretBox
) -> None:
    account = await new_account(db, box)
    async with db.write() as conn:
        await inventory.sync(conn, [], now_ms())
        found = await senders.for_account(conn, account.sid)
    assert sorted((s.channel.value, s.address, s.route) for s in found) == [
        ("RCS", "opencomms_sandbox_agent", "sandbox"),
        ("SMS", "+15005550006", "sandbox"),
        ("WHATSAPP", "+15005550006", "sandbox"),
    ]
    assert all(s.mps == 0 and s.status == SenderStatus.ACTIVATED for s in found)


async def test_senders_without_account_go_to_the_configured_one(
    db: Database, box: SecretBox
) -> None:
    account = await new_account(db, box)
    settings = Settings(
        database_url="unused",
        account_sid=account.sid,
        senders=(DeclaredSender(ChannelType.WHATSAPP, "+15550002222", "sandbox"),),
    )
    async with db.write() as conn:
        records = await inventory.sync(
            conn, settings.senders, now_ms(), configured_account=settings.account_sid
        )
    assert [r.account_sid for r in records] == [account.sid]


async def test_no_account_to_give_senders_to(tmp_path: Path) -> None:
    from opencomms.store import migrate
    from opencomms.store.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'empty.db'}")
    await migrate.upgrade(db)
    try:
        with pytest.raises(inventory.NoBootstrapAccount):
            async with db.write() as conn:
                await inventory.sync(
                    conn, [DeclaredSender(ChannelType.SMS, "+15550001111", "sandbox")], 0
                )
    finally:
        await db.dispose()


def test_accounts_created_later_get_defaults_and_senders_list_shows_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opencomms", *args, "--database-url", url],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    created = run("accounts", "create", "--json")
    assert created.returncode == 0, created.stderr
    sid = json.loads(created.stdout)["accountSid"]
    listed = run("senders", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted((r["channel"], r["address"]) for r in rows) == [
        ("RCS", "opencomms_sandbox_agent"),
        ("SMS", "+15005550006"),
        ("WHATSAPP", "+15005550006"),
    ]
    assert {r["accountSid"] for r in rows} == {sid}
    assert {r["id"] for r in rows} == {sender_id(sid, r["channel"], r["address"]) for r in rows}
    text = run("senders", "list")
    assert "route=sandbox" in text.stdout and "unlimited" in text.stdout


async def test_serve_startup_sync_follows_the_config(
    db: Database, box: SecretBox, db_url: str
) -> None:
    account = await new_account(db, box)
    settings = Settings(
        database_url=db_url,
        account_sid=account.sid,
        senders=(DeclaredSender(ChannelType.SMS, "+15550003333", "sandbox", mps=5),),
    )
    records = await runtime.sync_senders(db, settings)
    assert [(r.address, r.mps) for r in records] == [("+15550003333", 5)]
    async with db.read() as conn:
        active = await senders.for_account(conn, account.sid)
    assert [s.address for s in active] == ["+15550003333"]
