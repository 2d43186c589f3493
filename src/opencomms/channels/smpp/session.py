"""One SMPP connection: framing, request/response matching, keepalive answers, batched writes.

An asyncio Protocol rather than streams: a PDU costs one header unpack and one dict lookup on
the way in, and the PDUs written in one loop iteration leave in one `write()`.
"""

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable
from typing import Final, Protocol, cast

from opencomms.channels.smpp import pdu
from opencomms.channels.smpp.status import ESME_RINVCMDID, ESME_ROK

log = logging.getLogger(__name__)

_SEQUENCE_LIMIT: Final = 0x7FFFFFFF

Answer = tuple[int, int, bytes]  # command_id, command_status, body


class ConnectionLost(ConnectionError):
    """The connection closed before the SMSC answered; the request's outcome is unknown."""


class RequestTimeout(TimeoutError):
    """The SMSC did not answer in time; the request's outcome is unknown."""


class SessionHooks(Protocol):
    def on_deliver(self, session: "Session", sequence: int, body: bytes) -> None: ...

    def on_lost(self, session: "Session") -> None: ...


class Session(asyncio.Protocol):
    """A connection to the SMSC in one role: "transceiver", "transmitter" or "receiver"."""

    def __init__(self, hooks: SessionHooks, role: str, label: str) -> None:
        self.hooks = hooks
        self.role = role
        self.label = label
        self.bound = False
        self.inflight = 0  # window slots the channel has reserved on this connection
        self.last_seen = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._pending: dict[int, tuple[asyncio.Future[Answer], float]] = {}
        self._sequence = itertools.count(1)
        self._out: list[bytes] = []

    @property
    def sends(self) -> bool:
        return self.role != "receiver"

    @property
    def receives(self) -> bool:
        return self.role != "transmitter"

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.last_seen = self._loop.time()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        try:
            frames, used = pdu.split_frames(buffer)
        except pdu.PduError as error:
            log.error("%s: unreadable stream from the SMSC (%s); reconnecting", self.label, error)
            self.abort()
            return
        if used:
            del buffer[:used]
        self.last_seen = self._loop.time()
        for command_id, status, sequence, body in frames:
            self._dispatch(command_id, status, sequence, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.bound = False
        self.transport = None
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(f"{self.label}: connection lost"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.hooks.on_lost(self)

    # requests and answers

    def _dispatch(self, command_id: int, status: int, sequence: int, body: bytes) -> None:
        if command_id & pdu.RESPONSE:
            entry = self._pending.pop(sequence, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result((command_id, status, body))
            elif command_id == pdu.GENERIC_NACK:
                log.warning("%s: generic_nack 0x%08X for sequence %d", self.label, status, sequence)
            return
        if command_id == pdu.DELIVER_SM:
            self.hooks.on_deliver(self, sequence, body)
        elif command_id == pdu.ENQUIRE_LINK:
            self.respond(pdu.ENQUIRE_LINK_RESP, ESME_ROK, sequence)
        elif command_id == pdu.UNBIND:
            log.warning("%s: the SMSC unbinds", self.label)
            self.bound = False
            self.respond(pdu.UNBIND_RESP, ESME_ROK, sequence)
            self._flush()
            if self.transport is not None:
                self.transport.close()
        else:
            self.respond(pdu.GENERIC_NACK, ESME_RINVCMDID, sequence)

    def request(self, command_id: int, body: bytes = b"") -> asyncio.Future[Answer]:
        future: asyncio.Future[Answer] = self._loop.create_future()
        if self.transport is None:
            future.set_exception(ConnectionLost(f"{self.label}: not connected"))
            return future
        sequence = next(self._sequence)
        if sequence >= _SEQUENCE_LIMIT:
            self._sequence = itertools.count(2)
            sequence = 1
        self._pending[sequence] = (future, self._loop.time())
        self._write(pdu.pack(command_id, 0, sequence, body))
        return future

    def respond(self, command_id: int, status: int, sequence: int, body: bytes = b"") -> None:
        if self.transport is not None:
            self._write(pdu.pack(command_id, status, sequence, body))

    def _write(self, data: bytes) -> None:
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def expire(self, older_than: float) -> int:
        """Fails requests sent before `older_than` (loop time); returns how many."""
        late = [seq for seq, (_, sent) in self._pending.items() if sent < older_than]
        for sequence in late:
            future, _ = self._pending.pop(sequence)
            if not future.done():
                future.set_exception(RequestTimeout(f"{self.label}: no answer in time"))
        return len(late)

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(
    factory: Callable[[], Session],
    host: str,
    port: int,
    *,
    tls: bool,
    tls_verify: bool = True,
    tls_ca_file: str = "",
) -> Session:
    loop = asyncio.get_running_loop()
    context = None
    if tls:
        context = ssl.create_default_context(cafile=tls_ca_file or None)
        if not tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    _, protocol = await loop.create_connection(factory, host, port, ssl=context)
    return protocol
