"""Following hand-offs after SENT: receipts pushed by channels, and overdue ones asked for.

Pushed receipts are written in batches; one that names an id no attempt has yet is kept in the
store until the send result recording that id arrives. A SENT message whose receipt is
overdue (the worker that sent it died with the receipt in memory, say) is claimed like any
due message and its channel asked; the answer is applied the same way.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.channels import Channel, Handoff, Receipt
from opencomms.dispatch.receipts import ReceiptBuffer, as_row, fold
from opencomms.domain.transitions import StatusChanges
from opencomms.store import changes as status_changes
from opencomms.store import parts, queue, receipts
from opencomms.store.db import Database
from opencomms.store.queue import Claim
from opencomms.store.receipts import ReceiptRow

log = logging.getLogger("opencomms.dispatch")


@dataclass
class ReceiptTracker:
    db: Database
    channels: Mapping[str, Channel]  # by route name
    buffer: ReceiptBuffer
    clock: Callable[[], int]
    recheck_ms: int  # how long a SENT message waits for its receipt before asking
    validity_ms: int  # past this, an unanswered receipt is given up on

    async def apply_pushed(self) -> int:
        """Writes the receipts channels pushed that no batch is about to fold in."""
        if not self.buffer:
            return 0
        with self.buffer.take() as taken:
            if not taken:
                return 0
            now = self.clock()
            kept: set[str] = set()
            async with self.db.write() as conn:
                changes = StatusChanges()
                await self.apply(conn, taken, now, changes, kept)
                await status_changes.settle(conn, changes, now)
        if kept and self.db.dialect == "postgresql":
            await self.sweep(list(kept))
        return len(taken)

    async def sweep(self, external_ids: list[str]) -> None:
        """Applies receipts waiting in the table for these ids, in a transaction of its own.

        A receipt that overtakes its submit_sm_resp may be kept as unmatched by one
        transaction while another records the send result naming its id: under PostgreSQL's
        READ COMMITTED each can miss the other's rows. Both sides look again once they have
        committed (the recording worker for the ids it recorded, the keeping one for what it
        kept), so whichever commits last is seen by the other's second look. SQLite runs one
        write transaction at a time, so there the first look is enough.
        """
        now = self.clock()
        async with self.db.write() as conn:
            waiting = await receipts.take_unmatched(conn, external_ids)
            if waiting:
                changes = StatusChanges()
                await self.apply(conn, waiting, now, changes)
                await status_changes.settle(conn, changes, now)

    async def apply(
        self,
        conn: AsyncConnection,
        rows: list[ReceiptRow],
        now: int,
        changes: StatusChanges,
        kept: set[str] | None = None,
    ) -> None:
        """Applies receipts in the caller's transaction, keeping the unmatched ones for later
        (their ids added to `kept`); the messages they moved go into `changes`."""
        if not rows:
            return
        # A long SMS's parts settle their attempt together: every part DELIVERED, or one not.
        rows = await parts.fold_parts(conn, rows)
        targets = await receipts.receipt_targets(conn, {r.external_id for r in rows})
        unmatched = [r for r in rows if r.external_id not in targets]
        await receipts.keep_unmatched(conn, unmatched, now)
        if kept is not None:
            kept.update(r.external_id for r in unmatched)
        plan = fold(rows, targets, now, self.recheck_ms)
        await queue.write_attempts(conn, plan.attempts, now)
        downstream = {t.message_id: t.external_id for t in targets.values() if t.is_current}
        await receipts.write_receipt_statuses(conn, plan.messages, now, changes, downstream)

    async def check_overdue(self, claims: list[Claim]) -> None:
        """Claimed SENT (or DELIVERED, awaiting READ) messages: what is known of them now."""
        async with self.db.read() as conn:
            latest = await receipts.latest_attempts(conn, [c.id for c in claims])
            heads = [a.external_id for a in latest if a.external_id is not None]
            # Receipts of their parts may wait too (they came before the parts were recorded).
            part_ids = await parts.parts_of(conn, heads)
        by_route: dict[str, list[Handoff]] = defaultdict(list)
        for attempt in latest:
            if attempt.external_id is not None:
                to = attempt.recipient[0]["address"]
                handoff = Handoff(
                    attempt.external_id, attempt.channel, to, attempt.number, attempt.attempted_at
                )
                by_route[attempt.route or ""].append(handoff)
        answers = [as_row(r) for r in await self._ask(by_route)]
        now = self.clock()
        external_ids = [h.external_id for handoffs in by_route.values() for h in handoffs]
        external_ids += part_ids
        with self.buffer.take(external_ids) as pushed:
            async with self.db.write() as conn:
                changes = StatusChanges()
                waiting = await receipts.take_unmatched(conn, external_ids)
                await self.apply(conn, waiting + pushed + answers, now, changes)
                await queue.reschedule(conn, [self._recheck(c, now) for c in claims])
                await status_changes.settle(conn, changes, now)

    async def _ask(self, by_route: dict[str, list[Handoff]]) -> list[Receipt]:
        """Asks each route about its own hand-offs."""
        found: list[Receipt] = []
        for route, handoffs in by_route.items():
            channel = self.channels.get(route)
            if channel is None:
                continue
            try:
                found += await channel.query(handoffs)
            except Exception:
                log.exception("channel %s could not be asked for receipts", channel.name)
        return found

    def _recheck(self, claim: Claim, now: int) -> queue.Reschedule:
        """Asks again later, until the validity period ends: then the receipt is given up on."""
        expired = now >= claim.valid_from + self.validity_ms
        next_at = None if expired else now + self.recheck_ms
        return queue.Reschedule(claim.id, claim.lease_token, claim.status, next_at)

    async def prune(self, ttl_ms: int) -> int:
        """Forgets receipts that never found their attempt (its send result was lost)."""
        async with self.db.write() as conn:
            return await receipts.prune_unmatched(conn, self.clock() - ttl_ms)
