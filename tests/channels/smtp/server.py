"""A real SMTP server for the tests, run as its own process: aiosmtpd with our handler.

    python -m tests.channels.smtp.server --spool FILE [--cert C --key K [--implicit]]
        [--auth USER:PASS] [--sink]

With a certificate it requires STARTTLS, or with --implicit speaks TLS from the first byte.
It prints `READY <port>` once listening on a free port of 127.0.0.1. It advertises
PIPELINING (aiosmtpd reads commands in order from its stream, so pipelined commands work;
it only does not say so). What it answers depends on the recipient's local part:

    tempfail@...   RCPT TO gets 451 4.3.0 (transient)
    reject@...     RCPT TO gets 550 5.1.1 (permanent: no such user)
    spam@...       the body gets 554 5.7.1 (permanent: refused by policy)
    drop@...       the first time, the connection is cut after the body, before any reply;
                   afterwards accepted
    anything else  250, and the email is appended to the spool (one JSON line each, with
                   the envelope and the raw bytes in base64)

With --sink nothing is stored: it only counts, for the benchmark.
"""

import argparse
import asyncio
import base64
import json
import socket
import ssl
import time
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Handler:
    def __init__(self, spool: str | None) -> None:
        self.spool = open(spool, "a", encoding="ascii") if spool else None  # noqa: SIM115
        self.dropped: set[str] = set()
        self.count = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.partition("@")[0].lower()
        if local == "tempfail":
            return "451 4.3.0 Try again later"
        if local == "reject":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0]
        local = rcpt.partition("@")[0].lower()
        if local == "spam":
            return "554 5.7.1 Message refused by policy"
        if local == "drop" and rcpt not in self.dropped:
            self.dropped.add(rcpt)
            assert server.transport is not None
            server.transport.abort()  # cut mid-transaction: the client never hears a reply
            return "250 never sent"
        self.count += 1
        if self.spool is not None:
            record: dict[str, Any] = {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "data": base64.b64encode(envelope.original_content or b"").decode(),
                "tls": server.transport is not None
                and server.transport.get_extra_info("sslcontext") is not None,
                "auth": session.authenticated,
                "at": time.time(),  # when the body was taken: pacing tests read it
            }
            self.spool.write(json.dumps(record) + "\n")
            self.spool.flush()
        return "250 2.0.0 Queued"


def _authenticator(credentials: str) -> Any:
    user, _, password = credentials.partition(":")

    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and (
            data.login.decode() == user and data.password.decode() == password
        )
        return AuthResult(success=good, handled=False)

    return check


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spool")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--sink", action="store_true")
    parser.add_argument("--port", type=int, default=0)  # 0: any free port
    args = parser.parse_args()
    handler = Handler(None if args.sink else args.spool)
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)

    starttls = None if args.implicit else context

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="sink.test",
            tls_context=starttls,
            require_starttls=starttls is not None,
            authenticator=_authenticator(args.auth) if args.auth else None,
            auth_required=bool(args.auth),
            auth_require_tls=context is not None,
        )

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, sock=sock, ssl=context if args.implicit else None)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
