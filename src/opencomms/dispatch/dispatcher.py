"""One worker's pipeline, a batch at a time: claim, render, route, hand off, record.

Each batch takes three short transactions around the channel calls, all set-based:
  1. claim: lease up to `batch_size` due messages (fencing token bumped);
  2. start: store rendered content and route, insert the attempt rows (status QUEUED: in
     flight), fail what cannot be sent, all fenced, so a canceled message never goes out;
  3. record: results of the hand-offs and every receipt received meanwhile, fenced again.
A worker that dies anywhere in between leaves leased rows that fall due again when the lease
expires; the next worker marks attempts it finds still in flight FAILED (outcome unknown).
Messages waiting for a receipt (SENT) come back through the same claim once their receipt is
overdue, and the channel is asked for it: receipts survive any crash.
"""

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.channels import (
    Channel,
    DeliveryError,
    Handoff,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    SendResult,
    TransientDeliveryError,
)
from opencomms.clock import now_ms
from opencomms.dispatch import outcomes
from opencomms.dispatch.config import WorkerConfig
from opencomms.dispatch.outcomes import Decider, Pending
from opencomms.dispatch.plans import PlanCache
from opencomms.dispatch.policy import GiveUp, RetryPolicy
from opencomms.dispatch.receipts import as_row, fold
from opencomms.dispatch.render import RenderError
from opencomms.domain import errors
from opencomms.domain.status import MessageStatus
from opencomms.store import operation_status, queue
from opencomms.store.codec import dumps, loads
from opencomms.store.db import Database
from opencomms.store.queue import Claim, MessageWrite, ReceiptRow

log = logging.getLogger("opencomms.dispatch")

_SENDING = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)


