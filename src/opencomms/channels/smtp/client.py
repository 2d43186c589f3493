"""A lean SMTP client session on asyncio streams, made to be kept open and reused.

aiosmtplib does not pipeline: every command costs a round trip. With PIPELINING (RFC 2920)
this session sends `RSET`, `MAIL FROM`, `RCPT TO` and `DATA` in one write and reads their
replies together, so one email costs two round trips (envelope, then body) instead of five.
bench/email.py measures the difference. Without PIPELINING it falls back to one command at a
time. Replies are returned, never raised: the caller decides what a code means.
"""

import asyncio
import base64
import socket
import ssl
from dataclasses import dataclass, field
from typing import NamedTuple

_DRAIN_ABOVE = 256 * 1024
_MAX_LINE = 2048  # the reply lines a sane server sends are far shorter (RFC 5321: 512)


class Reply(NamedTuple):
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400


class SmtpProtocolError(ConnectionError):
    """The server sent something that is not an SMTP reply, or refused the session."""


class SessionRefused(Exception):
    """EHLO, STARTTLS or AUTH failed: the route cannot be used right now."""

    def __init__(self, stage: str, reply: Reply) -> None:
        super().__init__(f"{stage} refused: {reply.code} {reply.text}")
        self.stage = stage
        self.reply = reply


def dot_stuff(data: bytes) -> bytes:
    """The DATA payload as sent: CRLF line ends, leading dots doubled, ended by CRLF.CRLF."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


@dataclass
class Session:
    """One open SMTP connection, after EHLO (and STARTTLS, AUTH) succeeded."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    timeout: float
    extensions: dict[str, str] = field(default_factory=dict)
    sent: int = 0  # transactions completed on this connection
    started: bool = False  # a transaction began here: the next one starts with RSET
    body_sent: bool = False  # the current body went out: a drop now leaves its fate unknown

    @property
    def pipelining(self) -> bool:
        return "pipelining" in self.extensions

    async def read_reply(self) -> Reply:
        """One (possibly multi-line) reply, within the timeout."""
        async with asyncio.timeout(self.timeout):
            return await self._reply()

    async def read_replies(self, count: int) -> list[Reply]:
        """The replies to a pipelined group, all within one timeout.

        asyncio.timeout is one timer a group; wait_for would be a task and a timer a line,
        about a sixth of this session's CPU an email."""
        async with asyncio.timeout(self.timeout):
            return [await self._reply() for _ in range(count)]

    async def _reply(self) -> Reply:
        lines: list[str] = []
        while True:
            raw = await self.reader.readline()
            if not raw.endswith(b"\n"):
                raise SmtpProtocolError("the connection closed mid-reply")
            if len(raw) > _MAX_LINE or len(raw) < 4 or not raw[:3].isdigit():
                raise SmtpProtocolError(f"not an SMTP reply: {raw[:80]!r}")
            lines.append(raw[4:].decode("utf-8", "replace").rstrip("\r\n"))
            if raw[3:4] != b"-":
                return Reply(int(raw[:3]), "\n".join(lines))

    async def command(self, line: str) -> Reply:
        self.writer.write(line.encode("ascii") + b"\r\n")
        return await self.read_reply()

    async def ehlo(self, hostname: str) -> None:
        reply = await self.command(f"EHLO {hostname}")
        if reply.code != 250:
            raise SessionRefused("EHLO", reply)
        self.extensions = {}
        for line in reply.text.split("\n")[1:]:
            keyword, _, params = line.partition(" ")
            self.extensions[keyword.lower()] = params

    async def starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            raise SessionRefused("STARTTLS", reply)
        await asyncio.wait_for(
            self.writer.start_tls(context, server_hostname=server_hostname), self.timeout
        )

    async def login(self, username: str, password: str) -> None:
        mechanisms = self.extensions.get("auth", "").upper().split()
        if "PLAIN" in mechanisms or "LOGIN" not in mechanisms:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            reply = await self.command(f"AUTH PLAIN {token}")
        else:
            reply = await self.command("AUTH LOGIN")
            for secret in (username, password):
                if reply.code != 334:
                    break
                reply = await self.command(base64.b64encode(secret.encode()).decode())
        if reply.code != 235:
            raise SessionRefused("AUTH", reply)

    async def transaction(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Sends one email; returns the first failing reply, or the reply to its body.

        The connection is left ready for the next transaction whatever the outcome (a
        failed envelope is reset before the next one starts, since every transaction
        begins with RSET).
        """
        envelope = [f"MAIL FROM:<{sender}>", f"RCPT TO:<{recipient}>", "DATA"]
        if self.started:
            envelope.insert(0, "RSET")
        self.started, self.body_sent = True, False
        replies = await self._send_envelope(envelope)
        failed = next((r for r in replies[:-1] if not r.ok), None)
        data_reply = replies[-1]
        if data_reply.code != 354:
            return failed or data_reply
        if failed is not None:
            # Cannot happen with one recipient, but a server may: end the empty body.
            self.writer.write(b".\r\n")
            await self.read_reply()
            return failed
        self.writer.write(dot_stuff(data))
        self.body_sent = True
        if len(data) > _DRAIN_ABOVE:
            await self.writer.drain()  # a large body waits for the socket, not in memory
        reply = await self.read_reply()
        self.sent += 1
        return reply

    async def _send_envelope(self, commands: list[str]) -> list[Reply]:
        if not self.pipelining:
            replies = []
            for line in commands:
                reply = await self.command(line)
                replies.append(reply)
                if not reply.ok:
                    # MAIL or RCPT refused: the DATA that would follow is answered 503.
                    return [*replies, Reply(503, "not sent: an earlier command failed")]
            return replies
        self.writer.write("".join(f"{line}\r\n" for line in commands).encode("ascii"))
        return await self.read_replies(len(commands))

    async def quit(self) -> None:
        try:
            if not self.writer.is_closing():
                await asyncio.wait_for(self.command("QUIT"), min(self.timeout, 2.0))
        except (OSError, TimeoutError, SmtpProtocolError):
            pass  # the session is over either way
        finally:
            self.close()

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Endpoint:
    """Where and how to open sessions; the settings of one route."""

    host: str
    port: int
    timeout: float
    ssl_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    local_hostname: str = field(default_factory=socket.getfqdn)


async def open_session(endpoint: Endpoint) -> Session:
    """Connects, greets, upgrades to TLS and authenticates as the endpoint asks."""
    context = endpoint.ssl_context if endpoint.implicit_tls else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            endpoint.host,
            endpoint.port,
            ssl=context,
            server_hostname=endpoint.host if context else None,
            limit=_MAX_LINE * 4,
        ),
        endpoint.timeout,
    )
    session = Session(reader, writer, endpoint.timeout)
    try:
        await _handshake(session, endpoint)
    except BaseException:
        session.close()
        raise
    return session


async def _handshake(session: Session, endpoint: Endpoint) -> None:
    greeting = await session.read_reply()
    if greeting.code != 220:
        raise SessionRefused("greeting", greeting)
    await session.ehlo(endpoint.local_hostname)
    if endpoint.starttls and not endpoint.implicit_tls:
        if "starttls" not in session.extensions:
            raise SessionRefused("STARTTLS", Reply(502, "the server does not offer STARTTLS"))
        assert endpoint.ssl_context is not None
        await session.starttls(endpoint.ssl_context, endpoint.host)
        await session.ehlo(endpoint.local_hostname)  # capabilities may change under TLS
    if endpoint.username is not None and endpoint.password is not None:
        await session.login(endpoint.username, endpoint.password)
