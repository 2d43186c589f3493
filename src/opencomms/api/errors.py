"""Every failure becomes an answer in the spec's error shape; nothing leaks as a bare 500."""

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from opencomms.api.limits import BodyTooLarge
from opencomms.api.responses import error_response, one_error
from opencomms.domain import errors
from opencomms.domain.errors import NotFound, Problem, ValidationFailed
from opencomms.store.db import UNAVAILABLE, is_unavailable
from opencomms.store.idempotency import KeyTakenOver

log = logging.getLogger("opencomms.api")

_HTTP_CODES = {
    401: errors.AUTHENTICATION_FAILED,
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    409: errors.CONFLICT,
    413: errors.PAYLOAD_TOO_LARGE,
    415: errors.UNSUPPORTED_MEDIA_TYPE,
}


class Refused(Exception):
    """A refusal whose answer is already built (a rate limit's 429 with its headers)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _refused(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return exc.response


class Unauthorized(Exception):
    """No credentials, or credentials that match no account or key."""


def _context(location: tuple[object, ...]) -> str:
    parts = [str(p) for p in location if p not in ("query", "path", "body")]
    return "$." + ".".join(parts) if parts else "$"


async def _validation_failed(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationFailed)
    return error_response(400, exc.problems)


async def _request_invalid(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        Problem(errors.INVALID_PARAMETER, str(e.get("msg", "invalid value")), _context(e["loc"]))
        for e in exc.errors()
    ]
    return error_response(400, problems)


async def _not_found(_request: Request, exc: Exception) -> Response:
    return one_error(404, errors.NOT_FOUND, str(exc))


async def _unauthorized(_request: Request, _exc: Exception) -> Response:
    response = one_error(
        401,
        errors.AUTHENTICATION_FAILED,
        "Authenticate with an Account SID and auth token, "
        "or an API key and secret, using HTTP Basic",
    )
    response.headers["WWW-Authenticate"] = 'Basic realm="OpenComms"'
    return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route serves on the request's path.

    Starlette answers a 405 with the methods of the first route whose path matched, but
    one path may be served by several routes (GET and POST /v1/Messages are two), so each
    method is tried against every route.
    """
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, 20000 + exc.status_code)
    response = one_error(exc.status_code, code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    if exc.status_code == 405:
        response.headers["Allow"] = allowed_methods(request)
    return response


async def _too_large(_request: Request, _exc: Exception) -> Response:
    response = one_error(413, errors.PAYLOAD_TOO_LARGE, "The body is too large")
    response.headers["Connection"] = "close"  # the rest of the body is still on the wire
    return response


RETRY_AFTER_SECONDS = 2  # a database restart or failover takes seconds


def unavailable_response() -> Response:
    """503 for a database that is down, unreachable, read-only or full.

    `Connection: close`: the failure may have cut the request short, and a client must not
    send its next request on a connection it cannot trust. Nothing was taken: every write
    of a request is one transaction, so a 503 always means "not accepted, retry".
    """
    response = one_error(
        503,
        errors.SERVICE_UNAVAILABLE,
        "The service cannot reach its database; nothing was accepted, retry later",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Connection"] = "close"
    return response


async def _store_failure(_request: Request, exc: Exception) -> Response:
    if is_unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        return unavailable_response()
    return await _unexpected(_request, exc)


async def _taken_over(_request: Request, _exc: Exception) -> Response:
    message = (
        "This request outlived its Idempotency-Key's lock and a retry took the key over;"
        " nothing was written by this request"
    )
    return one_error(409, errors.CONFLICT, message)


async def _unexpected(_request: Request, exc: Exception) -> Response:
    if is_unavailable(exc):
        return await _store_failure(_request, exc)
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    response = one_error(500, errors.INTERNAL_ERROR, "Internal server error")
    response.headers["Connection"] = "close"
    return response


Handler = Callable[[Request, Exception], Awaitable[Response]]
# Most specific first: `render` takes the first entry the exception is an instance of.
HANDLERS: list[tuple[type[Exception], Handler]] = [
    (ValidationFailed, _validation_failed),
    (RequestValidationError, _request_invalid),
    (NotFound, _not_found),
    (Unauthorized, _unauthorized),
    (HTTPException, _http_error),
    (BodyTooLarge, _too_large),
    (Refused, _refused),
    (KeyTakenOver, _taken_over),
    # Handled here, not by the catch-all: the catch-all re-raises into the server's log.
    # asyncpg's errors (raised past SQLAlchemy by the direct reads and writes) reach the
    # catch-all, which asks is_unavailable too: asyncpg is not loaded on SQLite.
    *((kind, _store_failure) for kind in (*UNAVAILABLE, SQLAlchemyError)),
    (Exception, _unexpected),
]


def install(app: FastAPI) -> None:
    for kind, handler in HANDLERS:
        app.add_exception_handler(kind, handler)


async def render(request: Request, exc: Exception) -> Response:
    """The answer for an exception raised outside the framework's handling (the fast path)."""
    for kind, handler in HANDLERS:
        if isinstance(exc, kind):
            return await handler(request, exc)
    raise exc  # unreachable: Exception is the last entry
