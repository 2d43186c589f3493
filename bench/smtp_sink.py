"""A lean SMTP sink for bench/emails.py: asyncio, one protocol object a connection, no parsing
beyond what a pipelining client needs; it only counts. Run as its own process:

    python bench/smtp_sink.py        prints `READY <port>`, serves until terminated

It answers EHLO (with PIPELINING), MAIL, RCPT, RSET, NOOP and DATA, in order, replies to a
pipelined group written together in one write. It exists to tell the sink's cost from the
client's: aiosmtpd (the default sink) spends a few hundred microseconds of its own CPU an
email, which on a loaded machine can be the bottleneck of every figure.
"""

import asyncio
import socket

_EHLO = b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 33554432\r\n"
_REPLIES = {
    b"MAIL": b"250 2.1.0 OK\r\n",
    b"RCPT": b"250 2.1.5 OK\r\n",
    b"RSET": b"250 2.0.0 OK\r\n",
    b"NOOP": b"250 2.0.0 OK\r\n",
    b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
}
_QUEUED = b"250 2.0.0 Queued\r\n"
_END = b"\r\n.\r\n"


class Sink(asyncio.Protocol):
    count = 0  # emails taken by every connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it.
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.in_data = False
        transport.write(b"220 sink.test ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.in_data:
                end = self.buffer.find(_END)
                if end < 0:
                    # Keep only a tail that may hold the start of the terminator.
                    self.buffer = self.buffer[-4:] if len(self.buffer) > 4 else self.buffer
                    break
                self.buffer = self.buffer[end + len(_END) :]
                self.in_data = False
                Sink.count += 1
                out.append(_QUEUED)
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                out.append(_EHLO)
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:
                out.append(_REPLIES.get(verb, b"502 5.5.2 Command not recognized\r\n"))
                self.in_data = verb == b"DATA"
        if out:
            self.transport.write(b"".join(out))


async def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.get_running_loop().create_server(Sink, sock=sock)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import uvloop  # as the aiosmtpd sink runs

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
