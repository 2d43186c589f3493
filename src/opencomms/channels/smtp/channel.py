"""The SMTP route: each email written as MIME, signed, and handed to the relay over pooled,
reused sessions.

SMTP has no delivery receipts: the relay's 2xx after the body is the last word this route
will ever have, so the hand-off is final (DELIVERED, `receipt_expected=False`); `query()`
answers DELIVERED for any hand-off that got an id, so nothing waits for a receipt that never
comes. A session that drops is discarded; if it dropped before the body went out, the email
is tried once more on a fresh session at once (an idle connection the relay closed is the
usual cause), else the hand-off is transient and dispatch retries it. The Message-ID is the
same on every attempt of one email, so a retry after a drop that hid a delivery can be
recognized as a duplicate by the receiving side.
"""

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from email.utils import formatdate

from opencomms.channels.base import (
    Channel,
    Handoff,
    InboundSink,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptSink,
    RouteUnavailable,
    SendResult,
    SlotReserver,
    TransientDeliveryError,
)
from opencomms.channels.smtp import replies
from opencomms.channels.smtp.client import (
    Endpoint,
    Reply,
    Session,
    SessionRefused,
    SmtpProtocolError,
    open_session,
)
from opencomms.channels.smtp.config import SmtpRouteConfig
from opencomms.channels.smtp.dkim_sign import Signer, load_signers
from opencomms.channels.smtp.envelope import email_of
from opencomms.channels.smtp.mime import render

log = logging.getLogger("opencomms.channels.smtp")

# What a session that broke raises; ValueError is a reply line over the reader's limit.
_DROPPED = (OSError, EOFError, TimeoutError, ValueError, SmtpProtocolError)
_UNSAFE = frozenset("\r\n<>")  # never inside an envelope address: command injection


class _Pacer:
    """Spaces hand-offs `1/mps` apart (0: no pacing): in this process alone, or, once
    dispatch shares the route's schedule (`share_pacing`), across every worker process.

    Shared slots are reserved a few at a time (as many as are waited for, at most a quarter
    second's worth), so the database is asked once a batch, not once an email. A reserved
    slot missed by more than an interval (this process was busy) is dropped rather than
    used late, which could bunch two hand-offs: no second holds more than `mps` + 1 (plus
    what the reservation's own latency adds, since a fresh slot is always used)."""

    def __init__(self, mps: float, route: str) -> None:
        self.mps = mps
        self.interval = 1.0 / mps if mps else 0.0
        self.route = route
        self.next = 0.0
        self.reserve: SlotReserver | None = None
        self._reserved: deque[int] = deque()  # epoch ms, ascending
        self._waiting = 0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        slot = await self._slot()
        delay = slot - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _slot(self) -> float:
        """The next slot (epoch seconds) this process may hand off at."""
        if self.reserve is None:
            now = time.time()
            slot = max(self.next, now)
            self.next = slot + self.interval
            return slot
        self._waiting += 1
        try:
            async with self._lock:
                while self._reserved:
                    slot = self._reserved.popleft() / 1000
                    if slot >= time.time() - self.interval:
                        return slot
                count = max(1, min(self._waiting, math.ceil(self.mps / 4)))
                self._reserved.extend(await self.reserve(self.route, self.mps, count))
                # A fresh slot is used even if the reservation took longer than an
                # interval: dropping it could drop every slot of a slow database forever.
                return self._reserved.popleft() / 1000
        finally:
            self._waiting -= 1


