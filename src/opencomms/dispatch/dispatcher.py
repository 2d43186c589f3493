"""One worker's pipeline, a batch at a time: claim, render, route, hand off, record.

Each batch takes three short transactions around the channel calls, all set-based:
  1. claim: lease up to `batch_size` due messages (fencing token bumped);
  2. start: store rendered content and route, insert the attempt rows (status QUEUED: in
     flight), fail what cannot be sent, all fenced, so a canceled message never goes out;
  3. record: results of the hand-offs and every receipt received meanwhile, fenced again.
A worker that dies anywhere in between leaves leased rows that fall due again when the lease
expires; the next worker marks attempts it finds still in flight FAILED (outcome unknown).
A worker that only lost the database does better: once it answers again, the results of the
hand-offs it made are written (retried for up to a lease), and what it claimed but never handed
off goes back to the queue at once (`_give_back_strays`).
Such a claim counts as stalled; a message that stalls again and again is tried alone, then
failed (30412): a poison message never takes its batch down with it (`_isolate`).
Liquid that needs the engine renders on a thread of its own, in a task beside the lanes, so
neither the event loop nor other messages wait for it. Stopping (`stop()`) or a route that is
down gives claimed messages back at once, with no attempt used (store/leases.py).
Messages waiting for a receipt (SENT) come back through the same claim once their receipt is
overdue, and the channel is asked for it: receipts survive any crash.
"""

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from opencomms.channels import (
    Channel,
    DeliveryError,
    InboundMessage,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    RouteUnavailable,
    SendResult,
    SharedPacing,
    TransientDeliveryError,
)
from opencomms.clock import now_ms
from opencomms.dispatch import outcomes
from opencomms.dispatch.config import WorkerConfig
from opencomms.dispatch.outcomes import Decider, NotHandedOff, Pending
from opencomms.dispatch.plans import OperationPlan, PlanCache, addresses, build_plan
from opencomms.dispatch.policy import GiveUp, RetryPolicy
from opencomms.dispatch.receipts import ReceiptBuffer, settle
from opencomms.dispatch.render import RenderError, share_the_gil
from opencomms.dispatch.routes import RouteBoard
from opencomms.dispatch.tracking import ReceiptTracker
from opencomms.domain import errors
from opencomms.domain.emails import addressed
from opencomms.domain.routing import Sender, Step
from opencomms.domain.status import MessageStatus
from opencomms.domain.transitions import StatusChanges
from opencomms.store import changes as status_changes
from opencomms.store import inbound, inbound_keys, leases, opt_outs, pacing, queue, receipts
from opencomms.store.codec import dumps, loads
from opencomms.store.db import Database, is_unavailable
from opencomms.store.queue import AttemptWrite, Claim, MessageWrite, Reschedule
from opencomms.store.receipts import ReceiptRow

log = logging.getLogger("opencomms.dispatch")

_SENDING = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)
# Costly renders go in chunks: each records its results before the next renders, so a
# long backlog of heavy templates makes progress (and stops) chunk by chunk.
_COSTLY_CHUNK = 50
# Suspects (claims that stalled) other than the one tried alone come back in groups this far
# apart, so a crash that left a thousand of them does not make every claim take them all.
_SUSPECT_SPACING_MS = 50
_SUSPECT_GROUP = 8
_BIG_CONTENT = 4096  # characters of content JSON past which parsing it goes off the loop

