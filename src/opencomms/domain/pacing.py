"""Pacing: a sender's hand-offs spaced at least 1/mps apart, across every worker.

A paced sender has a shared schedule: `next_slot`, the earliest time its next hand-off may
take (a GCRA "theoretical arrival time"). Each message claimed for it takes the next slot,
`max(next_slot, now)`, and moves `next_slot` on by one interval. Slots only ever grow, so the
hand-offs of one sender are never closer than the interval whichever worker makes them, and
any one-second window holds at most one second's worth.

A message whose slot is near (within the horizon) is kept and handed off at its slot; one
whose slot is further keeps the slot as a reservation and goes back to the queue, due a little
before it (the lead), so a slow sender's backlog neither holds a batch nor blocks other
senders. A reservation missed (claimed after its slot, an overloaded worker) is dropped and
a fresh slot taken, since using it late could bunch two hand-offs closer than the interval.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    slot: int  # epoch ms
    keep: bool  # hand off at `slot` in this batch; else release, due at slot - lead


@dataclass
class Schedule:
    """One paced sender's shared state, as read (locked) in the claim transaction."""

    mps: float
    next_slot: float  # epoch ms, fractional

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.mps

    def place(self, reserved: int | None, now: int, horizon_ms: int) -> Decision:
        """The slot of one claimed message: its reservation if still ahead, else the next."""
        if reserved is not None and reserved >= now:
            return Decision(reserved, reserved <= now + horizon_ms)
        slot = max(self.next_slot, float(now))
        self.next_slot = slot + self.interval_ms
        at = int(-(-slot // 1))  # rounded up: a hand-off never precedes its slot
        return Decision(at, at <= now + horizon_ms)


def backlog_seconds(waiting: int, adding: int, mps: float) -> float:
    """How long a sender takes to send what waits for it plus `adding` more."""
    return (waiting + adding) / mps
