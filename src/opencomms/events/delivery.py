"""Delivery to webhook sinks, in the worker processes.

Each leased sink gets its own task and its own HTTP client (and so its own connections): a
slow or dead receiver uses up only its own time. A round reads up to `round_size` due
deliveries, posts them (one event per request, or JSON arrays of up to `batch_max` with
`batch_events`), each request bounded by `attempt_timeout_seconds`, and records the results in
one fenced transaction.
"""

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import logging
import os
import random
import secrets as pysecrets
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from opencomms.clock import now_ms
from opencomms.events import outbox, queue, signing, sinks
from opencomms.events.queue import DEAD, DELIVERED, PENDING, Due, Outcome, SinkLease, SinkState
from opencomms.events.ssrf import DestinationRefused, Guard, GuardedTransport, Resolver, networks
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database

log = logging.getLogger("opencomms.events")

_HOUR_MS = 3_600_000
_PRUNE_EVERY_MS = 600_000
_MAX_RETRY_AFTER_MS = 24 * _HOUR_MS


def _networks(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


# Environment variable -> (field, parser), for `DeliveryConfig.from_env`.
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "OPENCOMMS_EVENTS_ALLOWED_NETWORKS": ("allowed_networks", _networks),
    "OPENCOMMS_EVENTS_RETENTION_DAYS": ("retention_days", float),
    "OPENCOMMS_EVENTS_RETRY_HOURS": ("retry_hours", float),
    "OPENCOMMS_EVENTS_ATTEMPT_TIMEOUT": ("attempt_timeout_seconds", float),
    "OPENCOMMS_EVENTS_BATCH_MAX": ("batch_max", int),
    "OPENCOMMS_EVENTS_LEASE_SECONDS": ("lease_seconds", float),
    "OPENCOMMS_EVENTS_POLL_INTERVAL": ("poll_interval", float),
    "OPENCOMMS_EVENTS_CONCURRENCY": ("concurrency", int),
    "OPENCOMMS_EVENTS_ROUND_SIZE": ("round_size", int),
    "OPENCOMMS_WORKER_ID": ("worker_id", str),
    "OPENCOMMS_PUBLIC_URL": ("public_url", str),
}


def _worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{pysecrets.token_hex(3)}"


@dataclass(frozen=True)
class DeliveryConfig:
    """What delivery needs, as plain values (the `[events]` section of the config file)."""

    secret_key: str
    allowed_networks: tuple[str, ...] = ()
    retention_days: float = 7.0
    retry_hours: float = 72.0
    attempt_timeout_seconds: float = 15.0
    batch_max: int = 100
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    lease_seconds: float = 60.0
    poll_interval: float = 0.5
    concurrency: int = 32  # requests in flight per sink
    round_size: int = 1000  # deliveries read per sink per round
    max_sinks: int = 64  # sinks one worker serves at once
    public_url: str | None = None  # makes `dataschema` absolute
    worker_id: str = field(default_factory=_worker_id)

    @classmethod
    def from_env(
        cls, secret_key: str, environ: Mapping[str, str] | None = None, **base: Any
    ) -> "DeliveryConfig":
        """`base` (the config file's `[events]`) overridden by OPENCOMMS_EVENTS_* variables."""
        env = os.environ if environ is None else environ
        given: dict[str, Any] = dict(base)
        for var, (name, kind) in ENVIRONMENT.items():
            if env.get(var):
                given[name] = kind(env[var])
        return cls(secret_key=secret_key, **given)

    @property
    def lease_ms(self) -> int:
        # Longer than a round's requests can take, so no other worker starts on the sink
        # while this one still has requests out.
        return int(max(self.lease_seconds, 4 * self.attempt_timeout_seconds) * 1000)


def backoff_ms(attempts: int, base_s: float, max_s: float) -> int:
    """Exponential, with full jitter on the upper half: base * 2^attempts, capped."""
    ceiling = min(max_s, base_s * (2 ** min(attempts, 40)))
    return int(random.uniform(ceiling / 2, ceiling) * 1000)


def absolute_schema(payload: str, public_url: str | None) -> str:
    if not public_url:
        return payload
    return payload.replace('"dataschema":"/v1/', f'"dataschema":"{public_url.rstrip("/")}/v1/', 1)


@dataclass
class Attempt:
    """The result of one request (covering one event, or a batch)."""

    ok: bool
    error: str | None = None
    retry_after_ms: int | None = None
    gone: bool = False


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return min(max(int(float(value) * 1000), 1000), _MAX_RETRY_AFTER_MS)
    from email.utils import parsedate_to_datetime

    with contextlib.suppress(TypeError, ValueError):
        when = parsedate_to_datetime(value).timestamp() * 1000
        return min(max(int(when - time.time() * 1000), 1000), _MAX_RETRY_AFTER_MS)
    return None


