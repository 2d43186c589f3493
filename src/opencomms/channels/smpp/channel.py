"""The SMPP channel: an asyncio ESME behind the Channel protocol.

`binds` connections (transceivers, or transmitter + receiver pairs), each with at most `window`
requests outstanding; a send takes the connection with the most room. A long text becomes one
submit_sm per part and its hand-off returns the SMSC id of every part. Receipts and inbound
messages are acknowledged only once the sink they go to has finished, so a sink that writes
them to disk makes them durable: an unacknowledged deliver_sm is delivered again by the SMSC.
"""

import asyncio
import contextlib
import functools
import hashlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opencomms.channels.base import (
    Handoff,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    RouteUnavailable,
    SendResult,
    TransientDeliveryError,
)
from opencomms.channels.smpp import gsm, pdu, receipts
from opencomms.channels.smpp.config import SmppRouteConfig
from opencomms.channels.smpp.inbound import Reassembler, address, split_udh
from opencomms.channels.smpp.link import TICK, Link
from opencomms.channels.smpp.session import ConnectionLost, RequestTimeout, Session
from opencomms.channels.smpp.status import (
    ESME_RINVBNDSTS,
    ESME_ROK,
    ESME_RX_P_APPN,
    ESME_RX_T_APPN,
    UNKNOWN_ERROR,
    Outcome,
    describe,
    status_of,
)
from opencomms.clock import now_ms

log = logging.getLogger(__name__)

BODY_REQUIRED: Final = 21602  # Twilio: "Message body is required"
_TON_ALPHANUMERIC: Final = 5

Ack = tuple[Session, int]  # the connection a deliver_sm came on, and its sequence number
Held = tuple[Session, int, bytes]  # an inbound part's Ack and the digest of its body
ReceiptSinkAny = Callable[[Receipt], Awaitable[None] | None]


class RouteDownError(RouteUnavailable):
    """No connection of the route is bound: the message should wait, not use up an attempt."""


@dataclass(frozen=True, slots=True)
class RouteState:
    name: str
    up: bool
    reason: str  # why it is down, or "" when up
    bound: int  # connections bound now
    connections: int  # connections configured