class Dispatcher:
    """Usable step by step from tests (`claim`, `process`, `apply_receipts`) or whole
    (`run_once`); `clock` and `rand` are injectable so tests need no sleeps."""

    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        config: WorkerConfig,
        *,
        clock: Callable[[], int] = now_ms,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.channels = channels
        self.config = config
        self.policy = RetryPolicy(
            max_attempts=config.max_attempts,
            validity_ms=int(config.validity_seconds * 1000),
            backoff_base_ms=int(config.backoff_base * 1000),
            backoff_max_ms=int(config.backoff_max * 1000),
        )
        self.decider = Decider(self.policy, int(config.receipt_timeout * 1000))
        self.receipt_arrived = asyncio.Event()
        self._clock = clock
        self._rand = rand
        self._plans = PlanCache()
        self._receipts: list[Receipt] = []

    @property
    def lease_ms(self) -> int:
        return int(self.config.lease_seconds * 1000)

    async def __aenter__(self) -> "Dispatcher":
        for channel in self._distinct_channels():
            await channel.open(self._on_receipt)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for channel in self._distinct_channels():
            await channel.aclose()

    def _distinct_channels(self) -> list[Channel]:
        return list({id(c): c for c in self.channels.values()}.values())

    def _on_receipt(self, receipt: Receipt) -> None:
        self._receipts.append(receipt)
        self.receipt_arrived.set()

    async def run_once(self) -> int:
        """One batch plus the receipts that arrived; returns how many items were handled."""
        batch = await self.claim()
        if batch:
            await self.process(batch)
        return len(batch) + await self.apply_receipts()

    async def claim(self) -> list[Claim]:
        async with self.db.write() as conn:
            return await queue.claim(
                conn,
                owner=self.config.worker_id,
                now=self._clock(),
                lease_ms=self.lease_ms,
                limit=self.config.batch_size,
            )

    async def process(self, batch: list[Claim]) -> None:
        sending = [c for c in batch if c.status in _SENDING]
        waiting = [c for c in batch if c.status not in _SENDING]
        if sending:
            await self._dispatch(sending)
        if waiting:
            await self._check_receipts(waiting)

    async def apply_receipts(self) -> int:
        """Applies the receipts channels pushed since the last call."""
        if not self._receipts:
            return 0
        with self._drained() as drained:
            now = self._clock()
            async with self.db.write() as conn:
                touched = await self._apply_receipts(conn, [as_row(r) for r in drained], now)
                await operation_status.refresh(conn, touched, now)
        return len(drained)

    async def prune_receipts(self) -> int:
        """Forgets receipts that never found their attempt (its send result was lost)."""
        older_than = self._clock() - int(self.config.unmatched_receipt_ttl * 1000)
        async with self.db.write() as conn:
            return await queue.prune_unmatched(conn, older_than)

    # -- sending -----------------------------------------------------------------------------

    async def _dispatch(self, claims: list[Claim]) -> None:
        await self._load_plans({c.operation_id for c in claims})
        now = self._clock()
        pending: list[Pending] = []
        refusals: list[MessageWrite] = []
        for claim in claims:
            item = self._prepare(claim, now)
            if isinstance(item, Pending):
                pending.append(item)
            else:
                refusals.append(outcomes.refused(claim, item))
        owned = await self._start(claims, pending, refusals, now)
        ready = [p for p in pending if p.claim.id in owned]
        if ready:
            results = await self._send_all(ready)
            await self._record(ready, results)

    async def _load_plans(self, operation_ids: set[str]) -> None:
        missing = self._plans.missing(operation_ids)
        if not missing:
            return
        async with self.db.read() as conn:
            loaded = await queue.load_operations(conn, missing)
        for op_id, (content, sender) in loaded.items():
            self._plans.add(op_id, content, sender)

    def _prepare(self, claim: Claim, now: int) -> Pending | GiveUp:
        """The message's next hand-off, or why it must fail without one."""
        refused = self.policy.refuse(claim.attempt_count, claim.created_at, now)
        if refused is not None:
            return refused
        plan = self._plans.get(claim.operation_id)
        routes = plan.routes(claim.recipient)
        if claim.route_index >= len(routes):
            return GiveUp(errors.NO_ROUTE, "No sender and channel can reach this recipient")
        content = claim.content
        if content is None:
            try:
                content = dumps(plan.content.render(claim.variables))
            except RenderError as error:
                return GiveUp(error.code, error.message)
        route = routes[claim.route_index]
        number = claim.attempt_count + 1
        outbound = OutboundMessage(
            claim.id,
            number,
            route.sender.channel,
            route.sender.address,
            route.to.address,
            loads(content),
        )
        return Pending(claim, routes, number, content, outbound)

    async def _start(
        self, claims: list[Claim], pending: list[Pending], refusals: list[MessageWrite], now: int
    ) -> set[str]:
        """Transaction 2: the fenced write that must precede any channel call."""
        async with self.db.write() as conn:
            owned = await queue.start_handoffs(conn, [p.handoff() for p in pending], now)
            failed = await queue.write_messages(conn, refusals, now)
            stale = await queue.fail_stale_attempts(
                conn,
                owned | failed,
                outcomes.OUTCOME_UNKNOWN,
                outcomes.OUTCOME_UNKNOWN_MESSAGE,
                now,
            )
            if stale:
                log.warning("%d attempts left in flight by a lost worker marked FAILED", stale)
            await queue.insert_attempts(
                conn, [p.attempt_row(now) for p in pending if p.claim.id in owned]
            )
            moved = {c.id for c in claims if c.status == MessageStatus.SCHEDULED} & owned
            touched = {c.operation_id for c in claims if c.id in failed or c.id in moved}
            await operation_status.refresh(conn, touched, now)
        return owned

    async def _send_all(self, ready: list[Pending]) -> list[SendResult | DeliveryError]:
        tokens = {p.claim.id: p.claim.lease_token for p in ready}
        step = max(self.config.send_concurrency, 1)
        results: list[SendResult | DeliveryError] = []
        async with self._keeping_leases(tokens):
            for start in range(0, len(ready), step):
                chunk = ready[start : start + step]
                results += await asyncio.gather(*(self._send_one(p) for p in chunk))
        return results

    async def _send_one(self, item: Pending) -> SendResult | DeliveryError:
        channel = self.channels.get(item.route.sender.channel)
        if channel is None:
            return PermanentDeliveryError(
                errors.NO_ROUTE, f"No channel is configured for {item.route.sender.channel}"
            )
        try:
            return await channel.send(item.outbound)
        except DeliveryError as error:
            return error
        except Exception as error:
            # A channel bug must not strand the batch; whether the message left is unknown.
            log.exception("channel %s failed unexpectedly", channel.name)
            return TransientDeliveryError(outcomes.OUTCOME_UNKNOWN, f"Channel error: {error}")

    async def _record(
        self, ready: list[Pending], results: list[SendResult | DeliveryError]
    ) -> None:
        """Transaction 3: the results, fenced, and the receipts that came with them."""
        now = self._clock()
        writes = [
            self.decider.after_send(p, r, now, self._rand())
            for p, r in zip(ready, results, strict=True)
        ]
        with self._drained() as drained:
            async with self.db.write() as conn:
                hit = await queue.write_messages(conn, [m for m, _ in writes], now)
                await queue.write_attempts(conn, [a for m, a in writes if m.id in hit], now)
                if len(hit) < len(ready):
                    log.warning("%d results dropped: their lease was lost", len(ready) - len(hit))
                # Receipts that overtook their send result waited for these ids.
                sent = [r.external_id for r in results if isinstance(r, SendResult)]
                early = await queue.take_unmatched(conn, sent)
                touched = await self._apply_receipts(
                    conn, early + [as_row(r) for r in drained], now
                )
                touched |= {p.claim.operation_id for p in ready if p.claim.id in hit}
                await operation_status.refresh(conn, touched, now)

    @asynccontextmanager
    async def _keeping_leases(self, tokens: dict[str, int]) -> AsyncIterator[None]:
        """Heartbeat: extends the batch's leases while its hand-offs run."""
        done = asyncio.Event()
        task = asyncio.create_task(self._heartbeat(tokens, done))
        try:
            yield
        finally:
            done.set()
            await task

    async def _heartbeat(self, tokens: dict[str, int], done: asyncio.Event) -> None:
        period = self.config.lease_seconds / 3
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), period)
                return
            except TimeoutError:
                pass
            try:
                async with self.db.write() as conn:
                    kept = await queue.extend_leases(
                        conn, self.config.worker_id, tokens, self._clock() + self.lease_ms
                    )
            except Exception:
                log.exception("lease heartbeat failed")
                continue
            for lost in tokens.keys() - kept:
                log.warning("lease on %s lost mid-batch; its result will be dropped", lost)
                del tokens[lost]

    # -- receipts ----------------------------------------------------------------------------

    @contextmanager
    def _drained(self) -> Iterator[list[Receipt]]:
        """Takes the pushed receipts; puts them back if the transaction using them fails."""
        taken, self._receipts = self._receipts, []
        self.receipt_arrived.clear()
        try:
            yield taken
        except BaseException:
            self._receipts = taken + self._receipts
            raise

    async def _apply_receipts(
        self, conn: AsyncConnection, rows: list[ReceiptRow], now: int
    ) -> set[str]:
        """Applies receipts in the caller's transaction; keeps the unmatched ones for later.
        Returns the operations whose messages moved."""
        if not rows:
            return set()
        targets = await queue.receipt_targets(conn, {r.external_id for r in rows})
        await queue.keep_unmatched(conn, [r for r in rows if r.external_id not in targets], now)
        plan = fold(rows, targets, now, self.decider.receipt_wait_ms)
        await queue.write_attempts(conn, plan.attempts, now)
        moved = await queue.write_receipt_statuses(conn, plan.messages, now)
        return {t.operation_id for t in targets.values() if t.message_id in moved}

    async def _check_receipts(self, claims: list[Claim]) -> None:
        """Overdue receipts: asks the channels, and the receipts that waited unmatched."""
        async with self.db.read() as conn:
            latest = await queue.latest_attempts(conn, [c.id for c in claims])
        by_channel: dict[str, list[Handoff]] = defaultdict(list)
        for attempt in latest:
            if attempt.external_id is not None:
                handoff = Handoff(
                    attempt.external_id,
                    attempt.channel,
                    attempt.recipient[0]["address"],
                    attempt.number,
                    attempt.attempted_at,
                )
                by_channel[attempt.channel].append(handoff)
        answers = [as_row(r) for r in await self._query(by_channel)]
        now = self._clock()
        with self._drained() as drained:
            async with self.db.write() as conn:
                waiting = await queue.take_unmatched(
                    conn, [h.external_id for hs in by_channel.values() for h in hs]
                )
                rows = waiting + [as_row(r) for r in drained] + answers
                touched = await self._apply_receipts(conn, rows, now)
                await queue.reschedule(conn, [self._recheck(c, now) for c in claims])
                await operation_status.refresh(conn, touched, now)

    async def _query(self, by_channel: dict[str, list[Handoff]]) -> list[Receipt]:
        found: list[Receipt] = []
        for channel_type, handoffs in by_channel.items():
            channel = self.channels.get(channel_type)
            if channel is None:
                continue
            try:
                found += await channel.query(handoffs)
            except Exception:
                log.exception("channel %s could not be asked for receipts", channel.name)
        return found

    def _recheck(self, claim: Claim, now: int) -> queue.Reschedule:
        """Asks again later, until the validity period ends: then the receipt is given up on."""
        expired = now >= claim.created_at + self.policy.validity_ms
        next_at = None if expired else now + self.decider.receipt_wait_ms
        return queue.Reschedule(claim.id, claim.lease_token, claim.status, next_at)
