"""A real HTTP receiver on 127.0.0.1 (uvicorn in this process) that records what it gets and
answers as a test scripts it."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    path: str  # with its query string
    headers: dict[str, str]
    body: bytes

    def events(self) -> list[dict[str, Any]]:
        parsed = orjson.loads(self.body)
        return parsed if isinstance(parsed, list) else [parsed]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    # Decides each answer from the request; default 200.
    script: Callable[[Received], Answer] = lambda _r: Answer()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [e for r in self.requests if r.body for e in r.events()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode()
        path = scope["path"] + (f"?{query}" if query else "")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        request = Received(path, headers, body)
        answer = self.script(request)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        self.requests.append(request)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode(), v.encode()) for k, v in answer.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(app: Any, port: int | None = None) -> AsyncIterator[int]:
    """Serves an ASGI app on 127.0.0.1 for the duration of the block; yields its port."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def receiver(port: int | None = None) -> AsyncIterator[Receiver]:
    hook = Receiver(port or free_port())
    async with serving(hook, hook.port):
        yield hook