class SmppChannel:
    """The `smpp` route kind. Options are those of `SmppRouteConfig` (or `config=`)."""

    name = "smpp"

    def __init__(
        self, *, name: str = "smpp", config: SmppRouteConfig | None = None, **options: Any
    ) -> None:
        self.name = name
        self.config = config if config is not None else SmppRouteConfig(**options)
        cfg = self.config
        self.closing = False
        self._receipts: ReceiptSinkAny | None = None
        self._inbound: InboundSink | None = None
        self._template = pdu.SubmitTemplate(
            service_type=cfg.service_type,
            dest_ton=cfg.dest_ton,
            dest_npi=cfg.dest_npi,
            registered_delivery=1 if cfg.registered_delivery else 0,
        )
        self._references = gsm.References()
        self._links: list[Link] = []
        self._senders: list[Session] = []
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._up = asyncio.Event()
        self._paused_until = 0.0
        self._next_slot = 0.0
        self._interval = 1 / cfg.mps if cfg.mps else 0.0
        self._reassembler = Reassembler[Held]()
        self._acks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # lifecycle

    async def open(self, receipts: ReceiptSinkAny, inbound: InboundSink | None = None) -> None:
        """Binds every connection (waiting for each one's first try); receipts go to
        `receipts` and inbound messages to `inbound`, each acknowledged once its sink is done."""
        self.closing = False
        self._receipts = receipts
        self._inbound = inbound
        pair = ["transmitter", "receiver"]
        roles = ["transceiver"] if self.config.bind == "transceiver" else pair
        for index in range(self.config.binds):
            for role in roles:
                link = Link(self, role, f"{self.name}#{index + 1} {role}")
                link.task = asyncio.create_task(link.run(), name=f"smpp {link.label}")
                self._links.append(link)
        self._sweeper = asyncio.create_task(self._sweep(), name=f"smpp {self.name} sweep")
        waits = [asyncio.create_task(link.first_attempt.wait()) for link in self._links]
        _, pending = await asyncio.wait(
            waits, timeout=self.config.connect_timeout + self.config.response_timeout
        )
        for task in pending:
            task.cancel()

    async def aclose(self) -> None:
        self.closing = True
        self._wake_all()
        sessions = [link.session for link in self._links if link.session and link.session.bound]
        await asyncio.gather(*(self._unbind(s) for s in sessions), return_exceptions=True)
        tasks = [link.task for link in self._links if link.task] + (
            [self._sweeper] if self._sweeper else []
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._acks, return_exceptions=True)
        self._links.clear()
        self._senders.clear()
        self._receipts = self._inbound = None

    async def _unbind(self, session: Session) -> None:
        session.bound = False
        with contextlib.suppress(ConnectionLost, RequestTimeout, TimeoutError):
            await asyncio.wait_for(session.request(pdu.UNBIND), 1.0)

    # route state

    def state(self) -> RouteState:
        bound = sum(1 for s in self._senders if s.bound)
        receivers = [link for link in self._links if link.role != "transmitter"]
        reasons = sorted({link.reason for link in self._links if link.reason})
        up = bound > 0 and any(link.session and link.session.bound for link in receivers)
        return RouteState(
            self.name,
            up,
            "" if up else "; ".join(reasons) or "not open",
            sum(1 for link in self._links if link.session and link.session.bound),
            len(self._links),
        )

    def route_state(self) -> tuple[bool, str]:
        """(up, reason) in dispatch's fixed words (channels.base.KnowsRouteState)."""
        up = self.state().up
        return up, "" if up else self._why_down()

    def _why_down(self) -> str:
        """The route's state in dispatch's fixed words (channels.base.ROUTE_DOWN_REASONS)."""
        reasons = " ".join(link.reason for link in self._links if link.reason).lower()
        if "bind" in reasons and "refused" in reasons:
            return "login refused"
        return "connection refused" if "cannot connect" in reasons else "connection lost"

    def link_up(self, link: Link) -> None:
        session = link.session
        if session is not None and session.sends:
            self._senders.append(session)
            self._up.set()
            self._wake_all()

    def link_down(self, link: Link) -> None:
        self._senders = [s for s in self._senders if s.bound and s is not link.session]
        if not self._senders:
            self._up.clear()
        self._wake_all()

    def on_lost(self, session: Session) -> None:
        if session in self._senders:
            self._senders = [s for s in self._senders if s is not session]
            if not self._senders:
                self._up.clear()
        self._wake_all()

    # sending

    async def send(self, message: OutboundMessage) -> SendResult:
        text = _text_of(message.content)
        encoded = gsm.encode_text(text, force_ucs2=self.config.default_encoding == "ucs2")
        source, source_ton, source_npi = self._source(message.sender)
        dest = message.to.removeprefix("+").encode("latin-1")
        coding, body = encoded.data_coding, self._template.body
        if len(encoded.parts) == 1:
            [payload] = gsm.payloads(encoded, packed=self.config.gsm7_packed)
            bodies = [body(source, source_ton, source_npi, dest, coding, payload)]
        else:
            reference, total = self._references.next(), len(encoded.parts)
            sar = self.config.concatenation == "sar"
            parts = gsm.payloads(
                encoded, packed=self.config.gsm7_packed, udh_reference=None if sar else reference
            )
            bodies = [
                body(
                    source,
                    source_ton,
                    source_npi,
                    dest,
                    coding,
                    part,
                    esm_class=0 if sar else pdu.ESM_UDHI,
                    tlvs=pdu.sar_tlvs(reference, total, index) if sar else b"",
                )
                for index, part in enumerate(parts, start=1)
            ]
        # Parts go in order, one after the other: some SMSCs and handsets expect that.
        ids = [await self._submit(b) for b in bodies]
        # The first part's SMSC id names the hand-off; every part's receipt counts.
        return SendResult(ids[0], parts=tuple(ids[1:]))

    def _source(self, sender: str) -> tuple[bytes, int, int]:
        number = sender.removeprefix("+")
        if number.isdigit():
            return number.encode("latin-1"), self.config.source_ton, self.config.source_npi
        return sender.encode("latin-1", "replace")[:11], _TON_ALPHANUMERIC, 0

    async def _submit(self, body: bytes) -> str:
        tries = 0
        while True:
            session = await self._acquire()
            try:
                _, status, answer = await session.request(pdu.SUBMIT_SM, body)
            except (ConnectionLost, RequestTimeout) as error:
                tries += 1
                if tries > self.config.resubmits:
                    raise TransientDeliveryError(UNKNOWN_ERROR, f"SMPP: {error}") from error
                continue
            finally:
                self._release(session)
            if status == ESME_ROK:
                return pdu.decode_message_id(answer)
            outcome = status_of(status)
            code = outcome.code or UNKNOWN_ERROR
            if outcome.outcome is Outcome.PERMANENT:
                raise PermanentDeliveryError(code, f"SMSC refused: {describe(status)}")
            tries += 1
            if tries > self.config.resubmits:
                raise TransientDeliveryError(code, f"SMSC: {describe(status)}")
            if outcome.outcome is Outcome.SLOW_DOWN:
                self._slow_down(status)
            elif status == ESME_RINVBNDSTS:
                session.abort()  # the SMSC forgot the bind: bind again
            else:
                raise TransientDeliveryError(code, f"SMSC: {describe(status)}")

    def _slow_down(self, status: int) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + self.config.throttle_pause
        if until > self._paused_until:
            log.warning("SMPP route %s: %s; pausing", self.name, describe(status))
            self._paused_until = until

    async def _acquire(self) -> Session:
        """A bound connection with room in its window, once the route's pace allows."""
        loop = asyncio.get_running_loop()
        while True:
            if self.closing:
                raise RouteDownError(UNKNOWN_ERROR, f"SMPP route {self.name} is closing", "closing")
            best = None
            window = self.config.window
            for session in self._senders:
                if (
                    session.bound
                    and session.inflight < window
                    and (best is None or session.inflight < best.inflight)
                ):
                    best = session
            if best is None:
                await self._wait_for_room()
                continue
            best.inflight += 1
            wait = self._paused_until - loop.time()
            if self._interval:
                now = loop.time()
                slot = max(now, self._next_slot, self._paused_until)
                self._next_slot = slot + self._interval
                wait = slot - now
            if wait > 0:
                try:
                    await asyncio.sleep(wait)
                except asyncio.CancelledError:
                    self._release(best)
                    raise
                if not best.bound:  # it went away meanwhile
                    self._release(best)
                    continue
            return best

    async def _wait_for_room(self) -> None:
        if not self._senders:
            if not any(link.was_bound for link in self._links):
                raise RouteDownError(
                    UNKNOWN_ERROR, f"SMPP route down: {self.state().reason}", self._why_down()
                )
            # A bound route dropped: its messages wait a reconnect out rather than fail.
            try:
                await asyncio.wait_for(self._up.wait(), self.config.connect_timeout)
            except TimeoutError:
                raise RouteDownError(
                    UNKNOWN_ERROR, f"SMPP route down: {self.state().reason}", "connection lost"
                ) from None
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _release(self, session: Session) -> None:
        session.inflight -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        # SMPP has query_sm, but few SMSCs keep answers for it; receipts come by deliver_sm,
        # and an unacknowledged one is delivered again, so nothing is asked here.
        return []

    # receiving

    def on_deliver(self, session: Session, sequence: int, body: bytes) -> None:
        try:
            sm = pdu.decode_sm(body)
        except pdu.PduError as error:
            log.error("SMPP route %s: unreadable deliver_sm: %s", self.name, error)
            session.respond(pdu.DELIVER_SM_RESP, ESME_RX_P_APPN, sequence)
            return
        if receipts.is_receipt(sm.esm_class):
            self._on_receipt(session, sequence, sm)
        else:
            self._on_inbound(session, sequence, sm, body)

    def _on_receipt(self, session: Session, sequence: int, sm: pdu.ShortMessage) -> None:
        parsed = receipts.parse(sm)
        receipt = receipts.to_receipt(parsed) if parsed else None
        if parsed is None:
            log.warning("SMPP route %s: a receipt that names no message", self.name)
        if receipt is None:  # nothing to record (ACCEPTD, ENROUTE, no id): taken as read
            session.respond(pdu.DELIVER_SM_RESP, ESME_ROK, sequence)
        elif self._receipts is None:  # closing: the SMSC keeps it for the next bind
            session.respond(pdu.DELIVER_SM_RESP, ESME_RX_T_APPN, sequence)
        else:
            self._after(self._receipts(receipt), [(session, sequence)])

    def _on_inbound(
        self, session: Session, sequence: int, sm: pdu.ShortMessage, body: bytes
    ) -> None:
        if self._inbound is None:
            # Refused for good rather than dropped silently: the SMSC knows nobody took it.
            session.respond(pdu.DELIVER_SM_RESP, ESME_RX_P_APPN, sequence)
            return
        sender = address(sm.source_addr, sm.source_ton)
        to = address(sm.destination_addr, sm.dest_ton)
        data, segment = split_udh(sm)
        # A redelivered deliver_sm has the same body (its sequence number is in the header).
        digest = hashlib.blake2b(body, digest_size=16).digest()
        if segment is None:
            text, held = gsm.decode_text(data, sm.data_coding), [(session, sequence, digest)]
        else:
            now = asyncio.get_running_loop().time()
            done = self._reassembler.add(
                sender, to, segment, data, sm.data_coding, (session, sequence, digest), now
            )
            if done is None:
                return
            text, held = done
        message = InboundMessage(
            "SMS",
            sender,
            to,
            {"text": text},
            self._inbound_key(h[2] for h in held),
            now_ms(),
            int(self.config.inbound_repeat_window * 1000),
        )
        self._after(self._inbound(message), [(s, n) for s, n, _ in held])

    def _inbound_key(self, digests: Iterable[bytes]) -> str:
        """The message's id across deliveries: its route and what its parts carried (in any
        order: a redelivery's parts may arrive in another)."""
        key = hashlib.blake2b(self.name.encode(), digest_size=20)
        for digest in sorted(digests):
            key.update(digest)
        return f"smpp:{key.hexdigest()}"

    def _after(self, result: Awaitable[None] | None, acks: list[Ack]) -> None:
        """Acknowledges once the sink is done with what the deliver_sm carried."""
        if result is None or not inspect.isawaitable(result):
            _answer(acks, ESME_ROK)
            return
        if isinstance(result, asyncio.Future):
            # Dispatch's receipt sink answers a future: a callback, not a task per receipt.
            result.add_done_callback(functools.partial(self._ack_on, acks))
            return
        task = asyncio.ensure_future(self._ack_when_done(result, acks))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    def _ack_on(self, acks: list[Ack], done: "asyncio.Future[None]") -> None:
        if done.cancelled() or done.exception() is not None:
            log.error("SMPP route %s: a sink failed; the SMSC will deliver again", self.name)
            _answer(acks, ESME_RX_T_APPN)
        else:
            _answer(acks, ESME_ROK)

    async def _ack_when_done(self, result: Awaitable[None], acks: list[Ack]) -> None:
        try:
            await result
        except Exception:
            log.exception("SMPP route %s: a sink failed; the SMSC will deliver again", self.name)
            _answer(acks, ESME_RX_T_APPN)
            return
        _answer(acks, ESME_ROK)

    async def _sweep(self) -> None:
        """Refuses inbound parts held past reassembly_timeout so the SMSC sends them again."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK)
            stale = self._reassembler.expire(loop.time() - self.config.reassembly_timeout)
            if stale:
                log.warning("SMPP route %s: an inbound message stayed incomplete", self.name)
                _answer([(s, n) for s, n, _ in stale], ESME_RX_T_APPN)


def smpp_route(name: str, options: SmppRouteConfig) -> SmppChannel:
    """The factory of the `smpp` route kind: one configured route, one channel."""
    return SmppChannel(name=name, config=options)


def _answer(acks: list[Ack], status: int) -> None:
    for session, sequence in acks:
        session.respond(pdu.DELIVER_SM_RESP, status, sequence)


def _text_of(content: dict[str, Any]) -> str:
    text = content.get("text") or ""
    media = content.get("media") or []
    # SMPP carries text only: media links travel as links on their own lines.
    links = [m.get("url", "") if isinstance(m, dict) else str(m) for m in media]
    text = "\n".join([text, *[link for link in links if link]]) if links else text
    if not text:
        raise PermanentDeliveryError(BODY_REQUIRED, "SMPP carries text: the message has none")
    return text
