"""One configured connection of a route: connect, bind, keep alive, reconnect with backoff."""

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any, Final

from opencomms.channels.smpp import pdu
from opencomms.channels.smpp.session import ConnectionLost, Session, connect
from opencomms.channels.smpp.status import ESME_ROK, describe

if TYPE_CHECKING:
    from opencomms.channels.smpp.channel import SmppChannel

log = logging.getLogger(__name__)

TICK: Final = 0.5  # seconds between keepalive and expiry checks
_BIND_COMMANDS: Final = {
    "transceiver": pdu.BIND_TRANSCEIVER,
    "transmitter": pdu.BIND_TRANSMITTER,
    "receiver": pdu.BIND_RECEIVER,
}


class Link:
    """One configured connection: keeps it bound, reconnecting with backoff."""

    def __init__(self, channel: "SmppChannel", role: str, label: str) -> None:
        self.channel = channel
        self.role = role
        self.label = label
        self.session: Session | None = None
        self.reason = "not connected yet"
        self.was_bound = False  # bound before its current outage: a drop, not a refusal
        self.first_attempt = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        config = self.channel.config
        delay = config.reconnect_min
        while not self.channel.closing:
            bound = await self._cycle()
            self.first_attempt.set()
            if self.channel.closing:
                return
            delay = config.reconnect_min if bound else min(delay * 2, config.reconnect_max)
            # Jitter keeps many workers from rebinding to a recovering SMSC all at once.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    async def _cycle(self) -> bool:
        """Connects, binds and serves until the connection ends; True if it was bound."""
        config = self.channel.config
        try:
            session = await asyncio.wait_for(
                connect(
                    lambda: Session(self.channel, self.role, self.label),
                    config.host,
                    config.port,
                    tls=config.tls,
                    tls_verify=config.tls_verify,
                    tls_ca_file=config.tls_ca_file,
                ),
                config.connect_timeout,
            )
        except (OSError, TimeoutError) as error:  # ssl.SSLError is an OSError
            self._down(f"cannot connect to {config.host}:{config.port}: {error or 'timed out'}")
            return False
        self.session = session
        try:
            if not await self._bind(session):
                return False
            self.was_bound = True
            self.reason = ""
            self.channel.link_up(self)
            self.first_attempt.set()
            await self._keepalive(session)
            return True
        finally:
            session.abort()
            await session.closed
            self.session = None

    async def _bind(self, session: Session) -> bool:
        config = self.channel.config
        body = pdu.bind_body(config.system_id, config.password, config.system_type)
        try:
            _, status, _ = await asyncio.wait_for(
                session.request(_BIND_COMMANDS[self.role], body), config.response_timeout
            )
        except (ConnectionLost, TimeoutError) as error:
            self._down(f"bind {self.role} got no answer: {error or 'timed out'}")
            return False
        if status != ESME_ROK:
            self.was_bound = False
            self._down(f"bind {self.role} refused: {describe(status)}")
            return False
        session.bound = True
        log.info("SMPP route %s: %s bound", self.channel.name, self.label)
        return True

    async def _keepalive(self, session: Session) -> None:
        """enquire_link when idle; requests past response_timeout fail and the link resets."""
        config = self.channel.config
        loop = asyncio.get_running_loop()
        probe: asyncio.Future[Any] | None = None
        probe_sent = 0.0
        while not session.closed.done():
            await asyncio.wait({session.closed}, timeout=TICK)
            now = loop.time()
            if session.expire(now - config.response_timeout):
                log.warning("SMPP route %s: %s: answers overdue", self.channel.name, self.label)
            if probe is not None and probe.done():
                probe.exception()  # retrieved so a lost connection's probe is not reported
                probe = None
            if probe is None and now - session.last_seen >= config.enquire_link_interval:
                probe, probe_sent = session.request(pdu.ENQUIRE_LINK), now
            elif probe is not None and now - probe_sent > config.response_timeout:
                self._down("enquire_link unanswered")
                return
        self._down("connection closed by the SMSC")

    def _down(self, reason: str) -> None:
        if not self.channel.closing and reason != self.reason:
            log.warning("SMPP route %s: %s down: %s", self.channel.name, self.label, reason)
        self.reason = reason
        self.channel.link_down(self)
