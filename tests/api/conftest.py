"""Fixtures of the Senders and SenderPools tests: two accounts with declared senders."""

from collections.abc import AsyncIterator

import httpx
import pytest

from opencomms.domain.senders import SenderRecord
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from tests.api.inventory import declare, declared
from tests.conftest import make_client, new_account


@pytest.fixture
async def stranger(db: Database, box: SecretBox) -> NewCredential:
    return await new_account(db, box)


@pytest.fixture
async def inventory(
    db: Database, account: NewCredential, stranger: NewCredential
) -> list[SenderRecord]:
    """The caller's senders (with the spec's example ids) and a stranger's own, declared in
    one sync as the config does."""
    mine = declared(account.sid, examples=True)
    await declare(db, mine + declared(stranger.sid))
    return mine


@pytest.fixture
async def stranger_client(
    db: Database, stranger: NewCredential
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(db, stranger) as http:
        yield http
