from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete

from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from opencomms.store.tables import (
    event_deliveries,
    event_sinks,
    event_subscribed_types,
    event_subscriptions,
)
from tests.conftest import new_account


@pytest.fixture
async def account(db: Database, box: SecretBox) -> AsyncIterator[NewCredential]:
    """A fresh account; afterwards every sink goes, so a worker in a later test (PostgreSQL's
    database is shared by the session) finds no other test's backlog."""
    yield await new_account(db, box)
    async with db.write() as conn:
        for table in (event_deliveries, event_subscribed_types, event_subscriptions, event_sinks):
            await conn.execute(delete(table))