class _Dates:
    """The Date header, formatted once per second rather than once per email."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.second = -1
        self.text = ""

    def now(self) -> str:
        second = int(self.clock())
        if second != self.second:
            self.second, self.text = second, formatdate(second, localtime=False)
        return self.text


class SmtpChannel:
    """One configured SMTP route; plays the EMAIL channel."""

    def __init__(
        self,
        config: SmtpRouteConfig,
        *,
        name: str = "smtp",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.config = config
        self.endpoint = Endpoint(
            host=config.host,
            port=config.port,
            timeout=config.timeout,
            ssl_context=config.ssl_context(),
            implicit_tls=config.tls,
            starttls=config.starttls,
            username=config.username,
            password=config.password,
            **({"local_hostname": config.local_hostname} if config.local_hostname else {}),
        )
        self.signers: dict[str, Signer] = load_signers(config.dkim)
        self._idle: list[Session] = []
        self._slots = asyncio.Semaphore(config.pool_size)
        self._pacer = _Pacer(config.mps, name)
        self._dates = _Dates(clock)  # seconds since the epoch, for Date
        self._sink: ReceiptSink | None = None

    def share_pacing(self, reserve: SlotReserver) -> None:
        """`mps` then holds across every worker process (channels/base.py SharedPacing)."""
        self._pacer.reserve = reserve

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        # Sessions open on first use: a relay that is down must not stop the worker starting.
        self._sink = receipts

    def build(self, message: OutboundMessage) -> tuple[str, bytes]:
        """The Message-ID (our hand-off identifier) and the bytes of the email."""
        email = email_of(message, self._dates.now(), self.config)
        data = render(email)
        signer = self.signers.get(email.sender.address.rpartition("@")[2].lower())
        if signer is not None:
            data = signer.sign(data)
        return email.message_id, data

    async def send(self, message: OutboundMessage) -> SendResult:
        for address in (message.sender, message.to):
            if not _UNSAFE.isdisjoint(address) or "@" not in address:
                raise PermanentDeliveryError(
                    replies.UNKNOWN_MAILBOX, f"{address!r} is not an address SMTP can carry"
                )
        if not self.config.allows_sender(message.sender):
            raise PermanentDeliveryError(
                replies.FILTERED,
                f"The route {self.name} may not send from {message.sender}"
                f" (from_domains: {', '.join(self.config.from_domains)})",
            )
        async with self._slots:
            # Written once a session is free: a burst of sends does not build (and sign)
            # every email up front while the sessions' timers run.
            message_id, data = self.build(message)
            await self._pacer.wait()
            reply = await self._deliver(message.sender, message.to, data)
        if not 200 <= reply.code < 300:
            raise replies.error_for(reply)
        # The relay's 2xx is final: no later receipt will come for an email.
        return SendResult(message_id, receipt_expected=False)

    async def _deliver(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Within a slot: one transaction on an idle session, or a fresh one."""
        for fresh_try in (False, True):
            session = self._idle.pop() if self._idle and not fresh_try else None
            reused = session is not None
            try:
                if session is None:
                    session = await self._connect()
                reply = await session.transaction(sender, recipient, data)
            except SessionRefused as refused:
                raise TransientDeliveryError(
                    replies.RELAY_UNAVAILABLE,
                    f"{refused.stage}: {replies.describe(refused.reply)}",
                ) from refused
            except _DROPPED as error:
                if session is not None:
                    session.close()
                if reused and session is not None and not session.body_sent:
                    continue  # an idle session the relay had closed: try a fresh one
                raise TransientDeliveryError(
                    replies.RELAY_UNAVAILABLE,
                    f"The SMTP session to {self.config.host} dropped: {error!r}",
                ) from error
            except BaseException:
                if session is not None:
                    session.close()  # cancelled mid-transaction: the session is unusable
                raise
            if reply.code == 421:
                session.close()  # the relay is closing this session
            else:
                self._idle.append(session)
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self) -> Session:
        """A fresh session; a relay that cannot be reached or refuses us marks the route
        down (dispatch holds its messages back) instead of failing a message's attempt."""
        try:
            return await open_session(self.endpoint)
        except SessionRefused as refused:
            reason = "login refused" if refused.stage == "AUTH" else "unavailable"
            raise RouteUnavailable(
                replies.RELAY_UNAVAILABLE,
                f"{refused.stage}: {replies.describe(refused.reply)}",
                reason,
            ) from refused
        except _DROPPED as error:
            raise RouteUnavailable(
                replies.RELAY_UNAVAILABLE,
                f"Cannot connect to the SMTP relay {self.config.host}: {error!r}",
                "connection refused",
            ) from error

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        """Every hand-off with an id got a 2xx, the final word of SMTP."""
        return [Receipt(h.external_id, "DELIVERED") for h in handoffs if h.external_id]

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(session.quit() for session in idle))
        self._sink = None


def smtp_channel(name: str, options: SmtpRouteConfig) -> Channel:
    """The registry's factory: one `[[routes]] type = "smtp"` entry, validated."""
    return SmtpChannel(options, name=name)