Result = SendResult | DeliveryError | NotHandedOff


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
        self.clock = clock
        self._rand = rand
        self._plans = PlanCache()
        # Paced hand-offs waiting for their slots and costly renders, beside the lanes.
        self._paced: set[asyncio.Task[None]] = set()
        self._rendering: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()
        self.routes = RouteBoard(list(channels), clock(), int(config.route_retry_max * 1000))
        # One thread: heavy templates of every tenant queue there, never on the loop, and
        # one CPU-bound thread costs the loop at most a GIL switch interval (0.5 ms) a turn.
        self._renderer = ThreadPoolExecutor(1, thread_name_prefix="opencomms-render")
        share_the_gil()
        self._costly_in_hand = 0
        self._suspect_held = False
        self._lanes_busy = 0  # lanes between their claim and the end of its processing
        self._deferred = 0  # messages the last claim gave back to the queue until their slot
        self._strays: list[leases.Stray] = []  # claims a lost database left in hand
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
        self._renderer.shutdown(wait=False, cancel_futures=True)
        for channel in self._distinct_channels():
            await channel.aclose()

    def stop(self) -> None:
        """Stops handing off: hand-offs already with a channel finish, everything else in
        hand goes back to the queue at once (another worker may take it right away)."""
        self.stopping.set()

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
        if self._suspect_held:
            # A message that may kill this process is being tried alone: the other lanes
            # claim nothing meanwhile, so if it does, no other message is caught in hand.
            return await self.apply_receipts()
        if self._strays:
            await self._give_back_strays()
        self._lanes_busy += 1
        try:
            batch = await self.claim()
            deferred, self._deferred = self._deferred, 0
            if batch:
                await self._process_or_keep(batch)
        finally:
            self._lanes_busy -= 1
        return len(batch) + deferred + await self.apply_receipts()

    async def _process_or_keep(self, batch: list[Claim]) -> None:
        """A batch cut short by a lost database is given back once it answers again, not
        left to lapse: its messages go out a lease sooner, and are not taken for poison."""
        try:
            await self.process(batch)
        except Exception as error:
            if is_unavailable(error):
                self._keep(batch)
            raise

    def _keep(self, claims: list[Claim], start_unsure: Collection[str] = ()) -> None:
        """Claims to give back once the database answers again. `start_unsure`: those whose
        start transaction failed, which may have committed: never handed off all the same."""
        self._strays += [
            leases.Stray(
                c.id, c.lease_token, c.status, c.attempt_count, c.operation_id, c.id in start_unsure
            )
            for c in claims
        ]

    async def _give_back_strays(self) -> None:
        # A claim may be kept twice (by its batch and by its hand-off): once is enough.
        kept: dict[str, leases.Stray] = {}
        for stray in self._strays:
            if stray.id not in kept or stray.start_unsure:
                kept[stray.id] = stray
        self._strays = []
        strays, now = list(kept.values()), self._clock()
        try:
            async with self.db.write() as conn:
                back = await leases.give_back(conn, strays, now)
                started = [s.unstart(now) for s in strays if s.start_unsure and s.id not in back]
                changes = StatusChanges()
                unstarted = await leases.unstart(conn, started, now)
                for operation_id in unstarted:
                    changes.started(operation_id, -1)  # its attempt row is gone
                if back or unstarted:
                    await queue.notify(conn)
                await status_changes.settle(conn, changes, now)
        except Exception:
            self._strays += strays
            raise
        if back or unstarted:
            count = len(back) + len(unstarted)
            log.info("%d claims held when the database went away given back", count)

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
        if self.stopping.is_set():
            await self._release(batch, self._clock())
            return
        sending = [c for c in batch if c.status in _SENDING]
        waiting = [c for c in batch if c.status not in _SENDING]
        if sending:
            sending = await self._isolate(sending)
        plans: dict[str, OperationPlan] = {}
        if sending:
            plans = await self._load_plans({c.operation_id for c in sending})
            sending = await self._set_aside_costly(sending, plans)
        now = self._clock()
        later = [c for c in sending if c.slot is not None and c.slot > now]
        if later:
            # Slots a moment ahead are waited for beside the lanes, not in them.
            self._beside(self._dispatch_paced(later), self._paced)
            sending = [c for c in sending if c.slot is None or c.slot <= now]
        if sending:
            await self._dispatch(sending, plans)
        if waiting:
            await self.tracker.check_overdue(waiting)

    def _beside(self, work: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _dispatch_paced(self, claims: list[Claim]) -> None:
        try:
            await self._dispatch(sorted(claims, key=lambda c: c.slot or 0))
        except Exception:
            # Their leases run out and another claim picks them up again.
            log.exception("paced hand-offs failed")

    async def _release(self, claims: list[Claim], next_at: int | list[int]) -> None:
        """Gives claimed, unstarted messages back to the queue (no attempt used)."""
        if not claims:
            return
        due = next_at if isinstance(next_at, list) else [next_at] * len(claims)
        rows = [
            Reschedule(c.id, c.lease_token, c.status, self._within_validity(c, at))
            for c, at in zip(claims, due, strict=True)
        ]
        async with self.db.write() as conn:
            await leases.release(conn, rows)
            await queue.notify(conn)  # due again: another worker may take them now

    def _within_validity(self, claim: Claim, at: int) -> int:
        # Never later than the validity period's end: then the claim fails it (30036).
        return min(at, claim.valid_from + self.policy.validity_ms)

    # -- poison messages ---------------------------------------------------------------------

    async def _isolate(self, sending: list[Claim]) -> list[Claim]:
        """Claims whose previous lease lapsed with them in hand (the worker died or hung):
        past `max_stalled_claims` they fail; below, one at a time per worker is tried alone
        in this lane (the rest of the batch goes back to the queue at once), so a message
        that kills its worker takes no other message down with it again."""
        limit = max(self.config.max_stalled_claims, 1)
        poisoned = [c for c in sending if c.stalled_claims >= limit]
        suspects = [c for c in sending if 0 < c.stalled_claims < limit]
        if not poisoned and not suspects:
            return sending
        now = self._clock()
        if poisoned:
            await self._fail_poisoned(poisoned, now)
        fresh = [c for c in sending if c.stalled_claims == 0]
        if not suspects:
            return fresh
        if self._suspect_held:
            await self._release(suspects, _spaced(now, len(suspects)))
            return fresh
        # Taken before the first await: two lanes each holding a suspect would each wait for
        # the other to go idle, for half a lease per suspect.
        self._suspect_held = True
        try:
            alone, *others = suspects
            spaced = [now] * len(fresh) + _spaced(now, len(others))
            await self._release([*fresh, *others], spaced)
            await self._others_idle()
            await self._dispatch([alone])
        finally:
            self._suspect_held = False
        return []

    async def _others_idle(self) -> None:
        """Waits (bounded by the lease) until the other lanes have finished the batches they
        hold: they claim nothing new meanwhile, and a crash then catches only the suspect."""
        for _ in range(self.lease_ms // 20):  # 10 ms steps, half the lease at most
            if self._lanes_busy <= 1:
                return
            await asyncio.sleep(0.01)

    async def _fail_poisoned(self, claims: list[Claim], now: int) -> None:
        for claim in claims:
            log.warning(
                "message %s failed: its batch stopped %d times with it in hand",
                claim.id,
                claim.stalled_claims,
            )
        message = (
            f"Delivery stopped: the worker handling this message stopped"
            f" {self.config.max_stalled_claims} times with it in hand"
        )
        writes = [outcomes.refused(c, GiveUp(errors.POISON_MESSAGE, message)) for c in claims]
        async with self.db.write() as conn:
            changes = StatusChanges()
            failed = await queue.write_messages(conn, writes, now, changes)
            await queue.fail_stale_attempts(
                conn,
                failed,
                outcomes.OUTCOME_UNKNOWN,
                outcomes.OUTCOME_UNKNOWN_MESSAGE,
                now,
            )
            await status_changes.settle(conn, changes, now)

    # -- costly renders ----------------------------------------------------------------------

    async def _set_aside_costly(
        self, sending: list[Claim], plans: Mapping[str, OperationPlan]
    ) -> list[Claim]:
        """Messages whose Liquid needs the engine are rendered and sent by a task beside the
        lanes; past a batch of them in hand, the rest go back to the queue for a moment."""
        costly = [c for c in sending if c.content is None and plans[c.operation_id].content.costly]
        if not costly:
            return sending
        room = max(self.config.batch_size - self._costly_in_hand, 0)
        taken, over = costly[:room], costly[room:]
        if over:
            await self._release(over, self._clock() + 1000)
        if taken:
            self._costly_in_hand += len(taken)
            self._beside(self._dispatch_costly(taken), self._rendering)
        ids = {c.id for c in costly}
        return [c for c in sending if c.id not in ids]

    async def _dispatch_costly(self, claims: list[Claim]) -> None:
        tokens = {c.id: c.lease_token for c in claims}
        try:
            async with self._keeping_leases(tokens):
                for start in range(0, len(claims), _COSTLY_CHUNK):
                    if self.stopping.is_set():
                        await self._release(claims[start:], self._clock())
                        return
                    chunk = claims[start : start + _COSTLY_CHUNK]
                    for claim in chunk:
                        del tokens[claim.id]  # from here on, the chunk's own heartbeat
                    await self._dispatch(chunk)
        except Exception:
            log.exception("hand-offs of rendered templates failed")
        finally:
            self._costly_in_hand -= len(claims)

    async def settle_paced(self) -> None:
        """Waits for the paced hand-offs and the costly renders in progress (paced ones end
        within the horizon, renders within their budgets)."""
        while self._paced or self._rendering:
            await asyncio.gather(*self._paced, *self._rendering, return_exceptions=True)

    async def settle_renders(self) -> None:
        """Waits for the costly renders set aside (and their hand-offs) to be recorded."""
        while self._rendering:
            await asyncio.gather(*self._rendering, return_exceptions=True)

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

    async def _dispatch(
        self, claims: list[Claim], plans: Mapping[str, OperationPlan] | None = None
    ) -> None:
        """`plans`: the batch's, when its caller has them already (else they are loaded)."""
        tokens = {c.id: c.lease_token for c in claims}
        async with self._keeping_leases(tokens):
            if plans is None:
                plans = await self._load_plans({c.operation_id for c in claims})
            rendered = await self._render(claims, plans)
            now = self._clock()
            pending: list[Pending] = []
            refusals: list[MessageWrite] = []
            held: list[Reschedule] = []
            for claim in claims:
                plan = plans[claim.operation_id]
                item = self._prepare(claim, plan, rendered.get(claim.id), now)
                if isinstance(item, GiveUp):
                    refusals.append(outcomes.refused(claim, item))
                elif self.stopping.is_set():
                    held.append(self._hold(claim, now))
                elif (until := self.routes.held_until(item.step.sender.route, now)) is not None:
                    held.append(self._hold(claim, until))
                else:
                    pending.append(item)
            try:
                owned, refused = await self._start(claims, pending, refusals, held, now)
            except Exception as error:
                if is_unavailable(error):  # nothing was handed off: give them all back
                    self._keep(claims, {p.claim.id for p in pending})
                raise
            ready = [p for p in pending if p.claim.id in owned]
            for gone in tokens.keys() - {p.claim.id for p in ready}:
                del tokens[gone]  # written or given back: no lease left to keep
            if ready:
                results = await self._send_all(ready, refused)
                await self._record(ready, results)

    def _hold(self, claim: Claim, until: int) -> Reschedule:
        return Reschedule(
            claim.id, claim.lease_token, claim.status, self._within_validity(claim, until)
        )

    async def _render(
        self, claims: list[Claim], plans: Mapping[str, OperationPlan]
    ) -> dict[str, dict[str, Any] | RenderError]:
        """Each claim's content not rendered yet, by message id; heavy templates on the
        render thread."""
        groups: dict[str, list[Claim]] = defaultdict(list)
        for claim in claims:
            if claim.content is None:
                groups[claim.operation_id].append(claim)
        out: dict[str, dict[str, Any] | RenderError] = {}
        for operation_id, group in groups.items():
            template = plans[operation_id].content
            results = await template.render_all([c.variables for c in group], self._renderer)
            out.update(zip((c.id for c in group), results, strict=True))
        return out

    async def _load_plans(self, operation_ids: set[str]) -> dict[str, OperationPlan]:
        """The plan of each operation, kept for the caller: a batch may name more operations
        than the cache holds (a thousand one-recipient sends), and other lanes load theirs
        while this one awaits."""
        plans = self._plans.cached(operation_ids)
        missing = operation_ids - plans.keys()
        if not missing:
            return plans
        async with self.db.read() as conn:
            loaded = await queue.load_operations(conn, missing)
        loop = asyncio.get_running_loop()
        for op_id, (content, sender, kind) in loaded.items():
            plan: OperationPlan
            if len(dumps(content)) > _BIG_CONTENT:
                # Parsing 64 KiB of Liquid holds the interpreter for tens of milliseconds.
                plan = await loop.run_in_executor(self._renderer, build_plan, content, sender, kind)
            else:
                plan = build_plan(content, sender, kind)
            self._plans.put(op_id, plan)
            plans[op_id] = plan
        return plans

    def _prepare(
        self,
        claim: Claim,
        plan: OperationPlan,
        rendered: dict[str, Any] | RenderError | None,
        now: int,
    ) -> Pending | GiveUp:
        """The message's next hand-off, or why it must fail without one."""
        refused = self.policy.refuse(claim.attempt_count, claim.valid_from, now)
        if refused is not None:
            return refused
        steps = plan.steps(claim.plan) or self._unplanned(claim)
        if claim.route_index >= len(steps):
            return GiveUp(errors.CANNOT_ROUTE, errors.NO_ROUTE_MESSAGE)
        targets = addresses(claim.recipient)
        step = steps[claim.route_index]
        if step.to_index >= len(targets):
            return GiveUp(errors.CANNOT_ROUTE, errors.NO_ROUTE_MESSAGE)
        if claim.content is not None:
            content, body = claim.content, loads(claim.content)
        else:
            if rendered is None:  # `_render` renders every claim of `_dispatch` first
                rendered = plan.content.render_each([claim.variables])[0]
            if isinstance(rendered, RenderError):
                return GiveUp(rendered.code, rendered.message)
            body = addressed(rendered, claim.recipient)  # an email's To display name
            content = dumps(body)
        to = targets[step.to_index]
        number = claim.attempt_count + 1
        sender = step.sender
        outbound = OutboundMessage(
            claim.id, number, sender.channel, sender.address, to.address, body
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
        self,
        claims: list[Claim],
        pending: list[Pending],
        refusals: list[MessageWrite],
        held: list[Reschedule],
        now: int,
    ) -> tuple[set[str], dict[str, DeliveryError]]:
        """Transaction 2: the fenced write that must precede any channel call. Also answers
        the hand-offs refused before the channel (opted-out numbers): they are recorded as
        attempts the route refused, so the code shows on the message and fallback applies."""
        async with self.db.write() as conn:
            refused = await self._opted_out(conn, pending)
            if await leases.release(conn, held):
                await queue.notify(conn)
            changes = StatusChanges()
            statuses = {c.id: c.status for c in claims}
            handoffs = [p.handoff() for p in pending]
            owned = await queue.start_handoffs(conn, handoffs, now, changes, statuses)
            failed = await queue.write_messages(conn, refusals, now, changes)
            await leases.reset_stalled(conn, {c.id for c in claims if c.stalled_claims} & failed)
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
        return owned, refused

    async def _opted_out(self, conn: Any, pending: list[Pending]) -> dict[str, DeliveryError]:
        """Hand-offs to a number that told this sender STOP (and not START since): 21610,
        before anything reaches the channel, as carriers refuse them."""
        by_account: dict[str, list[Pending]] = defaultdict(list)
        for item in pending:
            by_account[item.claim.account_sid].append(item)
        with_any = await opt_outs.accounts_with_opt_outs(conn, by_account)
        blocked: dict[str, DeliveryError] = {}
        for account in with_any:
            items = by_account[account]
            pairs = {(p.step.sender.address, p.to.address) for p in items}
            stopped = await opt_outs.opted_out(conn, account, pairs)
            for item in items:
                sender, to = item.step.sender.address, item.to.address
                if (sender, to) in stopped:
                    why = (
                        f"Attempt to send to unsubscribed recipient: {to} replied STOP to"
                        f" {sender}; it must reply START before that sender may write again"
                    )
                    blocked[item.claim.id] = PermanentDeliveryError(errors.OPTED_OUT, why)
        return blocked

    async def _send_all(
        self, ready: list[Pending], refused: dict[str, DeliveryError]
    ) -> list[Result]:
        """Hands the batch off with up to `send_concurrency` sends in flight.

        A few sender tasks share the batch rather than one task per message: a channel that
        answers at once (the sandbox) then costs no task at all per message.
        """
        results: list[Result | None] = [None] * len(ready)
        todo = iter(enumerate(ready))

        async def sender() -> None:
            for index, item in todo:
                answer = refused.get(item.claim.id)
                results[index] = answer if answer is not None else await self._send_one(item)

        senders = min(max(self.config.send_concurrency, 1), len(ready))
        await asyncio.gather(*(sender() for _ in range(senders)))
        return [r for r in results if r is not None]

    async def _send_one(self, item: Pending) -> Result:
        route = item.step.sender.route
        channel = self.channels.get(route)
        if channel is None:
            return PermanentDeliveryError(
                errors.CANNOT_ROUTE, f"No route named '{route}' is configured"
            )
        slot = item.claim.slot
        # Never before the sender's pacing slot (a timer may fire a hair early: look again).
        while slot is not None and (wait := slot - self._clock()) > 0:
            if await self._stopped_within(wait / 1000):
                break
        if self.stopping.is_set():
            return NotHandedOff(self._clock())
        until = self.routes.held_until(route, self._clock())
        if until is not None:  # the route went down since this batch started
            return NotHandedOff(until)
        try:
            # asyncio.timeout, not wait_for: the send must run in this task, so that its
            # result is in `unrecorded` before a receipt it scheduled can be applied.
            async with asyncio.timeout(self.config.send_timeout):
                result = await channel.send(item.outbound)
        except RouteUnavailable as error:
            return NotHandedOff(self.routes.down(route, error.reason, self._clock()))
        except TimeoutError:
            message = f"The route {route} did not answer within {self.config.send_timeout:g} s"
            return TransientDeliveryError(outcomes.OUTCOME_UNKNOWN, message)
        except DeliveryError as error:
            self.routes.taken(route, self._clock())  # it answered: it is up
            return error
        except Exception as error:
            # A channel bug must not strand the batch; whether the message left is unknown.
            log.exception("channel %s failed unexpectedly", channel.name)
            return TransientDeliveryError(outcomes.OUTCOME_UNKNOWN, f"Channel error: {error}")
        self.receipts.unrecorded.update((result.external_id, *result.parts))
        self.routes.taken(route, self._clock())
        return result

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    async def _record(self, ready: list[Pending], results: list[Result]) -> None:
        """Transaction 3: the results, fenced, and the receipts that came with them."""
        now = self._clock()
        sent = [i for r in results if isinstance(r, SendResult) for i in (r.external_id, *r.parts)]
        back = [
            leases.Unstart(
                p.claim.id,
                p.claim.lease_token,
                p.number,
                self._within_validity(p.claim, r.next_at),
                p.claim.operation_id,
            )
            for p, r in zip(ready, results, strict=True)
            if isinstance(r, NotHandedOff)
        ]
        handed: list[tuple[Pending, SendResult | DeliveryError]] = [
            (p, r) for p, r in zip(ready, results, strict=True) if not isinstance(r, NotHandedOff)
        ]
        try:
            await self._until_written(
                lambda: self._write_results(
                    [p for p, _ in handed], [r for _, r in handed], sent, back, now
                )
            )
        finally:
            self.receipts.unrecorded.difference_update(sent)
        if sent and self.db.dialect == "postgresql":
            # Receipts another transaction kept for these ids while they were being recorded.
            await self.tracker.sweep(sent)

    async def _until_written(self, write: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Hand-offs that happened are known only here until their results are written: a
        database that went away is waited for, for up to a lease (the writes are fenced, so
        one that lands after the lease was lost, or twice, changes nothing)."""
        deadline = asyncio.get_running_loop().time() + self.config.lease_seconds
        delay = 0.05
        while True:
            try:
                return await write()
            except Exception as error:
                if not is_unavailable(error):
                    raise
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
            log.warning("results not written: database unavailable; retrying in %.2f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _write_results(
        self,
        ready: list[Pending],
        results: list[SendResult | DeliveryError],
        sent: list[str],
        back: list[leases.Unstart],
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
                for operation_id in await leases.unstart(conn, back, now):
                    changes.started(operation_id, -1)  # its attempt row is gone
                downstream = {m.id: a.external_id for m, a in writes}
                hit = await queue.write_messages(
                    conn, [m for m, _ in writes], now, changes, downstream
                )
                stalled = {p.claim.id for p in ready if p.claim.stalled_claims}
                await leases.reset_stalled(conn, stalled & hit)
                await queue.write_attempts(conn, [a for m, a in writes if m.id in hit], now)
                if len(hit) < len(ready):
                    log.warning("%d results dropped: their lease was lost", len(ready) - len(hit))
                await queue.insert_parts(conn, _parts(ready, results, hit))
                # Receipts that overtook their send result may wait in the table for these ids.
                early = await receipts.take_unmatched(conn, sent)
                await self.tracker.apply(conn, early + of_parts, now, changes)
                if back:
                    await queue.notify(conn)  # given back: due now for another worker
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


def _spaced(now: int, count: int) -> list[int]:
    """Due times for `count` suspects given back: the first group at once, then spaced."""
    return [now + (i // _SUSPECT_GROUP) * _SUSPECT_SPACING_MS for i in range(count)]


def _ids(result: SendResult) -> tuple[str, ...]:
    return (result.external_id, *result.parts)
