from collections.abc import AsyncIterator

import httpx
import pytest

from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from tests.conftest import make_client, new_account


@pytest.fixture
async def other(db: Database, box: SecretBox) -> NewCredential:
    """A second account, to prove one never sees the other's sandbox."""
    return await new_account(db, box)


@pytest.fixture
async def other_client(db: Database, other: NewCredential) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(db, other) as http:
        yield http
