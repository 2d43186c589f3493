"""Write transactions of one worker process, queued in the process on SQLite."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.store.db import Database


@dataclass
class Writer:
    """SQLite has one writer at a time, and a transaction that finds the lock taken sleeps in
    growing steps (1, 2, 5, 10... ms) before trying again. The lanes of one worker therefore
    take turns in an asyncio lock instead, and each gets the database the moment it is free."""

    db: Database
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if not self.db.is_sqlite:
            async with self.db.write() as conn:
                yield conn
            return
        async with self._turn, self.db.write() as conn:
            yield conn
