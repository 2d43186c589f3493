"""A worker as its own process, for tests that kill one: configured by OPENCOMMS_* variables.

python -m tests.dispatch.worker_process DATABASE_URL
"""

import asyncio
import signal
import sys

from opencomms.config import load_settings
from opencomms.dispatch import run_worker
from opencomms.store.db import open_database


async def main(url: str) -> None:
    settings = load_settings(database_url=url)
    db = open_database(url)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await run_worker(db, settings.worker, stop, settings.routes)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
