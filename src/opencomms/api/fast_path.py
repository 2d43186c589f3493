"""The hot route without the framework: POST /v1/Messages straight to its handler.

Routing, dependency injection and the exception middleware cost about a third of a
1-recipient send's CPU, more than validating and writing it. This middleware answers that
one route itself with the very functions the FastAPI route uses (authentication, the send,
error rendering), and hands every other request to the framework untouched.
"""

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from opencomms.api import errors
from opencomms.api.deps import AppState, authenticate, public_base
from opencomms.api.messages import accept_send

_ROUTES = frozenset({("POST", "/v1/Messages"), ("POST", "/preview/Messages")})


class FastPath:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) not in _ROUTES:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            account = await authenticate(self.state, request)
            response = await accept_send(
                request, account, self.state, public_base(self.state, request)
            )
        except Exception as error:
            response = await errors.render(request, error)
        await response(scope, receive, send)
