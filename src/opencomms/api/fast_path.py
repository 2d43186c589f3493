"""The hot routes without the framework: POST /v1/Messages and the three hot GETs.

Routing, dependency injection and the exception middleware cost about a third of a
1-recipient send's CPU, more than validating and writing it. This middleware answers those
routes itself with the very functions the FastAPI routes use (authentication, the send,
query parsing, error rendering; the reads in api/fast_reads.py), and hands every other
request to the framework untouched.
"""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from opencomms.api import errors, fast_reads
from opencomms.api.deps import AppState, authenticate, public_base
from opencomms.api.messages import accept_send

_SENDS = frozenset({"/v1/Messages", "/preview/Messages"})
_PREFIXES = ("/v1/Messages/", "/preview/Messages/")
_OPERATIONS = "Operations/"

Handler = Callable[[Request, str], Awaitable[Response]]


class FastPath:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        # Without a direct reader (an in-memory SQLite database) the GETs stay with FastAPI.
        self.reads = state.db.direct is not None

    def route(self, method: str, path: str) -> Handler | None:
        """The handler for the request, or None to leave it to the framework."""
        if method == "POST":
            return self._send if path in _SENDS else None
        if method != "GET" or not self.reads:
            return None
        if path in _SENDS:
            return self._list
        for prefix in _PREFIXES:
            if path.startswith(prefix):
                rest = path[len(prefix) :]
                if rest.startswith(_OPERATIONS):
                    rest = rest[len(_OPERATIONS) :]
                    return self._operation if rest and "/" not in rest else None
                # "Operations" alone is the operations list; anything else is a message id.
                return self._message if rest and "/" not in rest and rest != "Operations" else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.route(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            account = await authenticate(self.state, request)
            response = await handler(request, account)
        except Exception as error:
            response = await errors.render(request, error)
        await response(scope, receive, send)

    async def _send(self, request: Request, account: str) -> Response:
        return await accept_send(request, account, self.state, public_base(self.state, request))

    async def _list(self, request: Request, account: str) -> Response:
        base = public_base(self.state, request)
        return await fast_reads.list_messages(request, self.state.db, account, base)

    async def _message(self, request: Request, account: str) -> Response:
        base = public_base(self.state, request)
        message_id = request.scope["path"].rsplit("/", 1)[1]
        return await fast_reads.fetch_message(self.state.db, account, base, message_id)

    async def _operation(self, request: Request, account: str) -> Response:
        operation_id = request.scope["path"].rsplit("/", 1)[1]
        return await fast_reads.fetch_operation(self.state.db, account, operation_id)
