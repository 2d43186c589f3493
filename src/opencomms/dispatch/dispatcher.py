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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType

from opencomms.channels import (
    Channel,
    DeliveryError,
    InboundMessage,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    SendResult,
    SharedPacing,
    TransientDeliveryError,
)
from opencomms.clock import now_ms
from opencomms.dispatch import outcomes
from opencomms.dispatch.config import WorkerConfig
from opencomms.dispatch.outcomes import Decider, Pending
from opencomms.dispatch.plans import PlanCache, addresses
from opencomms.dispatch.policy import GiveUp, RetryPolicy
from opencomms.dispatch.receipts import ReceiptBuffer, settle
from opencomms.dispatch.render import RenderError
from opencomms.dispatch.tracking import ReceiptTracker
from opencomms.domain import errors
from opencomms.domain.emails import addressed
from opencomms.domain.routing import Sender, Step
from opencomms.domain.status import MessageStatus
from opencomms.domain.transitions import StatusChanges
from opencomms.store import changes as status_changes
from opencomms.store import inbound, inbound_keys, pacing, queue, receipts
from opencomms.store.codec import dumps, loads
from opencomms.store.db import Database
from opencomms.store.queue import AttemptWrite, Claim, MessageWrite
from opencomms.store.receipts import ReceiptRow

log = logging.getLogger("opencomms.dispatch")

_SENDING = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)


