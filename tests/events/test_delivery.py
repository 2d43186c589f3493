"""Delivery to real HTTP receivers on 127.0.0.1, on both databases, with a clock the tests
move by hand (a day of downtime takes a second)."""

import asyncio
import time

import jsonschema
import orjson
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from opencomms.clock import now_ms
from opencomms.events import outbox, queue, sinks, types
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from opencomms.store.tables import event_deliveries, event_sinks, event_templates, events
from tests.dispatch.helpers import FakeClock
from tests.events.helpers import active_sink, deliverer, emit, lifecycle, settle
from tests.events.receiver import Answer, Received, Receiver, free_port, receiver

HOUR = 3600.0


async def stored_ids(db: Database, account_sid: str) -> list[str]:
    async with db.read() as conn:
        query = select(events.c.id).where(events.c.account_sid == account_sid)
        return list((await conn.execute(query.order_by(events.c.id))).scalars())


async def sink_row(db: Database, sid: str) -> sinks.Sink:
    async with db.read() as conn:
        found = await sinks.get_sink(conn, (await _account_of(conn, sid)), sid)
    assert found is not None
    return found


async def _account_of(conn: object, sid: str) -> str:
    query = select(event_sinks.c.account_sid).where(event_sinks.c.sid == sid)
    return str((await conn.execute(query)).scalar_one())  # type: ignore[attr-defined]


