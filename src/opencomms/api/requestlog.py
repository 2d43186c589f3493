"""One log line per request: method, path, status, duration, account, request id.

The request id is the caller's `X-Request-Id` when it is a sane token, else a new one; it is
echoed on every answer so a client can quote it. Nothing of the body or the query string is
logged (they carry numbers, texts and tags); the path is masked like every line.
"""

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("opencomms.request")

_HEADER = b"x-request-id"
_SANE = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


def _incoming_id(scope: Scope) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == _HEADER:
            return value if _SANE.match(value) else None
    return None


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _incoming_id(scope) or os.urandom(8).hex().encode()
        state = scope.setdefault("state", {})
        status = 500  # what the server answers if the app fails before starting one

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (_HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
                extra={
                    "account": state.get("account_sid", "-"),
                    "request_id": request_id.decode(),
                },
            )
