"""Per-account rate limits: requests on every endpoint, and recipients of sends.

Each limit is a GCRA (a token bucket kept as one number): `requests_per_second` sustained
with bursts of `burst`, and `recipients_per_minute` sustained with bursts of a minute's
worth. Past a limit the answer is a 429 in the error shape (code 20429) with `Retry-After`;
every answer to an authenticated request carries `RateLimit-Limit` (the burst),
`RateLimit-Remaining` and `RateLimit-Reset` (seconds until the bucket is full again).

On PostgreSQL the buckets are rows every API process updates atomically
(store/rate_limits.py); on SQLite, with one API process, they live in memory. A limit of 0
is no limit. The limits are the `[limits]` of the config file, each overridden by its
OPENCOMMS_RATE_* variable (config.load_settings).
"""

import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opencomms.api.deps import account_of_scope
from opencomms.api.errors import Refused
from opencomms.api.responses import JSONResponse, one_error
from opencomms.configfile import Limits as ConfiguredLimits
from opencomms.domain import errors
from opencomms.store import rate_limits
from opencomms.store.db import Database

_US = 1_000_000
REQUESTS = "requests"
_UNCOUNTED = frozenset({"/healthz", "/readyz"})  # probes: no account's business
RECIPIENTS = "recipients"


@dataclass(frozen=True)
class Limits:
    requests_per_second: float = 0.0
    burst: int = 0  # 0: twice the per-second rate
    recipients_per_minute: float = 0.0

    @classmethod
    def of(cls, configured: ConfiguredLimits) -> "Limits":
        """From the `[limits]` of Settings (file values, OPENCOMMS_RATE_* over them)."""
        return cls(
            requests_per_second=float(configured.requests_per_second),
            burst=int(configured.burst),
            recipients_per_minute=float(configured.recipients_per_minute),
        )


@dataclass(frozen=True)
class Bucket:
    """One limit: `rate` per second sustained, `burst` at once."""

    name: str
    rate: float
    burst: int

    @property
    def interval_us(self) -> int:
        return max(1, int(_US / self.rate))

    @property
    def window_us(self) -> int:
        return self.interval_us * self.burst


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        pairs = [
            (b"ratelimit-limit", self.limit),
            (b"ratelimit-remaining", self.remaining),
            (b"ratelimit-reset", self.reset_s),
        ]
        if not self.allowed:
            pairs.append((b"retry-after", self.retry_after_s))
        return [(name, str(value).encode()) for name, value in pairs]


def _decide(bucket: Bucket, allowed: bool, tat: int, now: int, cost: int) -> Decision:
    ahead = max(tat - now, 0)
    remaining = max((bucket.window_us - ahead) // bucket.interval_us, 0)
    retry = math.ceil(max(tat + cost - bucket.window_us - now, 0) / _US)
    return Decision(allowed, bucket.burst, int(remaining), math.ceil(ahead / _US), max(retry, 1))


class RateLimiter:
    def __init__(self, db: Database, limits: Limits) -> None:
        self.db = db
        self.buckets: dict[str, Bucket] = {}
        if limits.requests_per_second > 0:
            burst = limits.burst or math.ceil(2 * limits.requests_per_second)
            self.buckets[REQUESTS] = Bucket(REQUESTS, limits.requests_per_second, burst)
        if limits.recipients_per_minute > 0:
            per_second = limits.recipients_per_minute / 60
            self.buckets[RECIPIENTS] = Bucket(
                RECIPIENTS, per_second, math.ceil(limits.recipients_per_minute)
            )
        self._local: dict[tuple[str, str], int] = {}

    def limits(self, name: str) -> bool:
        return name in self.buckets

    async def spend(self, account: str, name: str, cost: int = 1) -> Decision | None:
        """Spends `cost` of a limit; None when that limit is off."""
        bucket = self.buckets.get(name)
        if bucket is None:
            return None
        now = int(time.time() * _US)
        cost_us = cost * bucket.interval_us
        if self.db.is_sqlite:
            allowed, tat = self._spend_here(account, bucket, now, cost_us)
        else:
            async with self.db.engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                allowed, tat = await rate_limits.spend(
                    autocommit, account, name, now, cost_us, bucket.window_us
                )
        return _decide(bucket, allowed, tat, now, cost_us)

    def _spend_here(self, account: str, bucket: Bucket, now: int, cost: int) -> tuple[bool, int]:
        key = (account, bucket.name)
        tat = max(self._local.get(key, now), now) + cost
        if tat - now > bucket.window_us:
            return False, self._local.get(key, now)
        if len(self._local) > 100_000:
            self._local.clear()
        self._local[key] = tat
        return True, tat


def refusal(decision: Decision, what: str) -> JSONResponse:
    response = one_error(429, errors.TOO_MANY_REQUESTS, f"Too many {what}: retry later")
    response.raw_headers.extend(decision.headers())
    return response


class RateLimited(Refused):
    """A limit the route checks itself (recipients of a send) was reached."""

    def __init__(self, decision: Decision, what: str) -> None:
        super().__init__(refusal(decision, what))


class RateLimit:
    """Spends one request of the caller's allowance; past it, a 429 instead of the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state.opencomms if scope["type"] == "http" else None
        limiter = state.limiter if state is not None else None
        if limiter is None or not limiter.limits(REQUESTS) or scope["path"] in _UNCOUNTED:
            await self.app(scope, receive, send)
            return
        account = await account_of_scope(scope)
        if account is None:
            await self.app(scope, receive, send)  # the app answers 401
            return
        decision = await limiter.spend(account, REQUESTS)
        assert decision is not None
        if not decision.allowed:
            await refusal(decision, "requests")(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *decision.headers()]
            await send(message)

        await self.app(scope, receive, sending)