async def test_events_arrive_signed_in_order(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    async with receiver() as hook:
        _sink, secret = await active_sink(db, box, account.sid, hook.url)
        assert await emit(db, lifecycle(account.sid, "comms_message_1")) == 3
        await settle(deliverer(db))
    assert len(hook.requests) == 3
    webhook = Webhook(secret)
    validator = RequestValidator(account.secret)
    for request in hook.requests:
        webhook.verify(request.body, request.headers)
        url = f"http://127.0.0.1:{hook.port}{request.path}"
        assert validator.validate(url, request.body.decode(), request.headers["x-twilio-signature"])
        assert request.headers["webhook-id"] == request.events()[0]["id"]
    received = hook.events()
    assert [e["id"] for e in received] == await stored_ids(db, account.sid)
    assert [e["type"].rsplit(".", 1)[1] for e in received] == ["queued", "sent", "delivered"]
    assert [e["data"]["sequence"] for e in received] == [1, 2, 3]
    first = received[1]
    assert first["specversion"] == "1.0" and first["datacontenttype"] == "application/json"
    assert first["source"] == "/v1/Messages/comms_message_1"
    assert first["dataschema"].endswith(f"/Schemas/{types.MESSAGE_SCHEMA}/Versions/1/Raw")
    assert first["data"]["from"] == {"id": "sender_1", "address": "+15005550006", "channel": "SMS"}
    assert first["data"]["to"] == {"id": None, "address": "+14155550100", "channel": "SMS"}
    assert first["data"]["downstream_id"] == "SM1" and first["data"]["tags"] == {"campaign": "x"}
    for event in received:
        jsonschema.Draft202012Validator(types.SCHEMAS[types.MESSAGE_SCHEMA]).validate(event["data"])


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    async with receiver() as hook:
        sink, old = await active_sink(db, box, account.sid, hook.url)
        async with db.write() as conn:
            new = await sinks.rotate_secret(conn, box, sink, clock.now, 3_600_000)
        await emit(db, lifecycle(account.sid, "m1")[:1], clock.now)
        await settle(deliverer(db, clock=clock))
        clock.advance(2 * HOUR)
        await emit(db, lifecycle(account.sid, "m2")[:1], clock.now)
        await settle(deliverer(db, clock=clock))
    during, after = hook.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    Webhook(new).verify(after.body, after.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1


async def test_batches_are_json_arrays_of_at_most_batch_max(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    async with receiver() as hook:
        _sink, secret = await active_sink(db, box, account.sid, hook.url, batch=True)
        transitions = [t for i in range(3) for t in lifecycle(account.sid, f"m{i}")][:5]
        await emit(db, transitions)
        await settle(deliverer(db, batch_max=2))
    assert sorted(len(r.events()) for r in hook.requests) == [1, 2, 2]
    for request in hook.requests:
        assert isinstance(orjson.loads(request.body), list)
        Webhook(secret).verify(request.body, request.headers)
    assert sorted(e["id"] for e in hook.events()) == await stored_ids(db, account.sid)


async def test_a_receiver_down_for_a_day_gets_every_event_afterwards(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    port = free_port()  # nothing listens here yet
    sink, _ = await active_sink(
        db, box, account.sid, f"http://127.0.0.1:{port}/hook", now=clock.now
    )
    for i in range(10):
        await emit(db, lifecycle(account.sid, f"m{i}"), clock.now)
    worker = deliverer(db, clock=clock, backoff_max_seconds=HOUR)
    for _ in range(48):  # a day, in half hours
        await settle(worker)
        clock.advance(HOUR / 2)
    down = await sink_row(db, sink.sid)
    assert down.last_success_at is None and down.last_failure_reason
    async with db.read() as conn:
        assert await sinks.waiting(conn, sink.sid) == 30
    async with receiver(port) as hook:
        clock.advance(HOUR)
        await settle(worker)
    assert sorted(e["id"] for e in hook.events()) == await stored_ids(db, account.sid)
    up = await sink_row(db, sink.sid)
    assert up.last_success_at == clock.now
    async with db.read() as conn:
        assert await sinks.waiting(conn, sink.sid) == 0
        attempts = select(event_deliveries.c.attempts).where(
            event_deliveries.c.sink_sid == sink.sid
        )
        # Backoff and probing, not hammering: after the first round (30 requests), at most one
        # probe per half hour; then the 30 that succeeded.
        probes = sum((await conn.execute(attempts)).scalars()) - 30 - 30
        assert 5 < probes <= 48


async def test_retry_after_of_a_429_is_respected(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    answers = iter([Answer(429, {"Retry-After": "120"})])

    def script(_r: Received) -> Answer:
        return next(answers, Answer())

    async with receiver() as hook:
        hook.script = script
        sink, _ = await active_sink(db, box, account.sid, hook.url, now=clock.now)
        await emit(db, lifecycle(account.sid, "m1")[:1], clock.now)
        worker = deliverer(db, clock=clock)
        await settle(worker)
        assert len(hook.requests) == 1
        assert (await sink_row(db, sink.sid)).last_failure_reason == "429 Too Many Requests"
        clock.advance(119)
        await settle(worker)
        assert len(hook.requests) == 1
        clock.advance(2)
        await settle(worker)
        assert len(hook.requests) == 2
    first, second = hook.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # same event id


async def test_410_disables_the_sink(db: Database, box: SecretBox, account: NewCredential) -> None:
    clock = FakeClock()
    async with receiver() as hook:
        hook.script = lambda _r: Answer(410)
        sink, _ = await active_sink(db, box, account.sid, hook.url, now=clock.now)
        await emit(db, lifecycle(account.sid, "m1"), clock.now)
        worker = deliverer(db, clock=clock)
        await settle(worker)
        clock.advance(10 * HOUR)
        await settle(worker)
    assert len(hook.requests) == 3  # one round of three single events, then nothing
    disabled = await sink_row(db, sink.sid)
    assert disabled.status == sinks.FAILED
    assert disabled.last_failure_reason == "410 Gone: the sink is disabled"
    async with db.read() as conn:
        assert await sinks.waiting(conn, sink.sid) == 3  # kept, for a re-validation


async def test_a_disabled_sink_revalidated_gets_its_backlog(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    async with receiver() as hook:
        hook.script = lambda _r: Answer(410)
        sink, _ = await active_sink(db, box, account.sid, hook.url)
        await emit(db, lifecycle(account.sid, "m1"))
        worker = deliverer(db)
        await settle(worker)
        hook.script = lambda _r: Answer()
        hook.requests.clear()
        async with db.write() as conn:
            failed = await sinks.get_sink(conn, account.sid, sink.sid)
            assert failed is not None and failed.status == sinks.FAILED
            test_id = await sinks.start_test(conn, failed, now_ms())
        await settle(worker)
        assert [e["id"] for e in hook.events()] == [test_id]  # the test event alone
        async with db.write() as conn:
            validating = await sinks.get_sink(conn, account.sid, sink.sid)
            assert validating is not None and validating.status == sinks.VALIDATING
            assert await sinks.validate(conn, validating, test_id, now_ms())
        await settle(worker)
    assert len(hook.events()) == 4


async def test_redirects_are_not_followed(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    async with receiver() as hook:
        hook.script = lambda _r: Answer(302, {"Location": "http://10.0.0.1/steal"})
        sink, _ = await active_sink(db, box, account.sid, hook.url)
        await emit(db, lifecycle(account.sid, "m1")[:1])
        worker = deliverer(db)
        await settle(worker)
    assert len(hook.requests) == 1
    assert list(worker.dialed) == ["127.0.0.1"]
    reason = (await sink_row(db, sink.sid)).last_failure_reason
    assert reason == "302 redirect to 'http://10.0.0.1/steal' not followed"


def fast_done_event(hook: Receiver, count: int) -> asyncio.Event:
    """Set once `hook` has received `count` events."""
    done = asyncio.Event()

    def script(request: Received) -> Answer:
        if len(hook.events()) + len(request.events()) >= count:
            done.set()
        return Answer()

    hook.script = script
    return done


async def test_a_slow_sink_times_out_without_delaying_another(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    async with receiver() as slow, receiver() as fast:
        slow.script = lambda _r: Answer(delay=6.0)
        slow_sink, _ = await active_sink(db, box, account.sid, slow.url)
        await active_sink(db, box, account.sid, fast.url)
        await emit(db, lifecycle(account.sid, "m1"))
        worker = deliverer(db, attempt_timeout_seconds=3.0)
        started = time.monotonic()
        assert await worker.run_once() == 2  # both sinks, each in its own task
        await asyncio.wait_for(fast_done_event(fast, 3).wait(), 10)
        # The fast receiver has everything while the slow one's requests are still out.
        assert not worker.tasks[slow_sink.sid].done()
        await worker.drain()
        slow_done = time.monotonic() - started
    # The slow requests were cut at the attempt timeout, not left to the receiver's 6 s.
    assert 3.0 <= slow_done < 6.0
    assert (await sink_row(db, slow_sink.sid)).last_failure_reason == "timed out"


async def test_retries_stop_after_the_retry_period(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    async with receiver() as hook:
        hook.script = lambda _r: Answer(500)
        sink, _ = await active_sink(db, box, account.sid, hook.url, now=clock.now)
        await emit(db, lifecycle(account.sid, "m1")[:1], clock.now)
        worker = deliverer(db, clock=clock, retry_hours=2.0, backoff_max_seconds=HOUR)
        for _ in range(12):
            await settle(worker)
            clock.advance(HOUR / 4)
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(event_deliveries).where(event_deliveries.c.sink_sid == sink.sid)
            )
        ).one()
    assert row.status == queue.DEAD and row.next_attempt_at is None
    assert row.last_error == "HTTP 500"
    # The last attempt lands on the deadline, not before it.
    assert len(hook.requests) == row.attempts >= 3


async def test_replay_sends_stored_events_again_with_their_ids(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    async with receiver() as hook:
        sink, _ = await active_sink(db, box, account.sid, hook.url, now=clock.now)
        await emit(db, lifecycle(account.sid, "m1"), clock.now)
        worker = deliverer(db, clock=clock)
        await settle(worker)
        clock.advance(60)
        await emit(db, lifecycle(account.sid, "m2"), clock.now)
        await settle(worker)
        async with db.write() as conn:
            assert await queue.replay(conn, sink.sid, account.sid, clock.now, clock.now) == 3
        await settle(worker)
    ids = [e["id"] for e in hook.events()]
    assert len(ids) == 9 and ids[6:] == ids[3:6]


@pytest.mark.parametrize("long_rounds", [False, True])
async def test_two_workers_never_deliver_one_event_twice(
    db: Database, box: SecretBox, account: NewCredential, long_rounds: bool
) -> None:
    """Also when a round outlasts the lease (long_rounds): the lease is renewed meanwhile."""
    seen: set[str] = set()
    overlaps: list[str] = []  # any event sent twice (none should be: no worker died)

    async with receiver() as hook:
        sink, _ = await active_sink(db, box, account.sid, hook.url)
        for i in range(20):
            await emit(db, lifecycle(account.sid, f"m{i}"))

        def script(request: Received) -> Answer:
            event_id = request.headers["webhook-id"]
            if event_id in seen:
                overlaps.append(event_id)
            seen.add(event_id)
            return Answer(delay=0.1 if long_rounds else 0.01)

        hook.script = script
        settings = (
            {
                "round_size": 30,
                "concurrency": 1,
                "lease_seconds": 1.5,
                # Ten times the receiver's delay: a loaded machine (CI) took past 0.3 s.
                "attempt_timeout_seconds": 1.0,
            }
            if long_rounds
            else {"round_size": 7}
        )
        workers = [deliverer(db, worker_id=f"w{i}", **settings) for i in range(2)]
        await asyncio.gather(*(settle(w) for w in workers))
    assert not overlaps
    reason = (await sink_row(db, sink.sid)).last_failure_reason
    assert sorted(e["id"] for e in hook.events()) == await stored_ids(db, account.sid), reason


async def test_events_past_retention_are_pruned(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    await active_sink(db, box, account.sid, "http://127.0.0.1:9/none", now=clock.now)
    await emit(db, lifecycle(account.sid, "old"), clock.now)
    clock.advance(8 * 24 * HOUR)
    await emit(db, lifecycle(account.sid, "new"), clock.now)
    await deliverer(db, clock=clock).prune(clock.now)
    async with db.read() as conn:
        kept = select(events.c.subject).where(events.c.account_sid == account.sid)
        assert set((await conn.execute(kept)).scalars()) == {"new"}


def batch_of(account_sid: str, name: str, count: int) -> outbox.EventBatch:
    return outbox.EventBatch(
        template_id=outbox.new_template_id(),
        template="{}",
        channel="SMS",
        account_sid=account_sid,
        type=types.MESSAGE_TYPES["QUEUED"].type,
        sequence=1,
        event_ids=outbox.new_event_ids(count),
        subjects=[f"{name}-{i}" for i in range(count)],
    )


async def test_templated_events_are_pruned_with_their_templates(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    sink, _secret = await active_sink(
        db, box, account.sid, "http://127.0.0.1:9/none", now=clock.now
    )
    old, new = batch_of(account.sid, "old", 3), batch_of(account.sid, "new", 2)
    async with db.write() as conn:
        await outbox.store(conn, [], clock.now, [old])
    clock.advance(8 * 24 * HOUR)
    async with db.write() as conn:
        await outbox.store(conn, [], clock.now, [new])
    await deliverer(db, clock=clock).prune(clock.now)
    async with db.read() as conn:
        kept = select(events.c.subject).where(events.c.account_sid == account.sid)
        assert set((await conn.execute(kept)).scalars()) == {"new-0", "new-1"}
        templates = select(event_templates.c.id).where(
            event_templates.c.id.in_([old.template_id, new.template_id])
        )
        assert set((await conn.execute(templates)).scalars()) == {new.template_id}
        owed = select(event_deliveries.c.event_id).where(event_deliveries.c.sink_sid == sink.sid)
        assert set((await conn.execute(owed)).scalars()) == set(new.event_ids)
