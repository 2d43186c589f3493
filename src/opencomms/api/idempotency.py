"""Decision 11: an `Idempotency-Key` header makes a POST safe to retry for 24 hours.

- the same key with the same body replays the first answer (status, body and headers), with
  `Idempotent-Replayed: true`;
- the same key with another body (or another endpoint) is a 422;
- while the first request is still in flight, a 409 with `Retry-After`.

Keys belong to an account. The claim is an atomic insert, so concurrent requests and API
processes sharing a PostgreSQL database see one winner. A send writes its answer with the
send itself (`answer_for`, `record_in`), so its 202 and its key commit together and a crash
between the commit and the answer replays rather than sends twice; other POSTs record the
answer once it is sent. A 5xx answer took nothing, so it is not kept: a retry runs afresh.
"""

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opencomms.api.deps import account_of_scope
from opencomms.api.responses import one_error
from opencomms.clock import now_ms
from opencomms.domain import errors
from opencomms.store import idempotency
from opencomms.store.db import Database, is_unavailable

log = logging.getLogger("opencomms.api")

_HEADER = b"idempotency-key"
_MAX_KEY = 255
# Headers that belong to one answer, not to the replay of it.
_NOT_REPLAYED = {"date", "x-request-id", "connection", "retry-after"}
_PURGE_EVERY = 1000  # claims between two sweeps of expired keys


@dataclass
class Slot:
    """A claimed key, in `request.state.idempotency` for the route to record into."""

    account: str
    key: str
    lock: int  # the claim's fencing token: store.idempotency.lock_of
    recorded: bool = field(default=False)


def answer_for(request: Request, response: Response) -> idempotency.Answer | None:
    """`response` as the answer of the request's key, for the caller to write in the
    transaction that makes it true (store/sends.write_send's `answer`); None without a key.
    Once that transaction has committed, `answered(request)` spares the second write."""
    slot: Slot | None = getattr(request.state, "idempotency", None)
    if slot is None:
        return None
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
    body = bytes(response.body).decode()
    return idempotency.Answer(
        slot.account, slot.key, slot.lock, response.status_code, headers, body
    )


def answered(request: Request) -> None:
    """The request's answer is recorded: the middleware does not record it again. (If the
    write fails after all, its 5xx releases the key only if nothing was recorded under it:
    a commit whose outcome the error hid may have taken the answer, and a retry replays it.)"""
    slot: Slot | None = getattr(request.state, "idempotency", None)
    if slot is not None:
        slot.recorded = True


async def record_in(conn: AsyncConnection, request: Request, response: Response) -> None:
    """Records `response` as the answer of the request's key, in the caller's transaction."""
    answer = answer_for(request, response)
    if answer is not None:
        await idempotency.record_answer(conn, answer)
        answered(request)


def _key_of(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            return bytes(value)
    return None


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256(scope["method"].encode() + b" " + scope["path"].encode() + b"\n")
    digest.update(body)
    return digest.hexdigest()


_HASH_ON_THREAD = 1 << 20  # bytes: hashing 19 MB takes 10-20 ms (hashlib lets go of the GIL)


async def _fingerprint_of(scope: Scope, body: bytes) -> str:
    if len(body) < _HASH_ON_THREAD:
        return _fingerprint(scope, body)
    return await asyncio.to_thread(_fingerprint, scope, body)


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._claims = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        text = key.decode("latin-1")
        if not 1 <= len(text) <= _MAX_KEY or not text.isprintable():
            message = f"An Idempotency-Key is 1 to {_MAX_KEY} printable characters"
            await one_error(400, errors.INVALID_PARAMETER, message)(scope, receive, send)
            return
        account = await account_of_scope(scope)
        if account is None:
            await self.app(scope, receive, send)  # the app answers 401; nothing to keep
            return
        body = await _read_body(receive)
        db: Database = scope["app"].state.opencomms.db
        fingerprint = await _fingerprint_of(scope, body)
        stored, lock = await self._claim(db, account, text, fingerprint)
        if stored is not None:
            await _answer_from(stored, fingerprint)(scope, receive, send)
            return
        slot = Slot(account, text, lock)
        scope["state"]["idempotency"] = slot
        await self._run(db, slot, scope, _replaying(body), send)

    async def _claim(
        self, db: Database, account: str, key: str, fingerprint: str
    ) -> tuple[idempotency.Stored | None, int]:
        """What the key holds already (None: claimed now), and the claim's lock."""
        now = now_ms()
        async with db.write() as conn:
            stored = await idempotency.claim(conn, account, key, fingerprint, now)
            self._claims += 1
            if self._claims % _PURGE_EVERY == 0:
                await idempotency.purge(conn, now)
        return stored, idempotency.lock_of(now)

    async def _run(
        self, db: Database, slot: Slot, scope: Scope, receive: Receive, send: Send
    ) -> None:
        status, headers, chunks = 500, [], []

        async def capturing(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capturing)
        finally:
            if status >= 500 or not slot.recorded:
                await self._settle(db, slot, status, headers, b"".join(chunks))

    async def _settle(
        self, db: Database, slot: Slot, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        try:
            async with db.write() as conn:
                if status >= 500:
                    await idempotency.release(conn, slot.account, slot.key, slot.lock)
                    return
                pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
                text = body.decode()
                if not await idempotency.record(
                    conn, slot.account, slot.key, slot.lock, status, pairs, text
                ):
                    log.warning("idempotency key taken over by a retry; answer not kept")
        except Exception as error:
            if not is_unavailable(error):
                raise
            # The key stays "in flight" until its lock expires; then a retry takes it over.
            log.warning("idempotency key left in flight: the database is unavailable")


def _answer_from(stored: idempotency.Stored, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        return one_error(
            422,
            errors.INVALID_PARAMETER,
            "This Idempotency-Key was used with a different request; use a new key",
        )
    if stored.status is None:
        busy = one_error(
            409, errors.CONFLICT, "A request with this Idempotency-Key is still in progress"
        )
        busy.headers["Retry-After"] = "1"
        return busy
    response = Response(stored.body.encode(), status_code=stored.status)
    response.raw_headers = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in stored.headers
        if k.lower() not in _NOT_REPLAYED
    ]
    response.raw_headers.append((b"idempotent-replayed", b"true"))
    return response


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
