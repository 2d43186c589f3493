"""The SMTP route's pacer with a shared schedule: slots reserved a few at a time."""

import asyncio
import time

from opencomms.channels.smtp.channel import _Pacer


class Schedule:
    """A shared schedule as dispatch keeps it, with a database that answers slowly."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.next_ms = 0.0
        self.calls: list[int] = []

    async def reserve(self, route: str, mps: float, count: int) -> list[int]:
        now = time.time() * 1000
        await asyncio.sleep(self.latency)
        self.calls.append(count)
        slots = []
        for _ in range(count):
            slot = max(self.next_ms, now)
            self.next_ms = slot + 1000 / mps
            slots.append(int(slot))
        return slots


async def test_a_database_slower_than_an_interval_still_gives_slots() -> None:
    schedule = Schedule(latency=0.02)  # 20 ms: twenty intervals at 1,000 mps
    pacer = _Pacer(1000, "relay")
    pacer.reserve = schedule.reserve
    async with asyncio.timeout(5):
        for _ in range(5):
            await pacer.wait()
    assert len(schedule.calls) == 5


async def test_waiters_share_one_reservation_and_keep_the_spacing() -> None:
    schedule = Schedule(latency=0.0)
    pacer = _Pacer(100, "relay")  # 10 ms apart; at most 25 slots a reservation
    pacer.reserve = schedule.reserve
    released: list[float] = []

    async def one() -> None:
        await pacer.wait()
        released.append(time.time())

    await asyncio.gather(*(one() for _ in range(20)))
    # The first waiter reserves alone; the next reservation serves every waiter queued
    # behind it: the database is asked twice, not twenty times.
    assert schedule.calls == [1, 19]
    released.sort()
    assert released[-1] - released[0] >= 19 * 0.010 * 0.9
