"""Event delivery as its own process, for tests that kill one (OPENCOMMS_EVENTS_* variables).

python -m tests.events.delivery_process DATABASE_URL
"""

import asyncio
import signal
import sys

from opencomms.events import delivery
from opencomms.store.db import open_database
from tests.conftest import SECRET


async def main(url: str) -> None:
    db = open_database(url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await delivery.run(db, delivery.DeliveryConfig.from_env(SECRET), stop)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
