"""`opencomms serve` that kills itself (SIGKILL) the moment it would answer a 202 to a
request with an Idempotency-Key: the send has committed and its answer never leaves. This
is the crash between the commit and the response, at the one instant it matters.

Run as `python -m tests.hardening.crash_on_202 serve ...` (tests/hardening/processes.launch).
"""

import os
import signal
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opencomms.cli import runtime


class KillOn202:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keyed = any(name == b"idempotency-key" for name, _ in scope.get("headers", ()))

        async def dying(message: Message) -> None:
            if keyed and message["type"] == "http.response.start" and message["status"] == 202:
                os.kill(os.getpid(), signal.SIGKILL)
            await send(message)

        await self.app(scope, receive, dying)


_create_app = runtime.create_app


def create_app(*args: Any, **kwargs: Any) -> Any:
    app = _create_app(*args, **kwargs)
    app.add_middleware(KillOn202)
    return app


runtime.create_app = create_app  # type: ignore[assignment]

if __name__ == "__main__":
    from opencomms.cli.app import main

    main()
