"""A worker as its own process, for tests that kill one: configured by OPENCOMMS_* variables.

python -m tests.dispatch.worker_process DATABASE_URL
"""

import asyncio
import signal
import sys

from opencomms.dispatch import WorkerConfig, run_worker
from opencomms.store.db import open_database


async def main(url: str) -> None:
    db = open_database(url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await run_worker(db, WorkerConfig.from_env(), stop)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
