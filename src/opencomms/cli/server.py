"""The HTTP server's connection handling: what uvicorn leaves open, closed here.

uvicorn closes a keep-alive connection only after a response, so a client that connects and
says nothing, or sends its headers a byte a minute (slowloris), holds a file descriptor for
ever; past the open-file limit every other client is refused. `GuardedHttp` adds:

- an idle timeout from the moment a connection is made (uvicorn's keep-alive timeout);
- a deadline for a request's headers and one for its whole body, answered with a 408;
- a cap on header bytes (431), since httptools sets none;
- a cap on open connections, below the open-file limit: past it a new connection gets a 503
  in the error shape with `Connection: close`, instead of an accept() that fails.

Every refusal is answered in the spec's error shape and closes the connection.
"""

import asyncio
import contextlib
import os
import resource
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from opencomms.api.responses import error_body
from opencomms.domain import errors
from opencomms.domain.errors import Problem

_LINGER_SECONDS = 1.0
_RESERVED_FDS = 64  # database pool, log, listening socket, files of the process


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class ConnectionLimits:
    """Knobs, each with an OPENCOMMS_* twin (see `from_env`)."""

    keep_alive_seconds: float = 5.0  # idle, between requests or before the first
    header_seconds: float = 10.0  # from a request's first byte to its last header
    body_seconds: float = 60.0  # for the whole body (20 MB at ~3 Mbit/s)
    max_header_bytes: int = 64 * 1024
    max_connections: int = 0  # 0: the open-file limit less a reserve

    @classmethod
    def from_env(cls) -> "ConnectionLimits":
        return cls(
            keep_alive_seconds=_env_float("OPENCOMMS_KEEP_ALIVE_SECONDS", 5.0),
            header_seconds=_env_float("OPENCOMMS_HEADER_TIMEOUT", 10.0),
            body_seconds=_env_float("OPENCOMMS_BODY_TIMEOUT", 60.0),
            max_connections=int(_env_float("OPENCOMMS_MAX_CONNECTIONS", 0)),
        )

    def connection_cap(self) -> int:
        if self.max_connections > 0:
            return self.max_connections
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return max(16, soft - _RESERVED_FDS)


_REASONS = {
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def refusal(status: int, code: int, message: str, retry_after: int | None = None) -> bytes:
    """A complete HTTP response in the error shape that closes the connection."""
    body = orjson.dumps(error_body([Problem(code, message)]))
    head = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_TOO_MANY = refusal(503, errors.SERVICE_UNAVAILABLE, "Too many open connections", retry_after=1)
_TIMEOUT = refusal(408, 20408, "The request was not received in time")
_HEADERS_TOO_LARGE = refusal(431, 20431, "The request's headers are too large")


class GuardedHttp(HttpToolsProtocol):
    limits = ConnectionLimits()
    cap = 0  # set by `server_config`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._tail = b""  # the last bytes read, for a header end split across two reads
        self._in_headers = True  # bytes before a request's headers end count against the cap
        self._busy = False  # a request is being read or answered
        self._discarding = False  # refused: what the client still sends is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.cap and not self._evict_idle():
            self.logger.warning("connection refused: %d open connections", len(self.connections))
            self._refuse(_TOO_MANY)
            return
        # uvicorn arms its keep-alive timer only after a response: arm it for the first
        # request too, so a connection that never speaks is closed like an idle one.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.limits.keep_alive_seconds, self.timeout_keep_alive_handler
        )

    def _evict_idle(self) -> bool:
        """Closes one connection that waits between requests, to make room for this one:
        a crowd of idle connections must not lock out clients with work to do."""
        for other in self.connections:
            if isinstance(other, GuardedHttp) and other is not self and not other._busy:
                other.transport.close()
                self.connections.discard(other)
                return True
        return False

    def on_response_complete(self) -> None:
        self._busy, self._in_headers, self._header_bytes, self._tail = False, True, 0, b""
        super().on_response_complete()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._in_headers:
            self._header_bytes += self._header_part(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(_HEADERS_TOO_LARGE)
                return
        super().data_received(data)

    def _header_part(self, data: bytes) -> int:
        """How many bytes of this read belong to the headers: a read that ends them often
        carries the start of a large body too, which is not the headers' to count."""
        window = self._tail + data
        end = window.find(b"\r\n\r\n")
        self._tail = data[-3:]
        return len(data) if end < 0 else max(0, end + 4 - (len(window) - len(data)))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._busy = True
        self._arm(self.limits.header_seconds)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._arm(self.limits.body_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.close()  # the app answered already; only the rest was slow
            return
        self._refuse(_TIMEOUT)

    def _refuse(self, response: bytes) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None:
            self.cycle.disconnected = True  # the app's receive() now sees a disconnect
            self.cycle.message_event.set()
        self.transport.write(response)
        # A lingering close: a client still sending would otherwise get a reset, which
        # throws away the answer before it reads it. Stop writing, drop what still comes,
        # and close a moment later.
        self._discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


def server_config(app: Any, host: str, port: int, limits: ConnectionLimits) -> uvicorn.Config:
    """uvicorn's options for `serve`: our protocol, our logging, our time-outs."""
    GuardedHttp.limits = limits
    GuardedHttp.cap = limits.connection_cap()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=GuardedHttp,
        log_config=None,  # logs.configure() has set every logger up already
        access_log=False,  # opencomms.request writes one line per request instead
        server_header=False,
        timeout_keep_alive=int(max(limits.keep_alive_seconds, 1)),
        backlog=2048,
    )


class GracefulServer(uvicorn.Server):
    """uvicorn's server, but a signal only asks for a graceful stop.

    uvicorn re-raises SIGTERM once it has stopped serving, which kills the process before
    the worker in `serve` can finish its batch; here the signal is not re-raised, and
    `on_stop` tells the worker to stop claiming at once, while HTTP requests in hand drain.
    A second signal forces the exit, as uvicorn does for a second Ctrl-C.
    """

    def __init__(self, config: uvicorn.Config, on_stop: Any) -> None:
        super().__init__(config)
        self._on_stop = on_stop

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._stop) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, _frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        self._on_stop()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