def _judge(response: httpx.Response) -> Attempt:
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(ok=True)
    if code == 410:
        return Attempt(ok=False, error="410 Gone: the sink is disabled", gone=True)
    if code == 429:
        return Attempt(
            ok=False, error="429 Too Many Requests", retry_after_ms=_retry_after(response)
        )
    if 300 <= code < 400:
        where = response.headers.get("location", "")
        return Attempt(ok=False, error=f"{code} redirect to {where!r} not followed")
    return Attempt(ok=False, error=f"HTTP {code}")


class Deliverer:
    def __init__(
        self,
        db: Database,
        config: DeliveryConfig,
        *,
        resolver: Resolver | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.config = config
        self.box = SecretBox(config.secret_key)
        self.guard = Guard(networks(config.allowed_networks), resolver)
        self.clock = clock
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # The addresses connections were last opened to (bounded: a worker runs for months).
        self.dialed: collections.deque[str] = collections.deque(maxlen=1000)
        self.ssl_context = ssl.create_default_context()  # loading CAs once, not per sink
        self._next_prune = 0

    async def run_once(self) -> int:
        """Leases the sinks with due work and starts a task for each; returns how many."""
        now = self.clock()
        if now >= self._next_prune:
            await self.prune(now)
        room = self.config.max_sinks - len(self.tasks)
        if room <= 0:
            return 0
        async with self.db.read() as conn:
            if not await queue.any_leasable(conn, now, set(self.tasks)):
                return 0
        async with self.db.write() as conn:
            leases = await queue.lease_sinks(
                conn,
                owner=self.config.worker_id,
                now=now,
                lease_ms=self.config.lease_ms,
                limit=room,
                serving=set(self.tasks),
            )
        for lease in leases:
            task = asyncio.create_task(self._serve_sink(lease), name=f"sink-{lease.sid}")
            self.tasks[lease.sid] = task
            task.add_done_callback(self._finished)
        return len(leases)

    def _finished(self, task: "asyncio.Task[None]") -> None:
        self.tasks.pop(task.get_name().removeprefix("sink-"), None)

    async def prune(self, now: int) -> None:
        retention = int(self.config.retention_days * 24 * _HOUR_MS)
        async with self.db.write() as conn:
            pruned = await outbox.prune(conn, now, retention)
        if pruned:
            log.info("pruned %d events past retention", pruned)
        self._next_prune = now + _PRUNE_EVERY_MS

    async def drain(self) -> None:
        """Waits for the sink tasks in progress (each ends after its round)."""
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def _serve_sink(self, lease: SinkLease) -> None:
        transport = GuardedTransport(
            self.guard, self.ssl_context, max_connections=self.config.concurrency
        )
        timeout = httpx.Timeout(self.config.attempt_timeout_seconds)
        try:
            async with httpx.AsyncClient(
                transport=transport, follow_redirects=False, timeout=timeout
            ) as http:
                current: SinkLease | None = lease
                while current is not None:
                    current = await self._round(current, http)
        except Exception:
            log.exception("delivery to sink %s failed; its lease will expire", lease.sid)
            return
        finally:
            self.dialed.extend(transport.backend.connected)
        async with self.db.write() as conn:
            await queue.release(conn, lease)

    async def _round(self, lease: SinkLease, http: httpx.AsyncClient) -> SinkLease | None:
        """One round for one sink; the lease to go on with at once, or None to stop."""
        started = self.clock()
        async with self.db.read() as conn:
            batch = await queue.due(conn, lease, now=started, limit=self._round_size(lease))
            keys = await sinks.signing_secrets(conn, self.box, lease.sid, started)
        if not batch:
            return None
        auth_token = self.box.open(lease.auth_token_sealed) if lease.auth_token_sealed else None
        groups = self._groups(lease, batch)
        sem = asyncio.Semaphore(self.config.concurrency)

        async def post(group: Sequence[Due]) -> Attempt:
            async with sem:
                return await self._post(http, lease, group, keys, auth_token)

        posting = asyncio.ensure_future(asyncio.gather(*(post(g) for g in groups)))
        if not await self._hold(lease, posting):
            log.warning("lost the lease of sink %s mid-round; its new owner resends", lease.sid)
            return None
        attempts = posting.result()
        now = self.clock()
        outcomes, state = self._outcomes(groups, attempts, now)
        async with self.db.write() as conn:
            kept = await queue.record(
                conn,
                lease,
                outcomes,
                state,
                now=now,
                lease_ms=self.config.lease_ms,
                expire_before=now - int(self.config.retry_hours * _HOUR_MS),
            )
        if not kept:
            log.warning("lost the lease of sink %s; results left to its new owner", lease.sid)
            return None
        if state.failed_reason is not None:
            return None
        return dataclasses.replace(lease, probing=False)

    async def _hold(self, lease: SinkLease, posting: "asyncio.Future[list[Attempt]]") -> bool:
        """Renews the lease while the round's requests are out (a round may outlast one
        lease: a thousand requests to a slow receiver); False, with the requests cancelled,
        when another worker has taken the sink over."""
        beat = self.config.lease_ms / 3000
        while True:
            done, _ = await asyncio.wait({posting}, timeout=beat)
            if done:
                return True
            async with self.db.write() as conn:
                renewed = await queue.renew(conn, lease, self.clock(), self.config.lease_ms)
            if not renewed:
                posting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await posting
                return False

    def _round_size(self, lease: SinkLease) -> int:
        if lease.probing:
            # It failed last time: one request tells whether it is back, instead of a
            # round of requests that would all fail the same way.
            return max(self.config.batch_max, 1) if lease.batch else 1
        return self.config.round_size

    def _groups(self, lease: SinkLease, batch: list[Due]) -> list[list[Due]]:
        if not lease.batch:
            return [[d] for d in batch]
        size = max(self.config.batch_max, 1)
        return [batch[i : i + size] for i in range(0, len(batch), size)]

    async def _post(
        self,
        http: httpx.AsyncClient,
        lease: SinkLease,
        group: Sequence[Due],
        keys: Sequence[str],
        auth_token: str | None,
    ) -> Attempt:
        public = self.config.public_url
        if lease.batch:
            body = (
                "[" + ",".join(absolute_schema(d.payload, public) for d in group) + "]"
            ).encode()
            digest = hashlib.sha256(",".join(d.event_id for d in group).encode()).hexdigest()
            msg_id = "batch_" + digest[:32]
        else:
            body = absolute_schema(group[0].payload, public).encode()
            msg_id = group[0].event_id
        # Signatures carry the wall clock: receivers check it against theirs.
        headers = signing.standard_headers(keys, msg_id, int(time.time()), body)
        headers["content-type"] = "application/json"
        headers["user-agent"] = "OpenComms-Events/1"
        url = signing.twilio_signed_url(lease.destination, body)
        if auth_token is not None:
            headers["x-twilio-signature"] = signing.twilio_signature(auth_token, url)
        try:
            self.guard.check_url(url)
            async with asyncio.timeout(self.config.attempt_timeout_seconds):
                response = await http.post(url, content=body, headers=headers)
        except DestinationRefused as error:
            return Attempt(ok=False, error=f"refused: {error}")
        except TimeoutError:
            return Attempt(ok=False, error="timed out")
        except httpx.TimeoutException:
            return Attempt(ok=False, error="timed out")
        except httpx.HTTPError as error:
            return Attempt(ok=False, error=f"{type(error).__name__}: {error}"[:500])
        return _judge(response)

    def _outcomes(
        self, groups: Sequence[Sequence[Due]], attempts: Sequence[Attempt], now: int
    ) -> tuple[list[Outcome], SinkState]:
        config = self.config
        deadline_ms = int(config.retry_hours * _HOUR_MS)
        outcomes: list[Outcome] = []
        failure: str | None = None
        blocked = 0
        gone = False
        for group, attempt in zip(groups, attempts, strict=True):
            if attempt.ok:
                outcomes.extend(Outcome(d.id, DELIVERED, None, None) for d in group)
                continue
            failure = attempt.error
            gone = gone or attempt.gone
            for d in group:
                if attempt.gone:
                    # Not an attempt that failed: the sink stopped. Kept for a re-validation.
                    outcomes.append(Outcome(d.id, PENDING, now, attempt.error))
                    continue
                delay = attempt.retry_after_ms or backoff_ms(
                    d.attempts, config.backoff_base_seconds, config.backoff_max_seconds
                )
                deadline = d.created_at + deadline_ms
                if now >= deadline:
                    outcomes.append(Outcome(d.id, DEAD, None, attempt.error))
                    continue
                next_at = min(now + delay, deadline)
                blocked = next_at if blocked == 0 else min(blocked, next_at)
                outcomes.append(Outcome(d.id, PENDING, next_at, attempt.error))
        succeeded = any(a.ok for a in attempts)
        return outcomes, SinkState(succeeded, failure, blocked, gone)


async def run(
    db: Database,
    config: DeliveryConfig,
    stop: asyncio.Event,
    *,
    resolver: Resolver | None = None,
    clock: Callable[[], int] = now_ms,
) -> None:
    """Delivers events until `stop` is set; sinks in progress finish their round first."""
    deliverer = Deliverer(db, config, resolver=resolver, clock=clock)
    log.info("event delivery %s started", config.worker_id)
    while not stop.is_set():
        try:
            await deliverer.run_once()
        except Exception:
            log.exception("event delivery failed; retrying in %.1fs", config.poll_interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), config.poll_interval)
    await deliverer.drain()
    log.info("event delivery %s stopped", config.worker_id)