class Dispatcher:
    """Usable step by step from tests (`claim`, `process`, `apply_receipts`) or whole
    (`run_once`); `clock` and `rand` are injectable so tests need no sleeps."""

    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],  # by route name
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
        self.receipts = ReceiptBuffer()
        self.tracker = ReceiptTracker(
            db,
            channels,
            self.receipts,
            clock,
            self.decider.receipt_wait_ms,
            self.policy.validity_ms,
        )
        self._clock = clock
        self._rand = rand
        self._plans = PlanCache()
        # Paced hand-offs waiting for their slots, sent beside the lanes' next batches.
        self._paced: set[asyncio.Task[None]] = set()
        self._deferred = 0  # messages the last claim gave back to the queue until their slot
        self._rates = pacing.Rates()
        # A deferred message is due `lead` before its slot, so a claim (at most a poll
        # interval later) finds it while the slot is still within the horizon.
        self.pace_lead_ms = int(config.poll_interval * 1000) + 3000
        self.pace_horizon_ms = self.pace_lead_ms + 2000

    @property
    def lease_ms(self) -> int:
        return int(self.config.lease_seconds * 1000)

    async def __aenter__(self) -> "Dispatcher":
        for channel in self._distinct_channels():
            if isinstance(channel, SharedPacing):  # a route's own rate, across processes
                channel.share_pacing(self._reserve_slots)
            await channel.open(self._on_receipt, self._on_inbound)
        return self

    async def _reserve_slots(self, route: str, mps: float, count: int) -> list[int]:
        # Real time, not self._clock: the channel sleeps until the slots in real time.
        async with self.db.write() as conn:
            return await pacing.reserve_slots(conn, pacing.route_key(route), mps, count, now_ms())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.settle_paced()
        for channel in self._distinct_channels():
            await channel.aclose()

    def _distinct_channels(self) -> list[Channel]:
        return list({id(c): c for c in self.channels.values()}.values())

    def _on_receipt(self, receipt: Receipt) -> "asyncio.Future[None]":
        return self.receipts.push(receipt)

    async def _on_inbound(self, message: InboundMessage) -> None:
        """Stores a message a recipient sent us, under the account of the sender it was
        written to; one written to no active sender of ours is dropped with a warning."""
        now = self._clock()
        async with self.db.write() as conn:
            owner = await inbound.owner_of(conn, message.channel, message.to)
            if owner is None:
                log.warning(
                    "inbound %s message to unknown sender %s dropped", message.channel, message.to
                )
                return
            if message.external_id is not None and not await inbound_keys.first_delivery(
                conn, message.external_id, now, message.repeat_after_ms
            ):
                log.info("inbound %s message delivered again: stored once", message.channel)
                return
            remote_channel = inbound.REMOTE_CHANNEL[owner.channel].value
            arrived = inbound.Inbound(owner, message.sender, remote_channel, message.content)
            await inbound.receive(conn, arrived, message.received_at or now)

    async def run_once(self) -> int:
        """One batch plus the receipts that arrived; returns how many items were handled
        (messages deferred to their pacing slot included: more may be due right away)."""
        batch = await self.claim()
        deferred, self._deferred = self._deferred, 0
        if batch:
            await self.process(batch)
        return len(batch) + deferred + await self.apply_receipts()

    async def claim(self) -> list[Claim]:
        """Leases due messages; those of paced senders get their slot (or wait for it in
        the queue) in the same transaction."""
        now = self._clock()
        async with self.db.write() as conn:
            claimed = await queue.claim(
                conn,
                owner=self.config.worker_id,
                now=now,
                lease_ms=self.lease_ms,
                limit=self.config.batch_size,
            )
            kept, deferred = await pacing.pace(
                conn, claimed, now, self.pace_horizon_ms, self.pace_lead_ms, self._rates
            )
        self._deferred += deferred
        return kept

    async def process(self, batch: list[Claim]) -> None:
        sending = [c for c in batch if c.status in _SENDING]
        waiting = [c for c in batch if c.status not in _SENDING]
        now = self._clock()
        later = [c for c in sending if c.slot is not None and c.slot > now]
        if later:
            # Slots a moment ahead are waited for beside the lanes, not in them.
            task = asyncio.create_task(self._dispatch_paced(later))
            self._paced.add(task)
            task.add_done_callback(self._paced.discard)
            sending = [c for c in sending if c.slot is None or c.slot <= now]
        if sending:
            await self._dispatch(sending)
        if waiting:
            await self.tracker.check_overdue(waiting)

    async def _dispatch_paced(self, claims: list[Claim]) -> None:
        try:
            await self._dispatch(sorted(claims, key=lambda c: c.slot or 0))
        except Exception:
            # Their leases run out and another claim picks them up again.
            log.exception("paced hand-offs failed")

    async def settle_paced(self) -> None:
        """Waits for the paced hand-offs in progress (they end within the horizon)."""
        while self._paced:
            await asyncio.gather(*self._paced, return_exceptions=True)

    async def apply_receipts(self) -> int:
        """Applies the receipts channels pushed since the last call."""
        return await self.tracker.apply_pushed()

    async def prune_receipts(self) -> int:
        ttl_ms = int(self.config.unmatched_receipt_ttl * 1000)
        # Inbound keys as long as receipts: a peer redelivers within that or never.
        async with self.db.write() as conn:
            await inbound_keys.prune(conn, self._clock() - ttl_ms)
        return await self.tracker.prune(ttl_ms)

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
        for op_id, (content, sender, kind) in loaded.items():
            self._plans.add(op_id, content, sender, kind)

    def _prepare(self, claim: Claim, now: int) -> Pending | GiveUp:
        """The message's next hand-off, or why it must fail without one."""
        refused = self.policy.refuse(claim.attempt_count, claim.valid_from, now)
        if refused is not None:
            return refused
        plan = self._plans.get(claim.operation_id)
        steps = plan.steps(claim.plan) or self._unplanned(claim)
        if claim.route_index >= len(steps):
            return GiveUp(errors.CANNOT_ROUTE, errors.NO_ROUTE_MESSAGE)
        targets = addresses(claim.recipient)
        step = steps[claim.route_index]
        if step.to_index >= len(targets):
            return GiveUp(errors.CANNOT_ROUTE, errors.NO_ROUTE_MESSAGE)
        if claim.content is None:
            try:
                rendered = plan.content.render(claim.variables)
            except RenderError as error:
                return GiveUp(error.code, error.message)
            rendered = addressed(rendered, claim.recipient)  # an email's To display name
            content = dumps(rendered)
        else:
            content, rendered = claim.content, loads(claim.content)
        to = targets[step.to_index]
        number = claim.attempt_count + 1
        sender = step.sender
        outbound = OutboundMessage(
            claim.id, number, sender.channel, sender.address, to.address, rendered
        )
        return Pending(claim, plan, steps, to, number, content, outbound)

    def _unplanned(self, claim: Claim) -> tuple[Step, ...]:
        """A message accepted before plans were stored (migration 0003): its one sender,
        on the first configured route."""
        if claim.plan is not None or claim.sender is None or not self.channels:
            return ()
        shown = loads(claim.sender)
        route = next(iter(self.channels))
        sender = Sender(
            shown["address"], shown["channel"], shown["senderId"], shown.get("senderPoolId"), route
        )
        return (Step(sender, 0),)

    async def _start(
        self, claims: list[Claim], pending: list[Pending], refusals: list[MessageWrite], now: int
    ) -> set[str]:
        """Transaction 2: the fenced write that must precede any channel call."""
        async with self.db.write() as conn:
            changes = StatusChanges()
            statuses = {c.id: c.status for c in claims}
            handoffs = [p.handoff() for p in pending]
            owned = await queue.start_handoffs(conn, handoffs, now, changes, statuses)
            failed = await queue.write_messages(conn, refusals, now, changes)
            # Only a message tried before can have an attempt left in flight by a dead worker.
            retried = {c.id for c in claims if c.attempt_count} & (owned | failed)
            stale = await queue.fail_stale_attempts(
                conn,
                retried,
                outcomes.OUTCOME_UNKNOWN,
                outcomes.OUTCOME_UNKNOWN_MESSAGE,
                now,
            )
            if stale:
                log.warning("%d attempts left in flight by a lost worker marked FAILED", stale)
            started = [p.attempt(p.claim.slot or now) for p in pending if p.claim.id in owned]
            await queue.insert_attempts(conn, started, now, changes)
            await status_changes.settle(conn, changes, now)
        return owned

    async def _send_all(self, ready: list[Pending]) -> list[SendResult | DeliveryError]:
        """Hands the batch off with up to `send_concurrency` sends in flight.

        A few sender tasks share the batch rather than one task per message: a channel that
        answers at once (the sandbox) then costs no task at all per message.
        """
        tokens = {p.claim.id: p.claim.lease_token for p in ready}
        results: list[SendResult | DeliveryError | None] = [None] * len(ready)
        todo = iter(enumerate(ready))

        async def sender() -> None:
            for index, item in todo:
                results[index] = await self._send_one(item)

        senders = min(max(self.config.send_concurrency, 1), len(ready))
        async with self._keeping_leases(tokens):
            await asyncio.gather(*(sender() for _ in range(senders)))
        return [r for r in results if r is not None]

    async def _send_one(self, item: Pending) -> SendResult | DeliveryError:
        route = item.step.sender.route
        channel = self.channels.get(route)
        if channel is None:
            return PermanentDeliveryError(
                errors.CANNOT_ROUTE, f"No route named '{route}' is configured"
            )
        slot = item.claim.slot
        # Never before the sender's pacing slot (a timer may fire a hair early: look again).
        while slot is not None and (wait := slot - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait / 1000)
        try:
            result = await channel.send(item.outbound)
        except DeliveryError as error:
            return error
        except Exception as error:
            # A channel bug must not strand the batch; whether the message left is unknown.
            log.exception("channel %s failed unexpectedly", channel.name)
            return TransientDeliveryError(outcomes.OUTCOME_UNKNOWN, f"Channel error: {error}")
        self.receipts.unrecorded.update((result.external_id, *result.parts))
        return result

    async def _record(
        self, ready: list[Pending], results: list[SendResult | DeliveryError]
    ) -> None:
        """Transaction 3: the results, fenced, and the receipts that came with them."""
        now = self._clock()
        sent = [i for r in results if isinstance(r, SendResult) for i in (r.external_id, *r.parts)]
        try:
            await self._write_results(ready, results, sent, now)
        finally:
            self.receipts.unrecorded.difference_update(sent)
        if sent and self.db.dialect == "postgresql":
            # Receipts another transaction kept for these ids while they were being recorded.
            await self.tracker.sweep(sent)

    async def _write_results(
        self,
        ready: list[Pending],
        results: list[SendResult | DeliveryError],
        sent: list[str],
        now: int,
    ) -> None:
        with self.receipts.take(sent) as in_hand:
            # A long SMS's receipts wait for its parts to be recorded (tracker.apply below).
            long = {i for r in results if isinstance(r, SendResult) and r.parts for i in _ids(r)}
            of_parts = [r for r in in_hand if r.external_id in long]
            single = [r for r in in_hand if r.external_id not in long]
            writes = self._outcomes(ready, results, single, now)
            async with self.db.write() as conn:
                changes = StatusChanges()
                downstream = {m.id: a.external_id for m, a in writes}
                hit = await queue.write_messages(
                    conn, [m for m, _ in writes], now, changes, downstream
                )
                await queue.write_attempts(conn, [a for m, a in writes if m.id in hit], now)
                if len(hit) < len(ready):
                    log.warning("%d results dropped: their lease was lost", len(ready) - len(hit))
                await queue.insert_parts(conn, _parts(ready, results, hit))
                # Receipts that overtook their send result may wait in the table for these ids.
                early = await receipts.take_unmatched(conn, sent)
                await self.tracker.apply(conn, early + of_parts, now, changes)
                await status_changes.settle(conn, changes, now)

    def _outcomes(
        self,
        ready: list[Pending],
        results: list[SendResult | DeliveryError],
        receipts: list[ReceiptRow],
        now: int,
    ) -> list[tuple[MessageWrite, AttemptWrite]]:
        """The writes recording each result, with the receipts already in hand folded in."""
        by_id: dict[str, list[ReceiptRow]] = defaultdict(list)
        for receipt in receipts:
            by_id[receipt.external_id].append(receipt)
        writes = []
        wait_ms = self.decider.receipt_wait_ms
        for item, result in zip(ready, results, strict=True):
            message, attempt = self.decider.after_send(item, result, now, self._rand())
            if isinstance(result, SendResult) and result.external_id in by_id:
                received = by_id.pop(result.external_id)
                message, attempt = settle(message, attempt, received, now, wait_ms)
            writes.append((message, attempt))
        return writes

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


def _parts(
    ready: list[Pending], results: list[SendResult | DeliveryError], hit: set[str]
) -> list[tuple[str, str]]:
    """(part id, primary id) of every recorded hand-off that got several ids, its first
    part included (each part's receipt is recorded on its row: store/parts.py)."""
    return [
        (part, result.external_id)
        for item, result in zip(ready, results, strict=True)
        if isinstance(result, SendResult) and result.parts and item.claim.id in hit
        for part in _ids(result)
    ]


def _ids(result: SendResult) -> tuple[str, ...]:
    return (result.external_id, *result.parts)
